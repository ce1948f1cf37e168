"""The audit trail read back: pages of it for the console, and the failed sign-ins lately
made on one account or from one address (what login throttling counts)."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from . import tables
from .records import AuditEntry

AUDIT = tables.audit


def entries(conn: Connection, what: str | None, before: int | None, limit: int) -> list[AuditEntry]:
    """Newest first (by id: the order they were written), of one kind or all, older than `before`."""
    query = select(AUDIT).order_by(AUDIT.c.id.desc()).limit(limit)
    if what is not None:
        query = query.where(AUDIT.c.what == what)
    if before is not None:
        query = query.where(AUDIT.c.id < before)
    return [AuditEntry.from_row(r) for r in conn.execute(query)]


def count_since(conn: Connection, what: str, since: float, who: str | None = None) -> int:
    """How many `what` entries there are since `since` (for one person, when `who` is given)."""
    query = select(func.count()).select_from(AUDIT).where(AUDIT.c.what == what, AUDIT.c.at >= since)
    if who is not None:
        query = query.where(AUDIT.c.who == who)
    return int(conn.execute(query).scalar_one())
