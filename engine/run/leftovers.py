"""Commands an engine left running when it was killed, found again and settled.

Every command the engine starts carries RUNBOOK_RUN and RUNBOOK_STEP in its environment
(and so does whatever it starts), and the journal records its process group as soon as
it is known (step.process: locally the group, over SSH the host and the remote shell's
pid, which leads its group). When `resume` finds that the engine died while steps ran,
it looks for their processes: on this machine in /proc, on each remote host of those
steps over SSH, by the marks, so a command whose group never reached the journal is
found too. A group still alive is waited for, or stopped whole (SIGTERM, then SIGKILL),
as the operator says; a second copy of a command never starts beside the first.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from engine.errors import EngineError, UsageError
from engine.executors.base import RUN_MARK, STEP_MARK

POLL = 0.5  # seconds between looks while waiting for a command to end
REMOTE_POLL = 2.0


@dataclass(frozen=True)
class Leftover:
    """A process group of an interrupted step that still runs."""

    step: str
    pgid: int
    host: str | None = None  # None: this machine
    target: str | None = None

    def where(self) -> str:
        return f"process group {self.pgid} on {self.host or 'this machine'}"


@dataclass(frozen=True)
class Started:
    """What the journal says an interrupted step started: where, and which groups it saw."""

    step: str
    target: str | None
    hosts: tuple[str, ...]
    groups: tuple[tuple[int, str | None], ...]  # (pgid, host) from step.process records


# -- this machine -------------------------------------------------------------------------------


def _proc(pid: str, name: str) -> bytes | None:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _group_and_state(stat: bytes) -> tuple[int, bytes]:
    fields = stat[stat.rfind(b")") + 2:].split()  # after "pid (comm) ": state ppid pgrp
    return int(fields[2]), fields[0]


def _marked_step(environ: bytes, run_id: str) -> str | None:
    """The step a process belongs to, when its environment carries this run's marks."""
    values = dict(item.split(b"=", 1) for item in environ.split(b"\0") if b"=" in item)
    if values.get(RUN_MARK.encode()) != run_id.encode():
        return None
    return values.get(STEP_MARK.encode(), b"").decode(errors="replace")


def _local_processes(run_id: str) -> Iterator[tuple[int, str | None, bool]]:
    """(pgid, marked step or None, environment readable) of every live process here."""
    for pid in os.listdir("/proc"):
        stat = _proc(pid, "stat") if pid.isdigit() else None
        if stat is None:
            continue
        pgid, state = _group_and_state(stat)
        if state == b"Z":
            continue
        environ = _proc(pid, "environ")
        yield pgid, _marked_step(environ, run_id) if environ is not None else None, environ is not None


def local_leftovers(run_id: str, started: Iterable[Started]) -> list[Leftover]:
    """Groups on this machine of the given interrupted steps that still run: those whose
    processes carry the run's marks, and journaled groups whose members cannot be read
    (a group id reused by an unrelated, readable process does not count)."""
    steps = {s.step: s for s in started}
    journaled = {pgid: s.step for s in steps.values() for pgid, host in s.groups if host is None}
    found: dict[int, str] = {}
    for pgid, step, readable in _local_processes(run_id):
        if step in steps:
            found.setdefault(pgid, step)
        elif not readable and pgid in journaled:
            found.setdefault(pgid, journaled[pgid])
    return [Leftover(step, pgid, None, steps[step].target) for pgid, step in sorted(found.items())]


def local_alive(leftover: Leftover, run_id: str) -> bool:
    return any(pgid == leftover.pgid and (step == leftover.step or not readable)
               for pgid, step, readable in _local_processes(run_id))


# -- remote hosts -------------------------------------------------------------------------------


def scan_command(run_id: str) -> str:
    """A POSIX shell command that prints `STATE PGID STEP` for each process of the run on
    the host it runs on (by the marks in /proc/PID/environ)."""
    mark = shlex.quote(f"{RUN_MARK}={run_id}")
    return (f"for d in /proc/[0-9]*; do "
            f"if tr '\\000' '\\n' < \"$d/environ\" 2>/dev/null | grep -qx {mark}; then "
            f"s=$(tr '\\000' '\\n' < \"$d/environ\" 2>/dev/null | sed -n 's/^{STEP_MARK}=//p'); "
            f"g=$(sed 's/.*) //' \"$d/stat\" 2>/dev/null | cut -d' ' -f1,3); "
            f"[ -n \"$g\" ] && echo \"$g $s\"; fi; done; exit 0")


def parse_scan(output: str) -> list[tuple[int, str]]:
    """(pgid, step) of the live processes a scan printed."""
    out = []
    for line in output.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] != "Z" and parts[1].isdigit():
            out.append((int(parts[1]), parts[2]))
    return out


Shell = Callable[[str | None, str, str], str]  # (target, host, command) -> stdout; raises on failure


def remote_leftovers(run_id: str, started: Iterable[Started], shell: Shell) -> list[Leftover]:
    """Groups of the interrupted steps still running on their remote hosts."""
    steps = {s.step: s for s in started}
    hosts = {(s.target, h) for s in steps.values() for h in (*s.hosts, *(h for _, h in s.groups if h))}
    found: dict[tuple[str, int], Leftover] = {}
    for target, host in sorted(hosts, key=lambda th: (th[1], th[0] or "")):
        try:
            output = shell(target, host, scan_command(run_id))
        except EngineError as exc:  # unknown is not "not running": nothing starts again blindly
            raise UsageError(f"cannot resume yet: {exc}; a command the earlier attempt started there may still "
                             "run. Resume again once the host answers") from None
        for pgid, step in parse_scan(output):
            if step in steps:
                found.setdefault((host, pgid), Leftover(step, pgid, host, target))
    return list(found.values())


def remote_alive(leftover: Leftover, run_id: str, shell: Shell) -> bool:
    assert leftover.host is not None
    output = shell(leftover.target, leftover.host, scan_command(run_id))
    return any(pgid == leftover.pgid for pgid, _ in parse_scan(output))


# -- settling: wait or stop ---------------------------------------------------------------------


class Settler:
    """Waits for, or stops, the leftovers of one run (here and over SSH)."""

    def __init__(self, run_id: str, shell: Shell | None) -> None:
        self.run_id, self.shell = run_id, shell

    def find(self, started: list[Started]) -> list[Leftover]:
        """Still-running groups of these steps: a step with a target ran on its hosts, one
        without on this machine."""
        found = local_leftovers(self.run_id, [s for s in started if not s.target])
        if self.shell is not None and any(s.target for s in started):
            found += remote_leftovers(self.run_id, [s for s in started if s.target], self.shell)
        return found

    def alive(self, leftover: Leftover) -> bool:
        if leftover.host is None:
            return local_alive(leftover, self.run_id)
        assert self.shell is not None
        return remote_alive(leftover, self.run_id, self.shell)

    def wait(self, leftover: Leftover) -> None:
        """Until the group has ended (Ctrl-C stops waiting: KeyboardInterrupt)."""
        while self.alive(leftover):
            time.sleep(POLL if leftover.host is None else REMOTE_POLL)

    def stop(self, leftover: Leftover) -> None:
        """The whole group: SIGTERM, then SIGKILL after the grace period."""
        if leftover.host is None:
            from engine.executors.local import stop_group

            stop_group(leftover.pgid)
            return
        from engine.fleet.ssh import kill_command

        assert self.shell is not None
        self.shell(leftover.target, leftover.host, kill_command(leftover.pgid))
