"""A run's journal in the store: its records (each exactly a journal.jsonl line) and the
output of its steps, and turning them back into a run directory any reader can read."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Connection, insert, select, update

from engine.run.journal import JOURNAL

from . import tables
from ._leases import fence
from .records import LogChunk

EVENTS, LOGS, RUNS = tables.events, tables.logs, tables.runs
# Made once: every record of every run goes through them (SQLAlchemy cache-keys a
# statement built anew at each execution).
INSERT_EVENTS, INSERT_LOGS = insert(EVENTS), insert(LOGS)


def append(conn: Connection, run_id: str, worker: str, lines: Sequence[tuple[int, str, str]],
           chunks: Sequence[LogChunk]) -> None:
    """Journal records (seq, event name, line) and log output of a run, fenced by its lease."""
    fence(conn, run_id, worker, lines[-1][0] if lines else None)
    if lines:
        conn.execute(INSERT_EVENTS, [{"run_id": run_id, "seq": seq, "event": name, "record": line}
                                      for seq, name, line in lines])
    if chunks:
        conn.execute(INSERT_LOGS, [{"run_id": run_id, "name": c.name, "data": c.data} for c in chunks])


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
