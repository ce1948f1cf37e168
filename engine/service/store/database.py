"""Which database, and how to talk to it: SQLite under $RUNBOOK_HOME by default (one
process, nothing to install), PostgreSQL (through psycopg 3) when a team shares it.

SQLite runs in WAL mode, so readers never wait for the writer, with `synchronous=NORMAL`:
a commit survives the death of the process at once and a power loss once a durable
commit (`durable`) has synced the log. Its transactions begin when told how (BEGIN or
BEGIN IMMEDIATE), not when pysqlite guesses. PostgreSQL commits journal events with
`synchronous_commit = off` (the server has them; a server crash may lose the last few)
and fsyncs at the journal's barriers: the file journal's write() and fsync().
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, create_engine, event, literal_column
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from engine.errors import UsageError
from engine.home import home

DEFAULT_FILE = "service.db"
BUSY_MS = 10_000  # how long SQLite waits for another writer before "database is locked"


def database_url(given: str | None) -> str:
    """The SQLAlchemy URL for `--database`: a postgresql:// URL (psycopg 3 is the driver),
    a sqlite:/// URL, or nothing for service.db under $RUNBOOK_HOME."""
    if not given:
        return f"sqlite:///{os.path.abspath(home() / DEFAULT_FILE)}"
    for prefix in ("postgresql://", "postgres://"):
        if given.startswith(prefix):
            return "postgresql+psycopg://" + given[len(prefix):]
    if given.startswith(("postgresql+psycopg://", "sqlite:///")):
        return given
    raise UsageError(f"--database {shown_url(given)}: expected postgresql://USER@HOST:PORT/NAME or "
                     "sqlite:///PATH (default: service.db under $RUNBOOK_HOME)")


def shown_url(url: str) -> str:
    """The URL with its password hidden (for messages and logs)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unreadable database URL>"


def connect(url: str, *, pool_size: int = 8) -> Engine:
    """An Engine for the URL; the SQLite file's directory is created when missing."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageError(f"--database: not a database URL: {shown_url(url)}") from None
    if parsed.get_backend_name() == "sqlite":
        return _sqlite(parsed.database or "", pool_size)
    return _postgres(url, pool_size)


def _postgres(url: str, pool_size: int) -> Engine:
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False,
                           connect_args={"connect_timeout": 5, "application_name": "runbook"})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.autocommit = True  # we say BEGIN ourselves (see _on_begin); COMMIT is psycopg's

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # One round trip for BEGIN and a SET LOCAL with it (psycopg sends a query without
        # parameters as one simple query); left to psycopg, each was a round trip of its own.
        conn.exec_driver_sql(conn.get_execution_options().get("postgres_begin", "BEGIN"))

    return engine


def _sqlite(path: str, pool_size: int) -> Engine:
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}", pool_size=pool_size, max_overflow=pool_size,
                           connect_args={"check_same_thread": False, "timeout": BUSY_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # we say BEGIN ourselves (see _on_begin)
        cursor = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", f"busy_timeout={BUSY_MS}", "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "")
        conn.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine


def is_postgres(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "postgresql"


def now(engine: Engine | Connection) -> ColumnElement[float]:
    """The database's clock in epoch seconds: every worker's leases are timed by one clock,
    whatever the clocks of their machines say."""
    return clock_of(engine.dialect.name)


def clock_of(dialect: str) -> ColumnElement[float]:
    """now() for the dialect named (for statements made once per database)."""
    if dialect == "postgresql":
        return literal_column("EXTRACT(EPOCH FROM clock_timestamp())::float8")
    return literal_column("((julianday('now') - 2440587.5) * 86400.0)")


@contextmanager
def writing(engine: Engine, *, immediate: bool = False, durable: bool = True) -> Iterator[Connection]:
    """One write transaction. `immediate`: SQLite takes the write lock at BEGIN (a claim
    reads then writes, and two must not read the same queued run); PostgreSQL locks rows
    instead. `durable=False`: the commit survives this process dying, not the database
    server's crash; a later durable commit makes it durable too."""
    with engine.connect() as conn:
        postgres = is_postgres(conn)
        if not postgres:
            # On the driver's connection: through SQLAlchemy it would begin a transaction.
            driver: Any = conn.connection.driver_connection
            driver.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            if immediate:
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        elif not durable:
            conn = conn.execution_options(postgres_begin="BEGIN; SET LOCAL synchronous_commit TO off")
        with conn.begin():
            yield conn
