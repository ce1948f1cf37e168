"""engine.run.journal: one JSON event per line, output in log files beside it, fsync before
every external effect (and only then), reading back torn journals, and a full disk."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import python_calls

from engine.errors import JournalError
from engine.executors.timestamps import iso
from engine.run import journal as journal_module
from engine.run.events import (
    Event,
    PhaseStarted,
    RunFinished,
    RunStarted,
    Stamp,
    StepFinished,
    StepOutput,
    StepStarted,
    from_record,
)
from engine.run.journal import JOURNAL, first_record, last_record, read_journal
from engine.run.journal_writer import RESERVE, JournalWriter, encode, new_run_id

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def stamp(seq: int, elapsed: float = 0.0) -> Stamp:
    return Stamp(seq, T0 + elapsed, elapsed)


def started() -> RunStarted:
    return RunStarted("r1", "disk-full", "Disk full", "/rb/disk.yaml", "live", {"host": "db-1"})


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts os.fsync calls (they still happen)."""
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[JournalWriter]:
    with JournalWriter(tmp_path / "run") as journal:
        yield journal


# -- encoding and reading back -------------------------------------------------------------------------


def test_an_event_is_one_json_line_with_its_stamp() -> None:
    line = encode(started(), stamp(1, 0.1234))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    record = json.loads(line)
    assert record["seq"] == 1 and record["t"] == "2026-01-01T00:00:00.123Z" and record["elapsed"] == 0.123
    assert record["event"] == "run.started" and record["inputs"] == {"host": "db-1"}


def test_non_ascii_and_odd_values_are_encoded_readably() -> None:
    event = StepFinished("s", "triage", "run", "ok", stdout="héllo ✓\n", outputs={"hosts": ("a", "b")})
    record = json.loads(encode(event, stamp(2)))
    assert record["stdout"] == "héllo ✓\n" and record["outputs"] == {"hosts": ["a", "b"]}


def test_records_read_back_into_the_same_events(writer: JournalWriter) -> None:
    events = [started(), PhaseStarted("detection"), StepStarted("usage", "detection", "run", command="df"),
              StepFinished("usage", "detection", "run", "ok", 0.5, exit_code=0, stdout="96\n"),
              RunFinished("resolved", 1.5)]
    for seq, event in enumerate(events, 1):
        writer.on_event(event, stamp(seq))
    contents = read_journal(writer.run_dir)
    assert [from_record(r) for r in contents.records] == events
    assert [r["seq"] for r in contents.records] == [1, 2, 3, 4, 5]
    assert contents.complete and not contents.torn and contents.bad_lines == []
    assert contents.started is not None and contents.started["run_id"] == "r1"


def test_a_torn_last_line_is_reported_not_fatal(writer: JournalWriter) -> None:
    writer.on_event(started(), stamp(1))
    with open(writer.path, "ab") as handle:
        handle.write(b'{"seq": 2, "event": "phase.sta')
    contents = read_journal(writer.run_dir)
    assert contents.torn and len(contents.records) == 1 and not contents.complete


