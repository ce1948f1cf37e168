"""A worker: claims queued runs from the store with a lease and carries them out.

Each of its `slots` threads claims one run at a time (execution.py runs it), and a
heartbeat renews the leases it holds every third of the lease. A worker that dies stops
renewing: once its leases expire, any worker whose labels fit takes its runs over and
continues them from their stored journals. A worker that loses a lease (it was cut off
from the database longer than the lease) stops that run at once and writes nothing more.

`drain()` (SIGTERM, or the service shutting down) stops claiming; the runs in progress
may finish for `drain_timeout` seconds, then are handed over: stopped where they are and
put back in the queue at once, for another worker to continue.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import EngineError
from engine.home import home

from .drill_run import execution_for
from .escalation import ParkedEscalations
from .execution import Execution
from .store import LeaseLost, QuestionRow, Store, StoreError

log = logging.getLogger("runbook.worker")

HANDED_OVER = "handed over: its worker is draining"


def worker_name() -> str:
    """host:pid:random, unique among the workers sharing a store."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker claims: its labels (a run's pool must fit them), how many runs at once,
    the lease, how often it looks for work, how long a drain waits."""

    labels: Mapping[str, str] = field(default_factory=dict)
    slots: int = 4
    lease: float = 30.0
    poll: float = 0.5
    drain_timeout: float = 30.0
    name: str = field(default_factory=worker_name)
    scratch: Path | None = None  # default: service/work under $RUNBOOK_HOME
    on_question: Callable[[QuestionRow], None] | None = None  # told of each question a run parks at
    escalate_every: float = 2.0  # how often the escalation rules of runs waiting for a person are checked


class Worker:
    """Claims runs and carries them out on `slots` threads until drained."""

    def __init__(self, store: Store, options: WorkerOptions) -> None:
        self.store, self.options = store, options
        self.name = options.name
        self.scratch = options.scratch or home() / "service" / "work"
        self.draining = threading.Event()
        self.active: dict[str, Execution] = {}
        self.done: list[tuple[str, str]] = []  # (run id, what happened), in order
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._beat = threading.Event()
        self._work = threading.Condition()
        self._posted = 0  # how many times wake() was called: a slot that saw fewer looks again
        self._lost: set[str] = set()  # runs it stopped when the store failed: handed back once it answers

    def start(self) -> Worker:
        self.store.worker_seen(self.name, self.options.labels, "running")
        self._threads = [threading.Thread(target=self._slot, name=f"worker-{i}", daemon=True)
                         for i in range(self.options.slots)]
        self._threads.append(threading.Thread(target=self._escalations, name="escalation", daemon=True))
        self._threads.append(threading.Thread(target=self._heartbeats, name="heartbeat", daemon=True))
        for thread in self._threads:
            thread.start()
        log.info("worker %s: %d slot(s), labels %s, store %s", self.name, self.options.slots,
                 dict(self.options.labels) or "{}", self.store)
        return self

    def wake(self) -> None:
        """Runs were queued (by this process's intake): idle slots claim now, not at their next poll."""
        with self._work:
            self._posted += 1
            self._work.notify_all()

    def drain(self) -> None:
        """Stop claiming (safe to call from a signal handler: it only sets an event)."""
        self.draining.set()

    def stop(self) -> None:
        """Drain, let running runs finish for drain_timeout seconds, hand over the rest."""
        self.drain()
        self.wake()  # idle slots see the drain now
        if self.active:
            log.info("worker %s: draining: %d run(s) in progress may finish within %gs, then are handed over",
                     self.name, len(self.active), self.options.drain_timeout)
        slots = self._threads[:-1]
        _join(slots, self.options.drain_timeout)
        with self._lock:
            left = list(self.active.values())
        for execution in left:
            execution.stop(HANDED_OVER, hand_over=True)
        _join(slots, None)
        self._beat.set()
        _join(self._threads[-1:], None)
        self._seen("stopped")
        handed = sum(1 for _, what in self.done if what == "handed over")
        parked = sum(1 for _, what in self.done if what == "waiting")  # one run may park at several questions
        lost = sum(1 for _, what in self.done if what.startswith("lost"))
        log.info("worker %s: stopped (%d run(s) carried out, %d handed over, %d time(s) parked for a person, "
                 "%d lost to the store or another worker)", self.name, len(self.done) - handed - parked - lost,
                 handed, parked, lost)

    def wait(self) -> None:
        """Until drain() is called (by a signal handler), then stop()."""
        while not self.draining.wait(0.5):
            pass
        self.stop()

    # -- the threads ---------------------------------------------------------------------------

    def _slot(self) -> None:
        seen = self._posted
        while not self.draining.is_set():
            try:
                claim = self.store.claim(self.name, self.options.labels, self.options.lease)
            except StoreError as exc:
                log.warning("worker %s cannot claim: %s", self.name, exc)
                claim = None
            if claim is None:
                seen = self._idle(seen)
                continue
            # A drill room's drill runs in its simulated world (drill_run.py), any other run live.
            self._carry_out(execution_for(Execution(self.store, claim, self.name, self.scratch,
                                                    on_question=self.options.on_question)))

    def _idle(self, seen: int) -> int:
        """Wait for wake() or the next poll; the wake count seen."""
        with self._work:
            if self._posted == seen:
                self._work.wait(self.options.poll)
            return self._posted

    def _carry_out(self, execution: Execution) -> None:
        run = execution.run
        log.info("run %s (%s): claimed%s", run.id, run.runbook, _how(execution))
        with self._lock:
            self.active[run.id] = execution
        try:
            what = execution.carry_out()
        except EngineError as exc:  # the store failed for longer than its patience
            what = f"lost ({exc})"
        except Exception as exc:  # a bug: the run ends failed, saying so; this slot goes on
            log.exception("run %s: internal error", run.id)
            what = execution.failed(f"internal error: {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self.active.pop(run.id, None)
        with self._lock:
            self.done.append((run.id, what))
            if what.startswith("lost"):
                self._lost.add(run.id)
        log.info("run %s: %s", run.id, what)

    def _escalations(self) -> None:
        """Parked runs have no runner to keep their escalation timers (escalation.py)."""
        parked = ParkedEscalations(self.store, self.scratch)
        while not self.draining.wait(self.options.escalate_every):
            try:
                parked.check()
            except StoreError as exc:
                log.warning("worker %s cannot check parked runs' escalations: %s", self.name, exc)
            except Exception:  # a bug: logged, and the next look tries again
                log.exception("worker %s: escalation check", self.name)

    def _heartbeats(self) -> None:
        while not self._beat.wait(self.options.lease / 3):
            with self._lock:
                held = list(self.active.values())
            for execution in held:
                self._renew(execution)
            self._aborts(held)
            self._hand_back()
            self._seen("draining" if self.draining.is_set() else "running")  # who is alive, for people

    def _hand_back(self) -> None:
        """A run stopped because the store could not be written (full, away) keeps this
        worker's expired lease, which no worker takes while this one lives (it never
        reclaims its own): once the store answers, put it back in the queue, to be
        continued from its journal. Nothing is done if another worker has it by now."""
        with self._lock:
            lost = sorted(self._lost)
        for run_id in lost:
            try:
                self.store.release(run_id, self.name, "its worker could not write to the store; continued from "
                                                      "its journal")
            except LeaseLost:
                pass  # taken over meanwhile: it goes on elsewhere
            except StoreError:
                return  # still away: the next heartbeat tries again
            else:
                log.info("run %s: handed back to the queue now that the store answers", run_id)
                self.wake()
            with self._lock:
                self._lost.discard(run_id)

    def _renew(self, execution: Execution) -> None:
        try:
            held = self.store.heartbeat(execution.run.id, self.name, self.options.lease)
        except StoreError as exc:
            held, why = False, f"lease not renewed: {exc}"
        else:
            why = "lease lost: another worker has taken the run over"
        if not held:
            execution.stop(why)

    def _aborts(self, held: list[Execution]) -> None:
        """Runs a person asked to stop (the console's Abort): stopped as Ctrl-C stops a run."""
        try:
            asked = self.store.aborts([e.run.id for e in held]) if held else {}
        except StoreError as exc:
            log.warning("worker %s cannot read abort requests: %s", self.name, exc)
            return
        for execution in held:
            if execution.run.id in asked:
                execution.abort(asked[execution.run.id])

    def _seen(self, state: str) -> None:
        try:
            self.store.worker_seen(self.name, self.options.labels, state)
        except StoreError as exc:
            log.warning("worker %s: %s", self.name, exc)


def _how(execution: Execution) -> str:
    claim = execution.claim
    if not claim.takeover:
        return ""
    if claim.previous_owner:
        return f", taken over from {claim.previous_owner}"
    return ", continued from its journal"


def _join(threads: list[threading.Thread], timeout: float | None) -> None:
    """Join them all, within `timeout` seconds in all (None: however long it takes)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    for thread in threads:
        thread.join(None if deadline is None else max(deadline - time.monotonic(), 0.0))
