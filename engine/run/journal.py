"""The append-only JSONL journal of a run, its step logs, and reading it back.

Every event is written with one `write()` as soon as it happens (so it survives a
crash of the engine), and `barrier()` fsyncs before the runner does anything with an
effect outside the run: a command, a request, a message, a prompt. Consecutive events
without an effect between them share one fsync.

A small reserve file is kept beside the journal. When the disk fills (through the
journal or a step's log), logging output stops, the next `barrier()` raises
JournalError once so the run stops before its next action, and the reserve is
released when the journal needs it: the run can still record how it ended (and its
rollbacks).
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from engine.errors import JournalError

from .events import Event, RunFinished, Stamp, StepFinished, StepOutput

JOURNAL = "journal.jsonl"
RESERVE = ".reserve"
RESERVE_BYTES = 256 * 1024
TAIL_CHARS = 4096  # output kept in journal lines; the full output is in logs/


def iso(t: float) -> str:
    stamp = datetime.fromtimestamp(t, tz=timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "items"):
        return dict(value.items())
    return str(value)


def encode(event: Event, stamp: Stamp) -> bytes:
    """One journal line. Never fails: a value JSON cannot hold as it is (nested too deeply,
    NaN, a lone surrogate, a key that is not text) is written as `jsonable` makes it."""
    record = {"seq": stamp.seq, "t": iso(stamp.t), "elapsed": round(stamp.elapsed, 3),
              "event": event.name}
    record.update(event.record())
    try:
        return (json.dumps(record, ensure_ascii=False, allow_nan=False, default=_json_default) + "\n").encode()
    except (ValueError, TypeError, RecursionError):  # UnicodeEncodeError is a ValueError
        return (json.dumps(jsonable(record), ensure_ascii=False) + "\n").encode()


MAX_DEPTH = 32  # levels of nesting a journaled value keeps; deeper ones are cut
TOO_DEEP = "…(nested too deeply)"


def jsonable(value: Any, depth: int = MAX_DEPTH) -> Any:
    """`value` as JSON can hold it and any reader can decode it: mappings with text keys,
    lists, text without lone surrogates, finite numbers, at most MAX_DEPTH levels deep.
    What does not fit is shown as text (`nan`, `<integer of 20000 bits>`, TOO_DEEP)."""
    if isinstance(value, str):
        return _text(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if value.bit_length() < 10_000 else f"<integer of {value.bit_length()} bits>"
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth <= 0:
        return TOO_DEEP
    if isinstance(value, Mapping):
        return {_text(str(k)): jsonable(v, depth - 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v, depth - 1) for v in value]
    return _text(str(value))


def _text(text: str) -> str:
    try:
        text.encode()
    except UnicodeEncodeError:  # lone surrogates (from `\\udc00` in parsed JSON): U+FFFD instead
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


class JournalWriter:
    """Observer that appends events to `<run_dir>/journal.jsonl` and output to logs/."""

    wants_output = True

    def __init__(self, run_dir: str | os.PathLike[str], *, fsync: bool | None = None) -> None:
        self.run_dir = Path(run_dir)
        # RUNBOOK_JOURNAL_FSYNC=0 skips the syncs (benchmarks, throwaway runs on tmpfs):
        # the journal is still written as events happen, but a power loss may cut it.
        self.fsync = fsync if fsync is not None else os.environ.get("RUNBOOK_JOURNAL_FSYNC", "1") != "0"
        self._dirty = False
        self._logs: dict[tuple[str, str, str | None], int] = {}
        self.log_errors: list[str] = []
        self._failed_logs: set[tuple[str, str, str | None]] = set()
        self.disk_full: str | None = None  # what could not be written when the disk filled
        self._stop_reported = False
        self._finished = False
        self._fd = -1
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.run_dir / JOURNAL, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._size = os.fstat(self._fd).st_size
            self._reserve()
        except OSError as exc:
            self._abandon()
            raise JournalError(f"cannot open the journal {self.path}: {exc.strerror or exc}") from None

    @property
    def path(self) -> Path:
        return self.run_dir / JOURNAL

    def on_event(self, event: Event, stamp: Stamp) -> None:
        if isinstance(event, StepOutput):
            self._log(event)
            return
        if not event.journaled:
            return
        self._append(encode(event, stamp))
        if isinstance(event, StepFinished):
            self._close_logs(event.step)
        elif isinstance(event, RunFinished):
            self._finished = True

    def barrier(self) -> None:
        """Make everything written so far durable (fsync) before an external effect.

        Once the disk is full, the first barrier raises JournalError: the run must stop
        before it does anything more. Later ones do not, so rollbacks can still run and
        be recorded in the space of the reserve."""
        self._sync()
        if self.disk_full and not self._stop_reported and not self._finished:
            self._stop_reported = True
            raise JournalError(f"the disk of {self.run_dir} is full ({self.disk_full}): "
                               "stopped before the next action")

    def _sync(self) -> None:
        if self._dirty and self.fsync:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise JournalError(f"cannot sync the journal: {exc.strerror or exc}") from exc
        self._dirty = False

    def close(self) -> None:
        """Close the journal and its logs. A journal nothing was written to (the run never
        started: a scenario or runbook that could not be loaded) is not left behind empty."""
        for fd in self._logs.values():
            os.close(fd)
        self._logs.clear()
        if self._fd >= 0 and self._size == 0:
            self._abandon()
            return
        if self._fd >= 0:
            try:
                self._sync()
            finally:
                os.close(self._fd)
            self._fd = -1
        try:
            (self.run_dir / RESERVE).unlink()
        except OSError:
            pass

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------

    def _reserve(self) -> None:
        reserve = self.run_dir / RESERVE
        if reserve.exists():
            return
        with open(reserve, "wb") as handle:
            handle.write(b"\0" * RESERVE_BYTES)
            handle.flush()  # a full disk fails here, inside the `with`, not at an implicit close

    def _abandon(self) -> None:
        """The journal could not be opened (a full disk at start): leave no empty journal,
        partial reserve or run directory behind, only the error naming the path."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        for name in (RESERVE, JOURNAL):
            path = self.run_dir / name
            try:
                if name == RESERVE or path.stat().st_size == 0:
                    path.unlink()
            except OSError:
                pass
        try:
            self.run_dir.rmdir()  # only if it is empty: a resumed run's directory stays
        except OSError:
            pass

    def _append(self, line: bytes) -> None:
        try:
            self._write_all(line)
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise JournalError(f"cannot write the journal: {exc.strerror or exc}") from exc
            self._use_reserve()
            self.disk_full = self.disk_full or JOURNAL
            try:
                self._write_all(line)
            except OSError as again:
                raise JournalError(f"the journal disk is full: {again.strerror}") from again
        self._dirty = True

    def _write_all(self, line: bytes) -> None:
        try:
            written = os.write(self._fd, line)
        except OSError:
            os.ftruncate(self._fd, self._size)
            raise
        if written != len(line):
            # Never leave half a line: cut back to the last whole event.
            os.ftruncate(self._fd, self._size)
            raise OSError(errno.ENOSPC, "short write")
        self._size += written

    def _use_reserve(self) -> None:
        try:
            (self.run_dir / RESERVE).unlink()
        except OSError:
            pass

    def _log(self, event: StepOutput) -> None:
        key = (event.step, event.stream, event.host)
        if self.disk_full or key in self._failed_logs:
            return  # what space is left (the reserve) is for the journal; a failed log says so once
        fd = self._logs.get(key)
        try:
            if fd is None:
                path = self.run_dir / "logs" / log_name(*key)
                path.parent.mkdir(parents=True, exist_ok=True)  # logs/sub/ for an included runbook's steps
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                self._logs[key] = fd
            _write_fully(fd, event.text.encode("utf-8", errors="replace"))
        except OSError as exc:
            self._failed_logs.add(key)
            self.log_errors.append(f"logs/{log_name(*key)}: {exc.strerror or exc}")
            if exc.errno == errno.ENOSPC:
                self.disk_full = f"writing logs/{log_name(*key)}"

    def _close_logs(self, step: str) -> None:
        for key in [k for k in self._logs if k[0] == step]:
            os.close(self._logs.pop(key))

    def logs_of(self, step: str) -> list[str]:
        return [f"logs/{log_name(*k)}" for k in self._logs if k[0] == step]


