"""Questions a run waits on, and their answers: answering the last open question of a
waiting run puts it back in the queue, where a worker continues it with the answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, func, select, update

from engine.errors import UsageError

from . import tables
from ._leases import audit
from .database import now
from .records import QuestionRow, dumps

Q, RUNS = tables.questions, tables.runs


def listing(conn: Connection, run_id: str | None, status: str | None) -> list[QuestionRow]:
    query = select(Q).order_by(Q.c.id)
    if run_id is not None:
        query = query.where(Q.c.run_id == run_id)
    if status is not None:
        query = query.where(Q.c.status == status)
    return [QuestionRow.from_row(r) for r in conn.execute(query)]


def get(conn: Connection, question_id: int) -> QuestionRow | None:
    row = conn.execute(select(Q).where(Q.c.id == question_id)).first()
    return QuestionRow.from_row(row) if row is not None else None


def answer(conn: Connection, question_id: int, values: Mapping[str, Any], by: str, via: str) -> QuestionRow:
    """Record the answer; UsageError when there is no such open question."""
    result = conn.execute(update(Q).where(Q.c.id == question_id, Q.c.status == "open").values(
        status="answered", answer=dumps(dict(values)), answered_by=by, answered_at=now(conn)))
    question = get(conn, question_id)
    if result.rowcount == 0 or question is None:
        state = f"already {question.status}" if question is not None else "no such question"
        raise UsageError(f"question {question_id}: {state}")
    still_open = conn.execute(select(func.count()).select_from(Q).where(
        Q.c.run_id == question.run_id, Q.c.status == "open")).scalar_one()
    if still_open == 0:
        conn.execute(update(RUNS).where(RUNS.c.id == question.run_id, RUNS.c.status == "waiting")
                     .values(status="queued", reason=None))
    audit(conn, by, "question.answered", question.run_id, {"question": question_id, "step": question.step,
                                                          "answer": dict(values), "via": via})
    return question


def close(conn: Connection, ids: Sequence[int]) -> None:
    """Answers a worker has applied to its run: they do not decide a later takeover too."""
    if ids:
        conn.execute(update(Q).where(Q.c.id.in_(list(ids)), Q.c.status == "answered").values(status="closed"))
