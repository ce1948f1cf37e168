"""Journal records made safe to read (reports, stats, debriefs, replay): every field a
reader uses gets the type the engine writes, or is dropped. A journal written by the
engine passes unchanged; one edited by hand, cut by a crash or written by another tool
still gives a report instead of a traceback.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

FLOATS = frozenset(("elapsed", "duration", "waited", "next_in", "at", "downtime"))
INTS = frozenset(("seq", "attempts", "attempt", "exit_code", "status_code", "index", "injected", "rule", "done",
                  "failed", "running", "total"))
BOOLS = frozenset(("ok", "approved", "polling", "truncated", "skipped", "manual", "handoff"))
DICTS = frozenset(("answers", "outputs", "incident", "inputs", "set", "vars", "phases", "results"))
LISTS = frozenset(("items", "steps", "participants", "logs", "rerun", "skip", "undone", "leftovers"))
STRINGS = frozenset(("event", "t", "step", "phase", "kind", "status", "title", "command", "target", "role",
                     "rollback_of", "by", "error", "reason", "stdout", "stderr", "message", "channel", "purpose",
                     "outcome", "run_id", "runbook", "file", "mode", "scenario", "hostname", "version",
                     "resumed_from", "host", "hint", "action", "priority", "previous", "impact", "urgency",
                     "required_role", "failed_step", "instructions", "note", "condition", "stop_step", "from_step",
                     "digest"))


# Times and durations past this (about 31 years) are damage, as NaN is: no run lasts that
# long, and a report drawing one would draw nothing else.
MAX_SECONDS = 1e9


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and abs(number) <= MAX_SECONDS else None


def _int(value: Any) -> int | None:
    number = _float(value)
    return int(number) if number is not None and abs(number) < 2**63 else None


def _field(key: str, value: Any) -> Any:
    """The value as the engine would have written it; None when it cannot be."""
    if value is None:
        return value
    if key in FLOATS:
        return _float(value)
    if key in INTS:
        return _int(value)
    if key in BOOLS:
        return value if isinstance(value, bool) else None
    if key in DICTS:
        return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else None
    if key in LISTS:
        return _list(key, value)
    if key in STRINGS:
        return value if isinstance(value, str) else str(value)
    return value  # not read by reports (e.g. item, pid): kept as it is


def _list(key: str, value: Any) -> list[Any] | None:
    """items and participants hold mappings; steps and logs hold names."""
    if not isinstance(value, list):
        return None
    if key in ("items", "participants", "leftovers"):
        return [v for v in value if isinstance(v, Mapping)]
    return [v if isinstance(v, str) else str(v) for v in value]


def _hosts(event: str, value: Any) -> Any:
    if event == "step.started":
        return [str(h) for h in value] if isinstance(value, list) else None
    if not isinstance(value, Mapping):
        return None
    return {str(name): clean(data) if isinstance(data, Mapping) else {} for name, data in value.items()}


def clean(record: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `record` with every field of the expected type (fields that cannot be are dropped)."""
    event = record.get("event")
    out: dict[str, Any] = {}
    for key, value in record.items():
        key = str(key)
        fixed = _hosts(str(event), value) if key == "hosts" else _field(key, value)
        if fixed is not None or value is None:
            out[key] = fixed
    if "items" in out and out["items"] is not None:
        out["items"] = [clean(i) for i in out["items"]]
    return out
