"""Waking the readers of a run's journal when it grows, instead of letting them poll.

A stream reading a run's journal (the API's and the console's Server-Sent Events) takes a
ticket, reads what is there, and if nothing is new waits for the run's next write or its
end; polling remains the fallback (a worker in another process writing to SQLite wakes
nobody here). Writes in this process wake waiters directly; on PostgreSQL every writer
also sends `NOTIFY runbook_journal, '<run id>'` in its transaction, and a listener thread
(started when the first reader waits) wakes this process's waiters when another process
commits: a notification is delivered at commit, so a woken reader finds the records.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading

from sqlalchemy import Connection, text

from .database import is_postgres

log = logging.getLogger("runbook.store")
CHANNEL = "runbook_journal"
ANY = "*"  # the key of readers woken by a change to any run (the live runs list)


class Wakeup:
    """Which run changed last when, and the readers waiting on each run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clock = itertools.count(1)
        self._changed: dict[str, int] = {}  # run id -> the tick of its last change
        self._waiting: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self.listener: _Listener | None = None
        self.closing = False  # the server shuts down: streams end, their browsers reconnect later

    def ticket(self, run_id: str) -> int:
        """The run's last change so far: take it before reading, wait with it after."""
        with self._lock:
            return self._changed.get(run_id, 0)

    def changed(self, run_id: str) -> None:
        """The run's journal or status changed: wake its readers (from any thread)."""
        with self._lock:
            self._changed[run_id] = self._changed[ANY] = next(self._clock)
            waiters = [*self._waiting.get(run_id, ()), *self._waiting.get(ANY, ())]
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that reader's loop has closed
                pass

    def ended(self, run_id: str) -> None:
        """The run has ended: wake its readers, and forget it once none waits."""
        self.changed(run_id)
        with self._lock:
            if not self._waiting.get(run_id):
                self._changed.pop(run_id, None)

    def listen(self, dsn: str) -> None:
        """Start the PostgreSQL listener (once; a no-op while it runs)."""
        with self._lock:
            if self.listener is not None:
                return
            self.listener = _Listener(dsn, self)
        self.listener.start()

    def close(self) -> None:
        if self.listener is not None:
            self.listener.stopping.set()

    def shut(self) -> None:
        """Wake every reader for good (from any thread, a signal handler's too): the server
        is shutting down, and a stream kept open would hold its graceful stop to the end."""
        self.closing = True
        with self._lock:
            runs = list(self._waiting)
        for run_id in runs:
            self.changed(run_id)

    async def wait(self, run_id: str, ticket: int, timeout: float) -> bool:
        """Until the run changes after `ticket`, or `timeout` seconds (False)."""
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._lock:
            if self._changed.get(run_id, 0) != ticket or self.closing:
                return True
            self._waiting.setdefault(run_id, set()).add(entry)
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                left = self._waiting.get(run_id, set())
                left.discard(entry)
                if not left:
                    self._waiting.pop(run_id, None)


class _Listener(threading.Thread):
    """LISTEN on PostgreSQL for other processes' journal writes; wakes `wakeup` for each."""

    def __init__(self, dsn: str, wakeup: Wakeup) -> None:
        super().__init__(name="runbook-listen", daemon=True)
        self.dsn, self.wakeup, self.stopping = dsn, wakeup, threading.Event()

    def run(self) -> None:
        import psycopg

        while not self.stopping.is_set():
            try:
                with psycopg.connect(self.dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self.stopping.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self.wakeup.changed(note.payload)
            except psycopg.Error as exc:  # the database restarts: readers poll meanwhile
                log.debug("journal notifications paused: %s", exc)
                self.stopping.wait(1.0)


def announce(conn: Connection, run_id: str) -> None:
    """Tell other processes, at this transaction's commit, that the run changed (PostgreSQL)."""
    if is_postgres(conn):
        conn.execute(text("SELECT pg_notify(:channel, :run)"), {"channel": CHANNEL, "run": run_id})
