"""A resumed run in words, for the timeline's marker and the review."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.language.duration import format_duration

Record = Mapping[str, Any]


def resumed_text(r: Record) -> str:
    """A run.resumed record in words: who, why, how the earlier attempt ended, what now."""
    at = f" at step {r.get('stop_step')}" if r.get("stop_step") else ""
    text = f"by {r.get('by') or 'someone'}" + (f": {r.get('reason')}" if r.get("reason") else "")
    text += f" (the earlier attempt {r.get('previous') or 'stopped'}{at}"
    text += f", {format_duration(float(r.get('downtime') or 0.0))} before)"
    for label, key in (("from", "from_step"), ("run again", "rerun"), ("skipped", "skip"), ("undone", "undone")):
        value = r.get(key)
        if value:
            text += f"; {label}: {', '.join(value) if isinstance(value, list) else value}"
    for lo in r.get("leftovers") or []:  # commands the dead engine left running
        text += (f"; {'stopped' if lo.get('action') == 'stop' else 'waited for'} {lo.get('step')} still running "
                 f"(process group {lo.get('pgid')} on {lo.get('host') or 'the engine host'})")
    return text
