"""Timestamps as the engine's records carry them: ISO 8601 in UTC, to the millisecond
(`2026-11-22T06:30:12.123Z`). One format for every line the engine writes with a time
in it, a journal's and a file channel's alike, so they sort and compare as text.
"""

from __future__ import annotations

from datetime import datetime, timezone


def iso(t: float) -> str:
    """Seconds since the epoch -> `2026-11-22T06:30:12.123Z` (milliseconds, rounded down)."""
    stamp = datetime.fromtimestamp(t, tz=timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
