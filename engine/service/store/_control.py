"""People stopping and resuming runs (the console's Abort and Resume): a run not yet
running is cancelled at once; a running one is asked to stop, and the worker holding it
stops it at its next heartbeat as Ctrl-C would; an ended run that can be continued goes
back to the queue, and the next worker continues it from its journal as `runbook resume`
does. Each is on the audit trail with who, how and from where."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select, update

from engine.errors import UsageError

from . import tables
from ._leases import audit
from .database import now
from .records import dumps, loads

RUNS, QUESTIONS = tables.runs, tables.questions
RESUMABLE = ("failed", "aborted", "refused", "escalated")  # as engine/run/recovery.py resumes


def abort(conn: Connection, run_id: str, by: str, reason: str, how: Mapping[str, Any]) -> str:
    """`cancelled` (it was queued or waiting for a person) or `stopping` (a worker runs it)."""
    row = conn.execute(select(RUNS.c.status).where(RUNS.c.id == run_id)).first()
    if row is None:
        raise UsageError(f"no run {run_id}")
    audit(conn, by, "run.abort", run_id, {**how, "reason": reason})
    if row.status in ("queued", "waiting"):
        conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(
            status="cancelled", reason=reason, finished_at=now(conn), lease_owner=None, lease_expires=None))
        conn.execute(update(QUESTIONS).where(QUESTIONS.c.run_id == run_id, QUESTIONS.c.status == "open")
                     .values(status="cancelled"))
        return "cancelled"
    if row.status == "running":
        conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(abort=dumps({"by": by, "reason": reason})))
        return "stopping"
    raise UsageError(f"run {run_id} has already ended ({row.status}): there is nothing to abort")


def requested(conn: Connection, run_ids: Sequence[str]) -> dict[str, str]:
    """The runs of `run_ids` someone asked to stop, with why."""
    if not run_ids:
        return {}
    rows = conn.execute(select(RUNS.c.id, RUNS.c.abort).where(RUNS.c.id.in_(list(run_ids)),
                                                              RUNS.c.abort.is_not(None)))
    return {r.id: str(loads(r.abort, {}).get("reason") or "aborted") for r in rows}


def resume(conn: Connection, run_id: str, by: str, how: Mapping[str, Any]) -> None:
    """Back to the queue: UsageError unless it ended in a way `runbook resume` continues."""
    row = conn.execute(select(RUNS.c.status, RUNS.c.outcome).where(RUNS.c.id == run_id)).first()
    if row is None:
        raise UsageError(f"no run {run_id}")
    if not (row.status == "cancelled" or (row.status == "finished" and row.outcome in RESUMABLE)):
        state = f"finished {row.outcome}" if row.status == "finished" else row.status
        raise UsageError(f"run {run_id} is {state}: only a run that ended {', '.join(RESUMABLE)} or was "
                         "cancelled can be resumed")
    conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(
        status="queued", outcome=None, reason=None, finished_at=None, abort=None, resumes=RUNS.c.resumes + 1))
    audit(conn, by, "run.resume", run_id, dict(how))
