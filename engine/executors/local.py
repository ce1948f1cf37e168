"""Run shell commands on this machine.

`/bin/sh -c` in a new session (so the command and everything it starts share one
process group), spawned with posix_spawn (cheaper than fork+exec from Python); a
program given as an argv (`Invocation.argv`, e.g. kubectl) is started as it is.
Output is read with poll(): stdout and stderr stream to the sink as they come, only
a bounded tail stays in memory. A pidfd tells us the shell exited even when a
background child still holds the pipes. On timeout or cancel the whole group gets
SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import errno
import os
import select
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from engine.templates.patterns import deferred

from .base import DRAIN_AFTER_EXIT, KILL_GRACE, READ_CHUNK, Cancel, Invocation, OutputSink, Result, Tail

if TYPE_CHECKING:
    import signal
else:  # the C module signal.py wraps: importing signal.py makes enums of every signal and
    import _signal as signal  # handler (3.4M instructions, 1.5% of a one-step run), used nowhere here

SHELL = "/bin/sh"
_READABLE = select.POLLIN | select.POLLPRI | select.POLLERR
NO_PIDFD_POLL = 0.05  # without a pidfd (old kernels), how often to check whether the shell exited
# Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across exec: a
# command gets them back at their default, as from a shell (and as subprocess's
# restore_signals does), or `yes | head -1` says "Broken pipe" where a terminal says nothing.
RESTORED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ") if hasattr(signal, name))


def _base_env() -> dict[str, str]:
    return dict(os.environ)


class LocalExecutor:
    """Executes `run` steps that have no target."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = dict(env) if env is not None else _base_env()
        # posix_spawn encodes every name and value of the environment it is given: the
        # engine's own is encoded once here (a sixth of a spawn's work), a step's few at each.
        self._encoded = _encoded(self._env)

    def run(self, invocation: Invocation, sink: OutputSink, cancel: Cancel) -> Result:
        started = time.time()
        t0 = time.monotonic()
        try:
            proc = _Process.spawn(invocation, self._env_of(invocation))
        except OSError as exc:
            program = invocation.argv[0] if invocation.argv else SHELL
            return _failed(invocation, started, f"cannot start {program}: {exc.strerror or exc}")
        except ValueError as exc:  # a NUL byte in the command or the environment
            return _failed(invocation, started, f"cannot start the command: {exc}")
        sink.process_started(proc.pid, None)  # its own session: the group id is its pid
        try:  # not `with`: __enter__ and __exit__ entered from C, at every command
            outcome = proc.communicate(invocation, sink, cancel)
        finally:
            proc.close()
        duration = time.monotonic() - t0
        code = outcome.exit_code
        error = outcome.error
        if error is None and code == 127:
            error = "command not found"
        ok = error is None and code in invocation.exit_codes
        if error is None and not ok:
            error = f"exit code {code}"
        tails = outcome.tails  # a stream's, from its first output: most commands print little
        stdout = tails["stdout"].text() if "stdout" in tails else ""  # text() notes a cut
        stderr = tails["stderr"].text() if "stderr" in tails else ""
        # By position (command, host, stdout, stderr, exit_code, started_at, duration, ok,
        # error, timed_out, cancelled, truncated): keywords cost a step more to pass.
        return Result(invocation.command, None, stdout, stderr, code, started, duration, ok, error,
                      outcome.timed_out, outcome.cancelled, any(t.dropped for t in tails.values()) if tails else False)

    def _env_of(self, invocation: Invocation) -> Mapping[Any, Any]:
        own = _encoded(invocation.env) if self._encoded is not None and invocation.env else {}
        if self._encoded is None or own is None:
            return {**self._env, **invocation.env}
        return {**self._encoded, **own} if own else self._encoded