def _write_fully(fd: int, data: bytes) -> None:
    """os.write may write less than asked (a signal, a nearly full disk): finish it."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def log_name(step: str, stream: str, host: str | None) -> str:
    safe_host = "" if host is None else "@" + "".join(c if c.isalnum() or c in ".-_" else "_" for c in host)
    return f"{step}{safe_host}.{stream}.log"


def logged_output(record: Mapping[str, Any], run_dir: Path, stream: str, *, limit: int | None = None) -> str | None:
    """The whole output of a step.finished record whose journal copy is a truncated tail,
    from the step's log file (at most its last `limit` bytes); None when the journal has it
    all (or the log is gone)."""
    if not record.get("truncated"):
        return None
    log = run_dir / "logs" / log_name(str(record.get("step")), stream, None)
    if not log.is_file():
        return None
    with open(log, "rb") as handle:
        if limit is not None and handle.seek(0, os.SEEK_END) > limit:
            handle.seek(-limit, os.SEEK_END)
        else:
            handle.seek(0)
        return handle.read().decode("utf-8", errors="replace")


# -- reading ------------------------------------------------------------------------------------


@dataclass
class JournalContents:
    """The records of a journal, and whether it ended cleanly."""

    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    torn: bool = False  # the last line was cut short (the engine died mid-write)
    bad_lines: list[int] = field(default_factory=list)

    @property
    def started(self) -> dict[str, Any] | None:
        return next((r for r in self.records if r.get("event") == "run.started"), None)

    @property
    def finished(self) -> dict[str, Any] | None:
        return run_finished(self.records)

    @property
    def complete(self) -> bool:
        return self.finished is not None


def run_finished(records: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The run.finished of the last attempt; None when it stopped without one (a crash,
    or still running). A run resumed after it failed has an earlier run.finished before
    its last run.started: that one ended an attempt, not the run."""
    for record in reversed(records):
        event = record.get("event")
        if event == "run.finished":
            return dict(record)
        if event == "run.started":
            return None
    return None


