"""Shared helpers of the benchmarks: where things are, timing commands, targets, tables.

Every benchmark measures wall-clock time of whole commands (what a user or CI waits
for), as the median of several runs after a warm-up run. Every run must exit with the
expected code, or the benchmark stops: figures of a failing command mean nothing.

Commands run with their bytecode cached (PYTHONPYCACHEPREFIX=bench/out/pycache, filled
by the warm-up), as after any normal install. Without it, in an environment that sets
PYTHONDONTWRITEBYTECODE (as some containers do), an editable install would compile
engine/ from source at every start and the figures would measure the compiler.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYCACHE = ROOT / "bench" / "out" / "pycache"


def command_env() -> dict[str, str]:
    """The environment of measured commands: ours, with a bytecode cache that is written."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


@dataclass(frozen=True)
class Context:
    """What every benchmark gets: the repository, its two virtualenvs, the output folder."""

    root: Path = ROOT
    runs: int | None = None  # override of each benchmark's default number of timed runs

    @property
    def out_dir(self) -> Path:
        return self.root / "bench" / "out"

    def project(self, tool: str) -> Path:
        """A console script of the project virtualenv (.venv)."""
        return self.root / ".venv" / "bin" / tool

    def baseline(self, tool: str) -> Path:
        """A console script of the benchmark-only virtualenv (.venv-bench)."""
        return self.root / ".venv-bench" / "bin" / tool


class CommandFailed(RuntimeError):
    """A measured command did not exit as expected: its figures would be meaningless."""


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds, what the user waits for
    cpu: float  # user + system seconds of the command and every process it waited for


@dataclass
class Timing:
    label: str
    command: list[str]
    runs: int = 5
    samples: list[Sample] = field(default_factory=list)

    @property
    def walls(self) -> list[float]:
        return [x.wall for x in self.samples]

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def cpu_median(self) -> float:
        return statistics.median(x.cpu for x in self.samples)

    def summary(self) -> dict[str, Any]:
        w = self.walls
        return {"label": self.label, "command": _short(self.command), "runs": len(w), "median_s": self.median,
                "min_s": min(w), "max_s": max(w), "stdev_s": statistics.stdev(w) if len(w) > 1 else 0.0,
                "cpu_median_s": self.cpu_median, "samples_s": w, "cpu_samples_s": [x.cpu for x in self.samples]}


def run_once(command: Sequence[str], cwd: Path = ROOT, expect_rc: int = 0) -> Sample:
    """One run, timed; CommandFailed if the exit code is not `expect_rc`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, env=command_env(), capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != expect_rc:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise CommandFailed(f"{_short(command)} exited {proc.returncode}, expected {expect_rc}:\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(wall, cpu)


def check_command(label: str, command: Sequence[str], *, cwd: Path = ROOT, expect_rc: int = 0) -> None:
    """Run once, untimed, as a precondition; CommandFailed unless it exits `expect_rc`."""
    print(f"  {label} ...", end="", flush=True)
    run_once([str(c) for c in command], cwd, expect_rc)
    print(" ok")


def time_command(label: str, command: Sequence[str], runs: int, *, warmup: int = 1,
                 cwd: Path = ROOT, expect_rc: int = 0) -> Timing:
    """Run `warmup` untimed runs, then `runs` timed ones; every run must exit `expect_rc`."""
    return time_interleaved([Timing(label, [str(c) for c in command], runs)], warmup=warmup, cwd=cwd,
                            expect_rc=expect_rc)[0]


def time_interleaved(timings: Sequence[Timing], *, warmup: int = 1, cwd: Path = ROOT,
                     expect_rc: int = 0) -> Sequence[Timing]:
    """Warm each command up, then run them in turns until each has its `runs` samples.

    Taking turns means a machine that gets busier (or quieter) during the benchmark
    slows every command alike, so their ratios stay fair.
    """
    print(f"  {' | '.join(t.label for t in timings)}: {warmup} warm-up + "
          f"{'/'.join(str(t.runs) for t in timings)} runs, in turns ", end="", flush=True)
    for t in timings:
        for _ in range(warmup):
            run_once(t.command, cwd, expect_rc)
    for turn in range(max(t.runs for t in timings)):
        for t in timings:
            if turn < t.runs:
                t.samples.append(run_once(t.command, cwd, expect_rc))
        print(".", end="", flush=True)
    print(" " + ", ".join(f"{t.label} {fmt_seconds(t.median)}" for t in timings))
    return timings


def _short(command: Sequence[str], limit: int = 6) -> str:
    words = [os.path.basename(str(c)) if i == 0 else str(c) for i, c in enumerate(command)]
    more = f" ... ({len(words) - limit} more)" if len(words) > limit else ""
    return " ".join(words[:limit]) + more


# -- targets ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A goal such as "under 0.5 s" (`below=True`) or "at least 3x" (`below=False`)."""

    name: str
    measured: float
    limit: float
    below: bool = True
    unit: str = "s"

    @property
    def met(self) -> bool:
        return self.measured < self.limit if self.below else self.measured >= self.limit

    @property
    def verdict(self) -> str:
        return "PASS" if self.met else "MISS"

    def describe(self, value: float) -> str:
        if self.unit == "s":
            return fmt_seconds(value)
        # Two decimals for small figures, so a goal of 1.25x or 0.15 ms reads as it is.
        return f"{value:.2f}{self.unit}" if abs(value) < 10 else f"{value:.1f}{self.unit}"

    def row(self) -> list[str]:
        goal = f"{'<' if self.below else '>='} {self.describe(self.limit)}"
        return [self.name, goal, self.describe(self.measured), self.verdict]


