"""Service benchmark: workers scaling out on PostgreSQL, and a takeover after SIGKILL.

A real PostgreSQL (Debian's, a throwaway cluster on a free loopback port; see
tests/integration/postgres.py), real `runbook worker` processes.

  a. scale out: RUNS runs of a five-step runbook whose steps wait on I/O (`sleep 0.2`),
     queued once 1 (then 3) worker processes are up (SLOTS runs at once each; timed from
     the first enqueue to the last run's end), each on a fresh database. One worker and
     three take turns (1, 3, 1, 3 ...; TURNS of each), so a machine that gets busier
     slows both alike; the speed-up is taken per turn. Beside wall time, the CPU each run
     cost (the workers with the commands they ran, and PostgreSQL's processes), read from
     /proc. Every run must finish resolved, claimed once, with each of its steps run once.
     Target: 3 workers at least 2.5x faster than 1.
  b. takeover: a worker process is SIGKILLed in the middle of a step; another worker
     already running takes the run over. Target: within the lease plus 2 s of the kill.

RUNS defaults to 192 so that the benchmark ends within about two minutes (BENCH_SERVICE_RUNS=1000
is the issue's figure: about five minutes on a quiet machine); SLOTS to 8
(BENCH_SERVICE_SLOTS); TURNS to 2 (BENCH_SERVICE_TURNS).
"""

from __future__ import annotations

import os
import signal
import statistics
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
from bench._tree import tree_cpu

sys.path.insert(0, str(ROOT / "tests" / "integration"))
from postgres import PgCluster

DESCRIPTION = "runbook worker on PostgreSQL: 1 vs 3 workers over queued I/O-bound runs, and a takeover after SIGKILL"
RUNS = int(os.environ.get("BENCH_SERVICE_RUNS", "192"))
SLOTS = int(os.environ.get("BENCH_SERVICE_SLOTS", "8"))
TURNS = max(1, int(os.environ.get("BENCH_SERVICE_TURNS", "2")))
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


def _cpu(procs: list[subprocess.Popen[bytes]], database_pid: int) -> tuple[float, float]:
    """CPU seconds so far of the workers (with the commands they ran) and of PostgreSQL."""
    return sum(tree_cpu(p.pid) for p in procs), tree_cpu(database_pid)


def _scale_out(cluster: PgCluster, work: Path, workers: int, turn: int, env: dict[str, str]) -> dict[str, Any]:
    from engine.service.store import NewRun, Store

    name = f"{workers}-{turn}"
    counts = work / f"counts-{name}"
    runbook = work / f"five-{name}.yaml"
    steps = "\n".join(STEP.format(n=n, counts=counts) for n in range(1, 6))
    runbook.write_text(FIVE_STEPS.format(steps=steps), encoding="utf-8")
    url = cluster.new_database(f"scale{workers}x{turn}")
    store = Store.open(url)
    procs = _workers(url, workers, env)
    try:
        # Timed from when every worker is up: a process's start-up is not what scales.
        _until(lambda: len(store.workers(state="running")) == workers, 300)
        (workers_before, database_before), start = _cpu(procs, _postmaster(cluster)), time.monotonic()
        ids = [store.enqueue(NewRun("five-steps", str(runbook))).id for _ in range(RUNS)]
        _until(lambda: store.counts().get("finished", 0) == RUNS, 3600, poll=0.25)
        elapsed = time.monotonic() - start
        workers_after, database_after = _cpu(procs, _postmaster(cluster))
    finally:
        _stop(procs)
    runs = store.runs(limit=RUNS + 1)
    store.close()
    once = all(r.outcome == "resolved" and r.claims == 1 for r in runs) and len(runs) == len(ids)
    lines = counts.read_text().splitlines()
    print(".", end="", flush=True)
    return {"workers": workers, "seconds": elapsed, "runs_per_second": RUNS / elapsed,
            "worker_cpu_per_run": (workers_after - workers_before) / RUNS,
            "database_cpu_per_run": (database_after - database_before) / RUNS, "load": load_average()[0],
            "every_run_once": once and len(lines) == 5 * RUNS}


def _postmaster(cluster: PgCluster) -> int:
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


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
            print(f"  {TURNS} turns of 1 and 3 workers, {RUNS} runs each ", end="", flush=True)
            turns = [(_scale_out(cluster, work, 1, turn, env), _scale_out(cluster, work, 3, turn, env))
                     for turn in range(TURNS)]
            taken = _takeover(cluster, work, env)
            print()
    finally:
        cluster.destroy()
    info["load_average_after"] = load_average()
    return _report(ctx, info, turns, taken)


def _median_spread(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def _report(ctx: Context, info: dict[str, Any], turns: list[tuple[dict[str, Any], dict[str, Any]]],
            taken: float) -> bool:
    speed_ups = [one["seconds"] / three["seconds"] for one, three in turns]
    speed_up = statistics.median(speed_ups)
    once = all(r["every_run_once"] for pair in turns for r in pair)
    targets = [Target(f"3 workers vs 1 (speed-up, median of {TURNS} turns)", speed_up, SPEED_UP, below=False,
                      unit="x"),
               Target("every run finished once, each step once", float(once), 1.0, below=False, unit=""),
               Target(f"takeover after SIGKILL (lease {LEASE:g} s + 2 s)", taken, LEASE + 2.0)]
    rows = []
    for index, label in ((0, "1 worker"), (1, "3 workers")):
        measured = [pair[index] for pair in turns]
        wall = _median_spread([r["seconds"] for r in measured])
        ideal = RUNS * 5 * 0.2 / (SLOTS * (index * 2 + 1))  # every slot busy sleeping, nothing else
        rows.append([f"{label} x {SLOTS} slots", str(RUNS), f"{fmt_seconds(wall[0])} ({fmt_seconds(wall[1])} - "
                     f"{fmt_seconds(wall[2])})", f"{RUNS / wall[0]:.1f}", fmt_seconds(ideal),
                     f"{statistics.median(r['worker_cpu_per_run'] for r in measured) * 1e3:.0f} ms",
                     f"{statistics.median(r['database_cpu_per_run'] for r in measured) * 1e3:.0f} ms"])
    print_tables(["workers", "runs", f"all finished after (median, {TURNS} turns)", "runs/s", "ideal",
                  "worker CPU per run", "PostgreSQL CPU per run"], rows, targets,
                 heading=machine_line("Service", info, f"PostgreSQL, {RUNS} runs of 5 x sleep 0.2, {TURNS} turns"),
                 note=f"speed-up per turn: {', '.join(f'{x:.2f}x' for x in speed_ups)}; load average at the end of "
                      f"each turn: {', '.join(str(r['load']) for pair in turns for r in pair)}; takeover: "
                      f"{fmt_seconds(taken)} from SIGKILL to the other worker's claim")
    write_json(ctx.out_dir / "service.json", {"benchmark": "service", "machine": info, "runs": RUNS, "slots": SLOTS,
                                              "turns": [list(pair) for pair in turns], "speed_up": speed_up,
                                              "speed_ups": speed_ups, "takeover_s": taken,
                                              "targets": [{"name": t.name, "limit": t.limit, "measured": t.measured,
                                                           "verdict": t.verdict} for t in targets]})
    return all(t.met for t in targets)
