"""Leases: which worker runs which run, until when.

A worker claims the oldest run it may take: a queued one, or a running one whose lease
has expired (its worker died or lost the database). On PostgreSQL the candidates are
locked with SELECT ... FOR UPDATE SKIP LOCKED, so workers never wait for each other and
never take the same run; on SQLite the claim's transaction is BEGIN IMMEDIATE (one
writer at a time). Every later write of the worker names the run and itself: a worker
whose lease was taken over finds that out at its next write (LeaseLost), never writes
into a journal another worker continues.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from sqlalchemy import Connection, Executable, Float, and_, bindparam, insert, or_, select, update

from . import tables
from ._runs import blank_secrets, get
from .database import clock_of, is_postgres, now
from .failures import LeaseLost
from .records import Claim, NewQuestion, RunRow, dumps

RUNS = tables.runs
BATCH = 16  # candidates looked at per claim (runs for pools this worker is not in are passed over)


def _claimable(conn: Connection, worker: str) -> Any:
    # Never its own expired lease: a worker cut off from the database for longer than the
    # lease still runs the run, and renews the lease once the database is back.
    expired = and_(RUNS.c.status == "running", RUNS.c.lease_expires < now(conn), RUNS.c.lease_owner != worker)
    return or_(RUNS.c.status == "queued", expired)


def fits(pool: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """A run's pool fits a worker that has every one of its labels."""
    return all(labels.get(k) == v for k, v in pool.items())


def claim(conn: Connection, worker: str, labels: Mapping[str, str], lease: float) -> Claim | None:
    query = select(RUNS).where(_claimable(conn, worker)).order_by(RUNS.c.created_at, RUNS.c.id).limit(BATCH)
    if is_postgres(conn):
        query = query.with_for_update(skip_locked=True)
    for row in conn.execute(query).fetchall():
        run = RunRow.from_row(row)
        if not fits(run.pool, labels):
            continue
        conn.execute(update(RUNS).where(RUNS.c.id == run.id).values(
            status="running", lease_owner=worker, lease_expires=now(conn) + lease, claims=RUNS.c.claims + 1,
            started_at=RUNS.c.started_at if run.started_at is not None else now(conn)))
        if run.status == "running":
            _audit(conn, worker, "lease.takeover", run.id, {"from": run.lease_owner})
        claimed = get(conn, run.id)
        assert claimed is not None
        return Claim(claimed, run.last_seq > 0, run.lease_owner)
    return None


@cache
def _on_held(dialect: str, name: str) -> Executable:
    """An UPDATE of a run this worker holds, made once per database (the journal fences
    every record it writes: built each time, SQLAlchemy spent more on coercing and
    cache-keying it than the database on running it). Its values come at execution:
    the_run, the_worker, and the columns set."""
    held = update(RUNS).where(RUNS.c.id == bindparam("the_run"), RUNS.c.lease_owner == bindparam("the_worker"),
                              RUNS.c.status == "running")
    statement: Executable = held.values(lease_expires=clock_of(dialect) + bindparam("lease", type_=Float)) \
        if name == "heartbeat" else held
    return statement


def heartbeat(conn: Connection, run_id: str, worker: str, lease: float) -> bool:
    """Extend the lease; False when this worker no longer holds it."""
    result = conn.execute(_on_held(conn.dialect.name, "heartbeat"),
                          {"the_run": run_id, "the_worker": worker, "lease": lease})
    return result.rowcount > 0


def fence(conn: Connection, run_id: str, worker: str, last_seq: int | None = None) -> None:
    """LeaseLost unless this worker holds the run; row-locks it for the transaction."""
    values: dict[str, Any] = {"last_seq": last_seq} if last_seq is not None else {"lease_owner": worker}
    if conn.execute(_on_held(conn.dialect.name, "fence"), {"the_run": run_id, "the_worker": worker,
                                                           **values}).rowcount == 0:
        raise LeaseLost(f"worker {worker} no longer holds the lease of run {run_id}")


def finish(conn: Connection, run_id: str, worker: str, outcome: str, reason: str) -> None:
    fence(conn, run_id, worker)
    conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(
        status="finished", outcome=outcome, reason=reason or None, finished_at=now(conn), lease_owner=None,
        lease_expires=None))
    run = get(conn, run_id)
    assert run is not None
    blank_secrets(conn, run)


def release(conn: Connection, run_id: str, worker: str, why: str) -> None:
    """Hand the run back to the queue at once: the next worker continues it from its journal."""
    fence(conn, run_id, worker)
    conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(status="queued", lease_owner=None,
                                                               lease_expires=None))
    _audit(conn, worker, "lease.released", run_id, {"why": why})


def park(conn: Connection, run_id: str, worker: str, question: NewQuestion) -> int:
    """The run waits for a person: no lease, one open question. Returns the question's id."""
    fence(conn, run_id, worker)
    conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(status="waiting", lease_owner=None,
                                                               lease_expires=None, reason=question.text))
    q = tables.questions
    result = conn.execute(insert(q).values(
        run_id=run_id, step=question.step, kind=question.kind, text=question.text,
        fields=dumps([dict(f) for f in question.fields]), role=question.role, status="open", asked_at=now(conn)))
    _audit(conn, worker, "run.waiting", run_id, {"step": question.step, "question": question.text})
    key: Any = result.inserted_primary_key
    return int(key[0])


def _audit(conn: Connection, who: str, what: str, run_id: str | None, detail: Mapping[str, Any]) -> None:
    conn.execute(insert(tables.audit).values(at=now(conn), who=who, what=what, run_id=run_id, detail=dumps(detail),
                                             address=str(detail["from"])[:64] if detail.get("from") else None))


audit = _audit