def fmt_seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


# -- output ---------------------------------------------------------------------------------


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c) for c in cells) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)), *(line(r) for r in rows)])


TIMING_HEADERS = ["runs", "median wall", "min - max", "median CPU"]
TARGET_HEADERS = ["target", "goal", "measured", "verdict"]


def timing_cells(t: Timing) -> list[str]:
    """The columns of TIMING_HEADERS for one measured command."""
    return [str(len(t.samples)), fmt_seconds(t.median), f"{fmt_seconds(min(t.walls))} - {fmt_seconds(max(t.walls))}",
            fmt_seconds(t.cpu_median)]


def machine_line(title: str, info: dict[str, Any], *extra: str) -> str:
    """The heading of a benchmark's tables: when, on what, how busy the machine was."""
    parts = [f"{info['date']}", f"{info['nproc']} CPUs ({info['cpu']})", f"Python {info['python']}",
             f"commit {info['commit']}", *extra,
             f"load average {info['load_average'][0]} before, {info['load_average_after'][0]} after"]
    return f"{title} benchmark: " + ", ".join(parts)


def print_tables(headers: Sequence[str], rows: Sequence[Sequence[str]], targets: Sequence[Target], *,
                 heading: str = "", lead: str = "", note: str = "") -> None:
    """The figures and the targets as text tables, then again in Markdown for BENCHMARKS.md
    (verdicts in bold). `lead` precedes both figure tables (e.g. what the corpus was);
    `note` follows the text one only."""
    verdicts = [t.row() for t in targets]
    if heading:
        print(f"\n{heading}")
    print()
    if lead:
        print(lead + "\n")
    print(text_table(headers, [[str(c).replace("`", "") for c in r] for r in rows]))
    if note:
        print(f"\n  {note}")
    print()
    print(text_table(TARGET_HEADERS, verdicts))
    print("\nMarkdown for BENCHMARKS.md:\n")
    if lead:
        print(lead + "\n")
    print(markdown_table(headers, rows))
    print()
    print(markdown_table(TARGET_HEADERS, [[*r[:3], f"**{r[3]}**"] for r in verdicts]))


def machine(ctx: Context) -> dict[str, Any]:
    """Where the figures come from: CPUs, Python, OS, commit, date."""
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": _cpu_model(),
        "python": _output([str(ctx.project("python")), "-c", "import sys; print(sys.version.split()[0])"]),
        "platform": platform.platform(),
        "commit": _commit(ctx.root),
        "load_average": load_average(),
        "bytecode": f"cached (PYTHONPYCACHEPREFIX={PYCACHE.relative_to(ctx.root)})",
    }


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: above the CPU count, other work competed with ours."""
    return [round(x, 2) for x in os.getloadavg()]


def _commit(root: Path) -> str:
    """The commit measured, and whether engine/ differs from it (others edit it too)."""
    commit = _output(["git", "rev-parse", "--short", "HEAD"], root)
    changed = subprocess.run(["git", "status", "--porcelain", "--", "engine", "schemas"], cwd=root,
                             capture_output=True, text=True, check=False).stdout.strip()
    return f"{commit} + uncommitted changes in engine/ or schemas/" if changed else commit


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _output(command: Sequence[str], cwd: Path = ROOT) -> str:
    try:
        proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError:
        return "unknown"
    return proc.stdout.strip() or "unknown"


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n", encoding="utf-8")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
