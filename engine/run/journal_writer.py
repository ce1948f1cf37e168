"""Writing a run's journal: `journal.jsonl` and the step logs beside it (see journal.py
for the layout and for reading it back).

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

import dataclasses
import errno
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import CodeType
from typing import Any, cast

from engine.errors import JournalError
from engine.executors.timestamps import YEAR_10000, iso

from ._line_source import line_source, type_text
from .events import Event, RunFinished, Stamp, StepFinished, StepOutput
from .journal import JOURNAL, log_name

RESERVE = ".reserve"
RESERVE_BYTES = 256 * 1024


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "items"):
        return dict(value.items())
    return str(value)


# One encoder for every line: json.dumps with options builds a new one per call, a
# measurable share of a step's own cost (three lines a step).
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, default=_json_default)


def _c_encoder() -> Any:
    """The C encoder _ENCODER.encode makes at every call, made once (None without _json).

    Without a dict of markers: a circular value, which the markers would report as a
    ValueError, recurses until RecursionError instead, and both are written as `jsonable`
    makes them. (A markers dict kept across calls would keep the ids of a failed call.)"""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    return make(None, _json_default, json.encoder.encode_basestring, None, _ENCODER.key_separator,
                _ENCODER.item_separator, False, False, False)


_C_ENCODER = _c_encoder()


def encode(event: Event, stamp: Stamp) -> bytes:
    """One journal line. Never fails: a value JSON cannot hold as it is (nested too deeply,
    NaN, a lone surrogate, a key that is not text) is written as `jsonable` makes it."""
    cls = type(event)
    line = _LINES[cls] if cls in _LINES else _line_of(cls)
    if line is not None:
        seconds = stamp.elapsed
        try:
            if seconds.__class__ is float and -1e12 < seconds < 1e12:  # _elapsed's own case, without its
                text = f"{seconds:.3f}".rstrip("0")  # call (three lines a step)
                elapsed = text + "0" if text[-1] == "." else text
            else:
                elapsed = _elapsed(seconds)
            return line(event, stamp.seq, iso(stamp.t), elapsed).encode()
        except (ValueError, TypeError, RecursionError):  # UnicodeEncodeError is a ValueError
            pass  # the record's path below says what to write instead
    record = {"seq": stamp.seq, "t": iso(stamp.t), "elapsed": round(stamp.elapsed, 3),
              "event": event.name}
    record.update(event.record())
    try:
        text = "".join(_C_ENCODER(record, 0)) if _C_ENCODER is not None else _ENCODER.encode(record)
        return (text + "\n").encode()
    except (ValueError, TypeError, RecursionError):  # UnicodeEncodeError is a ValueError
        return (json.dumps(jsonable(record), ensure_ascii=False) + "\n").encode()


# The events a run writes many of (three a step) get a line function of their own, made
# from the class's fields: one f-string of the keys' text and each value written as the
# encoder writes it, the plain ones (text, null) without a call. No record dict is built.
# Making one costs what 50-100 lines of its class save (2M instructions for step.finished):
# so only from the COMPILE_AT-th line of a class on, and a short run never pays for it;
# unless something keeps the code across runs (`code_cache`), then from the first line.
COMPILE_AT = 64
# The compiled code of a source text, kept across runs: the `runbook` command sets it to its
# code cache (engine/cli/_code_cache.py), where compiling the same text again costs a look-up.
code_cache: Callable[[str, str], CodeType] | None = None
_LINES: dict[type[Event], Callable[..., str] | None] = {}  # a class's line function, or None: the record's
_WRITTEN: dict[type[Event], int] = {}
_STAMP_KEYS = frozenset({"seq", "t", "elapsed", "event"})
_PLAIN_RECORD = ("record", "Event.record")  # events.py's generated record(), or the base's
_string = json.encoder.encode_basestring  # what the encoder writes of a str (ensure_ascii off)


def _elapsed(seconds: float) -> str:
    """What the encoder writes of round(seconds, 3), formatted once instead of twice: both
    round the exact value to 3 decimals alike, and below 10**12 those are at most 15
    digits, which a float keeps exactly, so its shortest form is that text without its
    trailing zeros. Anything else goes the long way (NaN and infinities fail there)."""
    if seconds.__class__ is float and -1e12 < seconds < 1e12:
        text = f"{seconds:.3f}".rstrip("0")
        return text + "0" if text[-1] == "." else text
    return _value(round(seconds, 3))


def _line_of(cls: type[Event]) -> Callable[..., str] | None:
    """The line function of an event class once it is worth making; None before, and for
    good when the record's path must write it (no C encoder, a record() of its own)."""
    written = _WRITTEN[cls] = _WRITTEN.get(cls, 0) + 1
    if written < COMPILE_AT and code_cache is None:
        return None
    plain = _C_ENCODER is not None and dataclasses.is_dataclass(cls) and cls.record.__qualname__ in _PLAIN_RECORD
    fields = [(f.name, type_text(f.type)) for f in dataclasses.fields(cls)] if plain else []
    stamped = _STAMP_KEYS & {name for name, _ in fields}
    line = _LINES[cls] = _line_function(cls.name, fields) if plain and not stamped else None
    return line


