"""What can go wrong with the store, in words a person can act on.

Database errors are sorted in two: transient ones (the connection dropped, the server is
restarting, SQLite is busy) are retried by `retrying`; the rest (the disk is full, the
database is read-only, the schema is newer than this engine) become a StoreError naming
the cause. Nothing is half-written either way: every write is one transaction.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from engine.errors import EngineError

T = TypeVar("T")
log = logging.getLogger("runbook.store")

# SQLSTATE classes and codes of PostgreSQL that a retry can outlive: connection exceptions
# (08), the server shutting down or starting (57P01-57P03), serialization and deadlock (40).
_TRANSIENT_STATES = ("08", "57P01", "57P02", "57P03", "40001", "40P01")
_SQLITE_TRANSIENT = ("database is locked", "database table is locked", "unable to open database file")


class StoreError(EngineError):
    """The store cannot do what was asked; the message says why (exit status 3)."""

    exit_code = 3


class StoreUnavailable(StoreError):
    """The store did not answer within the time allowed for retries."""


class LeaseLost(StoreError):
    """This worker no longer holds the run's lease: another worker has taken the run over."""


def _sqlstate(exc: DBAPIError) -> str:
    return str(getattr(exc.orig, "sqlstate", "") or "")


def transient(exc: SQLAlchemyError) -> bool:
    """Whether waiting and trying again may succeed."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    state = _sqlstate(exc)
    if state:
        return state.startswith(_TRANSIENT_STATES)
    text = str(exc.orig).lower()
    if any(part in text for part in _SQLITE_TRANSIENT):
        return True
    # psycopg raises OperationalError without a SQLSTATE when it cannot connect at all.
    return type(exc.orig).__name__ == "OperationalError" and "sqlite" not in type(exc.orig).__module__


def explain(exc: SQLAlchemyError) -> str:
    """One line saying what the database refused, without SQL or a traceback."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    lowered = text.lower()
    state = _sqlstate(exc) if isinstance(exc, DBAPIError) else ""
    if state == "53100" or "disk is full" in lowered or "no space left" in lowered:
        return f"the database is full ({text})"
    if state == "25006" or "readonly" in lowered or "read-only" in lowered:
        return f"the database is read-only ({text})"
    return text


def store_error(exc: SQLAlchemyError, doing: str) -> StoreError:
    return StoreError(f"the store cannot {doing}: {explain(exc)}")


def retrying(action: Callable[[], T], doing: str, *, patience: float, sleep: Callable[[float], None] = time.sleep,
             clock: Callable[[], float] = time.monotonic) -> T:
    """`action()`, tried again while it fails transiently, for up to `patience` seconds
    (backing off from 50 ms to 2 s); StoreError or StoreUnavailable when it cannot."""
    deadline = clock() + patience
    delay = 0.05
    while True:
        try:
            return action()
        except SQLAlchemyError as exc:
            if not transient(exc):
                raise store_error(exc, doing) from None
            if clock() + delay > deadline:
                raise StoreUnavailable(f"the store cannot {doing}: {explain(exc)} "
                                       f"(still failing after {patience:g} s)") from None
            if delay == 0.05:  # the first failure: say why we wait (a long wait must not look like a hang)
                log.warning("the store cannot %s: %s: trying again for up to %g s", doing, explain(exc), patience)
        sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 2.0)