def test_a_garbled_line_in_the_middle_is_listed(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL
    path.write_bytes(b'{"seq": 1, "event": "run.started"}\nnot json\n{"seq": 3, "event": "run.finished"}\n')
    contents = read_journal(path)
    assert contents.bad_lines == [2] and not contents.torn and contents.complete


def test_lines_too_deep_or_with_too_many_digits_are_unreadable_lines(tmp_path: Path) -> None:
    """A line nested 100,000 deep or holding a 5,000-digit number (past Python's limit) is
    one unreadable line, as garbage is, never a RecursionError or ValueError to the user."""
    path = tmp_path / JOURNAL
    path.write_bytes(b'{"seq": 1, "event": "run.started"}\n' + b"[" * 100_000 + b"]" * 100_000 + b"\n"
                     + b'{"seq": ' + b"7" * 5000 + b"}\n" + b'{"seq": 4, "event": "run.finished"}\n')
    contents = read_journal(path)
    assert contents.bad_lines == [2, 3] and [r["seq"] for r in contents.records] == [1, 4]
    assert first_record(path) is not None and last_record(path) == {"seq": 4, "event": "run.finished"}


def test_a_line_past_the_limit_is_one_unreadable_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A line longer than MAX_LINE (16 MiB; 64 bytes here) is read in pieces to its end and
    counts as one unreadable line: a journal with no newline for gigabytes is never held whole."""
    monkeypatch.setattr(journal_module, "MAX_LINE", 64)
    path = tmp_path / JOURNAL
    path.write_bytes(b'{"seq": 1, "event": "run.started"}\n{"seq": 2, "x": "' + b"y" * 5000 + b'"}\n'
                     b'{"seq": 3, "event": "run.finished"}\n')
    contents = read_journal(path)
    assert contents.bad_lines == [2] and [r["seq"] for r in contents.records] == [1, 3] and not contents.torn


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_a_journal_that_is_a_device_or_a_fifo_is_refused(tmp_path: Path, special: str) -> None:
    """Reading /dev/zero would never end and a FIFO would wait for a writer: each is a
    journal error naming what it is, at once."""
    path = Path(special)
    if special == "fifo":
        path = tmp_path / JOURNAL
        os.mkfifo(path)
    with pytest.raises(JournalError, match=r"is not a journal: it is (a character device|a FIFO)"):
        read_journal(path)
    assert first_record(path) is None and last_record(path) is None


def test_first_and_last_record_read_only_the_ends(writer: JournalWriter) -> None:
    writer.on_event(started(), stamp(1))
    writer.on_event(RunFinished("failed", 2.0), stamp(2))
    with open(writer.path, "ab") as handle:
        handle.write(b'{"torn')
    first, last = first_record(writer.path), last_record(writer.path)
    assert first is not None and first["event"] == "run.started"
    assert last is not None and last["event"] == "run.finished"
    assert last_record(writer.run_dir / "missing") is None


def test_run_ids_sort_by_time_and_name_the_runbook() -> None:
    early, late = new_run_id("disk-full", T0), new_run_id("disk-full", T0 + 3600)
    assert early.startswith("20260101T000000000Z-disk-full-") and early < late
    assert iso(T0 + 0.5) == "2026-01-01T00:00:00.500Z"


def test_stamps_cut_to_the_millisecond_never_round_up() -> None:
    """Lines sort as text: a stamp never shows a later millisecond (or second) than its time."""
    assert iso(T0 + 0.9996) == "2026-01-01T00:00:00.999Z"
    assert iso(T0 + 59.0004) == "2026-01-01T00:00:59.000Z"
    assert iso(0) == "1970-01-01T00:00:00.000Z"


def _iso_by_datetime(t: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z"


def test_stamps_within_a_second_already_written_build_no_datetime(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run stamps several events a second: the second's text is made once (a datetime
    per stamp was a twentieth of a step's own work)."""
    from engine.executors import timestamps

    assert iso(T0 + 7.25) == "2026-01-01T00:00:07.250Z"
    monkeypatch.setattr(timestamps, "datetime", None)  # any use of it now fails
    assert iso(T0 + 7.5) == "2026-01-01T00:00:07.500Z"
    assert iso(T0 + 7.0004) == "2026-01-01T00:00:07.000Z"



def test_stamps_within_a_second_already_written_split_no_float(monkeypatch: pytest.MonkeyPatch) -> None:
    """math.modf split each stamp into a new tuple: within the second written last, the
    fraction is t less that second (exact there), and the text is the same."""
    from engine.executors import timestamps

    assert iso(T0 + 9.25) == "2026-01-01T00:00:09.250Z"
    monkeypatch.setattr(timestamps, "math", None)  # any use of it now fails
    assert [iso(T0 + 9 + f) for f in (0.0, 0.0004, 0.9994, 0.9999994)] == \
        ["2026-01-01T00:00:09.000Z", "2026-01-01T00:00:09.000Z", "2026-01-01T00:00:09.999Z",
         "2026-01-01T00:00:09.999Z"]
    monkeypatch.undo()
    assert iso(T0 + 9.9999996) == "2026-01-01T00:00:10.000Z"  # carried into the next second


def test_the_stamps_module_makes_its_millisecond_endings_without_python_code_for_each() -> None:
    """The table of the 1,000 ends of a stamp (`000Z` ... `999Z`) is made at every start
    of the command: by a generator, 3.1M instructions of a one-step run's 279M."""
    from engine.executors import timestamps

    code = compile(Path(timestamps.__file__).read_text(encoding="utf-8"), timestamps.__file__, "exec")
    made: dict[str, Any] = {"__name__": "stamps_copy"}
    entered = python_calls(lambda: exec(code, made))
    assert [name for name in entered if name.startswith("timestamps.py:")] == ["timestamps.py:<module>"]
    assert made["_MILLISECONDS"] == tuple(f"{ms:03d}Z" for ms in range(1000))

@settings(max_examples=400, deadline=None)
@given(second=st.integers(min_value=0, max_value=253_402_300_700), within=st.floats(min_value=0, max_value=1,
       exclude_max=True), before=st.floats(min_value=0, max_value=1, exclude_max=True))
def test_a_stamp_is_the_text_datetime_gives_whatever_came_before(second: int, within: float, before: float) -> None:
    """The same text as a datetime makes, rounding and carrying into the next second alike,
    whether the second was written just before or not."""
    for t in (second + before, second + within, second + 1 + within, float(second) + 0.9999995):
        assert iso(t) == _iso_by_datetime(t), t



@settings(max_examples=300, deadline=None)
@given(t=st.one_of(st.floats(min_value=-1e10, max_value=253_402_300_798.9, allow_nan=False),
                   st.integers(min_value=1, max_value=253_402_300_798).map(float)))
def test_a_run_id_has_the_time_datetime_writes(t: float) -> None:
    """Written from iso()'s text (no datetime imported) as it was by a datetime: within a
    second, at its carry into the next and before 1970 alike."""
    from datetime import datetime, timezone

    for when in (t, t - t % 1 + 0.9999995):
        if when:  # 0 is `now or time.time()`: no time given
            moment = datetime.fromtimestamp(when, tz=timezone.utc)
            stamp = moment.strftime("%Y%m%dT%H%M%S") + f"{moment.microsecond // 1000:03d}Z"
            assert new_run_id("disk-full", when).startswith(stamp + "-disk-full-"), when

# -- output goes to log files --------------------------------------------------------------------------


def test_a_step_that_printed_nothing_has_its_log_files_listed_without_a_comprehension(
        writer: JournalWriter) -> None:
    """Each step.finished lists the step's log files: with none open (most steps print
    nothing) the answer is [] without running a comprehension, a call a step."""
    assert python_calls(lambda: writer.logs_of("quiet"))[1:] == ["journal_writer.py:logs_of"]
    assert writer.logs_of("quiet") == []
    writer.on_event(StepOutput("loud", "stdout", "line\n"), stamp(0))
    assert (writer.logs_of("quiet"), writer.logs_of("loud")) == ([], ["logs/loud.stdout.log"])


def test_output_goes_to_log_files_not_to_journal_lines(writer: JournalWriter) -> None:
    writer.on_event(StepOutput("usage", "stdout", "line 1\n"), stamp(0))
    writer.on_event(StepOutput("usage", "stderr", "oops\n"), stamp(0))
    writer.on_event(StepOutput("usage", "stdout", "line 2\n", host="db-1"), stamp(0))
    assert writer.logs_of("usage") == ["logs/usage.stdout.log", "logs/usage.stderr.log",
                                       "logs/usage@db-1.stdout.log"]
    writer.on_event(StepFinished("usage", "detection", "run", "ok"), stamp(1))
    logs = writer.run_dir / "logs"
    assert (logs / "usage.stdout.log").read_text() == "line 1\n"
    assert (logs / "usage.stderr.log").read_text() == "oops\n"
    assert (logs / "usage@db-1.stdout.log").read_text() == "line 2\n"
    assert [r["event"] for r in read_journal(writer.run_dir).records] == ["step.finished"]


def test_journal_and_logs_are_private_to_the_user(writer: JournalWriter) -> None:
    writer.on_event(StepOutput("s", "stdout", "x"), stamp(0))
    assert writer.path.stat().st_mode & 0o077 == 0
    assert (writer.run_dir / "logs" / "s.stdout.log").stat().st_mode & 0o077 == 0


# -- fsync before effects ------------------------------------------------------------------------------


def test_a_barrier_syncs_what_was_written_without_a_call_past_its_own(writer: JournalWriter, fsyncs: list[int],
                                                                     ) -> None:
    """The barrier before each step's command fsyncs the journal itself, not through
    _sync() (a call a step); it still syncs once per write, and not when nothing is new."""
    writer.on_event(started(), stamp(1))
    entered = python_calls(writer.barrier)
    assert "journal_writer.py:_sync" not in entered and len(fsyncs) == 1
    writer.barrier()
    assert len(fsyncs) == 1


def test_events_between_two_effects_share_one_fsync(writer: JournalWriter, fsyncs: list[int]) -> None:
    for seq in range(1, 4):
        writer.on_event(PhaseStarted(f"p{seq}"), stamp(seq))
    assert fsyncs == []  # written, not yet synced
    writer.barrier()
    assert len(fsyncs) == 1
    writer.barrier()
    assert len(fsyncs) == 1  # nothing new: no second fsync
    writer.on_event(PhaseStarted("p4"), stamp(4))
    writer.barrier()
    assert len(fsyncs) == 2


def test_every_event_is_written_before_the_barrier(writer: JournalWriter, fsyncs: list[int]) -> None:
    writer.on_event(started(), stamp(1))
    assert read_journal(writer.run_dir).started is not None  # visible to a reader at once


def test_closing_syncs_what_is_left_and_removes_the_reserve(tmp_path: Path, fsyncs: list[int]) -> None:
    journal = JournalWriter(tmp_path / "run")
    assert (tmp_path / "run" / RESERVE).stat().st_size > 0
    journal.on_event(started(), stamp(1))
    journal.close()
    assert len(fsyncs) == 1
    assert not (tmp_path / "run" / RESERVE).exists()


def test_a_journal_closed_before_any_event_leaves_nothing_behind(tmp_path: Path) -> None:
    """A run that never started (its file could not be loaded) leaves no empty journal."""
    JournalWriter(tmp_path / "run").close()
    assert not (tmp_path / "run").exists()


def test_a_journal_that_cannot_be_created_is_a_journal_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(JournalError, match="cannot open the journal"):
        JournalWriter(tmp_path / "file" / "run")


def test_reopening_appends_to_the_same_journal(tmp_path: Path) -> None:
    with JournalWriter(tmp_path / "run") as journal:
        journal.on_event(started(), stamp(1))
    with JournalWriter(tmp_path / "run") as journal:
        journal.on_event(RunFinished("resolved", 1.0), stamp(2))
    assert [r["seq"] for r in read_journal(tmp_path / "run").records] == [1, 2]


# -- a full disk ---------------------------------------------------------------------------------------


class FullDisk:
    """os.write that fails with ENOSPC (or writes short) for chosen file descriptors while
    the reserve file exists: deleting the reserve is what frees space on a real disk."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, journal: JournalWriter) -> None:
        self.journal = journal
        self.fds: set[int] = set()
        self.short = False
        self.real = os.write
        monkeypatch.setattr(os, "write", self.write)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        if fd in self.fds and (self.journal.run_dir / RESERVE).exists():
            if self.short:
                return self.real(fd, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.real(fd, data)


def test_a_full_disk_releases_the_reserve_and_the_event_is_still_written(
        writer: JournalWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    writer.on_event(started(), stamp(1))
    disk = FullDisk(monkeypatch, writer)
    disk.fds.add(writer._fd)
    writer.on_event(PhaseStarted("detection"), stamp(2))
    assert not (writer.run_dir / RESERVE).exists()
    assert [r["seq"] for r in read_journal(writer.run_dir).records] == [1, 2]
    assert writer.disk_full


def test_a_short_write_never_leaves_half_a_line(writer: JournalWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    writer.on_event(started(), stamp(1))
    disk = FullDisk(monkeypatch, writer)
    disk.fds.add(writer._fd)
    disk.short = True
    writer.on_event(PhaseStarted("detection"), stamp(2))
    contents = read_journal(writer.run_dir)
    assert [r["seq"] for r in contents.records] == [1, 2] and not contents.torn and contents.bad_lines == []


def test_a_line_written_whole_costs_no_call_past_its_append(writer: JournalWriter) -> None:
    """Each of a step's three lines went on_event -> _append -> _write_all: a whole line
    (nearly always) is now written by _append itself; a failed or short write still cuts
    back to the last whole event (the tests above)."""
    writer.on_event(started(), stamp(1))
    entered = python_calls(lambda: writer.on_event(PhaseStarted("detection"), stamp(2)))
    assert "journal_writer.py:_append" in entered and "journal_writer.py:_write_all" not in entered
    assert [r["seq"] for r in read_journal(writer.run_dir).records] == [1, 2]


def test_after_a_full_disk_the_next_barrier_stops_the_run_once(
        writer: JournalWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = FullDisk(monkeypatch, writer)
    disk.fds.add(writer._fd)
    writer.on_event(started(), stamp(1))
    with pytest.raises(JournalError, match=r"is full .*stopped before the next action"):
        writer.barrier()
    writer.barrier()  # once is enough: rollbacks must still be able to run and be recorded
    writer.on_event(RunFinished("failed", 1.0), stamp(2))
    assert read_journal(writer.run_dir).complete


def test_a_step_log_filling_the_disk_stops_logging_and_names_the_log(
        writer: JournalWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    writer.on_event(StepOutput("flood", "stdout", "first\n"), stamp(0))
    disk = FullDisk(monkeypatch, writer)
    disk.fds.update(writer._logs.values())
    writer.on_event(StepOutput("flood", "stdout", "second\n"), stamp(0))
    writer.on_event(StepOutput("flood", "stdout", "third\n"), stamp(0))
    assert (writer.run_dir / RESERVE).exists()  # the reserve is kept for the journal
    assert (writer.run_dir / "logs" / "flood.stdout.log").read_text() == "first\n"
    with pytest.raises(JournalError, match=r"writing logs/flood\.stdout\.log"):
        writer.barrier()


def test_no_stop_is_raised_once_the_run_has_finished(writer: JournalWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = FullDisk(monkeypatch, writer)
    disk.fds.add(writer._fd)
    writer.on_event(RunFinished("resolved", 1.0), stamp(1))
    writer.barrier()  # the run is over: nothing to stop
    assert read_journal(writer.run_dir).complete


def test_when_even_the_reserve_is_used_up_writing_fails_with_a_journal_error(
        writer: JournalWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    def always_full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", always_full)
    with pytest.raises(JournalError, match="the journal disk is full"):
        writer.on_event(started(), stamp(1))


def test_other_write_errors_are_journal_errors(writer: JournalWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(fd: int, data: bytes) -> int:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "write", broken)
    with pytest.raises(JournalError, match="cannot write the journal: Input/output error"):
        writer.on_event(started(), stamp(1))
    assert (writer.run_dir / RESERVE).exists()


def test_output_of_an_included_runbooks_step_gets_its_own_log(writer: JournalWriter) -> None:
    writer.on_event(StepOutput("sub/greet", "stdout", "hello\n"), stamp(0))
    assert writer.logs_of("sub/greet") == ["logs/sub/greet.stdout.log"]
    assert (writer.run_dir / "logs" / "sub" / "greet.stdout.log").read_text() == "hello\n"
    assert writer.log_errors == []


def test_a_log_that_cannot_be_written_is_reported_once_and_the_journal_goes_on(
        writer: JournalWriter, monkeypatch: pytest.MonkeyPatch) -> None:
    writer.on_event(StepOutput("s", "stdout", "first\n"), stamp(0))
    real = os.write
    log_fd = writer._logs[("s", "stdout", None)]

    def failing(fd: int, data: bytes) -> int:
        if fd == log_fd:
            raise OSError(errno.EIO, "Input/output error")
        return real(fd, data)

    monkeypatch.setattr(os, "write", failing)
    for _ in range(3):
        writer.on_event(StepOutput("s", "stdout", "more\n"), stamp(0))
    writer.on_event(StepFinished("s", "triage", "run", "ok"), stamp(1))
    assert writer.log_errors == ["logs/s.stdout.log: Input/output error"]
    assert not writer.disk_full
    writer.barrier()
    assert read_journal(writer.run_dir).records[-1]["event"] == "step.finished"


# -- values JSON cannot hold as they are --------------------------------------------------------------


def _deep(levels: int) -> list[object]:
    value: list[object] = []
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("value", [
    _deep(5000),                      # deeper than the interpreter's stack
    float("nan"), float("inf"),       # not JSON (Python would write NaN, which readers refuse)
    "lone \udc00 surrogate",          # from `"\udc00"` in parsed JSON: not encodable as UTF-8
    {("a", 1): "tuple key"},          # keys that are not text
    10 ** 20000,                      # more digits than int -> str allows
    {1, 2},
], ids=["deep", "nan", "inf", "surrogate", "tuple-key", "huge-int", "set"])
def test_encode_never_fails_and_always_writes_a_decodable_line(value: object) -> None:
    line = encode(StepFinished("s", "triage", "run", "ok", outputs={"v": value}), stamp(3))
    record = json.loads(line.decode("utf-8"))  # strict UTF-8, standard JSON
    assert record["seq"] == 3 and record["step"] == "s" and "v" in record["outputs"]


def test_jsonable_reads_a_plain_dict_without_an_abc_check() -> None:
    """A step's outputs (a dict of text and numbers) are made journalable without
    ABCMeta.__instancecheck__ (a Python-level call at every step); other mappings and
    keys that are not text come out as before."""
    import sys
    from types import MappingProxyType

    from engine.run.journal_writer import jsonable

    entered: list[str] = []
    sys.setprofile(lambda frame, event, arg: entered.append(frame.f_code.co_name) if event == "call" else None)
    try:
        kept = jsonable({"value": 5, "name": "db-1", "nested": {"ok": True, "n": 1.5}})
    finally:
        sys.setprofile(None)
    assert kept == {"value": 5, "name": "db-1", "nested": {"ok": True, "n": 1.5}}
    assert "__instancecheck__" not in entered
    assert jsonable(MappingProxyType({1: True, None: [2]})) == {"1": True, "None": [2]}
    assert jsonable({("a", 1): {}, "x": 10 ** 20000})["('a', 1)"] == {}


def test_jsonable_cuts_deep_values_and_replaces_what_json_cannot_hold() -> None:
    from engine.run.journal_writer import MAX_DEPTH, TOO_DEEP, jsonable

    cut = jsonable(_deep(MAX_DEPTH + 10))
    depth = 0
    while isinstance(cut, list):
        cut, depth = cut[0], depth + 1
    assert cut == TOO_DEEP and depth == MAX_DEPTH
    assert jsonable({"x": "a\udc00b", "n": float("nan"), 2: (1,)}) == {"x": "a\ufffdb", "n": "nan", "2": [1]}
    assert jsonable(10 ** 20000).startswith("<integer of ")


def _circular() -> dict[str, object]:
    loop: dict[str, object] = {"a": 1}
    loop["self"] = loop
    return loop


@pytest.mark.parametrize("outputs", [
    {}, {"n": 1, "f": 0.5, "t": True, "none": None, "text": "héllo ✓\n\t\"q\" \\ \u2028"},
    {"hosts": ("a", "b"), "set": frozenset(), "nested": [{"x": [1, [2, {"y": "z"}]]}]},
    {"nan": float("nan")}, {"deep": _deep(5000)}, {"loop": _circular()}, {"bad": "a\udc00b"}, {("k", 1): "v"},
], ids=["empty", "scalars", "containers", "nan", "deep", "circular", "surrogate", "tuple-key"])
def test_a_line_is_the_bytes_json_dumps_gives_or_its_jsonable_fallback(outputs: dict[object, object]) -> None:
    """The encoder made once writes exactly what json.dumps with the journal's options
    writes, and what that refuses exactly as `jsonable` makes it."""
    from engine.run.journal_writer import _json_default, jsonable

    event = StepFinished("s", "triage", "run", "ok", 0.25, exit_code=0, stdout="out", outputs=outputs)
    record = {"seq": 7, "t": "2026-01-01T00:00:00.000Z", "elapsed": 0.0, "event": event.name, **event.record()}
    try:
        expected = (json.dumps(record, ensure_ascii=False, allow_nan=False, default=_json_default) + "\n").encode()
    except (ValueError, TypeError, RecursionError):
        expected = (json.dumps(jsonable(record), ensure_ascii=False) + "\n").encode()
    assert encode(event, stamp(7)) == expected


# -- line functions: the events a run writes many of -------------------------------------------


class _Text(str):
    pass


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=10 ** 4400, max_value=10 ** 4400 + 1)
    | st.floats() | st.text() | st.just("a\udc00b") | st.builds(_Text, st.text(max_size=3)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    | st.tuples(inner), max_leaves=6)


def _record_line(event: Event, at: Stamp) -> bytes:
    """The line as the record's path writes it: json.dumps with the journal's options, or
    what `jsonable` makes of what that refuses."""
    from engine.run.journal_writer import _json_default, jsonable

    record = {"seq": at.seq, "t": iso(at.t), "elapsed": round(at.elapsed, 3), "event": event.name, **event.record()}
    try:
        return (json.dumps(record, ensure_ascii=False, allow_nan=False, default=_json_default) + "\n").encode()
    except (ValueError, TypeError, RecursionError):
        return (json.dumps(jsonable(record), ensure_ascii=False) + "\n").encode()


@pytest.fixture
def compile_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.run import journal_writer

    monkeypatch.setattr(journal_writer, "COMPILE_AT", 1)
    monkeypatch.setattr(journal_writer, "_LINES", {})
    monkeypatch.setattr(journal_writer, "_WRITTEN", {})


@pytest.mark.usefixtures("compile_at_once")
@settings(max_examples=300, deadline=None)
@given(data=st.data(), elapsed=st.floats(min_value=0, max_value=1e6))
def test_a_line_function_writes_the_bytes_the_record_path_writes(data: st.DataObject, elapsed: float) -> None:
    """For every event class, whatever its fields hold: the same line, and where JSON
    cannot hold a value, the same fallback."""
    import dataclasses

    from engine.run.events import EVENT_TYPES

    cls = data.draw(st.sampled_from(sorted(EVENT_TYPES.values(), key=lambda c: c.name)))
    values = {f.name: data.draw(_VALUES, label=f.name) for f in dataclasses.fields(cls)}
    event = cls(**values)
    at = Stamp(data.draw(st.integers(min_value=0, max_value=10 ** 9)), T0 + elapsed, elapsed)
    assert encode(event, at) == _record_line(event, at)


@pytest.mark.usefixtures("compile_at_once")
def test_fields_that_may_be_null_are_written_alike_all_null_or_any_one_set() -> None:
    """A line function tests the fields that may be None next to each other at once (a
    step's block, index, case, outcome...): every class's line, with all of them null
    and with each one set in turn, is what the record's path writes."""
    import dataclasses

    from engine.run.events import EVENT_TYPES

    for cls in EVENT_TYPES.values():
        fields = dataclasses.fields(cls)
        base = {f.name: None if "None" in str(f.type) else _plain_value(str(f.type)) for f in fields}
        nullable = [f.name for f in fields if "None" in str(f.type)]
        for name in [None, *nullable]:
            event = cls(**{**base, **({name: "x\n\"y"} if name else {})})
            assert encode(event, stamp(3, 1.5)) == _record_line(event, stamp(3, 1.5)), (cls.name, name)


def _plain_value(kind: str) -> Any:
    """A value of a field's declared type (not None)."""
    for word, value in (("dict", {}), ("list", []), ("bool", False), ("float", 0.5), ("int", 7), ("str", "s")):
        if kind.startswith(word):
            return value
    return "s"


@pytest.mark.usefixtures("compile_at_once")
def test_a_plain_step_s_lines_test_its_null_fields_together() -> None:
    """A plain step's step.started and step.finished tested each null field apart (a
    walrus, a test and a branch each: 203 and 377 bytecodes in the line function, and
    _value's for the duration); its runs of null fields are tested at once now (142 and
    359, the duration written without a call to _value)."""
    import sys

    counted = [0]

    def trace(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_name not in ("line", "_value"):  # the fields' writing
            return None
        frame.f_trace_opcodes = True
        counted[0] += event == "opcode"
        return trace

    started = StepStarted("s1", "remediation", "run", "", "true")
    finished = StepFinished("s1", "remediation", "run", "ok", 0.5, 1, 0)
    counts = []
    for event in (started, finished):
        encode(event, stamp(1))
        counted[0] = 0
        sys.settrace(trace)
        try:
            line = encode(event, stamp(1))
        finally:
            sys.settrace(None)
        assert line == _record_line(event, stamp(1))
        counts.append(counted[0])
    assert counts[0] <= 160 and counts[1] <= 365, counts


@pytest.mark.usefixtures("compile_at_once")
def test_a_plain_step_s_lines_write_every_field_without_a_call_whatever_form_its_annotations_take() -> None:
    """A field declared `str`, `int`, `bool`, `Any`... is written by the f-string itself.
    Once events.py evaluated its annotations (types, not text), `str(f.type)` read
    `<class 'str'>` and every such field went through _value(): the same bytes, a call each. A
    finite float is written by float.__repr__, as _value writes it, without that call."""
    from engine.run.events import StepProcess

    events = [StepStarted("s1", "remediation", "run", "", "true"), StepProcess("s1", 4321),
              StepFinished("s1", "remediation", "run", "ok", 0.5, 1, 0)]
    for event in events:
        encode(event, stamp(1))
    entered = python_calls(lambda: [encode(event, stamp(2)) for event in events])
    assert "journal_writer.py:_value" not in entered
    assert [encode(event, stamp(2)) for event in events] == [_record_line(event, stamp(2)) for event in events]
    from engine.run._line_source import type_text

    assert [type_text(t) for t in (str, Any, dict[str, Any], int | None, "str | None")] == \
        ["str", "Any", "dict[str, Any]", "int | None", "str | None"]


@pytest.mark.usefixtures("compile_at_once")
@pytest.mark.parametrize("seconds", [0.0, 0.5, 1.25, 59.9996, 1234.0005, 2e12, -0.0004, float("inf")])
def test_a_line_s_elapsed_time_is_written_without_a_call_where_it_is_exact(seconds: float) -> None:
    """Each of a step's three lines formats its `elapsed` inline (_elapsed's exact case, a
    call a line saved); elsewhere (beyond 10**12 s, not finite) _elapsed writes it as before."""
    event = StepFinished("s1", "remediation", "run", "ok", 0.5, 1, 0)
    encode(event, stamp(1))
    at = Stamp(2, T0, seconds)
    entered = python_calls(lambda: encode(event, at))
    assert ("journal_writer.py:_elapsed" in entered) == (not abs(seconds) < 1e12)
    assert encode(event, at) == _record_line(event, at)


def test_a_line_functions_source_reads_each_declared_type_once_per_text() -> None:
    """Every run makes the line functions of the events it writes many of (a few kinds of
    field, many fields): a kind's outer types are worked out once, not by a regex a field."""
    from engine.run._line_source import line_source

    fields = [("a", "str"), ("b", "str | None"), ("c", "dict[str, Any] | None"), ("d", "list[str]"), ("e", "int")]
    first = line_source("x", fields)
    entered = python_calls(lambda: line_source("x", fields))
    assert [name for name in entered[1:] if not name.startswith("_line_source.py:")] == []  # after the lambda
    assert line_source("x", fields) == first and "v.__class__ is dict and not v" in first


def test_line_functions_are_made_only_for_the_events_a_run_writes_many_of(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A class's first COMPILE_AT - 1 lines go the record's path (a short run never pays
    for making a function); the later ones build no record dict."""
    from engine.run import journal_writer
    from engine.run.events import StepProcess

    monkeypatch.setattr(journal_writer, "_LINES", {})
    monkeypatch.setattr(journal_writer, "_WRITTEN", {})
    records = _records_made(monkeypatch, StepProcess("s", 1))
    lines = [encode(StepProcess(f"s{i}", 100 + i), stamp(i)) for i in range(journal_writer.COMPILE_AT + 20)]
    assert len(records) == journal_writer.COMPILE_AT - 1
    assert lines[-1] == b'{"seq": %d, "t": "2026-01-01T00:00:00.000Z", "elapsed": 0.0, "event": "step.process", ' \
        b'"step": "s83", "pgid": 183, "host": null}\n' % (journal_writer.COMPILE_AT + 19)


def _records_made(monkeypatch: pytest.MonkeyPatch, sample: Any) -> list[int]:
    """A 1 for each record() of the sample's event class from now on. The class's own
    record() is made at its first use, so it is used once before it is spied on."""
    cls, records = type(sample), []
    sample.record()
    real = cls.record

    def spy(self: Any) -> dict[str, object]:
        records.append(1)
        return real(self)

    spy.__qualname__ = real.__qualname__  # still the record made of the fields
    monkeypatch.setattr(cls, "record", spy)
    return records


def test_with_a_code_cache_a_line_function_is_used_from_a_class_first_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """The `runbook` command keeps the line functions' code across runs (engine/cli/
    _code_cache.py): making one costs a look-up, so even a short run's lines build no
    record dict, and the bytes are the record's."""
    from engine.cli._code_cache import CodeCache
    from engine.run import journal_writer
    from engine.run.events import StepFinished

    cache = CodeCache(None)
    monkeypatch.setattr(journal_writer, "code_cache", cache.code)
    monkeypatch.setattr(journal_writer, "_LINES", {})
    monkeypatch.setattr(journal_writer, "_WRITTEN", {})
    event = StepFinished("s1", "remediation", "run", "ok", duration=0.25, exit_code=0, outputs={"a": [1.5, None]})
    expected = _record_line(event, stamp(7, 1.0004))
    records = _records_made(monkeypatch, StepFinished("s", "p", "run", "ok"))
    assert encode(event, stamp(7, 1.0004)) == expected
    assert records == []
    assert any("def line(event" in source for (_, source, _) in cache.used)


@settings(max_examples=2000, deadline=None)
@given(seconds=st.floats() | st.floats(min_value=-2e3, max_value=2e3) | st.integers(-10 ** 20, 10 ** 20)
       | st.integers(0, 10 ** 7).map(lambda n: n / 2000))
def test_an_elapsed_time_is_written_as_the_encoder_writes_it_rounded_to_milliseconds(seconds: float) -> None:
    """`elapsed` is formatted once (to 3 decimals, without its trailing zeros) where that is exactly
    what json writes of round(seconds, 3) (halves included); elsewhere, and for what JSON
    cannot hold, the same text or the same refusal as the encoder's."""
    from engine.run.journal_writer import _elapsed

    try:
        expected = json.dumps(round(seconds, 3), allow_nan=False)
    except (ValueError, OverflowError):
        with pytest.raises((ValueError, OverflowError)):
            _elapsed(seconds)
        return
    assert _elapsed(seconds) == expected
