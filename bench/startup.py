"""Start-up benchmark: `runbook validate FILE` (what pre-commit runs on every commit) and a
one-step `runbook run` (a local `true`), as whole commands, against the interpreter alone.

Measured in turns (median after a warm-up, CPU beside wall time, each with its spread
over the turns): the two commands and `python -c pass` (the floor of any Python tool);
the instructions each executes (callgrind, bench/_instructions.py: the figure the load
does not move); then one `python -X importtime` run of each command, summed per top-level
package, to say where the time goes. Target (issue 14): 100 ms for both commands.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from bench import _instructions
from bench._timing import (
    Context,
    Target,
    Timing,
    command_env,
    fmt_seconds,
    load_average,
    machine,
    machine_line,
    print_tables,
    time_interleaved,
    write_json,
)
from bench.generate import generate_runbooks

DESCRIPTION = "start-up of runbook validate FILE and of a one-step runbook run, with -X importtime"
RUNS = 21
LIMIT = 0.1
ONE_STEP = "kind: runbook\nversion: 1\nid: one\ntitle: One step\ndetection:\n  - {id: a, run: 'true'}\n"


def run(ctx: Context) -> bool:
    """Measure, print the tables, write bench/out/startup.json."""
    info = machine(ctx)
    with tempfile.TemporaryDirectory(prefix="runbook-bench-startup-") as tmp:
        work = Path(tmp)
        typical = _typical_file(work)
        (work / "one.yaml").write_text(ONE_STEP, encoding="utf-8")
        runbook = str(ctx.project("runbook"))
        timings = {
            "validate": Timing("runbook validate FILE", [runbook, "validate", str(typical)], ctx.runs or RUNS),
            "run": Timing("runbook run (1 step)", [runbook, "run", str(work / "one.yaml"), "--runs-dir",
                                                   str(work / "runs"), "-q", "--non-interactive"], ctx.runs or RUNS),
            "python": Timing("python -c pass", [str(ctx.project("python")), "-c", "pass"], ctx.runs or RUNS),
        }
        time_interleaved(list(timings.values()), cwd=work)
        counts = ({key: _instructions.instructions(t.command, work) for key, t in timings.items()}
                  if _instructions.available() else {})
        imports = {key: _imports(ctx, timings[key].command, work) for key in ("validate", "run")}
    info["load_average_after"] = load_average()
    targets = [Target("runbook validate FILE, wall clock", timings["validate"].median, LIMIT),
               Target("one-step runbook run, wall clock", timings["run"].median, LIMIT)]
    results = {"benchmark": "startup", "machine": info, "timings": {k: t.summary() for k, t in timings.items()},
               "instructions": counts, "imports": imports,
               "targets": [{"name": t.name, "limit": t.limit, "measured": t.measured,
                            "verdict": t.verdict} for t in targets]}
    note = "; ".join(f"{key}: {_import_line(found)}" for key, found in imports.items())
    print_tables(HEADERS, _rows(timings, counts), targets, heading=machine_line("Start-up", info), note=note)
    write_json(ctx.out_dir / "startup.json", results)
    return all(t.met for t in targets)


HEADERS = ["command", "runs", "median wall", "min - max", "median CPU", "CPU min - max", "CPU / python",
           "instructions"]


def _rows(timings: dict[str, Timing], counts: dict[str, int]) -> list[list[str]]:
    """Each command's wall and CPU with their spread, its CPU over the interpreter's in the
    same turns, and its instructions (callgrind) when counted."""
    floor = timings["python"].cpu_median
    rows = []
    for key, t in timings.items():
        cpus = [x.cpu for x in t.samples]
        rows.append([t.label, str(len(t.samples)), fmt_seconds(t.median),
                     f"{fmt_seconds(min(t.walls))} - {fmt_seconds(max(t.walls))}", fmt_seconds(t.cpu_median),
                     f"{fmt_seconds(min(cpus))} - {fmt_seconds(max(cpus))}", f"{t.cpu_median / floor:.1f}x",
                     _instructions.fmt_count(counts[key]) if key in counts else "-"])
    return rows


def _typical_file(work: Path) -> Path:
    """The runbook of median size among 21 generated ones (as the validation benchmark's)."""
    files = generate_runbooks(work / "corpus", 21, 42)
    return sorted(files, key=lambda p: (p.stat().st_size, p.name))[len(files) // 2]


def _imports(ctx: Context, command: list[str], cwd: Path) -> dict[str, Any]:
    """One `-X importtime` run: modules imported, and microseconds of import per top-level package."""
    script = ("import runpy, sys\nsys.argv = sys.argv[1:]\n"
              "runpy.run_path(sys.argv[0], run_name='__main__')\n")
    proc = subprocess.run([str(ctx.project("python")), "-X", "importtime", "-c", script, *command],
                          cwd=cwd, env=command_env(), capture_output=True, text=True, check=False)
    per_package: Counter[str] = Counter()
    modules = 0
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line.removeprefix("import time:").split("|")
        per_package[name.strip().split(".")[0]] += int(self_us)
        modules += 1
    return {"modules": modules, "total_ms": sum(per_package.values()) / 1000,
            "top_ms": {k: v / 1000 for k, v in per_package.most_common(8)}}


def _import_line(found: dict[str, Any]) -> str:
    top = ", ".join(f"{name} {ms:.0f}" for name, ms in found["top_ms"].items())
    return f"{found['modules']} modules, {found['total_ms']:.0f} ms of imports ({top} ms)"
