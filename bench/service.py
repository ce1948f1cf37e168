"""Service benchmark: workers scaling out on PostgreSQL, and a takeover after SIGKILL.

A real PostgreSQL (Debian's, a throwaway cluster on a free loopback port; see
tests/integration/postgres.py), real `runbook worker` processes.

  a. scale out: RUNS runs of a five-step runbook whose steps wait on I/O (`sleep 0.2`),
     queued once 1 (then 3) worker processes are up (SLOTS runs at once each; timed from
     the first enqueue to the last run's end), each on a fresh database. Every run must
     finish resolved, claimed once, with each of its steps run once. Target: 3 workers at
     least 2.5x faster than 1.
  b. takeover: a worker process is SIGKILLed in the middle of a step; another worker
     already running takes the run over. Target: within the lease plus 2 s of the kill.

RUNS defaults to the issue's 1,000 (BENCH_SERVICE_RUNS=200 for a quicker look); SLOTS
to 8 (BENCH_SERVICE_SLOTS).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
from postgres import PgCluster

DESCRIPTION = "runbook worker on PostgreSQL: 1 vs 3 workers over queued I/O-bound runs, and a takeover after SIGKILL"
RUNS = int(os.environ.get("BENCH_SERVICE_RUNS", "1000"))
SLOTS = int(os.environ.get("BENCH_SERVICE_SLOTS", "8"))
LEASE = 5.0
SPEED_UP = 2.5

FIVE_STEPS = """\
kind: runbook
version: 1
id: five-steps
title: Five steps waiting on I/O
defaults: {{timeout: 1m}}
remediation:
{steps}
"""
STEP = '  - {{id: s{n}, run: "sleep 0.2; echo {n} >> {counts}"}}'
SLOW = """\
kind: runbook
version: 1
id: slow
title: One slow idempotent step
defaults: {timeout: 1m}
remediation:
  - {id: slow, idempotent: true, run: "echo started >> %s; sleep 3"}
"""


def _workers(url: str, count: int, env: dict[str, str], *, lease: float = 30.0) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([str(ROOT / ".venv" / "bin" / "runbook"), "worker", "--database", url, "--slots",
                              str(SLOTS), "--lease", str(lease)], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL) for _ in range(count)]


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def _until(predicate: Callable[[], bool], timeout: float, poll: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(poll)


def _scale_out(cluster: PgCluster, work: Path, workers: int, env: dict[str, str]) -> dict[str, Any]:
    from engine.service.store import NewRun, Store

    counts = work / f"counts-{workers}"
    runbook = work / f"five-{workers}.yaml"
    steps = "\n".join(STEP.format(n=n, counts=counts) for n in range(1, 6))
    runbook.write_text(FIVE_STEPS.format(steps=steps), encoding="utf-8")
    url = cluster.new_database(f"scale{workers}")
    store = Store.open(url)
    procs = _workers(url, workers, env)
    try:
        # Timed from when every worker is up: a process's start-up is not what scales.
        _until(lambda: len(store.workers(state="running")) == workers, 300)
        start = time.monotonic()
        ids = [store.enqueue(NewRun("five-steps", str(runbook))).id for _ in range(RUNS)]
        _until(lambda: store.counts().get("finished", 0) == RUNS, 3600, poll=0.25)
        elapsed = time.monotonic() - start
    finally:
        _stop(procs)
    runs = store.runs(limit=RUNS + 1)
    store.close()
    once = all(r.outcome == "resolved" and r.claims == 1 for r in runs) and len(runs) == len(ids)
    lines = counts.read_text().splitlines()
    return {"workers": workers, "seconds": elapsed, "runs_per_second": RUNS / elapsed,
            "every_run_once": once and len(lines) == 5 * RUNS}


def _takeover(cluster: PgCluster, work: Path, env: dict[str, str]) -> float:
    """Seconds from the SIGKILL of the worker running the step to the other's claim."""
    from engine.service.store import NewRun, Store

    marker = work / "slow.started"
    runbook = work / "slow.yaml"
    runbook.write_text(SLOW % marker, encoding="utf-8")
    url = cluster.new_database("takeover")
    store = Store.open(url)
    run_id = store.enqueue(NewRun("slow", str(runbook))).id
    [first] = _workers(url, 1, env, lease=LEASE)
    _until(marker.exists, 120)
    second = _workers(url, 1, env, lease=LEASE)
    try:
        first.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        _until(lambda: getattr(store.run(run_id), "claims", 0) == 2, 120, poll=0.02)
        taken = time.monotonic() - killed
        _until(lambda: store.counts().get("finished", 0) == 1, 120)
    finally:
        first.wait()
        _stop(second)
        store.close()
    return taken


def run(ctx: Context) -> bool:
    info = machine(ctx)
    cluster = PgCluster.create().start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
            work = Path(tmp)
            env = {**os.environ, "RUNBOOK_HOME": str(work / "home")}
            one, three = (_scale_out(cluster, work, n, env) for n in (1, 3))
            taken = _takeover(cluster, work, env)
    finally:
        cluster.destroy()
    info["load_average_after"] = load_average()
    speed_up = one["seconds"] / three["seconds"]
    targets = [Target("3 workers vs 1 (speed-up)", speed_up, SPEED_UP, below=False, unit="x"),
               Target("every run finished once, each step once", float(one["every_run_once"] and
                                                                       three["every_run_once"]), 1.0, below=False,
                      unit=""),
               Target(f"takeover after SIGKILL (lease {LEASE:g} s + 2 s)", taken, LEASE + 2.0)]
    rows = [[f"{r['workers']} worker(s) x {SLOTS} slots", str(RUNS), fmt_seconds(r["seconds"]),
             f"{r['runs_per_second']:.1f}"] for r in (one, three)]
    print_tables(["workers", "runs", "all finished after", "runs/s"], rows, targets,
                 heading=machine_line("Service", info, f"PostgreSQL, {RUNS} runs of 5 x sleep 0.2"),
                 note=f"takeover: {fmt_seconds(taken)} from SIGKILL to the other worker's claim")
    write_json(ctx.out_dir / "service.json", {"benchmark": "service", "machine": info, "runs": RUNS, "slots": SLOTS,
                                              "scale_out": [one, three], "takeover_s": taken,
                                              "targets": [{"name": t.name, "limit": t.limit, "measured": t.measured,
                                                           "verdict": t.verdict} for t in targets]})
    return all(t.met for t in targets)