def _encoded(env: Mapping[str, str]) -> dict[bytes, bytes] | None:
    """The environment as posix_spawn encodes it (os.fsencode); None when a name or value
    cannot be (then posix_spawn, given the text, says why)."""
    try:
        return {os.fsencode(k): os.fsencode(v) for k, v in env.items()}
    except (UnicodeEncodeError, TypeError):
        return None


def _failed(inv: Invocation, started: float, error: str) -> Result:
    return Result(inv.command, None, "", "", None, started, 0.0, False, error)


class _Outcome:
    __slots__ = ("cancelled", "error", "exit_code", "tails", "timed_out")

    def __init__(self) -> None:
        self.tails: dict[str, Tail] = {}  # a stream's, from its first output (most steps print little)
        self.exit_code: int | None = None
        self.error: str | None = None
        self.timed_out = False
        self.cancelled = False

    def add(self, stream: str, data: bytes) -> None:
        tail = self.tails.get(stream)
        if tail is None:
            tail = self.tails[stream] = Tail()
        tail.add(data)


class _Process:
    """A spawned shell with its pipes; closes everything on exit."""

    def __init__(self, pid: int, fds: dict[int, str], stdin_fd: int | None, pidfd: int | None) -> None:
        self.pid, self.fds, self.stdin_fd, self.pidfd = pid, fds, stdin_fd, pidfd
        self.status: int | None = None

    @classmethod
    def spawn(cls, inv: Invocation, env: Mapping[Any, Any]) -> _Process:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r, in_w = os.pipe() if inv.stdin is not None else (None, None)
        # Every pipe end is close-on-exec (os.pipe): the command keeps only what is dup2'd
        # onto 0, 1 and 2, with no action (and no syscall) to close the others.
        actions: list[Any] = [(os.POSIX_SPAWN_DUP2, out_w, 1), (os.POSIX_SPAWN_DUP2, err_w, 2)]
        if in_r is not None:
            actions.append((os.POSIX_SPAWN_DUP2, in_r, 0))
        else:
            actions.append((os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0))
        try:
            pid = _spawn(inv, env, actions)
        except OSError:
            for fd in (out_r, out_w, err_r, err_w, in_r, in_w):
                if fd is not None:
                    os.close(fd)
            raise
        for fd in (out_w, err_w, in_r):
            if fd is not None:
                os.close(fd)
        return cls(pid, {out_r: "stdout", err_r: "stderr"}, in_w, _pidfd(pid))

    def close(self) -> None:
        """Close its pipes and pidfd; a shell still running (an error, Ctrl-C) is stopped."""
        for fd in [*self.fds, self.stdin_fd, self.pidfd]:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.fds = {}
        if self.status is None:
            self._kill_group()
            self._reap(block=True)

    def communicate(self, inv: Invocation, sink: OutputSink, cancel: Cancel) -> _Outcome:
        outcome = _Outcome()
        deadline = time.monotonic() + inv.timeout if inv.timeout else None
        pending = (inv.stdin or "").encode() if inv.stdin is not None else b""
        poller = select.poll()
        for fd in self.fds:
            poller.register(fd, select.POLLIN)
        if self.pidfd is not None:
            poller.register(self.pidfd, select.POLLIN)
        cancel_fd = cancel.fileno()  # once: each event polled is compared with it
        poller.register(cancel_fd, select.POLLIN)
        if self.stdin_fd is not None:
            os.set_blocking(self.stdin_fd, False)
            poller.register(self.stdin_fd, select.POLLOUT)
        exited_at: float | None = None
        # Until the shell has exited: a command may close its own output (`exec >file`)
        # and still run, and its timeout and Ctrl-C must still apply.
        while self.fds or exited_at is None:
            wait = _remaining(deadline, exited_at)
            if wait is not None and wait <= 0:
                if exited_at is not None:
                    break  # shell is gone; a background child keeps the pipe: stop reading
                outcome.timed_out = True
                outcome.error = f"timed out after {_fmt(inv.timeout)}"
                break
            if self.pidfd is None and exited_at is None:
                wait = NO_PIDFD_POLL if wait is None else min(wait, NO_PIDFD_POLL)  # look for the exit
            events = poller.poll(None if wait is None else wait * 1000)  # (a wait <= 0 ended the loop above)
            for fd, mask in events:
                if fd == cancel_fd:
                    outcome.cancelled = True
                    outcome.error = "interrupted"
                elif fd == self.pidfd:
                    poller.unregister(fd)
                    self._reap(block=True)
                    exited_at = time.monotonic()
                elif fd == self.stdin_fd:
                    pending = self._feed(poller, pending)
                else:
                    self._read(fd, mask, poller, outcome, sink)
            if outcome.cancelled:
                break
            if self.pidfd is None and exited_at is None and self._reap(block=False):
                exited_at = time.monotonic()
        if outcome.timed_out or outcome.cancelled:
            self._kill_group()
        if self.status is None:  # most commands: reaped when their pidfd said they exited
            self._reap(block=True)
        status = self.status  # reaped by now: most commands exit, not killed by a signal (no call)
        outcome.exit_code = os.waitstatus_to_exitcode(status) if status is not None and not os.WIFSIGNALED(status) \
            else _exit_code(status)
        return outcome

    def _feed(self, poller: select.poll, pending: bytes) -> bytes:
        assert self.stdin_fd is not None
        try:
            written = os.write(self.stdin_fd, pending[:READ_CHUNK]) if pending else 0
        except OSError as exc:
            if exc.errno == errno.EAGAIN:
                return pending
            written, pending = len(pending), b""  # EPIPE: the command stopped reading
        pending = pending[written:]
        if not pending:
            poller.unregister(self.stdin_fd)
            os.close(self.stdin_fd)
            self.stdin_fd = None
        return pending

    def _read(self, fd: int, mask: int, poller: select.poll, outcome: _Outcome, sink: OutputSink) -> None:
        # A pipe whose writers are gone and which holds nothing polls as POLLHUP alone: the
        # end of its output, without a read() to be told so (a command that prints nothing).
        data = os.read(fd, READ_CHUNK) if mask & _READABLE or not mask & select.POLLHUP else b""
        name = self.fds[fd]
        if not data:
            poller.unregister(fd)
            os.close(fd)
            del self.fds[fd]
            return
        outcome.add(name, data)
        sink.output(name, data, None)

    def _reap(self, *, block: bool) -> bool:
        if self.status is not None:
            return True
        try:
            pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            self.status = 0
            return True
        if pid == 0:
            return False
        self.status = status
        return True

    def _kill_group(self) -> None:
        stop_group(self.pid, lambda: self._reap(block=False))
        self._reap(block=True)


