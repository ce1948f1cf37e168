"""Timestamps as the engine's records carry them: ISO 8601 in UTC, to the millisecond
(`2026-11-22T06:30:12.123Z`). One format for every line the engine writes with a time
in it, a journal's and a file channel's alike, so they sort and compare as text.
"""

from __future__ import annotations

from datetime import datetime, timezone


def iso(t: float) -> str:
    """Seconds since the epoch -> `2026-11-22T06:30:12.123Z` (milliseconds, rounded down)."""
    # isoformat cuts to milliseconds as strftime + microsecond // 1000 did, in half the time
    # (three stamps a step); "+00:00" becomes the "Z" every record has.
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"
