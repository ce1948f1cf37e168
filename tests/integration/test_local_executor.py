"""engine.executors.local with real shells: output streaming and tails, stdin, environment,
exit codes, timeouts and cancellation of whole process groups."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from livekit import live_processes_with

from engine.executors.base import Cancel, Invocation, Result, Tail
from engine.executors.local import LocalExecutor

pytestmark = pytest.mark.integration


class Chunks:
    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes]] = []
        self.groups: list[int] = []

    def output(self, stream: str, data: bytes, host: str | None) -> None:
        self.seen.append((stream, data))

    def process_started(self, pgid: int, host: str | None) -> None:
        self.groups.append(pgid)

    def text(self, stream: str) -> str:
        return b"".join(d for s, d in self.seen if s == stream).decode()


def run(command: str, **fields: Any) -> tuple[Result, Chunks]:
    sink = Chunks()
    result = LocalExecutor().run(Invocation("s", "run", command, **fields), sink, Cancel())
    return result, sink


def test_stdout_and_stderr_are_streamed_and_kept() -> None:
    result, sink = run("echo out; echo err >&2; echo more")
    assert result.ok and result.exit_code == 0
    assert result.stdout == "out\nmore\n" and result.stderr == "err\n"
    assert sink.text("stdout") == "out\nmore\n" and sink.text("stderr") == "err\n"


def test_exit_codes_decide_success_and_127_is_command_not_found() -> None:
    result, _ = run("exit 3", exit_codes=(0, 3))
    assert result.ok and result.exit_code == 3
    result, _ = run("exit 3")
    assert not result.ok and result.error == "exit code 3"
    result, _ = run("no-such-command-here")
    assert result.error == "command not found" and result.exit_code == 127


def test_a_shell_killed_by_a_signal_reports_128_plus_the_signal() -> None:
    result, _ = run("kill -9 $$")
    assert result.exit_code == 137 and not result.ok


def test_stdin_larger_than_a_pipe_is_fed_whole() -> None:
    data = "x" * 300_000 + "\n"
    result, _ = run("wc -c", stdin=data)
    assert result.stdout.strip() == str(len(data))


def test_a_command_that_ignores_stdin_does_not_hang() -> None:
    result, _ = run("true", stdin="y" * 1_000_000, timeout=10)
    assert result.ok


def test_without_stdin_a_command_reads_end_of_file() -> None:
    result, _ = run("cat; echo done", timeout=10)
    assert result.stdout == "done\n"


def test_the_step_environment_is_added_to_the_engines() -> None:
    result, _ = run('echo "$GREETING $HOME"', env={"GREETING": "hi"})
    assert result.stdout.startswith("hi /")


def test_the_engines_environment_is_encoded_once_and_a_step_overrides_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """posix_spawn encoded every name and value of the engine's environment at every
    spawn (a sixth of its work): encoded once, and a step's own still win, bytes that are
    not UTF-8 (held as surrogate escapes) arriving as they were."""
    import os

    from engine.executors import local

    encoded: list[str] = []
    real = os.fsencode
    monkeypatch.setattr(local.os, "fsencode", lambda text: encoded.append(text) or real(text))
    engine_env = {"PATH": os.environ["PATH"], "GREETING": "hello", "RAW": "caf\udce9"}
    executor = LocalExecutor(env=engine_env)
    assert sorted(encoded) == sorted([*engine_env, *engine_env.values()])
    for word in ("hi", "bye"):
        encoded.clear()
        sink = Chunks()
        executor.run(Invocation("s", "run", 'printf "%s %s" "$GREETING" "$RAW"', env={"GREETING": word}), sink,
                     Cancel())
        assert b"".join(d for _, d in sink.seen) == f"{word} caf".encode() + b"\xe9"
        assert sorted(encoded) == ["GREETING", word]


def test_an_environment_value_posix_spawn_cannot_take_fails_the_step_clearly() -> None:
    result, _ = run("true", env={"BAD": "a\udc00b"})  # a lone surrogate no file name encoding holds
    assert not result.ok and result.error is not None and result.error.startswith("cannot start the command: ")


def test_only_a_bounded_tail_is_kept_in_memory() -> None:
    result, sink = run("head -c 3000000 /dev/zero | tr '\\0' a; echo; echo last")
    assert result.truncated
    assert len(result.stdout) <= 1024 * 1024 and result.stdout.endswith("a\nlast\n")
    assert len(sink.text("stdout")) == 3_000_000 + len("\nlast\n")  # the sink saw everything


def test_a_timeout_kills_the_command_and_its_background_children(marker: str) -> None:
    started = time.monotonic()
    result, _ = run(f"sleep {marker} & (sleep {marker} &); echo up; sleep {marker}", timeout=0.5)
    assert time.monotonic() - started < 15
    assert result.timed_out and result.error == "timed out after 500ms"
    assert result.stdout == "up\n"
    assert live_processes_with(marker) == []


def test_a_command_ignoring_sigterm_is_killed_after_the_grace_period(marker: str) -> None:
    started = time.monotonic()
    result, _ = run(f"trap '' TERM; sleep {marker}", timeout=0.3)
    assert result.timed_out
    # 0.3 s, then the 2 s grace, then SIGKILL: seconds. The `sleep` would last a thousand; the
    # bound only tells those apart (10 s was exceeded once under a load average of 30).
    assert time.monotonic() - started < 60
    assert live_processes_with(marker) == []


def test_cancel_stops_a_running_command_at_once(marker: str) -> None:
    cancel = Cancel()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    started = time.monotonic()
    result = LocalExecutor().run(Invocation("s", "run", f"sleep {marker}"), Chunks(), cancel)
    timer.join()
    assert result.cancelled and result.error == "interrupted" and not result.ok
    assert time.monotonic() - started < 15
    assert live_processes_with(marker) == []


def test_a_background_child_holding_the_pipe_does_not_hold_the_step(marker: str) -> None:
    """The shell exited: the step is over even if a daemon it started keeps stdout open."""
    started = time.monotonic()
    result, _ = run(f"sleep {marker} & echo started", timeout=30)
    assert result.ok and result.stdout == "started\n"
    assert time.monotonic() - started < 15


def test_a_tail_keeps_the_last_bytes_and_says_it_dropped_some() -> None:
    tail = Tail(limit=10)
    for _ in range(5):
        tail.add(b"0123456789")
    assert tail.text() == "0123456789" and tail.dropped


def test_a_command_that_closes_its_output_still_times_out(marker: str) -> None:
    started = time.monotonic()
    result, _ = run(f"exec >/dev/null 2>&1; sleep {marker}", timeout=0.5)
    assert result.timed_out and time.monotonic() - started < 15
    assert live_processes_with(marker) == []


def test_a_command_that_closes_its_output_still_reports_its_exit_code() -> None:
    result, _ = run("echo before; exec >&- 2>&-; sleep 0.2; exit 4", timeout=10)
    assert result.exit_code == 4 and result.stdout == "before\n"


def _ignored(status: str) -> int:
    """The mask of ignored signals in a /proc/PID/status text."""
    [line] = [ln for ln in status.splitlines() if ln.startswith("SigIgn:")]
    return int(line.split()[1], 16)


@pytest.mark.parametrize("fields", [
    {"command": "grep SigIgn /proc/self/status"},  # a plain command: started without a shell
    {"command": "grep SigIgn /proc/$$/status"},  # the shell itself
    {"command": "grep SigIgn /proc/self/status", "argv": ("grep", "SigIgn", "/proc/self/status")},
], ids=["direct", "shell", "argv"])
def test_a_command_gets_sigpipe_and_sigxfsz_at_their_default_as_from_a_shell(fields: dict[str, Any]) -> None:
    """Python ignores them; a command must not inherit that (subprocess restores them too)."""
    import signal

    command = fields.pop("command")
    result, _ = run(command, **fields)
    assert result.ok, result.error
    mask = _ignored(result.stdout)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        assert not mask & (1 << (sig - 1)), f"{signal.Signals(sig).name} is ignored in the command"


def test_a_pipeline_whose_reader_stops_early_ends_quietly() -> None:
    """`yes | head -1`: the writer dies of SIGPIPE, as in a terminal, with no "Broken pipe"
    on stderr (under pipefail the pipeline's status is then 141, as in a terminal)."""
    result, _ = run("yes | head -1")
    assert (result.ok, result.stdout, result.stderr) == (True, "y\n", "")
    result, _ = run("bash -o pipefail -c 'yes | head -1'")
    assert (result.exit_code, result.stdout, result.stderr) == (141, "y\n", "")


def test_a_command_that_prints_nothing_costs_no_read_and_output_still_arrives_whole(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A pipe that polls as hung up and holds nothing is at its end: no read() asks it
    (two syscalls of every silent step); a pipe with output is read to its end."""
    from engine.executors import local

    reads: list[int] = []
    real = local.os.read

    def counted(fd: int, size: int) -> bytes:
        reads.append(fd)
        return real(fd, size)

    monkeypatch.setattr(local.os, "read", counted)
    result, _ = run("true")
    assert result.ok and result.stdout == result.stderr == "" and reads == []
    result, sink = run("printf 'a%.0s' $(seq 100000); echo; printf end >&2")
    assert result.stdout == "a" * 100000 + "\n" and sink.text("stdout") == result.stdout
    assert result.stderr == "end" and len(reads) >= 2


def test_a_stream_keeps_a_tail_only_once_it_has_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """Most commands print little: a stream without output makes no Tail (two objects
    and their text() at every step), and the result is the same."""
    from engine.executors import local

    made: list[int] = []

    class Counted(Tail):
        def __init__(self) -> None:
            made.append(1)
            super().__init__()

    monkeypatch.setattr(local, "Tail", Counted)
    result, _ = run("true")
    assert made == [] and (result.stdout, result.stderr, result.truncated) == ("", "", False)
    result, _ = run("echo out")
    assert made == [1] and (result.stdout, result.stderr, result.truncated) == ("out\n", "", False)


def test_a_command_s_pipes_are_closed_without_a_with_statement_s_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """`with proc:` entered _Process.__enter__ and __exit__ from C at every command; its
    pipes and pidfd are still all closed when the command is done."""
    import os

    from support import python_calls

    from engine.executors import local

    executor, sink, cancel = LocalExecutor(), Chunks(), Cancel()
    cancel.fileno()  # its own pipe, made at first use, is not the command's
    opened: list[int] = []
    real_pipe, real_pidfd = os.pipe, local._pidfd
    monkeypatch.setattr(local.os, "pipe", lambda: (fds := real_pipe(), opened.extend(fds))[0])
    monkeypatch.setattr(local, "_pidfd", lambda pid: (fd := real_pidfd(pid), opened.append(fd) if fd else None)[0])
    seen: list[Result] = []
    entered = python_calls(lambda: seen.append(executor.run(Invocation("s", "run", "echo hi"), sink, cancel)))
    monkeypatch.undo()
    result = seen[0]
    assert result.ok and result.stdout == "hi\n" and sink.text("stdout") == "hi\n"
    assert not any(name.endswith(("__enter__", "__exit__")) for name in entered if name.startswith("local.py"))
    assert len(opened) == 5  # two pipes and the pidfd
    for fd in opened:
        with pytest.raises(OSError):
            os.fstat(fd)


def test_a_command_that_prints_nothing_is_reaped_once_and_its_empty_streams_cost_no_calls() -> None:
    """For `true`: the cancel's fd was asked for at every event, the shell reaped a second
    time (a call that found it reaped), each stream's text and whether a tail dropped
    anything asked of tails that were never made. Each once or not at all now."""
    from support import python_calls

    executor, sink, cancel = LocalExecutor(), Chunks(), Cancel()
    seen: list[Result] = []
    entered = python_calls(lambda: seen.append(executor.run(Invocation("s", "run", "true"), sink, cancel)))
    result = seen[0]
    assert result.ok and result.exit_code == 0 and (result.stdout, result.stderr, result.truncated) == ("", "", False)
    assert entered.count("base.py:fileno") == 1 and entered.count("local.py:_reap") == 1
    assert not [name for name in entered if name in ("local.py:text", "local.py:<genexpr>")]
    loud, _ = run("printf out; printf err >&2")
    assert (loud.stdout, loud.stderr, loud.truncated) == ("out", "err", False)


def test_a_command_s_exit_code_is_read_without_a_call_unless_a_signal_ended_it() -> None:
    """Most commands exit on their own: their code is read from the wait status without
    entering _exit_code(); one a signal ended still gets 128 + the signal, as before."""
    from support import python_calls

    executor, cancel = LocalExecutor(), Cancel()
    seen: list[Result] = []
    entered = python_calls(lambda: seen.append(executor.run(Invocation("s", "run", "exit 3"), Chunks(), cancel)))
    assert seen[0].exit_code == 3 and "local.py:_exit_code" not in entered
    killed, _ = run("kill -TERM $$")
    assert killed.exit_code == 128 + 15 and not killed.ok
