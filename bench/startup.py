"""Start-up benchmark: `runbook validate FILE` (what pre-commit runs on every commit) and a
one-step `runbook run` (a local `true`), as whole commands, against the interpreter alone.

Measured in turns (median after a warm-up, CPU beside wall time, each with its spread
over the turns): the two commands, `python -c pass` (the floor of any Python tool) and,
when `make bench` has installed it, Chaos Toolkit running a one-action experiment (the
peer the issue names; BENCH_STARTUP_PEERS=0 leaves it out); the instructions each executes
(callgrind, bench/_instructions.py: the figure the load does not move), with the run's
split into the interpreter, importing the modules a run imports (alone, in one process)
and the rest; then one `python -X importtime` run of each command, summed per top-level
package, to say where the time goes. Target (issue 14): 100 ms for both commands.
"""

from __future__ import annotations

import json
import os
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
# Chaos Toolkit's one-step run: one process action, as bench/live.py runs 500 of them.
ONE_ACTION = {"version": "1.0.0", "title": "1 action", "description": "bench",
              "method": [{"type": "action", "name": "true", "provider": {"type": "process", "path": "true"}}]}
# Runs a one-step run in-process, then writes the names of the modules it imported.
_LIST_MODULES = """\
import sys
before = set(sys.modules)
sys.argv = ["runbook", *sys.argv[2:]]
from engine.cli.entry import main
try:
    main()
except SystemExit:
    pass
open(OUT, "w").write("\\n".join(m for m in sys.modules if m not in before))
"""
# Imports the listed modules, in the order a run imported them, and does nothing else, as
# the command does: the standard library's seldom used modules deferred
# (engine/cli/_deferred.py), the engine's modules found by listing (engine/cli/_finder.py)
# and the generated-code cache installed first (engine/cli/_code_cache.py), the collector
# paused from the start (engine/cli/entry.py) and what was imported frozen (_run_main.py).
_IMPORT_ONLY = ("import gc, importlib, sys\ngc.disable()\nfrom engine.cli._deferred import defer\ndefer()\n"
                "from engine.cli._finder import install as find\nfind()\n"
                "from engine.cli._code_cache import install\ninstall(command='run')\n"
                "for name in open(sys.argv[1]).read().split():\n    importlib.import_module(name)\n"
                "gc.freeze()\ngc.enable()\n")


def run(ctx: Context) -> bool:
    """Measure, print the tables, write bench/out/startup.json."""
    info = machine(ctx)
    with tempfile.TemporaryDirectory(prefix="runbook-bench-startup-") as tmp:
        work = Path(tmp)
        typical = _typical_file(work)
        (work / "one.yaml").write_text(ONE_STEP, encoding="utf-8")
        timings = _timings(ctx, work, typical)
        time_interleaved(list(timings.values()), cwd=work)
        counts = ({key: _instructions.instructions(t.command, work) for key, t in timings.items()}
                  if _instructions.available() else {})
        if counts:
            counts["run_imports"] = _import_instructions(ctx, timings["run"].command, work)
        imports = {key: _imports(ctx, timings[key].command, work) for key in ("validate", "run")}
    info["load_average_after"] = load_average()
    targets = [Target("runbook validate FILE, wall clock", timings["validate"].median, LIMIT),
               Target("one-step runbook run, wall clock", timings["run"].median, LIMIT)]
    results = {"benchmark": "startup", "machine": info, "timings": {k: t.summary() for k, t in timings.items()},
               "instructions": counts, "imports": imports,
               "targets": [{"name": t.name, "limit": t.limit, "measured": t.measured,
                            "verdict": t.verdict} for t in targets]}
    note = "; ".join(f"{key}: {_import_line(found)}" for key, found in imports.items())
    if "run_imports" in counts:
        note += "; " + _split_line(counts)
    print_tables(HEADERS, _rows(timings, counts), targets, heading=machine_line("Start-up", info), note=note)
    write_json(ctx.out_dir / "startup.json", results)
    return all(t.met for t in targets)


def _timings(ctx: Context, work: Path, typical: Path) -> dict[str, Timing]:
    runs = ctx.runs or RUNS
    runbook = str(ctx.project("runbook"))
    timings = {
        "validate": Timing("runbook validate FILE", [runbook, "validate", str(typical)], runs),
        "run": Timing("runbook run (1 step)", [runbook, "run", str(work / "one.yaml"), "--runs-dir",
                                               str(work / "runs"), "-q", "--non-interactive"], runs),
        "python": Timing("python -c pass", [str(ctx.project("python")), "-c", "pass"], runs),
    }
    chaos = ctx.baseline("chaos")
    if os.environ.get("BENCH_STARTUP_PEERS", "1") != "0" and chaos.exists():
        (work / "one.json").write_text(json.dumps(ONE_ACTION), encoding="utf-8")
        timings["chaos"] = Timing("chaos run (1 action)", [str(chaos), "--no-version-check", "run",
                                                            "--journal-path", str(work / "ctk.json"),
                                                            str(work / "one.json")], runs)
    return timings


def _import_instructions(ctx: Context, run: list[str], work: Path) -> int:
    """Instructions of importing, alone, the modules a one-step run imports."""
    listed = work / "modules.txt"
    script = _LIST_MODULES.replace("OUT", repr(str(listed)))
    subprocess.run([str(ctx.project("python")), "-c", script, *run], cwd=work, env=command_env(),
                   capture_output=True, check=True)
    return _instructions.instructions([str(ctx.project("python")), "-c", _IMPORT_ONLY, str(listed)], work)


def _split_line(counts: dict[str, int]) -> str:
    python, imports, run = counts["python"], counts["run_imports"], counts["run"]
    return (f"run's instructions: interpreter {_instructions.fmt_count(python)}, its imports "
            f"{_instructions.fmt_count(imports - python)}, the rest {_instructions.fmt_count(run - imports)}")


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
