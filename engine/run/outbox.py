"""Messages that leave the run without holding it up: stakeholder updates and escalations.

A webhook that is down is retried for a few seconds (see executors._webhook); done on
the run's own thread, every phase change would cost the operator those seconds during
a chat outage. The outbox delivers them in order on a thread of its own, and the run
waits for it only at the end, so the journal has every delivery before run.finished.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable


class Outbox:
    """Runs delivery jobs one after another, off the caller's thread."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[Callable[[], object]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.errors: list[Exception] = []  # what failing jobs raised (a job reports its own failures)

    def put(self, job: Callable[[], object]) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="runbook-outbox", daemon=True)
            self._thread.start()
        self._jobs.put(job)

    def drain(self) -> None:
        """Wait until every job so far has run (each is bounded by its delivery budget)."""
        if self._thread is not None:
            self._jobs.join()

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except Exception as exc:  # one failing job must not stop the later ones
                self.errors.append(exc)
            finally:
                self._jobs.task_done()