# A command made only of these characters has nothing for a shell to do: no quotes,
# variables, globs, redirections, pipes, operators, tildes or comments.
_PLAIN = deferred(r"[A-Za-z0-9_@%+=:,./ -]+")
# First words a shell treats itself (builtins that differ from a program of that name,
# keywords, `:` and `.`): such commands still go through the shell.
_SHELL_WORDS = frozenset({
    ".", ":", "[", "[[", "!", "{", "}", "alias", "bg", "break", "case", "cd", "command", "continue",
    "declare", "do", "done", "echo", "elif", "else", "esac", "eval", "exec", "exit", "export", "false",
    "fg", "fi", "for", "function", "getopts", "hash", "if", "jobs", "kill", "let", "local", "printf",
    "pwd", "read", "readonly", "return", "select", "set", "shift", "source", "test", "then", "time",
    "times", "trap", "type", "typeset", "ulimit", "umask", "unalias", "unset", "until", "wait", "while",
})


def direct_argv(command: str, env_override: Mapping[str, str]) -> list[str] | None:
    """The argv to run `command` without a shell, when that changes nothing; else None.

    Skipping `/bin/sh -c` saves an exec per step. Only for plain commands: a program and
    plain arguments, with PATH as the engine's own (posix_spawnp searches the engine's).
    """
    if "PATH" in env_override:
        return None
    words = _DIRECT[command] if command in _DIRECT else _direct_words(command)
    return None if words is None else list(words)


