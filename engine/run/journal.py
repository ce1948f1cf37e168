"""The journal of a run as it lies on disk, and reading it back: `journal.jsonl` (one
JSON record per line, appended as events happen; journal_writer.py writes it) and the
step logs in `logs/`. Readers never trust it: a torn last line (the engine died
mid-write), a damaged line, a FIFO or a huge line are reported, never a crash.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from engine.errors import JournalError

JOURNAL = "journal.jsonl"


def log_name(step: str, stream: str, host: str | None) -> str:
    """The file in `logs/` holding one stream of a step's output (on one host)."""
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
