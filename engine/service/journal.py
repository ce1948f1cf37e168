"""The journal of a service run, kept in the store: the run package's journal writer
interface (`on_event`, `barrier`, `close`, `log_errors`) with the store as its home.

Each record is the line `engine.run.journal_writer.encode` makes for journal.jsonl,
without its newline, so a run exported from the store (`Store.export`) is byte for byte
the journal a CLI run writes, and every reader (report, stats, resume, scenario from-run)
reads it unchanged. Like the file journal, every event is committed as it happens (it
survives the death of the worker) and a barrier makes what came before durable (it
survives a crash of the database server) before the runner does anything outside the
run. Step output is buffered and goes with the next record.

Once the worker no longer holds the run's lease (another worker took it over), or the
store stays away past its patience, the journal is *sealed*: nothing more is written, the
runner is stopped without rollbacks (`on_lost`), and the next barrier raises
JournalError. Whoever holds the run next continues it from the records that are there.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.errors import JournalError
from engine.run.events import Event, RunFinished, Stamp, StepOutput
from engine.run.journal import log_name
from engine.run.journal_writer import encode

from .store import LogChunk, Store, StoreError

OUTPUT_FLUSH = 256 * 1024  # bytes of step output held before they are written on their own


class StoreJournal:
    """Observer that appends a run's events and step output to the store, under its lease."""

    wants_output = True

    def __init__(self, store: Store, run_id: str, worker: str, *,
                 on_lost: Callable[[str], None] = lambda why: None) -> None:
        self.store, self.run_id, self.worker, self.on_lost = store, run_id, worker, on_lost
        self.log_errors: list[str] = []
        self.sealed: str | None = None  # why nothing more is written
        self.finished = False
        self._lines: list[tuple[int, str, str]] = []
        self._chunks: list[LogChunk] = []
        self._buffered = 0
        self._durable = True  # nothing written yet, so nothing to sync
        self._stop_reported = False

    def on_event(self, event: Event, stamp: Stamp) -> None:
        if self.sealed is not None:
            return
        if isinstance(event, StepOutput):
            data = event.text.encode("utf-8", errors="replace")
            self._chunks.append(LogChunk(log_name(event.step, event.stream, event.host), data))
            self._buffered += len(data)
            if self._buffered >= OUTPUT_FLUSH:
                self._flush(durable=False)
            return
        if not event.journaled:
            return
        line = encode(event, stamp).decode("utf-8")[:-1]  # the JSONL line without its newline
        self._lines.append((stamp.seq, event.name, line))
        self.finished = self.finished or isinstance(event, RunFinished)
        self._flush(durable=False)

    def barrier(self) -> None:
        """Everything recorded so far made durable before an external effect; JournalError
        (once) when the journal is sealed: the run must do nothing more."""
        if self.sealed is None and (self._lines or self._chunks or not self._durable):
            self._flush(durable=True)
        if self.sealed is not None and not self._stop_reported:
            self._stop_reported = True
            raise JournalError(f"run {self.run_id}: {self.sealed}: stopped before the next action")

    def close(self) -> None:
        if self.sealed is None and (self._lines or self._chunks or not self._durable):
            self._flush(durable=True)

    def seal(self, why: str) -> None:
        """Write nothing more (the run is handed to another worker); stop the runner."""
        if self.sealed is None:
            self.sealed = why
            self._lines.clear()
            self._chunks.clear()
            self.on_lost(why)

    def _flush(self, *, durable: bool) -> None:
        lines, chunks = self._lines, self._chunks
        self._lines, self._chunks, self._buffered = [], [], 0
        try:
            self.store.append(self.run_id, self.worker, lines, chunks, durable=durable)
        except StoreError as exc:
            self.seal(str(exc))
            return
        self._durable = durable or (self._durable and not lines and not chunks)

    def __enter__(self) -> StoreJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