# The answer for each command seen (a run asks again for each step, attempt and item).
_DIRECT: dict[str, tuple[str, ...] | None] = {}
_DIRECT_KEPT = 1024  # commands remembered; past that (templated commands), it starts over


def _direct_words(command: str) -> tuple[str, ...] | None:
    words = command.split() if _PLAIN.fullmatch(command) else []
    found = tuple(words) if words and "=" not in words[0] and words[0] not in _SHELL_WORDS else None
    if len(_DIRECT) >= _DIRECT_KEPT:
        _DIRECT.clear()
    _DIRECT[command] = found
    return found


def _spawn(inv: Invocation, env: Mapping[Any, Any], actions: list[Any]) -> int:
    if inv.argv:  # a program given as an argv: no shell to fall back on
        return os.posix_spawnp(inv.argv[0], list(inv.argv), env, file_actions=actions, setsid=True,
                               setsigdef=RESTORED_SIGNALS)
    argv = direct_argv(inv.command, inv.env)
    if argv is not None:
        try:
            return os.posix_spawnp(argv[0], argv, env, file_actions=actions, setsid=True,
                                   setsigdef=RESTORED_SIGNALS)
        except FileNotFoundError:
            argv = None  # let the shell say "not found" (exit 127), in its own words
        except OSError as exc:
            if exc.errno not in (errno.ENOEXEC, errno.EACCES):
                raise
    # A script without a #! line (ENOEXEC) is run by the shell, as sh itself would.
    return os.posix_spawn(SHELL, [SHELL, "-c", inv.command], env, file_actions=actions, setsid=True,
                          setsigdef=RESTORED_SIGNALS)


def _remaining(deadline: float | None, exited_at: float | None) -> float | None:
    if deadline is None and exited_at is None:  # no timeout, still running: no limit (no clock read)
        return None
    now = time.monotonic()
    drain = exited_at + DRAIN_AFTER_EXIT - now if exited_at is not None else None
    left = deadline - now if deadline is not None else None
    return drain if left is None else left if drain is None else min(left, drain)


def stop_group(pgid: int, reap: Callable[[], object] | None = None) -> None:
    """SIGTERM a whole process group, then SIGKILL whatever is left after a grace period
    (`reap` collects our own child meanwhile, so it does not linger as a zombie)."""
    if not _signal_group(pgid, signal.SIGTERM) or _gone_within(pgid, reap, 0.02):
        return
    _signal_group(pgid, signal.SIGKILL)
    # SIGKILL is delivered asynchronously: on a busy machine a killed process can still run
    # for a moment, and the step ends when nothing of it runs (bounded: a process stuck in
    # an uninterruptible wait cannot be helped).
    _gone_within(pgid, reap, 0.01)


def _gone_within(pgid: int, reap: Callable[[], object] | None, poll: float) -> bool:
    """Whether nothing of the group runs any more within KILL_GRACE, looking every `poll` s."""
    end = time.monotonic() + KILL_GRACE
    while time.monotonic() < end:
        if reap is not None:
            reap()
        if not group_alive(pgid):
            return True
        time.sleep(poll)
    return False


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. Zombies count for killpg(0) until
    someone reaps them (an orphan's new parent may never do so), so look in /proc."""
    if not _signal_group(pgid, 0):
        return False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True
    return any(_live_member(entry, pgid) for entry in entries if entry.isdigit())


def _live_member(pid: str, pgid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return False
    fields = data[data.rfind(b")") + 2:].split()  # after "pid (comm) ": state ppid pgrp
    return len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z"


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _exit_code(status: int | None) -> int | None:
    if status is None:
        return None
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def _fmt(seconds: float | None) -> str:
    from engine.language.duration import format_duration

    return format_duration(seconds or 0)
