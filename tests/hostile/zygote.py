"""The hostile suite's fork server: it imports the engine once, then runs every case as
`runbook ARGS` in a child forked from it, so each case is a process of its own (its own
time limit, address-space limit and process group, killed whole when it hangs) for the
price of a fork, not of a Python start-up and the engine's imports.

Run as a script by hostile_harness.py: one JSON request a line on stdin, one JSON reply a line on
stdout as each case ends (several cases may run at once; replies carry the request's id).
It starts no thread, so forking it is safe.
"""

from __future__ import annotations

import io
import json
import os
import resource
import select
import signal
import sys
import time
import traceback
from typing import Any

UNCAUGHT = 99  # the child's status when an exception escaped `runbook` itself


def _preload() -> None:
    """What most commands import: done once here, shared by every child."""
    import jinja2  # noqa: F401
    import jsonschema  # noqa: F401



def _child(request: dict[str, Any]) -> None:
    """In the forked child: limits, working directory, environment and standard streams
    of the case, then `runbook` itself. Never returns."""
    code = UNCAUGHT
    try:
        os.setpgid(0, 0)
        limit = int(request["memory"])
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        _streams(request)
        sys.argv = ["runbook", *request["argv"]]
        from engine.cli.entry import main

        try:
            main()
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:  # a crash of `runbook` itself: its trace is the evidence
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        os._exit(code)


def _streams(request: dict[str, Any]) -> None:
    """Fresh stdin/stdout/stderr on the case's files: the server's own buffered streams
    (its request pipe above all) must not leak into the child."""
    for fd, path, mode in ((0, request.get("stdin") or os.devnull, os.O_RDONLY),
                           (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
                           (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)):
        opened = os.open(path, mode, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", line_buffering=True)


class Children:
    """Cases running now: pid -> (request id, start, deadline)."""

    def __init__(self) -> None:
        self.running: dict[int, tuple[Any, float, float]] = {}

    def start(self, request: dict[str, Any]) -> None:
        pid = os.fork()
        if pid == 0:
            _child(request)
        now = time.monotonic()
        self.running[pid] = (request.get("id"), now, now + float(request["timeout"]))

    def reap(self) -> list[dict[str, Any]]:
        """Replies for the children that ended, or were killed for running past their time."""
        replies = []
        for pid, (ident, started, deadline) in list(self.running.items()):
            done, status, usage = os.wait4(pid, os.WNOHANG)
            hung = not done and time.monotonic() > deadline
            if hung:
                os.killpg(pid, signal.SIGKILL)
                _, status, usage = os.wait4(pid, 0)
            elif not done:
                continue
            del self.running[pid]
            try:  # commands the case started and left behind die with it
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            replies.append({"id": ident, "hung": hung, "seconds": time.monotonic() - started,
                            "code": None if hung or not os.WIFEXITED(status) else os.waitstatus_to_exitcode(status),
                            "signal": os.WTERMSIG(status) if not hung and os.WIFSIGNALED(status) else None,
                            "maxrss_kb": usage.ru_maxrss})
        return replies


def main() -> None:
    """Read requests (one JSON line each) while children run; reply as each one ends."""
    _preload()
    sys.stdout.write(json.dumps({"ready": os.getpid()}) + "\n")
    sys.stdout.flush()
    children, pending, open_ = Children(), b"", True
    while open_ or children.running:
        readable, _, _ = select.select([0] if open_ else [], [], [], 0.002 if children.running else None)
        if readable:
            chunk = os.read(0, 65536)
            open_ = bool(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                children.start(json.loads(line))
        for reply in children.reap():
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
