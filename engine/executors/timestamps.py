"""Timestamps as the engine's records carry them: ISO 8601 in UTC, to the millisecond
(`2026-11-22T06:30:12.123Z`). One format for every line the engine writes with a time
in it, a journal's and a file channel's alike, so they sort and compare as text.
"""

from __future__ import annotations

import math
import time
from itertools import product
from typing import Any

# The text of the last whole second formatted, `2026-11-22T06:30:12.`: a run stamps a few
# events a step within one second, and a datetime per stamp was a twentieth of a step's
# own work. One tuple, replaced whole, so threads never see half of it.
_last_second: tuple[float, str] = (math.nan, "")
# The end of a stamp, `000Z` to `999Z`, made once: by joining digits in C (a generator
# formatting each was 3.1M instructions, a percent of a one-step run).
_MILLISECONDS = tuple(map("".join, product("0123456789", "0123456789", "0123456789", "Z")))
YEAR_10000 = 253_402_300_800  # 10000-01-01T00:00:00Z in seconds since the epoch: past it, datetime fails


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
    fraction, whole = math.modf(t)
    micro = round(fraction * 1e6)
    if 0 <= whole < YEAR_10000 and 0 <= micro < 1_000_000:
        # The text datetime writes of the years 1970-9999, without importing datetime (4.5M
        # instructions, 2% of a one-step run): gmtime splits a whole second as it does.
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(whole))
        _last_second = (whole, prefix)
        return prefix + _MILLISECONDS[micro // 1000]
    return _by_datetime(t)


def _by_datetime(t: float) -> str:
    """datetime's text of any other time: before 1970, a carry into the next second, or
    the error of a time no clock shows (NaN, infinities, past 9999)."""
    from datetime import datetime, timezone

    # isoformat cuts to milliseconds as strftime + microsecond // 1000 did, in half the time;
    # "+00:00" becomes the "Z" every record has.
    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"


def __getattr__(name: str) -> Any:
    """`timestamps.datetime`, the class this module used to import, for those who read it."""
    if name == "datetime":
        from datetime import datetime

        return datetime
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
