"""The console's accounts: a password per person (an scrypt hash, never the password) and
browser sessions (the SHA-256 of the cookie's value, with the CSRF token its forms carry).

Hashing is done outside any transaction (it takes tens of milliseconds on purpose, and a
SQLite writer would hold every other writer that long): `hash_password` and
`password_matches` are plain functions, the store only keeps and reads what they give.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update

from . import tables
from ._people import digest
from .database import now
from .records import PersonRow

P, W, S = tables.people, tables.passwords, tables.sessions
# scrypt's cost: 32 MiB and ~0.1 s per hash on this class of machine (OWASP's floor is
# N=2**15 with r=8); kept in each hash, so raising it later leaves old hashes readable.
N, R, PARALLEL = 2**15, 8, 1
MAXMEM = 64 * 1024 * 1024
# What an unknown name is checked against, so that it takes as long as a known one
# (the time of a failed login says nothing about whether the account exists).
_DECOY = "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$" + "A" * 43


@dataclass(frozen=True)
class Session:
    """A signed-in browser: who, and the CSRF token each of its forms must carry."""

    person: PersonRow
    csrf: str
    via: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    """`scrypt$N$r$p$salt$key`, with a fresh 16-byte salt."""
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=N, r=R, p=PARALLEL, maxmem=MAXMEM, dklen=32)
    return f"scrypt${N}${R}${PARALLEL}${_b64(salt)}${_b64(key)}"


def password_matches(password: str, stored: str | None) -> bool:
    """Whether `password` is the one `stored` was made from (None: no account; checked
    against a decoy all the same, so it costs the same time)."""
    try:
        scheme, n, r, p, salt, key = (stored or _DECOY).split("$")
        expected = _unb64(key)
        got = hashlib.scrypt(password.encode("utf-8"), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=MAXMEM, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return stored is not None and scheme == "scrypt" and hmac.compare_digest(got, expected)


def set_hash(conn: Connection, name: str, hashed: str) -> bool:
    """Keep `hashed` as the person's password (False: no such person). Their sessions end:
    a password changed because it leaked must not leave the thief signed in."""
    if conn.execute(select(P.c.name).where(P.c.name == name)).first() is None:
        return False
    if conn.execute(update(W).where(W.c.person == name).values(hash=hashed, updated_at=now(conn))).rowcount == 0:
        conn.execute(insert(W).values(person=name, hash=hashed, updated_at=now(conn)))
    conn.execute(delete(S).where(S.c.person == name))
    return True


def stored_hash(conn: Connection, name: str) -> str | None:
    row = conn.execute(select(W.c.hash).join(P, P.c.name == W.c.person).where(W.c.person == name)).first()
    return str(row[0]) if row is not None else None


def open_session(conn: Connection, name: str, via: str, lifetime: float) -> str:
    """A new session for `name`: the cookie's value (kept only as its hash)."""
    cookie = secrets.token_urlsafe(32)
    conn.execute(delete(S).where(S.c.expires_at < now(conn)))  # the expired ones, while we are here
    conn.execute(insert(S).values(hash=digest(cookie), person=name, csrf=secrets.token_urlsafe(32), via=via,
                                  created_at=now(conn), expires_at=now(conn) + lifetime))
    return cookie


def session(conn: Connection, cookie: str) -> Session | None:
    """The live session a cookie opens (None: unknown, expired, or its person is gone)."""
    row = conn.execute(select(P, S.c.csrf, S.c.via).join(S, S.c.person == P.c.name).where(
        S.c.hash == digest(cookie), S.c.expires_at > now(conn))).first()
    if row is None:
        return None
    return Session(PersonRow.from_row(row), str(row._mapping["csrf"]), str(row._mapping["via"]))


def close_session(conn: Connection, cookie: str) -> str | None:
    """End a session; the person it was (None: there was none)."""
    row = conn.execute(select(S.c.person).where(S.c.hash == digest(cookie))).first()
    conn.execute(delete(S).where(S.c.hash == digest(cookie)))
    return str(row[0]) if row is not None else None
