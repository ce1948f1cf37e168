"""Schema migrations: numbered steps applied in order when the store opens.

Our own small runner rather than Alembic: the schema is a handful of tables written with
SQLAlchemy Core, both databases must migrate themselves at start with no tool or
script directory beside the engine, and several `runbook serve` and `runbook worker`
processes may start at once. So: `schema_version` holds one row per applied step; all
pending steps run in one transaction (DDL is transactional on PostgreSQL and SQLite),
under a PostgreSQL advisory lock or SQLite's write lock, so one process migrates and the
others then find nothing to do. A database newer than this engine is refused.

Adding a step: append `(number, description, function)` to STEPS; the function gets the
connection of the transaction. A step creates the tables it introduces from their
definitions in tables.py; when a later step alters a table, copy its earlier definition
into the step that created it first (the store tests migrate an empty database and
compare it with tables.py, so a drift fails them).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    inspect,
    select,
    text,
)

from . import tables
from .database import is_postgres, now, writing
from .failures import StoreError

ADVISORY_LOCK = 0x72756E62  # "runb": the key every runbook process migrates under


# The runs table as step 1 made it: step 5 adds its `mode` column.
_RUNS_V1 = Table(
    "runs", MetaData(),
    Column("id", String(200), primary_key=True),
    Column("runbook", String(200), nullable=False),
    Column("file", Text, nullable=False),
    Column("inputs", Text, nullable=False),
    Column("secrets", Text, nullable=False),
    Column("answers", Text, nullable=False),
    Column("alert", Text),
    Column("pool", Text, nullable=False),
    Column("origin", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("outcome", String(32)),
    Column("reason", Text),
    Column("lease_owner", String(200)),
    Column("lease_expires", Float),
    Column("claims", Integer, nullable=False),
    Column("last_seq", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
)
Index("runs_by_status", _RUNS_V1.c.status, _RUNS_V1.c.created_at)

# The audit table as step 1 made it: step 8 adds its `address` column.
_AUDIT_V1 = Table(
    "audit", MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("who", Text, nullable=False),
    Column("what", String(64), nullable=False),
    Column("run_id", String(200)),
    Column("detail", Text, nullable=False),
)


def _v1(conn: Connection) -> None:
    for table in (_RUNS_V1, tables.events, tables.logs, tables.questions, tables.workers, _AUDIT_V1):
        table.create(conn)


def _v2(conn: Connection) -> None:
    for table in (tables.deliveries, tables.delivery_keys, tables.alerts):
        table.create(conn)


def _v3(conn: Connection) -> None:
    for table in (tables.people, tables.tokens):
        table.create(conn)


def _v4(conn: Connection) -> None:
    for table in (tables.passwords, tables.sessions):
        table.create(conn)


def _v5(conn: Connection) -> None:
    # Every run stored before this step came from an alert or the API: live.
    conn.execute(text("ALTER TABLE runs ADD COLUMN mode VARCHAR(16) DEFAULT 'live' NOT NULL"))


def _v6(conn: Connection) -> None:
    for table in (tables.drill_rooms, tables.drill_members, tables.drill_prompts, tables.drill_controls):
        table.create(conn)


def _v7(conn: Connection) -> None:
    for index in (tables.runs_by_time, tables.runs_by_runbook, tables.runs_by_mode):
        index.create(conn)


def _v8(conn: Connection) -> None:
    # Sign-ins audited before this step keep their address in `detail` only: throttling
    # counts from now on.
    conn.execute(text("ALTER TABLE audit ADD COLUMN address VARCHAR(64)"))
    next(i for i in tables.audit.indexes if i.name == "audit_by_kind").create(conn)


def _v9(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE runs ADD COLUMN abort TEXT"))
    conn.execute(text("ALTER TABLE runs ADD COLUMN resumes INTEGER DEFAULT 0 NOT NULL"))


Step = tuple[int, str, Callable[[Connection], None]]
STEPS: list[Step] = [
    (1, "runs, their journal events and step logs, questions, workers and the audit trail", _v1),
    (2, "deliveries posted to /hooks/<source>, their dedup keys, and the alerts in them", _v2),
    (3, "people who answer questions, with their roles, and their API tokens (hashed)", _v3),
    (4, "the console's accounts: password hashes (scrypt) and browser sessions", _v4),
    (5, "a run's mode (live, dry-run, drill); runs stored before it are live", _v5),
    (6, "drill rooms: game days in the browser, their participants, prompts and trainer controls", _v6),
    (7, "indexes for the console's runs list: by time, by runbook, by mode", _v7),
    (8, "the address of each audited sign-in, and the trail by kind and time (login throttling)", _v8),
    (9, "aborting and resuming runs from the console: who asked a run to stop, how often it was resumed", _v9),
]
LATEST = STEPS[-1][0]


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table("schema_version"):
        return 0
    return int(conn.execute(select(func.coalesce(func.max(tables.schema_version.c.version), 0))).scalar_one())


def migrate(engine: Engine) -> list[int]:
    """Apply the pending steps; the numbers applied (none when up to date)."""
    with writing(engine, immediate=True) as conn:
        if is_postgres(conn):
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})
        tables.schema_version.create(conn, checkfirst=True)
        version = current_version(conn)
        if version > LATEST:
            raise StoreError(f"the database's schema is version {version}, newer than this engine knows "
                             f"({LATEST}): upgrade runbook-engine on this machine")
        applied = []
        for number, description, step in STEPS[version:]:
            step(conn)
            conn.execute(insert(tables.schema_version).values(version=number, description=description,
                                                              applied_at=now(conn)))
            applied.append(number)
        return applied