def journal_path(path: str | os.PathLike[str]) -> Path:
    """A run directory or a journal file -> the journal file."""
    p = Path(path)
    return p / JOURNAL if p.is_dir() else p


MAX_LINE = 16 * 1024 * 1024  # far past any line the engine writes (outputs are tails): a longer one is damage
_TOO_LONG = b"\0\n"  # what a line past MAX_LINE reads as: unreadable, and not torn


def decode(raw: bytes) -> dict[str, Any] | None:
    """One journal line as a record; None for anything else (not JSON, nested past the
    decoder's depth, a number past Python's digit limit, not an object)."""
    try:
        record = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return record if isinstance(record, dict) else None


def journal_lines(handle: BinaryIO) -> Iterator[bytes]:
    """The lines of an open journal, none held whole past MAX_LINE bytes: a longer line
    is read to its end in pieces and stands as one unreadable line."""
    while raw := handle.readline(MAX_LINE + 1):
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):
                raw = handle.readline(1 << 20)
            raw = _TOO_LONG
        yield raw


def open_journal(path: Path) -> BinaryIO:
    """The journal file opened for reading; JournalError when it is a FIFO, a device or a
    directory (reading one would wait for a writer, or never end)."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            from engine.language.loader import special_kind

            kind = "a directory" if stat.S_ISDIR(mode) else special_kind(mode)
            raise JournalError(f"{path} is not a journal: it is {kind}")
        return open(path, "rb")
    except OSError as exc:
        raise JournalError(f"cannot read {path}: {exc.strerror or exc}") from exc


def iter_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, bool]]:
    """(line number, record or None if unreadable, whether it is a torn last line)."""
    with open_journal(path) as handle:
        for number, raw in enumerate(journal_lines(handle), 1):
            record = decode(raw)
            yield number, record, record is None and not raw.endswith(b"\n")


def read_journal(path: str | os.PathLike[str]) -> JournalContents:
    """Read every record; a torn last line (crash mid-write) is reported, not fatal."""
    file = journal_path(path)
    contents = JournalContents(file)
    try:
        for number, record, torn in iter_records(file):
            if record is not None:
                contents.records.append(record)
            elif torn:
                contents.torn = True
            else:
                contents.bad_lines.append(number)
    except OSError as exc:
        raise JournalError(f"cannot read {file}: {exc.strerror or exc}") from exc
    return contents


def last_record(path: Path, window: int = 65536) -> dict[str, Any] | None:
    """The last whole record of a journal, reading only its end (for `runbook runs`)."""
    try:
        with open_journal(path) as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(size - window, 0))
            lines = handle.read().splitlines()
    except (OSError, JournalError):
        return None
    for raw in reversed(lines):
        record = decode(raw)
        if record is not None:
            return record
    return None


def first_record(path: Path) -> dict[str, Any] | None:
    try:
        with open_journal(path) as handle:
            return decode(next(journal_lines(handle), b""))
    except (OSError, JournalError):
        return None


def new_run_id(runbook_id: str, now: float | None = None) -> str:
    """`20261122T063012123Z-disk-full-3fa2`: milliseconds, so runs started in the same
    second still sort in the order they started."""
    moment = datetime.fromtimestamp(now or time.time(), tz=timezone.utc)
    stamp = moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"
    return f"{stamp}-{runbook_id}-{os.urandom(2).hex()}"


class MemoryJournal:
    """The journal's records kept in memory (unattended tests and trials): the same
    dicts the JSONL file would hold, without the I/O."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def on_event(self, event: Event, stamp: Stamp) -> None:
        if event.journaled:
            record = {"seq": stamp.seq, "t": stamp.t, "elapsed": stamp.elapsed, "event": event.name}
            record.update(event.record())
            self.records.append(record)
