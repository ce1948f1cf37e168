"""Background helpers on this machine: a port-forward or tunnel (`kubectl port-forward`,
`ssh -L`) that lives while a block's steps run.

Each helper is `/bin/sh -c COMMAND` in a session of its own (so everything it starts is
in one process group), its output read by a thread into a bounded tail. It is ready when
its port accepts a connection on 127.0.0.1, or when its output shows a given text; it is
stopped with SIGTERM to its group, then SIGKILL after a grace period. Nothing here knows
about runs: engine/run/_background.py starts, watches, journals and stops them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from .base import KILL_GRACE

SHELL = "/bin/sh"
TAIL = 16 * 1024  # bytes of a helper's output kept (for the message when it dies)
READY_POLL = 0.1


@dataclass(frozen=True, slots=True)
class Ready:
    """How to tell a helper is ready: its port accepts connections, or its output says so."""

    port: int | None = None
    output: str | None = None

    def describe(self) -> str:
        if self.port is not None:
            return f"port {self.port} accepts connections"
        return f"its output shows {self.output!r}" if self.output else "it has started"


class Helper:
    """One helper process: started, watched, stopped."""

    def __init__(self, command: str, env: Mapping[str, str] | None = None) -> None:
        self.command = command
        self._out = bytearray()
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [SHELL, "-c", command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, env={**os.environ, **(env or {})})
        self._reader = threading.Thread(target=self._read, name=f"helper-{self.proc.pid}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        stream = self.proc.stdout
        assert stream is not None
        fd = stream.fileno()
        for chunk in iter(lambda: _read_some(fd), b""):
            with self._lock:
                self._out += chunk
                del self._out[:-TAIL]

    @property
    def output(self) -> str:
        with self._lock:
            return self._out.decode("utf-8", "replace")

    def exit_code(self) -> int | None:
        """None while it runs; its exit code (negative: the signal) once it has ended."""
        return self.proc.poll()

    def wait_ready(self, ready: Ready, timeout: float) -> str | None:
        """None once ready; else why not (it died, or `timeout` passed)."""
        deadline = time.monotonic() + timeout
        while True:
            code = self.exit_code()
            if code is not None:
                self._reader.join(1.0)
                return f"exited with code {code} before it was ready"
            if self._is_ready(ready):
                return None
            if time.monotonic() >= deadline:
                return f"not ready after {timeout:g}s (waited until {ready.describe()})"
            time.sleep(READY_POLL)

    def _is_ready(self, ready: Ready) -> bool:
        if ready.port is not None:
            try:
                with socket.create_connection(("127.0.0.1", ready.port), timeout=1.0):
                    return True
            except OSError:
                return False
        if ready.output:
            return ready.output in self.output
        return True

    def stop(self, grace: float = KILL_GRACE) -> int | None:
        """SIGTERM to its process group, SIGKILL after `grace`; its exit code."""
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait()
        # What it started may outlive it (a child that ignores SIGTERM): the group goes too.
        self._signal(signal.SIGKILL)
        self._reader.join(1.0)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.proc.returncode

    def _signal(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _read_some(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except OSError:  # closed under us once the helper was stopped: its output ends there
        return b""


class LocalHelpers:
    """`Services.background` of a live run: helpers are processes on this machine."""

    def start(self, command: str, helper_id: str, env: Mapping[str, str] | None = None) -> Helper:
        return Helper(command, env)
