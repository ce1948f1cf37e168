"""Dates in templates: `| to_datetime`, `now()` and `| days_until`, on the run's clock.

`now` is a name of the run's context (RunNow), not a global: a drill or a test runs on
simulated time, so `(cert_end - now()).days` and `days_until` count from the run's own
clock there. Datetimes are aware, in UTC unless the text names another offset; a text
without one is read as UTC. Datetimes compare and subtract (`end - now()` is a
timedelta: `.days`, `.total_seconds()`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .patterns import deferred
from .values import Placeholder

if TYPE_CHECKING:  # each function imports datetime when called: a run that reads no date
    from datetime import datetime, timedelta  # imports none (4.5M instructions, 2% of a run)

__all__ = ["NOW", "RunNow", "days_until", "to_datetime"]

NOW = "now"  # the context name of the run's clock

# Formats commands print beside ISO 8601 and RFC 2822: `openssl x509 -enddate`
# (`notAfter=Jan 15 00:00:00 2026 GMT`), `date`'s default, and journalctl's.
_FORMATS = ("%b %d %H:%M:%S %Y %Z", "%b %d %H:%M:%S %Y", "%a %b %d %H:%M:%S %Z %Y", "%a %b %d %H:%M:%S %Y",
            "%Y-%m-%d %H:%M:%S %Z", "%Y/%m/%d %H:%M:%S", "%d/%b/%Y:%H:%M:%S %z")
_PREFIX = deferred(r"^\s*(?:not(?:Before|After)\s*=|[A-Za-z ]+:\s+(?=\w{3} +\d))", re.IGNORECASE)


class RunNow:
    """`now()` in templates: the run's clock as an aware UTC datetime."""

    __slots__ = ("clock",)

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.clock = clock or time.time

    def __call__(self) -> datetime:
        from datetime import datetime, timezone

        return datetime.fromtimestamp(self.clock(), timezone.utc)

    def __repr__(self) -> str:
        return "now()"


def to_datetime(value: Any, format: str | None = None) -> Any:
    """A datetime from ISO 8601, RFC 2822, `openssl x509 -enddate`, `date`, epoch seconds
    (or milliseconds), or any text with `format=` (strptime's codes)."""
    from datetime import datetime, timezone

    if isinstance(value, (Placeholder, datetime)):
        return value if not isinstance(value, datetime) or value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _epoch(float(value))
    text = str(value).strip()
    if format is not None:
        return _aware(datetime.strptime(text, str(format)))
    parsed = _parse(_PREFIX.sub("", text))
    if parsed is None:
        raise ValueError(f"to_datetime: cannot read {text[:40]!r} as a date (ISO 8601, RFC 2822, "
                         "openssl's `Jan 15 00:00:00 2026 GMT`, epoch seconds; or give format=)")
    return parsed


def _parse(text: str) -> datetime | None:
    from datetime import datetime

    if re.fullmatch(r"[-+]?\d+(\.\d+)?", text):
        return _epoch(float(text))
    try:
        return _aware(datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "zZ" else text))
    except ValueError:
        pass
    collapsed = " ".join(text.split())  # openssl pads a day below 10 with a second space
    for fmt in _FORMATS:
        try:
            return _aware(datetime.strptime(collapsed, fmt))
        except ValueError:
            continue
    from email.utils import parsedate_to_datetime  # ~10 ms of imports, for RFC 2822 dates only

    try:
        return _aware(parsedate_to_datetime(collapsed))
    except (TypeError, ValueError, IndexError):
        return None


def _epoch(number: float) -> datetime:
    if abs(number) > 1e11:  # milliseconds (JavaScript, Java, Elasticsearch): seconds end in year 5138
        number /= 1000.0
    from datetime import datetime, timezone

    try:
        return datetime.fromtimestamp(number, timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"to_datetime: {number!r} is not a time a clock can show") from None


def _aware(moment: datetime) -> datetime:
    from datetime import timezone

    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def days_until(context: Any, value: Any) -> Any:
    """Days (a float: 13.5) from the run's `now()` to `value` (a datetime, or any text
    `to_datetime` reads); negative once it is past."""
    moment = to_datetime(value)
    if isinstance(moment, Placeholder):
        return moment
    now = context.get(NOW) if context is not None else None
    current = now() if isinstance(now, RunNow) else RunNow()()
    delta: timedelta = moment - current
    return delta.total_seconds() / 86400.0
