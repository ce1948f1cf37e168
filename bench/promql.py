"""PromQL step benchmark: what a `promql` step costs over an `http` step asking the same
real Prometheus the same query, in the same run.

One runbook holds STEPS `http` steps (GET /api/v1/query?query=up) and STEPS `promql`
steps (`promql: up`), taking turns, so both meet the same machine load. Their durations
come from the run's journal (step.finished), which times each step from its start to its
end: the request, reading the answer, and what the kind adds (a promql step's series,
values, one line per series). A floor is measured beside it: the same request with
urllib in this process. Prometheus is the real one (tests/integration/promkit.py).

Figure for the note: median promql step - median http step. Target (a guard): under 10 ms.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from bench._timing import (
    ROOT,
    Context,
    Target,
    fmt_seconds,
    load_average,
    machine,
    machine_line,
    print_tables,
    write_json,
)

sys.path.insert(0, str(ROOT / "tests" / "integration"))
from promkit import Prometheus

DESCRIPTION = "a promql step vs an http step asking the same real Prometheus, in the same run"
STEPS = 40
RUNS = 3
LIMIT = 0.010


def _runbook(url: str) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    for i in range(STEPS):
        steps.append({"id": f"h{i}", "http": {"url": f"{url}/api/v1/query?query=up"}})
        steps.append({"id": f"p{i}", "promql": "up"})
    return {"kind": "runbook", "version": 1, "id": "promql-bench", "title": "promql vs http",
            "defaults": {"timeout": "30s"}, "connections": {"prom": {"type": "prometheus", "url": url}},
            "triage": steps}


def _durations(run_dir: Path) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"http": [], "promql": []}
    with open(run_dir / "journal.jsonl", encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("event") == "step.finished" and record.get("status") == "ok":
                out[record["kind"]].append(float(record["duration"]))
    return out


def _floor(url: str, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"{url}/api/v1/query?query=up", timeout=30) as resp:
            json.load(resp)
        samples.append(time.perf_counter() - t0)
    return samples


def _measure(ctx: Context, work: Path, url: str) -> dict[str, list[float]]:
    (work / "bench.yaml").write_text(yaml.safe_dump(_runbook(url), sort_keys=False))
    found: dict[str, list[float]] = {"http": [], "promql": [], "floor": []}
    for n in range(ctx.runs or RUNS):
        runs = work / f"runs{n}"
        done = subprocess.run([str(ctx.project("runbook")), "run", "bench.yaml", "--yes", "--quiet",
                               "--runs-dir", str(runs)], cwd=work, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"runbook run failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        for kind, values in _durations(next(runs.iterdir())).items():
            found[kind] += values
        found["floor"] += _floor(url, STEPS)
    return found


def run(ctx: Context) -> bool:
    info = machine(ctx)
    prom = Prometheus.create().start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-promql-") as tmp:
            found = _measure(ctx, Path(tmp), prom.url)
    finally:
        prom.destroy()
    info["load_average_after"] = load_average()
    med = {k: statistics.median(v) for k, v in found.items()}
    overhead = med["promql"] - med["http"]
    targets = [Target("promql step over http step (median, same run)", overhead, LIMIT)]
    rows = [[what, str(len(found[key])), fmt_seconds(med[key]), fmt_seconds(min(found[key])),
             fmt_seconds(max(found[key]))] for key, what in (
        ("promql", "`promql: up` step"), ("http", "`http` GET /api/v1/query?query=up step"),
        ("floor", "urllib request in the benchmark's process (floor)"))]
    print_tables(["what", "samples", "median", "min", "max"], rows, targets,
                 heading=machine_line("PromQL step", info),
                 note=f"promql over http: {overhead * 1000:.1f} ms; http step over the bare request: "
                      f"{(med['http'] - med['floor']) * 1000:.1f} ms")
    write_json(ctx.out_dir / "promql.json", {"benchmark": "promql", "machine": info, "steps": STEPS,
                                             "samples": found, "medians": med, "overhead_s": overhead,
                                             "targets": [{"name": x.name, "limit": x.limit, "measured": x.measured,
                                                          "verdict": x.verdict} for x in targets]})
    return all(x.met for x in targets)
