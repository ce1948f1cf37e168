"""Run `run` steps on remote hosts over SSH (paramiko), with the local executor's semantics.

The command runs as `/bin/sh -c COMMAND` in the login session sshd starts for it (a new
session, so the command and everything it starts share one process group). A one-line
prefix prints that group's id before the command starts; it never reaches the output.
stdout and stderr stream to the sink as they arrive; a bounded tail stays in memory.
On timeout or cancel a second channel on the same connection sends SIGTERM to the
remote group, then SIGKILL after a grace period, and the channel is closed.

Connections come from a pool (engine/fleet/_ssh_pool.py; settings from _ssh_config.py):
one per host, reused by later steps while it is among the pool's most recently used. A
connection found dead before the command starts is reopened once; one lost while the
command runs fails that host (the command may have partly run, so it is never silently
started again).
"""

from __future__ import annotations

import re
import select
import shlex
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.executors.base import DRAIN_AFTER_EXIT, KILL_GRACE, READ_CHUNK, Cancel, Invocation, OutputSink, Result, Tail

from ._ssh_config import ConnectFailed, Endpoint, SshConfig, SshOptions, transport_errors
from ._ssh_pool import Connection, SshPool

if TYPE_CHECKING:
    from engine.language.inventory import Host

__all__ = ["ConnectFailed", "SshExecutor", "SshOptions"]

PID_MARK = b"RUNBOOK-PID "
POSIX_SHELL = "/bin/sh"
_HEAD_LIMIT = 65536  # give up looking for the pid line after this much output
_TICK = 0.1  # longest blind wait: exit status, timeouts and a dead transport are noticed within it
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def remote_command(inv: Invocation, login_shell: str | None = None) -> str:
    """What is sent to sshd: the group id (and login shell) line, the environment, then the
    command, run by /bin/sh as locally. When the login shell is /bin/sh itself it runs
    the command directly: one exec less per step."""
    exports = "".join(f"export {k}={shlex.quote(v)}; " for k, v in inv.env.items() if _ENV_NAME.match(k))
    if login_shell == POSIX_SHELL:
        return f"echo RUNBOOK-PID $$; {exports}{inv.command}"
    return f'echo RUNBOOK-PID $$ "$SHELL"; {exports}exec {POSIX_SHELL} -c {shlex.quote(inv.command)}'



def kill_command(pgid: int) -> str:
    """SIGTERM the group, SIGKILL what is left after the grace period."""
    # `kill -SIG -PGID`, not `kill -SIG -- -PGID`: dash's kill rejects the `--`.
    steps = int(KILL_GRACE / 0.1)
    return (f"kill -TERM -{pgid} 2>/dev/null || kill -TERM {pgid} 2>/dev/null; i=0; "
            f"while kill -0 -{pgid} 2>/dev/null && [ $i -lt {steps} ]; do sleep 0.1; i=$((i+1)); done; "
            f"kill -KILL -{pgid} 2>/dev/null; exit 0")


class SshExecutor:
    """Executes invocations whose `host` names a remote host, over pooled SSH connections.

    `hosts(target, name)` gives the connection settings of a host (the inventory
    resolver's `host`); ~/.ssh/config completes them.
    """

    def __init__(self, hosts: Callable[[str | None, str], Host] | None = None,
                 options: SshOptions | None = None) -> None:
        self.options = options or SshOptions.from_env()
        self._hosts = hosts or _bare_host
        self.config = SshConfig(self.options)
        self.pool = SshPool(self.options)

    def endpoint(self, inv: Invocation) -> Endpoint:
        return self.config.endpoint(self._hosts(inv.target, inv.host or "localhost"))

    def run(self, invocation: Invocation, sink: OutputSink, cancel: Cancel) -> Result:
        started, t0 = time.time(), time.monotonic()
        if cancel.is_set():
            return _failed(invocation, started, 0.0, "aborted", "interrupted")
        try:
            ep = self.endpoint(invocation)
            chan, conn = self._start(ep, invocation)
        except ConnectFailed as exc:
            return _failed(invocation, started, time.monotonic() - t0, exc.status, exc.message)
        try:
            session = _Session(chan, conn, invocation, sink, cancel)
            session.communicate()
        finally:
            chan.close()
            self.pool.release(conn)
        if session.lost:
            self.pool.discard(conn)
        return session.result(started, time.monotonic() - t0)

    def _start(self, ep: Endpoint, inv: Invocation) -> tuple[Any, Connection]:
        """A channel running the command; a dead connection is reopened once."""
        for attempt in (1, 2):
            try:
                conn = self.pool.get(ep)
            except transport_errors() as exc:
                raise ConnectFailed("unreachable", f"cannot connect to {ep.describe()}: {exc}") from None
            try:
                chan = conn.open_session(ep.connect_timeout)
                chan.exec_command(remote_command(inv, conn.login_shell))
                return chan, conn
            except transport_errors() as exc:
                self.pool.discard(conn)
                if attempt == 2:
                    raise ConnectFailed("unreachable", f"connection to {ep.describe()} failed before the "
                                                       f"command started, twice: {exc}") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.pool.close()


def _bare_host(target: str | None, name: str) -> Host:
    from engine.language.inventory import Host

    return Host(name)


def _failed(inv: Invocation, started: float, duration: float, status: str, error: str) -> Result:
    return Result(inv.command, inv.host, "", "", None, started, duration, False, error,
                  extra={"status": status})


