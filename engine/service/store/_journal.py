"""A run's journal in the store: its records (each exactly a journal.jsonl line) and the
output of its steps, and turning them back into a run directory any reader can read."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Executable, Integer, String, Text, bindparam, func, insert, select, true, update
from sqlalchemy.dialects.postgresql import ARRAY

from engine.run.journal import JOURNAL

from . import tables
from ._leases import fence
from ._runs import blank_secrets, get
from ._wakeup import CHANNEL
from .database import is_postgres, now
from .failures import LeaseLost
from .records import LogChunk

EVENTS, LOGS, RUNS = tables.events, tables.logs, tables.runs
# Made once: every record of every run goes through them (SQLAlchemy cache-keys a
# statement built anew at each execution).
INSERT_EVENTS, INSERT_LOGS = insert(EVENTS), insert(LOGS)


def append(conn: Connection, run_id: str, worker: str, lines: Sequence[tuple[int, str, str]],
           chunks: Sequence[LogChunk]) -> bool:
    """Journal records (seq, event name, line) and log output of a run, fenced by its lease.
    True when the records' readers in other processes were told already (_wakeup.py)."""
    told = bool(lines) and is_postgres(conn)
    if told:
        _fenced_insert(conn, run_id, worker, lines)
    else:
        fence(conn, run_id, worker, lines[-1][0] if lines else None)
        if lines:
            conn.execute(INSERT_EVENTS, [{"run_id": run_id, "seq": seq, "event": name, "record": line}
                                          for seq, name, line in lines])
    if chunks:
        conn.execute(INSERT_LOGS, [{"run_id": run_id, "name": c.name, "data": c.data} for c in chunks])
    return told


@cache
def _fenced_statement(many: bool) -> Executable:
    """PostgreSQL: the lease fence, the records' insert and the NOTIFY that wakes their
    readers as one statement: one round trip instead of three for every journal record a
    run writes (data-modifying CTEs). Nothing is inserted, and nobody told, unless the
    fence holds (PostgreSQL sends identical notifications once). Several records come as
    arrays; one (the usual case: each event is written as it happens) as plain values,
    which psycopg sends without escaping the line into an array literal."""
    held = (update(RUNS).where(RUNS.c.id == bindparam("the_run"), RUNS.c.lease_owner == bindparam("the_worker"),
                               RUNS.c.status == "running")
            .values(last_seq=bindparam("the_last")).returning(RUNS.c.id).cte("held"))
    if many:
        arrays = (bindparam("seqs", type_=ARRAY(Integer)), bindparam("names", type_=ARRAY(Text)),
                  bindparam("lines", type_=ARRAY(Text)))
        rows = func.unnest(*arrays).table_valued("seq", "event", "record").render_derived()
        fenced = select(held.c.id, rows.c.seq, rows.c.event, rows.c.record).select_from(held).join(rows, true())
    else:
        fenced = select(held.c.id, bindparam("the_last", type_=Integer), bindparam("name", type_=String),
                        bindparam("line", type_=Text)).select_from(held)
    added = (insert(EVENTS).from_select(["run_id", "seq", "event", "record"], fenced).returning(EVENTS.c.seq)
             .cte("added"))
    statement: Executable = select(added.c.seq, func.pg_notify(bindparam("channel", type_=String),
                                                                bindparam("the_run", type_=String)))
    return statement


def _fenced_insert(conn: Connection, run_id: str, worker: str, lines: Sequence[tuple[int, str, str]]) -> None:
    values: dict[str, Any] = {"the_run": run_id, "the_worker": worker, "the_last": lines[-1][0], "channel": CHANNEL}
    if len(lines) == 1:
        values.update(name=lines[0][1], line=lines[0][2])
    else:
        values.update(seqs=[seq for seq, _, _ in lines], names=[name for _, name, _ in lines],
                      lines=[line for _, _, line in lines])
    if not conn.execute(_fenced_statement(len(lines) > 1), values).all():
        raise LeaseLost(f"worker {worker} no longer holds the lease of run {run_id}")


def append_waiting(conn: Connection, run_id: str, after: int, lines: Sequence[tuple[int, str, str]]) -> bool:
    """Records of a run no worker holds (it waits for a person), added only if it still
    waits and its journal still ends at `after`: of several workers firing the same
    escalation, one writes it; False for the others (and once the run went on)."""
    moved = conn.execute(update(RUNS).where(RUNS.c.id == run_id, RUNS.c.status == "waiting",
                                            RUNS.c.last_seq == after).values(last_seq=lines[-1][0]))
    if moved.rowcount == 0:
        return False
    conn.execute(INSERT_EVENTS, [{"run_id": run_id, "seq": seq, "event": name, "record": line}
                                 for seq, name, line in lines])
    return True


def end_waiting(conn: Connection, run_id: str, after: int, lines: Sequence[tuple[int, str, str]], outcome: str,
                reason: str) -> bool:
    """A waiting run ended where it waits (an escalation handed it off): its last records,
    its questions cancelled, its secrets blanked; False as append_waiting would be."""
    if not append_waiting(conn, run_id, after, lines):
        return False
    conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(
        status="finished", outcome=outcome, reason=reason or None, finished_at=now(conn)))
    conn.execute(update(tables.questions).where(tables.questions.c.run_id == run_id,
                                                tables.questions.c.status == "open").values(status="cancelled"))
    run = get(conn, run_id)
    assert run is not None
    blank_secrets(conn, run)
    return True


def stored(conn: Connection, run_id: str, seqs: Sequence[int]) -> dict[int, str]:
    rows = conn.execute(select(EVENTS.c.seq, EVENTS.c.record).where(EVENTS.c.run_id == run_id,
                                                                      EVENTS.c.seq.in_(list(seqs))))
    return {int(seq): str(record) for seq, record in rows}


def records(conn: Connection, run_id: str, after: int = 0) -> list[str]:
    rows = conn.execute(select(EVENTS.c.record).where(EVENTS.c.run_id == run_id, EVENTS.c.seq > after)
                        .order_by(EVENTS.c.seq))
    return [str(r) for (r,) in rows]


def log_chunks(conn: Connection, run_id: str) -> list[LogChunk]:
    rows = conn.execute(select(LOGS.c.name, LOGS.c.data).where(LOGS.c.run_id == run_id).order_by(LOGS.c.id))
    return [LogChunk(str(name), bytes(data)) for name, data in rows]


def write_run_dir(lines: Sequence[str], chunks: Sequence[LogChunk], run_dir: Path) -> Path:
    """journal.jsonl and logs/ as a CLI run leaves them. Returns the journal's path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    journal = run_dir / JOURNAL
    with open(journal, "w", encoding="utf-8", newline="") as handle:
        for line in lines:
            handle.write(line + "\n")
    logs: dict[str, list[bytes]] = {}
    for chunk in chunks:
        logs.setdefault(chunk.name, []).append(chunk.data)
    for name, parts in logs.items():
        path = run_dir / "logs" / name
        if os.path.isabs(name) or ".." in Path(name).parts:
            continue  # names come from journal.log_name: never absolute, never up
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(parts))
    return journal
