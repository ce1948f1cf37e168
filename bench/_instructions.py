"""Instructions a command executes in user space, counted by valgrind's callgrind.

Wall and CPU times on a machine shared by several agents move by 2-4x with the load; the
count of instructions a process executes does not (within a fraction of a percent from
run to run). It leaves out the kernel's work (fsync, spawning) and the processes a command
starts, so it measures the engine's own code: what an import or a per-step change saves.
Used beside the timings by bench/startup.py and bench/live.py when valgrind is installed
(`apt-get install valgrind`); BENCH_INSTRUCTIONS=0 leaves it out.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from bench._timing import ROOT, CommandFailed, command_env

_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def available() -> bool:
    """Whether instruction counts can be taken here (and are wanted)."""
    return os.environ.get("BENCH_INSTRUCTIONS", "1") != "0" and shutil.which("valgrind") is not None


def instructions(command: Sequence[str], cwd: Path = ROOT, env: dict[str, str] | None = None) -> int:
    """Instructions the command's own process executes (children not traced); `env` is
    added to the measured commands' environment."""
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
                          cwd=cwd, env={**command_env(), **(env or {})}, capture_output=True, text=True, check=False)
    found = _COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        raise CommandFailed(f"valgrind {' '.join(command[:3])}... exited {proc.returncode}: {proc.stderr[-500:]}")
    return int(found.group(1))


def fmt_count(count: float) -> str:
    """`604.2 M` instructions."""
    return f"{count / 1e6:.1f} M"
