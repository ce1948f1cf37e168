"""Timestamps as the engine's records carry them: ISO 8601 in UTC, to the millisecond
(`2026-11-22T06:30:12.123Z`). One format for every line the engine writes with a time
in it, a journal's and a file channel's alike, so they sort and compare as text.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from itertools import product

# The text of the last whole second formatted, `2026-11-22T06:30:12.`: a run stamps a few
# events a step within one second, and a datetime per stamp was a twentieth of a step's
# own work. One tuple, replaced whole, so threads never see half of it.
_last_second: tuple[float, str] = (math.nan, "")
# The end of a stamp, `000Z` to `999Z`, made once: by joining digits in C (a generator
# formatting each was 3.1M instructions, a percent of a one-step run).
_MILLISECONDS = tuple(map("".join, product("0123456789", "0123456789", "0123456789", "Z")))


def iso(t: float) -> str:
    """Seconds since the epoch -> `2026-11-22T06:30:12.123Z` (milliseconds, rounded down)."""
    global _last_second
    # As datetime.fromtimestamp splits it: whole seconds, and microseconds rounded half to
    # even (which may carry into the next second: then the slow path below). Within the
    # second written last (never a negative one), t - second is exact (Sterbenz: t is less
    # than twice the second) and is what math.modf splits off, without its tuple.
    second, prefix = _last_second
    fraction = t - second
    if 0.0 <= fraction < 1.0:
        micro = round(fraction * 1e6)
        if micro < 1_000_000:
            return prefix + _MILLISECONDS[micro // 1000]
    # isoformat cuts to milliseconds as strftime + microsecond // 1000 did, in half the time;
    # "+00:00" becomes the "Z" every record has.
    text = datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"
    fraction, whole = math.modf(t)
    if whole >= 0 and 0 <= round(fraction * 1e6) < 1_000_000:
        _last_second = (whole, text[:-4])
    return text
