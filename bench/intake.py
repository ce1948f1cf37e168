"""Intake benchmark: Alertmanager deliveries posted to `runbook serve`'s POST /hooks/<source>,
against a floor in the same run: a bare endpoint on the same server (uvicorn, Starlette,
the same store and database) that reads the body and inserts one row (bench/_intake_server.py).

Hook and floor take turns (hook, floor, hook, floor ...; TURNS of each), so a machine
that gets busier slows both alike; every figure is given with its spread over the turns,
and beside wall time the CPU each delivery cost the server (and, on PostgreSQL, the
database's processes), read from /proc before and after each turn.

  a. throughput: deliveries from 8 keep-alive clients as fast as the server answers,
     each notification posted twice (an HA pair: half are duplicates), each new alert
     routed and its run queued (no workers: the runs stay queued). On SQLite and on
     PostgreSQL. Target: at least 500 deliveries/s.
  b. latency at 200/s: deliveries sent on a fixed schedule; p50 and p99 of the answer's
     time, for the hook and for the floor. Targets: p99 under 50 ms, the hook's median at
     most 1.5x the floor's (the ratio taken per turn; its median).
  c. alert to action (the embedded default: SQLite, workers in-process): 100 alerts, one
     every 150 ms, each starting a run whose first command writes the time it starts.
     Targets: p50 under 100 ms, p99 under 300 ms from the delivery's sending.
  d. a duplicate storm: 10,000 deliveries of one notification -> exactly one run.

BENCH_INTAKE_DELIVERIES (default 2400 per endpoint, split over the turns),
BENCH_INTAKE_PACED_S (default 7.5 s per endpoint at 200/s, split over the turns) and
BENCH_INTAKE_TURNS (default 3) change the sizes. BENCH_PROFILE=FILE samples the server's
threads and writes where its time went to FILE (bench/_sampler.py). BENCH_INTAKE_INSTRUCTIONS=1
adds the instructions one delivery costs in-process on SQLite, hook and floor (callgrind,
bench/_intake_inprocess.py: steady under any load; four runs under valgrind, minutes).
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench import _instructions
from bench._timing import (
    ROOT,
    Context,
    Target,
    command_env,
    load_average,
    machine,
    machine_line,
    print_tables,
    write_json,
)
from bench._tree import tree_cpu

sys.path.insert(0, str(ROOT / "tests" / "integration"))
from hookkit import SECRETS, alertmanager, am_alert, write_service
from postgres import PgCluster, free_port

DESCRIPTION = "POST /hooks/<source>: deliveries/s and latency against a one-row floor, alert to first command"
DELIVERIES = int(os.environ.get("BENCH_INTAKE_DELIVERIES", "2400"))
PACED_S = float(os.environ.get("BENCH_INTAKE_PACED_S", "7.5"))
TURNS = max(1, int(os.environ.get("BENCH_INTAKE_TURNS", "3")))
CLIENTS = 8
RATE = 200.0
STORM = 10_000
ACTION_ALERTS = 100
INSTRUCTION_DELIVERIES = 200

ACTION_RUNBOOK = """\
kind: runbook
version: 1
id: disk-full
title: Disk full
inputs:
  host: {type: string, alert: labels.instance}
  dir: {type: string}
  pause: {type: string, default: "0"}
remediation:
  - id: clean
    run: "echo $(date +%s.%N) {{ inputs.host }} >> {{ inputs.dir }}/started"
"""

HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {SECRETS['AM_TOKEN']}"}


def _body(i: int) -> bytes:
    alert = am_alert(f"db-{i}", starts=f"2026-12-04T21:{i // 60 % 60:02d}:{i % 60:02d}Z")
    return json.dumps(alertmanager(alert, group_key=f'{{}}:{{instance="db-{i}"}}')).encode()


@dataclass(frozen=True)
class _Served:
    """A running intake server: its port and the processes whose CPU a delivery costs."""

    port: int
    pids: tuple[int, ...]

    def cpu(self) -> float:
        return sum(tree_cpu(pid) for pid in self.pids)


@contextmanager
def _server(config: Path, url: str, home: Path, *extra: str, database_pid: int | None = None) -> Iterator[_Served]:
    port = free_port()
    env = {**os.environ, **SECRETS, "RUNBOOK_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "_intake_server.py"), str(config), url, str(port),
                             *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not _ready(port):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the intake server did not start")
            time.sleep(0.1)
        yield _Served(port, (proc.pid,) if database_pid is None else (proc.pid, database_pid))
    finally:
        proc.terminate()
        proc.wait(30)


def _ready(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    except OSError:
        return False


class _Client(threading.local):
    """One keep-alive connection per thread."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, path: str, body: bytes) -> tuple[int, float]:
        start = time.perf_counter()
        self.conn.request("POST", path, body=body, headers=HEADERS)
        response = self.conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - start