class _Session:
    """One command on one channel: streams, timeout, cancel, exit status."""

    def __init__(self, chan: Any, conn: Connection, inv: Invocation, sink: OutputSink, cancel: Cancel) -> None:
        self.chan, self.conn, self.inv, self.sink, self.cancel = chan, conn, inv, sink, cancel
        self.stdout, self.stderr = Tail(), Tail()
        self.head = bytearray()
        self.pgid: int | None = None
        self.marked = False
        self.timed_out = self.cancelled = self.lost = False
        self.status_at: float | None = None

    def communicate(self) -> None:
        self._feed()
        deadline = time.monotonic() + self.inv.timeout if self.inv.timeout else None
        poller = select.poll()
        poller.register(self.chan.fileno(), select.POLLIN)
        poller.register(self.cancel.fileno(), select.POLLIN)
        while True:
            self._drain()
            if self._done():
                break
            wait = deadline - time.monotonic() if deadline is not None else None
            if wait is not None and wait <= 0:
                self.timed_out = True
                break
            if self.cancel.is_set():
                self.cancelled = True
                break
            self._wait(poller, wait)
        self._flush_head()
        if self.timed_out or self.cancelled:
            self._stop()
        self.lost = self.chan.exit_status == -1 and not self.conn.active

    def _wait(self, poller: select.poll, wait: float | None) -> None:
        tick = _TICK if wait is None else min(wait, _TICK)
        if self.chan.eof_received or self.chan.closed:
            # The pipe stays readable after EOF: wait on the exit status instead.
            self.chan.status_event.wait(tick)
        else:
            poller.poll(tick * 1000)

    def _done(self) -> bool:
        chan = self.chan
        if chan.recv_ready() or chan.recv_stderr_ready():
            return False
        if chan.closed:
            return True
        if not chan.exit_status_ready():
            return False
        if chan.eof_received:
            return True
        # Exited, but a background child still holds stdout open: stop reading soon.
        now = time.monotonic()
        self.status_at = self.status_at or now
        return now - self.status_at >= DRAIN_AFTER_EXIT

    def _feed(self) -> None:
        if self.inv.stdin is None:
            self.chan.shutdown_write()
            return
        data = self.inv.stdin.encode()

        def send() -> None:
            try:
                self.chan.sendall(data)
                self.chan.shutdown_write()
            except Exception:  # the command stopped reading, or the channel closed
                pass

        threading.Thread(target=send, name=f"ssh-stdin-{self.inv.host}", daemon=True).start()

    def _drain(self) -> None:
        chan = self.chan
        while chan.recv_ready():
            self._out(chan.recv(READ_CHUNK))
        while chan.recv_stderr_ready():
            data = chan.recv_stderr(READ_CHUNK)
            self.stderr.add(data)
            self.sink.output("stderr", data, self.inv.host)

    def _out(self, data: bytes) -> None:
        if not self.marked:
            self.head += data
            data = self._unmark()
        if data:
            self.stdout.add(data)
            self.sink.output("stdout", data, self.inv.host)

    def _unmark(self) -> bytes:
        """Take the group id line out of the first output; what is around it is output."""
        head = self.head
        at = head.find(PID_MARK)
        end = head.find(b"\n", at) if at >= 0 else -1
        if end >= 0:
            pid, _, shell = bytes(head[at + len(PID_MARK):end]).decode(errors="replace").partition(" ")
            self.pgid = int(pid) if pid.isdigit() else None
            if self.pgid is not None:
                self.sink.process_started(self.pgid, self.inv.host)
            if shell and self.conn.login_shell is None:
                self.conn.login_shell = shell
            data = bytes(head[:at] + head[end + 1:])
        elif len(head) > _HEAD_LIMIT:
            data = bytes(head)
        else:
            return b""
        self.marked, self.head = True, bytearray()
        return data

    def _flush_head(self) -> None:
        if not self.marked and self.head:
            self.marked = True
            data, self.head = bytes(self.head), bytearray()
            self._out(data)

    def _stop(self) -> None:
        """Signal the remote process group over a second channel, then close ours."""
        if self.pgid is not None and self.conn.active:
            try:
                killer = self.conn.open_session(self.conn.endpoint.connect_timeout)
                killer.exec_command(kill_command(self.pgid))
                killer.status_event.wait(KILL_GRACE + 3)
                killer.close()
            except Exception:  # the connection went away too: nothing more we can do from here
                pass
        self.chan.close()

    def result(self, started: float, duration: float) -> Result:
        code, status, error = self._outcome()
        return Result(
            command=self.inv.command, host=self.inv.host, stdout=self.stdout.text(), stderr=self.stderr.text(),
            exit_code=code, started_at=started, duration=duration, ok=status == "ok", error=error,
            timed_out=self.timed_out, cancelled=self.cancelled,
            truncated=self.stdout.dropped or self.stderr.dropped, extra={"status": status},
        )

    def _outcome(self) -> tuple[int | None, str, str | None]:
        inv = self.inv
        if self.timed_out:
            from engine.language.duration import format_duration

            killed = "" if self.pgid is not None else " (its process group id was not seen: not signalled)"
            return None, "timed_out", f"timed out after {format_duration(inv.timeout or 0)}{killed}"
        if self.cancelled:
            return None, "aborted", "interrupted"
        code = self.chan.exit_status
        if self.lost:
            return None, "unreachable", (f"connection to {self.conn.endpoint.describe()} was lost while the "
                                         "command ran (it may have run partly)")
        if code == -1:
            return None, "failed", "the remote command was killed by a signal"
        if code in inv.exit_codes:
            return code, "ok", None
        return code, "failed", "command not found" if code == 127 else f"exit code {code}"
