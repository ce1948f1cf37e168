"""The Store API: everything the service keeps, behind methods that take and give frozen
records (records.py). Nothing outside this package writes SQL.

Each method is one transaction, retried while the database is briefly away (a dropped
connection, a restart, SQLite busy) for up to `patience` seconds; a lasting problem (full,
read-only) is a StoreError naming it. Writes made on behalf of a run's lease name the
worker, and raise LeaseLost once another worker has taken the run over.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from . import _accounts, _intake, _journal, _leases, _people, _questions, _runs, _wakeup, tables
from ._batches import GroupCommit
from ._console_door import ConsoleDoor
from .database import connect, database_url, is_postgres, now, shown_url, writing
from .failures import StoreError, retrying, store_error
from .migrations import migrate
from .records import (
    AlertRow,
    Claim,
    LogChunk,
    NewDelivery,
    NewQuestion,
    NewRun,
    PersonRow,
    QuestionRow,
    Received,
    RunQuery,
    RunRow,
    dumps,
)

T = TypeVar("T")
PATIENCE = 60.0  # seconds a worker keeps trying through a database outage
INTAKE_PATIENCE = 5.0  # a sender waits for its answer: better a 5xx it retries than a timeout


class Store(ConsoleDoor):
    """A database holding runs, their journals, leases, questions, workers and audit."""

    def __init__(self, engine: Engine, url: str, *, patience: float = PATIENCE) -> None:
        self.engine, self.url, self.patience = engine, url, patience
        # SQLite has one writer at a time: this process's writers queue here, in turn,
        # rather than in SQLite's busy handler, which sleeps and lets a writer starve (a
        # storm of deliveries then saw 503s). PostgreSQL writers need no such queue.
        self._writers: AbstractContextManager[Any] = nullcontext() if is_postgres(engine) else threading.RLock()
        # Deliveries that arrive together share a commit; on PostgreSQL a few such
        # transactions run side by side, as its writers do not take turns.
        self._deliveries = GroupCommit(self._receive_all, self._receive_one, lanes=4 if is_postgres(engine) else 1)
        self._wakeup = _wakeup.Wakeup()

    @classmethod
    def open(cls, database: str | None = None, *, pool_size: int = 8, patience: float = PATIENCE) -> Store:
        """Connect (`--database`: a postgresql:// or sqlite:/// URL; default SQLite under
        $RUNBOOK_HOME) and apply pending migrations."""
        url = database_url(database)
        store = cls(connect(url, pool_size=pool_size), url, patience=patience)
        store._retry(lambda: migrate(store.engine), "be opened")
        return store

    def close(self) -> None:
        self._wakeup.close()
        self.engine.dispose()

    @property
    def kind(self) -> str:
        """"postgresql" or "sqlite"."""
        return "postgresql" if is_postgres(self.engine) else "sqlite"

    def __str__(self) -> str:
        """The URL as a person gave it: no password, no driver name."""
        return shown_url(self.url).replace("postgresql+psycopg://", "postgresql://", 1)

    # -- plumbing ------------------------------------------------------------------------------

    def _retry(self, action: Callable[[], T], doing: str) -> T:
        return retrying(action, doing, patience=self.patience)

    def _write(self, action: Callable[[Connection], T], doing: str, *, immediate: bool = False,
               durable: bool = True, patience: float | None = None) -> T:
        def once() -> T:
            with self._writers, writing(self.engine, immediate=immediate, durable=durable) as conn:
                return action(conn)
        return retrying(once, doing, patience=self.patience if patience is None else min(patience, self.patience))

    def _read(self, action: Callable[[Connection], T], doing: str) -> T:
        def once() -> T:
            with self.engine.connect() as conn:
                return action(conn)
        return self._retry(once, doing)

    def ping(self) -> None:
        """StoreError unless the database answers now (for /readyz: no retries)."""
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise store_error(exc, "be reached") from None

    # -- runs ----------------------------------------------------------------------------------

    def enqueue(self, new: NewRun) -> RunRow:
        """Queue a run; a worker whose labels fit its pool will claim it."""
        def action(conn: Connection) -> RunRow:
            run = _runs.get(conn, _runs.enqueue(conn, new))
            assert run is not None
            return run
        return self._write(action, "queue the run")

    def run(self, run_id: str) -> RunRow | None:
        return self._read(lambda c: _runs.get(c, run_id), "read the run")

    def runs(self, *, status: str | None = None, limit: int = 100) -> list[RunRow]:
        """Newest first."""
        return self._read(lambda c: _runs.listing(c, status, limit), "list runs")

    def find_runs(self, query: RunQuery) -> list[RunRow]:
        """A page of runs by runbook, status, outcome and time (one more than the limit
        when there is a next page)."""
        return self._read(lambda c: _runs.search(c, query), "list runs")

    def counts(self) -> dict[str, int]:
        """How many runs are in each status."""
        return self._read(_runs.counts, "count runs")

    def outcomes(self) -> dict[str, int]:
        """How many finished runs ended with each outcome."""
        return self._read(_runs.outcomes, "count outcomes")

    def takeovers(self) -> int:
        """How many times a worker took over a run whose lease had expired."""
        return self._read(lambda c: _runs.audited(c, "lease.takeover"), "count takeovers")

    def cancel(self, run_id: str, reason: str) -> bool:
        """Cancel a queued or waiting run; False when it is running or has ended."""
        def action(conn: Connection) -> bool:
            cancelled = _runs.cancel(conn, run_id, reason)
            if cancelled:
                _wakeup.announce(conn, run_id)
            return cancelled
        done = self._write(action, "cancel the run")
        if done:
            self._wakeup.ended(run_id)
        return done

    # -- leases --------------------------------------------------------------------------------

    def claim(self, worker: str, labels: Mapping[str, str], lease: float) -> Claim | None:
        """The oldest run this worker may take (queued, or its lease expired), now leased to
        it for `lease` seconds; None when there is none."""
        return self._write(lambda c: _leases.claim(c, worker, labels, lease), "claim a run", immediate=True)

    def heartbeat(self, run_id: str, worker: str, lease: float) -> bool:
        """Extend the lease by `lease` seconds; False when the worker no longer holds it."""
        return self._write(lambda c: _leases.heartbeat(c, run_id, worker, lease), "extend a lease")

    def finish(self, run_id: str, worker: str, outcome: str, reason: str = "") -> None:
        def action(conn: Connection) -> None:
            _leases.finish(conn, run_id, worker, outcome, reason)
            _wakeup.announce(conn, run_id)
        self._write(action, "record the run's end")
        self._wakeup.ended(run_id)

    def release(self, run_id: str, worker: str, why: str) -> None:
        """Give the run back to the queue now: another worker continues it from its journal."""
        self._write(lambda c: _leases.release(c, run_id, worker, why), "hand the run back")

    def park(self, run_id: str, worker: str, question: NewQuestion) -> int:
        """The run waits for a person's answer to `question` (returns its id)."""
        question_id = self._write(lambda c: _leases.park(c, run_id, worker, question), "store the question")
        self._wakeup.changed(run_id)  # its readers learn it now waits
        return question_id

    # -- journal -------------------------------------------------------------------------------

    def append(self, run_id: str, worker: str, lines: Sequence[tuple[int, str, str]],
               chunks: Sequence[LogChunk] = (), *, durable: bool = False) -> None:
        """Add journal records (seq, event name, journal line) and step output. A retry
        after a commit whose answer was lost finds its records there and stops."""
        def action(conn: Connection) -> None:
            told = _journal.append(conn, run_id, worker, lines, chunks)  # True: it woke the readers itself
            if (lines or chunks) and not told:  # an empty append is only a durable commit: nothing new to read
                _wakeup.announce(conn, run_id)

        try:
            self._write(action, "write the journal", durable=durable)
        except StoreError as exc:
            if not isinstance(exc.__context__, IntegrityError) or not self._already(run_id, lines):
                raise
        self._wakeup.changed(run_id)

    def _already(self, run_id: str, lines: Sequence[tuple[int, str, str]]) -> bool:
        found = self._read(lambda c: _journal.stored(c, run_id, [s for s, _, _ in lines]), "read the journal")
        return bool(lines) and all(found.get(seq) == line for seq, _, line in lines)

    def append_waiting(self, run_id: str, after: int, lines: Sequence[tuple[int, str, str]]) -> bool:
        """Journal records of a run waiting for a person (no lease: see _journal.append_waiting);
        False when it no longer waits, or another process wrote after record `after`."""
        if not lines:
            return True
        added = self._unless_taken(lambda c: _journal.append_waiting(c, run_id, after, lines), run_id,
                                   "write the journal")
        if added:  # its readers (the console's run page) see the escalation now, not at their next poll
            self._wakeup.changed(run_id)
        return added

    def end_waiting(self, run_id: str, after: int, lines: Sequence[tuple[int, str, str]], outcome: str,
                    reason: str) -> bool:
        """End a run waiting for a person with these last records (see append_waiting)."""
        ended = self._unless_taken(lambda c: _journal.end_waiting(c, run_id, after, lines, outcome, reason), run_id,
                                   "end the run")
        if ended:
            self._wakeup.ended(run_id)
        return ended

    def _unless_taken(self, action: Callable[[Connection], bool], run_id: str, what: str) -> bool:
        """Records written to a run no worker holds (action: True when written, False when the
        run went on meanwhile), other processes told at commit; False too when another
        process took these seqs first."""
        try:
            return self._write(lambda c: _told(action(c), c, run_id), what)
        except StoreError as exc:
            if isinstance(exc.__context__, IntegrityError):
                return False
            raise

    def sync(self, run_id: str, worker: str) -> None:
        """A durable commit: every record appended before it survives a database crash."""
        self._write(lambda c: _leases.fence(c, run_id, worker), "sync the journal")

    def records(self, run_id: str, *, after: int = 0) -> list[str]:
        """The run's journal lines (without newlines), in order."""
        return self._read(lambda c: _journal.records(c, run_id, after), "read the journal")

    def log_chunks(self, run_id: str) -> list[LogChunk]:
        return self._read(lambda c: _journal.log_chunks(c, run_id), "read the step logs")

    def export(self, run_id: str, run_dir: str | os.PathLike[str]) -> Path:
        """Write the run's journal.jsonl and logs/ into `run_dir`, as a CLI run leaves them;
        StoreError when the store has no such run. Returns the journal's path."""
        if self.run(run_id) is None:
            raise StoreError(f"the store {self} has no run {run_id}")
        return _journal.write_run_dir(self.records(run_id), self.log_chunks(run_id), Path(run_dir))

    # -- questions -----------------------------------------------------------------------------

    def questions(self, *, run_id: str | None = None, status: str | None = "open") -> list[QuestionRow]:
        return self._read(lambda c: _questions.listing(c, run_id, status), "list questions")

    def answer(self, question_id: int, values: Mapping[str, Any], by: str, via: str = "store") -> QuestionRow:
        """Answer an open question (`via`: how it came: cli, api, slack); the run goes back
        to the queue once none is open. Who may answer is checked above (service/prompts.py)."""
        return self._write(lambda c: _questions.answer(c, question_id, values, by, via), "record the answer")

    def question(self, question_id: int) -> QuestionRow | None:
        return self._read(lambda c: _questions.get(c, question_id), "read the question")

    # -- people --------------------------------------------------------------------------------

    def set_people(self, people: Sequence[PersonRow]) -> None:
        """The people (and roles) of the serve config: who may answer what."""
        self._write(lambda c: _people.replace_all(c, people), "record the people")

    def person(self, name: str) -> PersonRow | None:
        return self._read(lambda c: _people.get(c, name), "read the person")

    def people(self) -> list[PersonRow]:
        """Everyone of the serve config, by name."""
        return self._read(_people.listing, "list the people")

    def slack_person(self, slack_user: str) -> PersonRow | None:
        """The person whose `slack:` is this Slack user id."""
        return self._read(lambda c: _people.by_slack(c, slack_user), "read the person")

    def create_token(self, name: str) -> str | None:
        """A new API token for the person `name` (shown once; only its hash is kept);
        None when the store knows no such person."""
        return self._write(lambda c: _people.create_token(c, name), "create the token")

    def revoke_tokens(self, name: str) -> int:
        """Revoke every API token of the person `name` (how many were in force)."""
        return self._write(lambda c: _people.revoke(c, name), "revoke the tokens")

    def token_person(self, token: str) -> PersonRow | None:
        """Who a token proves to be (None: an unknown or revoked token)."""
        return self._read(lambda c: _people.by_token(c, token), "check the token")

    # -- the console's accounts ------------------------------------------------------------------

    def set_password(self, name: str, password: str) -> bool:
        """Make `password` the person's (False: no such person); their sessions end."""
        hashed = _accounts.hash_password(password)  # slow on purpose: outside the transaction
        done = self._write(lambda c: _accounts.set_hash(c, name, hashed), "set the password")
        if done:
            self.audit(name, "password.set")
        return done

    def sign_in(self, name: str, password: str, lifetime: float, client: str = "") -> str | None:
        """A session cookie when `password` is the person's (None otherwise); either way on
        the audit trail (`login`, `login.failed`), with where the attempt came from."""
        stored = self._read(lambda c: _accounts.stored_hash(c, name), "read the password")
        if not _accounts.password_matches(password, stored):
            self.audit(name, "login.failed", detail={"via": "password", "from": client})
            return None
        return self.open_session(name, "password", lifetime, client)

    def open_session(self, name: str, via: str, lifetime: float, client: str = "") -> str:
        """A session for a person already proven (`via`: password, or header from a proxy)."""
        def action(conn: Connection) -> str:
            cookie = _accounts.open_session(conn, name, via, lifetime)
            _leases.audit(conn, name, "login", None, {"via": via, "from": client})
            return cookie
        return self._write(action, "open the session")

    def session(self, cookie: str) -> _accounts.Session | None:
        """Who a session cookie is (None: unknown or expired)."""
        return self._read(lambda c: _accounts.session(c, cookie), "read the session")

    def sign_out(self, cookie: str, client: str = "") -> None:
        def action(conn: Connection) -> None:
            name = _accounts.close_session(conn, cookie)
            if name is not None:
                _leases.audit(conn, name, "logout", None, {"from": client})
        self._write(action, "close the session")

    def close_questions(self, ids: Sequence[int]) -> None:
        self._write(lambda c: _questions.close(c, ids), "close the questions")

    # -- intake ------------------------------------------------------------------------------

    def receive(self, delivery: NewDelivery) -> Received:
        """Store a delivery raw and, unless it repeats one already taken, its alerts (runs
        queued, runs of resolved alerts cancelled or told): committed durably before it
        returns, so an answer of 2xx means all of it is kept and a StoreError means none of
        it is. Deliveries arriving together share a commit (_batches.py)."""
        return self._deliveries.submit(delivery)

    def _receive_all(self, deliveries: Sequence[NewDelivery]) -> list[Received]:
        return self._write(lambda c: [_intake.receive(c, d) for d in deliveries], "take the deliveries",
                           immediate=True, patience=0)

    def _receive_one(self, delivery: NewDelivery) -> Received:
        return self._write(lambda c: _intake.receive(c, delivery), "take the delivery", immediate=True,
                           patience=INTAKE_PATIENCE)

    def reject(self, delivery: NewDelivery) -> int:
        """Keep a delivery that could not be read (status rejected, with its reason)."""
        return self._write(lambda c: _intake.store_raw(c, delivery, "rejected"), "keep the rejected delivery",
                           patience=INTAKE_PATIENCE)

    def deliveries(self) -> dict[str, int]:
        """How many deliveries were accepted, found duplicate, rejected."""
        d = tables.deliveries

        def action(conn: Connection) -> dict[str, int]:
            rows = conn.execute(select(d.c.status, func.count()).group_by(d.c.status))
            return {str(status): int(n) for status, n in rows}
        return self._read(action, "count deliveries")

    def alerts(self, *, route: str | None = None, unrouted: bool = False, limit: int = 100) -> list[AlertRow]:
        """Alerts received, latest first; `unrouted`: only those no route matched."""
        return self._read(lambda c: _intake.listing(c, route, unrouted, limit), "list alerts")

    def alert_of(self, run_id: str) -> AlertRow | None:
        """The alert that started a run, with its route's policy (None: not started by an alert)."""
        return self._read(lambda c: _intake.of_run(c, run_id), "read the alert of a run")

    # -- workers and audit ---------------------------------------------------------------------

    def worker_seen(self, worker: str, labels: Mapping[str, str], state: str) -> None:
        """Register or refresh a worker (state: running, draining, stopped)."""
        def action(conn: Connection) -> None:
            w = tables.workers
            done = conn.execute(update(w).where(w.c.id == worker).values(state=state, seen_at=now(conn)))
            if done.rowcount == 0:
                conn.execute(insert(w).values(id=worker, host=socket.gethostname(), pid=os.getpid(),
                                              labels=dumps(dict(labels)), state=state, started_at=now(conn),
                                              seen_at=now(conn)))
        self._write(action, "register the worker")

    def workers(self, *, state: str | None = None) -> list[dict[str, Any]]:
        """The workers that registered, with their labels, state and when last seen."""
        w = tables.workers

        def action(conn: Connection) -> list[dict[str, Any]]:
            query = select(w).order_by(w.c.started_at)
            if state is not None:
                query = query.where(w.c.state == state)
            return [dict(r._mapping) for r in conn.execute(query)]
        return self._read(action, "list workers")

    def audit(self, who: str, what: str, run_id: str | None = None, detail: Mapping[str, Any] | None = None) -> None:
        self._write(lambda c: _leases.audit(c, who, what, run_id, detail or {}), "write the audit trail")

    def audit_trail(self, run_id: str) -> list[dict[str, Any]]:
        a = tables.audit

        def action(conn: Connection) -> list[dict[str, Any]]:
            rows = conn.execute(select(a).where(a.c.run_id == run_id).order_by(a.c.id))
            return [dict(r._mapping) for r in rows]
        return self._read(action, "read the audit trail")

    def forget(self, run_id: str) -> None:
        """Delete a run with its journal, logs and questions (tests and clean-ups)."""
        def action(conn: Connection) -> None:
            for table in (tables.events, tables.logs, tables.questions, tables.audit):
                conn.execute(delete(table).where(table.c.run_id == run_id))
            conn.execute(delete(tables.runs).where(tables.runs.c.id == run_id))
        self._write(action, "delete the run")


def _told(written: bool, conn: Connection, run_id: str) -> bool:
    """`written`, after telling other processes at commit that the run changed, if it did."""
    if written:
        _wakeup.announce(conn, run_id)
    return written