def _throughput(port: int, path: str, bodies: list[bytes]) -> dict[str, Any]:
    client = _Client(port)
    start = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(lambda b: client.post(path, b), bodies))
    elapsed = time.perf_counter() - start
    return {"per_second": len(bodies) / elapsed, "statuses": sorted({s for s, _ in answers}),
            "times": [t for _, t in answers]}


def _paced(port: int, path: str, make: Callable[[int], bytes], offset: int, seconds: float) -> dict[str, Any]:
    """RATE deliveries a second on a fixed schedule, each timed from its own sending."""
    client = _Client(port)
    count = int(RATE * seconds)
    start = time.perf_counter() + 0.2

    def send(i: int) -> tuple[int, float]:
        delay = start + i / RATE - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        return client.post(path, make(offset + i))

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(send, range(count)))
    return {"statuses": sorted({s for s, _ in answers}), "times": [t for _, t in answers]}


def _percentiles(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {"p50": statistics.median(ordered), "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]}


def _timed(served: _Served, count: int, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """One turn: `measure()`'s figures with the CPU it cost the server (and database) and
    this client, per delivery, and the load average at its end."""
    server_before, client_before = served.cpu(), resource.getrusage(resource.RUSAGE_SELF)
    figures = measure()
    server, client = served.cpu() - server_before, resource.getrusage(resource.RUSAGE_SELF)
    client_cpu = (client.ru_utime - client_before.ru_utime) + (client.ru_stime - client_before.ru_stime)
    times = figures.pop("times")
    return {**figures, **_percentiles(times), "server_cpu_per_delivery": server / count,
            "client_cpu_per_delivery": client_cpu / count, "load": load_average()[0], "times": times}


def _pairs(offset: int, count: int) -> list[bytes]:
    """`count` deliveries: each new notification twice in a row, as an HA pair sends it."""
    return [b for i in range(count // 2) for b in (_body(offset + i),) * 2]


def _turns(served: _Served) -> list[dict[str, Any]]:
    """TURNS turns of both endpoints; which goes first alternates from turn to turn, so
    neither always follows the other's burst (its checkpoints, its dirty pages)."""
    size, seconds = max(2, DELIVERIES // TURNS), PACED_S / TURNS
    turns = []
    for turn in range(TURNS):
        base = (turn + 1) * 10**5
        row: dict[str, Any] = {}
        endpoints = [("hook", "/hooks/am", 0, 2), ("floor", "/floor", 5 * 10**4, 3)][::1 if turn % 2 == 0 else -1]
        for what, path, offset, _ in endpoints:
            bodies = _pairs(base + offset, size)
            row[what] = _timed(served, len(bodies), partial(_throughput, served.port, path, bodies))
        for what, path, _, offset in endpoints:
            count = int(RATE * seconds)
            row[f"paced_{what}"] = _timed(served, count, partial(_paced, served.port, path, _body,
                                                                 offset * 10**7 + base, seconds))
        turns.append(row)
        print(".", end="", flush=True)
    return turns


def _summary(turns: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """One endpoint's figures over the turns: medians and spreads, percentiles pooled."""
    rows = [t[key] for t in turns]
    pooled = _percentiles([x for r in rows for x in r.pop("times")])
    out: dict[str, Any] = {**pooled, "statuses": sorted({s for r in rows for s in r["statuses"]}), "turns": rows}
    for field in ("per_second", "server_cpu_per_delivery", "client_cpu_per_delivery", "p50"):
        values = [r[field] for r in rows if field in r]
        if values:
            out[f"{field}_median"], out[f"{field}_spread"] = statistics.median(values), (min(values), max(values))
    return out


def _database_figures(config: Path, url: str, home: Path, label: str, database_pid: int | None) -> dict[str, Any]:
    print(f"  {label}: {TURNS} turns of hook and floor ", end="", flush=True)
    with _server(config, url, home, database_pid=database_pid) as served:
        for path in ("/hooks/am", "/floor"):  # warm-up: connections, caches, statements prepared
            _throughput(served.port, path, _pairs(10**6, 300))
        turns = _turns(served)
    ratios = [t["paced_hook"]["p50"] / t["paced_floor"]["p50"] for t in turns]
    cpu = [t["hook"]["server_cpu_per_delivery"] / t["floor"]["server_cpu_per_delivery"] for t in turns]
    figures = {"database": label, **{k: _summary(turns, k) for k in ("hook", "floor", "paced_hook", "paced_floor")},
               "median_ratio": statistics.median(ratios), "median_ratio_spread": (min(ratios), max(ratios)),
               "cpu_ratio": statistics.median(cpu), "cpu_ratio_spread": (min(cpu), max(cpu))}
    print(f" hook {figures['hook']['per_second_median']:.0f}/s, floor {figures['floor']['per_second_median']:.0f}/s, "
          f"median at {RATE:.0f}/s {figures['median_ratio']:.2f}x the floor's")
    return figures


def _alert_to_action(tmp: Path) -> list[float]:
    config = write_service(tmp / "action")
    (tmp / "action" / "runbooks" / "disk-full.yaml").write_text(ACTION_RUNBOOK, encoding="utf-8")
    started = tmp / "action" / "work" / "started"
    sent: dict[str, float] = {}
    with _server(config, f"sqlite:///{tmp}/action/service.db", tmp / "action" / "home", "--workers") as served:
        client = _Client(served.port)
        for i in range(ACTION_ALERTS):
            body = _body(5 * 10**6 + i)
            sent[f"db-{5 * 10**6 + i}"] = time.time()
            status, _ = client.post("/hooks/am", body)
            if status != 202:
                raise RuntimeError(f"alert to action: the hook answered {status}")
            time.sleep(0.15)
        deadline = time.monotonic() + 120
        while len(_lines(started)) < ACTION_ALERTS and time.monotonic() < deadline:
            time.sleep(0.2)
    stamps = {host: float(stamp) for stamp, host in (line.split() for line in _lines(started))}
    return [stamps[host] - at for host, at in sent.items() if host in stamps]


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _storm(tmp: Path) -> tuple[int, int]:
    """10,000 deliveries of one notification: (runs queued, deliveries stored)."""
    from engine.service.store import Store

    config = write_service(tmp / "storm")
    url = f"sqlite:///{tmp}/storm/service.db"
    body = _body(7 * 10**6)
    with _server(config, url, tmp / "storm" / "home") as served:
        _throughput(served.port, "/hooks/am", [body] * STORM)
    store = Store.open(url)
    try:
        return len(store.runs()), sum(store.deliveries().values())
    finally:
        store.close()


def _instruction_counts() -> dict[str, float]:
    """Instructions one delivery costs in-process on SQLite, hook and floor (callgrind:
    steady under any load, where the latencies move 2-4x): each endpoint's count after
    INSTRUCTION_DELIVERIES deliveries less its count after none."""
    script = str(ROOT / "bench" / "_intake_inprocess.py")
    # Once outside callgrind first: the counts are to hold no compiling of bytecode.
    subprocess.run([sys.executable, script, "hook", "0"], env=command_env(), check=True)
    runs = [(what, n) for what in ("hook", "floor") for n in (0, INSTRUCTION_DELIVERIES)]

    def count(run: tuple[str, int]) -> int:
        return _instructions.instructions([sys.executable, script, run[0], str(run[1])])

    with ThreadPoolExecutor(len(runs)) as pool:
        counts = dict(zip(runs, pool.map(count, runs), strict=True))
    return {what: (counts[(what, INSTRUCTION_DELIVERIES)] - counts[(what, 0)]) / INSTRUCTION_DELIVERIES
            for what in ("hook", "floor")}


def _postmaster(cluster: PgCluster) -> int:
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


def run(ctx: Context) -> bool:
    info = machine(ctx)
    cluster = PgCluster.create().start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-intake-") as name:
            tmp = Path(name)
            config = write_service(tmp)
            figures = [_database_figures(config, f"sqlite:///{tmp}/sqlite.db", tmp / "home", "SQLite", None),
                       _database_figures(config, cluster.new_database("intake"), tmp / "home", "PostgreSQL",
                                         _postmaster(cluster))]
            action = _alert_to_action(tmp)
            storm_runs, storm_stored = _storm(tmp)
        wanted = os.environ.get("BENCH_INTAKE_INSTRUCTIONS") == "1" and _instructions.available()
        instructions = _instruction_counts() if wanted else {}
    finally:
        cluster.destroy()
    info["load_average_after"] = load_average()
    return _report(ctx, info, figures, action, (storm_runs, storm_stored), instructions)


def _spread(values: tuple[float, float], fmt: Callable[[float], str]) -> str:
    return f"{fmt(values[0])} - {fmt(values[1])}"


def _rows(f: dict[str, Any]) -> list[list[str]]:
    def ms(x: float) -> str:
        return f"{x * 1e3:.2f} ms"

    def latency(x: float) -> str:  # tenths of a millisecond: medians of 2 and 3 ms hid a 1.5x
        return f"{x * 1e3:.1f} ms"

    rows = []
    for what, key, paced in (("hook", "hook", "paced_hook"), ("floor (one row)", "floor", "paced_floor")):
        t, p = f[key], f[paced]
        rate = f"{t['per_second_median']:.0f} ({_spread(t['per_second_spread'], '{:.0f}'.format)})"
        rows.append([f["database"], what, rate,
                     latency(t["p50"]), latency(t["p99"]), latency(p["p50"]), latency(p["p99"]),
                     f"{ms(t['server_cpu_per_delivery_median'])} ({_spread(t['server_cpu_per_delivery_spread'], ms)})",
                     ms(t["client_cpu_per_delivery_median"])])
    return rows


def _report(ctx: Context, info: dict[str, Any], figures: list[dict[str, Any]], action: list[float],
            storm: tuple[int, int], instructions: dict[str, float]) -> bool:
    rows, targets, notes = [], [], []
    for f in figures:
        db = f["database"]
        rows += _rows(f)
        targets += [Target(f"{db}: deliveries/s, 8 clients (median of {TURNS} turns)", f["hook"]["per_second_median"],
                           500, below=False, unit="/s"),
                    Target(f"{db}: p99 at {RATE:.0f}/s", f["paced_hook"]["p99"], 0.050),
                    Target(f"{db}: median / floor's at {RATE:.0f}/s (median of {TURNS} turns)", f["median_ratio"], 1.5,
                           unit="x")]
        notes.append(f"{db}: median at {RATE:.0f}/s {f['paced_hook']['p50_median'] * 1e3:.1f} ms against the floor's "
                     f"{f['paced_floor']['p50_median'] * 1e3:.1f} ms (medians of the turns), {f['median_ratio']:.2f}x "
                     f"(turns {_spread(f['median_ratio_spread'], '{:.2f}'.format)}); server CPU per delivery "
                     f"{f['cpu_ratio']:.2f}x the floor's (turns {_spread(f['cpu_ratio_spread'], '{:.2f}'.format)})")
    waits = _percentiles(action) if action else {"p50": float("inf"), "p99": float("inf")}
    targets += [Target("alert to first command, p50", waits["p50"], 0.100),
                Target("alert to first command, p99", waits["p99"], 0.300),
                Target(f"{len(action)} of {ACTION_ALERTS} alerts acted on", float(len(action)), ACTION_ALERTS,
                       below=False, unit=""),
                Target(f"duplicate storm: {STORM} deliveries, runs", float(storm[0]), 1.0, below=False, unit=""),
                Target("duplicate storm: at most one run", float(storm[0]), 2.0, unit="")]
    notes.append(f"alert to action over {len(action)} alerts: p50 {waits['p50'] * 1e3:.1f} ms, "
                 f"p99 {waits['p99'] * 1e3:.1f} ms; storm: {storm[1]} deliveries stored, {storm[0]} run(s)")
    if instructions:
        notes.append(f"instructions per delivery in-process on SQLite (callgrind, no HTTP): hook "
                     f"{instructions['hook'] / 1e3:.0f} k, floor {instructions['floor'] / 1e3:.0f} k "
                     f"({instructions['hook'] / instructions['floor']:.2f}x)")
    print_tables(["database", "endpoint", "deliveries/s (turns)", "p50 (8 clients)", "p99 (8 clients)",
                  f"p50 at {RATE:.0f}/s", f"p99 at {RATE:.0f}/s", "server CPU per delivery (turns)",
                  "client CPU per delivery"], rows, targets,
                 heading=machine_line("Intake", info, f"{DELIVERIES} Alertmanager deliveries per endpoint "
                                                       f"(half duplicates) in {TURNS} turns"),
                 note="\n  ".join(notes))
    write_json(ctx.out_dir / "intake.json", {
        "benchmark": "intake", "machine": info, "deliveries": DELIVERIES, "turns": TURNS, "clients": CLIENTS,
        "rate": RATE, "databases": figures, "alert_to_action": {"alerts": len(action), **waits},
        "storm": {"deliveries": STORM, "stored": storm[1], "runs": storm[0]},
        "instructions_per_delivery": instructions,
        "targets": [{"name": t.name, "limit": t.limit, "measured": t.measured, "verdict": t.verdict}
                    for t in targets]})
    return all(t.met for t in targets)
