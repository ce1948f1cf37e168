"""The audit trail read back: pages of it for the console, and the failed sign-ins lately
made on one account or from one address (what login throttling counts)."""

from __future__ import annotations

from sqlalchemy import Connection, select

from . import tables
from .database import now
from .records import AuditEntry

AUDIT = tables.audit


def entries(conn: Connection, what: str | None, before: int | None, limit: int,
            run_id: str | None = None) -> list[AuditEntry]:
    """Newest first (by id: the order they were written), of one kind or all, older than
    `before`, of one run or all."""
    query = select(AUDIT).order_by(AUDIT.c.id.desc()).limit(limit)
    if run_id is not None:
        query = query.where(AUDIT.c.run_id == run_id)
    if what is not None:
        query = query.where(AUDIT.c.what == what)
    if before is not None:
        query = query.where(AUDIT.c.id < before)
    return [AuditEntry.from_row(r) for r in conn.execute(query)]


def failures(conn: Connection, window: float, who: str | None, address: str | None, limit: int) -> list[float]:
    """How long ago (seconds, by the database's clock) the failed sign-ins of the last
    `window` seconds were, newest first: of one account, or from one address."""
    ago = (now(conn) - AUDIT.c.at).label("ago")
    query = (select(ago).where(AUDIT.c.what == "login.failed", AUDIT.c.at >= now(conn) - window)
             .order_by(AUDIT.c.at.desc()).limit(limit))
    if who is not None:
        query = query.where(AUDIT.c.who == who)
    if address is not None:
        query = query.where(AUDIT.c.address == address)
    return [max(float(seconds), 0.0) for (seconds,) in conn.execute(query)]
