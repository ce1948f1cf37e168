"""Watching a command's whole process tree while it runs: peak memory, threads, descriptors.

`ru_maxrss` only gives the largest single process, and a fan-out tool may be one process
with many threads (ours, the paramiko floor) or a hundred forks (Ansible), so the tree is
sampled from /proc every `interval` seconds instead: every descendant of the command
(through /proc/PID/task/TID/children), its proportional set size (PSS: pages shared
between forks count once, split among them, so a forking tool is not over-counted), its
threads and its open file descriptors. Peaks are the largest sums seen in one sample.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench._timing import ROOT, CommandFailed, Sample, command_env

INTERVAL = 0.05


@dataclass(frozen=True)
class Peaks:
    """The largest sums over the tree seen in one sample."""

    pss_mb: float = 0.0
    rss_mb: float = 0.0
    threads: int = 0
    fds: int = 0
    processes: int = 0

    def max(self, other: Peaks) -> Peaks:
        return Peaks(max(self.pss_mb, other.pss_mb), max(self.rss_mb, other.rss_mb),
                     max(self.threads, other.threads), max(self.fds, other.fds),
                     max(self.processes, other.processes))


@dataclass(frozen=True)
class Watched:
    sample: Sample
    peaks: Peaks


def run_watched(command: Sequence[str], cwd: Path = ROOT, expect_rc: int = 0,
                interval: float = INTERVAL) -> Watched:
    """Run `command` to the end, sampling its process tree; CommandFailed on another exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(list(command), cwd=cwd, env=command_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    sampler = _Sampler(proc.pid, interval)
    sampler.start()
    output, _ = proc.communicate()
    wall = time.perf_counter() - start
    sampler.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != expect_rc:
        tail = "\n".join(output.decode(errors="replace").strip().splitlines()[-15:])
        raise CommandFailed(f"{' '.join(map(str, command[:4]))} ... exited {proc.returncode}, "
                            f"expected {expect_rc}:\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Watched(Sample(wall, cpu), sampler.peaks)


class _Sampler(threading.Thread):
    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(name="tree-sampler", daemon=True)
        self.pid, self.interval = pid, interval
        self.peaks = Peaks()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.peaks = self.peaks.max(tree_sample(self.pid))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def tree_sample(root: int) -> Peaks:
    """One sample of the tree under (and including) `root`: sums over its live processes."""
    pss = rss = 0
    threads = fds = processes = 0
    for pid in _tree(root):
        memory = _memory_kb(pid)
        if memory is None:  # gone meanwhile (or a zombie: no memory left to count)
            continue
        pss, rss, processes = pss + memory[0], rss + memory[1], processes + 1
        threads += _count(f"/proc/{pid}/task")
        fds += _count(f"/proc/{pid}/fd")
    return Peaks(pss / 1024, rss / 1024, threads, fds, processes)


def _tree(root: int) -> list[int]:
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as handle:
                    todo.extend(int(c) for c in handle.read().split())
            except OSError:
                continue
    return out


def _memory_kb(pid: int) -> tuple[int, int] | None:
    """(PSS, RSS) in kB from smaps_rollup, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
            text = handle.read()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in ("Pss", "Rss"):
            values[name] = int(rest.split()[0])
    if "Pss" not in values:
        return None
    return values["Pss"], values.get("Rss", 0)


def _count(path: str) -> int:
    try:
        return len(os.listdir(path))
    except OSError:
        return 0


def tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by `root` and its live descendants, and by
    the children they have reaped, from /proc: read before and after a turn of a
    long-lived server, the difference is what the turn cost it, whatever else the machine
    was doing."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in _tree(root):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime (fields 14-17 of stat)
    return total / ticks