def _line_function(event: str, fields: list[tuple[str, str]]) -> Callable[..., str]:
    source = line_source(event, fields)
    env: dict[str, Any] = {"_value": _value, "_string": _string, "_repr": float.__repr__}
    # Made of the class's own field names and JSON text, nothing read from outside.
    exec(code_cache(source, "exec") if code_cache is not None else source, env)
    return cast(Callable[..., str], env["line"])


def _value(value: Any) -> str:
    """A value as the encoder writes it: plain types here, any other by the encoder."""
    kind = type(value)
    if kind is str:
        return _string(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float and value - value == 0:  # finite: NaN and infinities are the encoder's to refuse
        return float.__repr__(value)
    if not value and (kind is dict or kind is list):
        return "{}" if kind is dict else "[]"
    return "".join(_C_ENCODER(value, 0))


MAX_DEPTH = 32  # levels of nesting a journaled value keeps; deeper ones are cut
TOO_DEEP = "…(nested too deeply)"


def jsonable(value: Any, depth: int = MAX_DEPTH) -> Any:
    """`value` as JSON can hold it and any reader can decode it: mappings with text keys,
    lists, text without lone surrogates, finite numbers, at most MAX_DEPTH levels deep.
    What does not fit is shown as text (`nan`, `<integer of 20000 bits>`, TOO_DEEP)."""
    kind = type(value)  # the usual types first, by identity: isinstance(x, Mapping) is a Python-level call
    if kind is str:
        return _text(value)
    if kind is int:
        return value if value.bit_length() < 10_000 else f"<integer of {value.bit_length()} bits>"
    if kind is dict and depth > 0:
        return {_text(str(k)): jsonable(v, depth - 1) for k, v in value.items()}
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
        if not event.journaled:
            if isinstance(event, StepOutput):
                self._log(event)
            return
        self._append(encode(event, stamp))
        if isinstance(event, StepFinished):
            if self._logs:  # most steps print nothing: no log was opened
                self._close_logs(event.step)
        elif isinstance(event, RunFinished):
            self._finished = True

    def barrier(self) -> None:
        """Make everything written so far durable (fsync) before an external effect.

        Once the disk is full, the first barrier raises JournalError: the run must stop
        before it does anything more. Later ones do not, so rollbacks can still run and
        be recorded in the space of the reserve."""
        if self._dirty and self.fsync:  # _sync() without its call (a barrier a step)
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise JournalError(f"cannot sync the journal: {exc.strerror or exc}") from exc
        self._dirty = False
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
        # The whole line at once, as nearly always, without a call; anything else goes to
        # _rewrite, which cuts back to the last whole event first.
        try:
            written = os.write(self._fd, line)
        except OSError as exc:
            self._rewrite(line, exc)
            return
        if written != len(line):
            self._rewrite(line, OSError(errno.ENOSPC, "short write"))
            return
        self._size += written
        self._dirty = True

    def _rewrite(self, line: bytes, exc: OSError) -> None:
        """A write failed or was cut short: never leave half a line; on a full disk, write
        it again in the space of the reserve."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError as cut:
            exc = cut
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
        if not self._logs:  # most steps print nothing: no comprehension (a call) to run
            return []
        return [f"logs/{log_name(*k)}" for k in self._logs if k[0] == step]


def _write_fully(fd: int, data: bytes) -> None:
    """os.write may write less than asked (a signal, a nearly full disk): finish it."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def new_run_id(runbook_id: str, now: float | None = None) -> str:
    """`20261122T063012123Z-disk-full-3fa2`: milliseconds, so runs started in the same
    second still sort in the order they started."""
    t = now or time.time()
    if 0 <= t < YEAR_10000:  # iso()'s text without its separators, made without datetime
        stamp = iso(t).translate(_SEPARATORS)
    else:
        from datetime import datetime, timezone

        moment = datetime.fromtimestamp(t, tz=timezone.utc)
        stamp = moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"
    return f"{stamp}-{runbook_id}-{os.urandom(2).hex()}"


_SEPARATORS = str.maketrans("", "", "-:.")


class MemoryJournal:
    """The journal's records kept in memory (unattended tests and trials): the same
    dicts the JSONL file would hold, without the I/O."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def on_event(self, event: Event, stamp: Stamp) -> None:
        if event.journaled:
            self.records.append(event.stamped(stamp.seq, stamp.t, stamp.elapsed))
