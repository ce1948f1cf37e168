"""Queued runs: putting them in, reading them back, cancelling one not yet started."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Connection, Executable, and_, func, insert, or_, select, update

from engine.run.journal_writer import new_run_id

from . import tables
from .database import clock_of, now
from .records import NewRun, RunQuery, RunRow, dumps

RUNS = tables.runs


@cache
def _insert(dialect: str) -> Executable:
    # Made once per database, its values given at execution: built at each call,
    # SQLAlchemy coerces and cache-keys it again (the intake queues runs at hundreds a second).
    statement: Executable = insert(RUNS).values(created_at=clock_of(dialect))
    return statement


def enqueue(conn: Connection, new: NewRun) -> str:
    run_id = new.run_id or new_run_id(new.runbook)
    conn.execute(_insert(conn.dialect.name), row_values(new, run_id))
    return run_id


def row_values(new: NewRun, run_id: str) -> dict[str, Any]:
    """The columns of a queued run's row (created_at aside: the database's clock)."""
    return {
        "id": run_id, "runbook": new.runbook, "file": new.file, "inputs": dumps(dict(new.inputs)),
        "secrets": dumps(sorted(new.secrets)), "answers": dumps({k: dict(v) for k, v in new.answers.items()}),
        "alert": dumps(dict(new.alert)) if new.alert is not None else None, "pool": dumps(dict(new.pool)),
        "origin": new.origin, "mode": new.mode, "status": "queued", "claims": 0, "last_seq": 0,
    }


def get(conn: Connection, run_id: str) -> RunRow | None:
    row = conn.execute(select(RUNS).where(RUNS.c.id == run_id)).first()
    return RunRow.from_row(row) if row is not None else None


def listing(conn: Connection, status: str | None, limit: int) -> list[RunRow]:
    query = select(RUNS).order_by(RUNS.c.created_at.desc(), RUNS.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(RUNS.c.status == status)
    return [RunRow.from_row(r) for r in conn.execute(query)]


def search(conn: Connection, q: RunQuery) -> list[RunRow]:
    """The runs `q` asks for, newest first: one more than its limit when there are more
    (on the side the page goes: older ones, or newer ones for `q.after`)."""
    at, rid = RUNS.c.created_at, RUNS.c.id
    order = (at.asc(), rid.asc()) if q.after is not None else (at.desc(), rid.desc())
    query = select(RUNS).order_by(*order).offset(q.offset).limit(q.limit + 1)
    for column, value in ((RUNS.c.runbook, q.runbook), (RUNS.c.status, q.status), (RUNS.c.outcome, q.outcome),
                          (RUNS.c.mode, q.mode)):
        if value is not None:
            query = query.where(column == value)
    if q.since is not None:
        query = query.where(at >= q.since)
    if q.until is not None:
        query = query.where(at < q.until)
    if q.before is not None:
        query = query.where(or_(at < q.before[0], and_(at == q.before[0], rid < q.before[1])))
    if q.after is not None:
        query = query.where(or_(at > q.after[0], and_(at == q.after[0], rid > q.after[1])))
    rows = [RunRow.from_row(r) for r in conn.execute(query)]
    return rows[::-1] if q.after is not None else rows


def counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(RUNS.c.status, func.count()).group_by(RUNS.c.status))
    return {str(status): int(n) for status, n in rows}


def outcomes(conn: Connection) -> dict[str, int]:
    """Finished runs by outcome."""
    rows = conn.execute(select(RUNS.c.outcome, func.count()).where(RUNS.c.status == "finished")
                        .group_by(RUNS.c.outcome))
    return {str(outcome): int(n) for outcome, n in rows}


def audited(conn: Connection, what: str) -> int:
    """How many times the audit trail says `what` happened (e.g. lease.takeover)."""
    return int(conn.execute(select(func.count()).select_from(tables.audit).where(tables.audit.c.what == what))
               .scalar_one())


def cancel(conn: Connection, run_id: str, reason: str) -> bool:
    """A queued run (never started, or waiting for a person) ends `cancelled`; one that
    runs is not touched (its worker stops it)."""
    result = conn.execute(update(RUNS).where(RUNS.c.id == run_id, RUNS.c.status.in_(("queued", "waiting")))
                          .values(status="cancelled", reason=reason, finished_at=now(conn), lease_owner=None,
                                  lease_expires=None))
    return result.rowcount > 0


def blank_secrets(conn: Connection, run: RunRow) -> None:
    """Once a run has ended nothing needs its secret inputs: the store keeps `***`."""
    if run.secrets:
        inputs = {k: "***" if k in run.secrets else v for k, v in run.inputs.items()}
        conn.execute(update(RUNS).where(RUNS.c.id == run.id).values(inputs=dumps(inputs)))
