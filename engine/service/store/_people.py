"""People and their API tokens. A token is shown once, when it is made; the store keeps
its SHA-256 only, so a copy of the database proves nobody's identity."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from sqlalchemy import Connection, delete, insert, select, update

from . import tables
from ._leases import audit
from .database import now
from .records import PersonRow, dumps

P, T = tables.people, tables.tokens
TOKEN_PREFIX = "rbt_"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def replace_all(conn: Connection, people: Sequence[PersonRow]) -> None:
    """The people of a serve config, as they are now (roles changed there apply at once)."""
    conn.execute(delete(P).where(P.c.name.notin_([p.name for p in people])))
    for person in people:
        values = {"roles": dumps(list(person.roles)), "slack": person.slack, "email": person.email,
                  "updated_at": now(conn)}
        if conn.execute(update(P).where(P.c.name == person.name).values(**values)).rowcount == 0:
            conn.execute(insert(P).values(name=person.name, **values))


def get(conn: Connection, name: str) -> PersonRow | None:
    row = conn.execute(select(P).where(P.c.name == name)).first()
    return PersonRow.from_row(row) if row is not None else None


def listing(conn: Connection) -> list[PersonRow]:
    return [PersonRow.from_row(r) for r in conn.execute(select(P).order_by(P.c.name))]


def by_slack(conn: Connection, slack_user: str) -> PersonRow | None:
    row = conn.execute(select(P).where(P.c.slack == slack_user)).first()
    return PersonRow.from_row(row) if row is not None else None


def create_token(conn: Connection, name: str) -> str | None:
    """A new token for `name` (None: no such person)."""
    if get(conn, name) is None:
        return None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(insert(T).values(hash=digest(token), person=name, created_at=now(conn)))
    audit(conn, name, "token.created", None, {"token": digest(token)[:12]})
    return token


def by_token(conn: Connection, token: str) -> PersonRow | None:
    """The person a token belongs to, if it is known and not revoked (and they still exist)."""
    row = conn.execute(select(P).join(T, T.c.person == P.c.name).where(
        T.c.hash == digest(token), T.c.revoked_at.is_(None))).first()
    return PersonRow.from_row(row) if row is not None else None


def revoke(conn: Connection, name: str) -> int:
    """Revoke every token of `name`; how many there were."""
    done = conn.execute(update(T).where(T.c.person == name, T.c.revoked_at.is_(None)).values(revoked_at=now(conn)))
    audit(conn, name, "token.revoked", None, {"tokens": done.rowcount})
    return int(done.rowcount)
