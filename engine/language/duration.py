"""Durations as people write them (`500ms`, `30s`, `5m`, `1h30m`, `2d`) <-> seconds."""

from __future__ import annotations

from engine.templates.patterns import deferred

_PART = deferred(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_WHOLE = deferred(r"^(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d))+$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# The longest duration a runbook may give (a timeout, a wait, a polling interval): longer
# is a mistake, and a 400-digit timeout would overflow every clock it reaches.
MAX_SECONDS = 30 * 86400.0
MAX_TEXT = "30d"


def parse_duration(text: str) -> float:
    """Seconds in `text`; ValueError if it is not a duration with units."""
    if not isinstance(text, str) or not _WHOLE.match(text):
        raise ValueError(f"not a duration: {text!r} (expected e.g. 30s, 5m, 1h30m)")
    return sum(float(n) * _UNIT[u] for n, u in _PART.findall(text))


def format_duration(seconds: float) -> str:
    """Compact human form: 0.35 -> '350ms', 75 -> '1m15s', 3600 -> '1h'."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.1f}s".replace(".0s", "s")
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"
