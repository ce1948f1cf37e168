"""Intake benchmark: Alertmanager deliveries posted to `runbook serve`'s POST /hooks/<source>,
against a floor in the same run: a bare endpoint on the same server (uvicorn, Starlette,
the same store and database) that reads the body and inserts one row (bench/_intake_server.py).

  a. throughput: DELIVERIES deliveries from 8 keep-alive clients as fast as the server
     answers, each notification posted twice (an HA pair: half are duplicates), each new
     alert routed and its run queued (no workers: the runs stay queued). On SQLite and on
     PostgreSQL. Target: at least 500 deliveries/s.
  b. latency at 200/s: deliveries sent on a fixed schedule for PACED_S seconds; p50 and
     p99 of the answer's time, for the hook and for the floor. Targets: p99 under 50 ms,
     the hook's median at most 1.5x the floor's.
  c. alert to action (the embedded default: SQLite, workers in-process): 100 alerts, one
     every 150 ms, each starting a run whose first command writes the time it starts.
     Targets: p50 under 100 ms, p99 under 300 ms from the delivery's sending.
  d. a duplicate storm: 10,000 deliveries of one notification -> exactly one run.

BENCH_INTAKE_DELIVERIES (default 4000) and BENCH_INTAKE_PACED_S (default 10) shorten it.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
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
from hookkit import SECRETS, alertmanager, am_alert, write_service
from postgres import PgCluster, free_port

DESCRIPTION = "POST /hooks/<source>: deliveries/s and latency against a one-row floor, alert to first command"
DELIVERIES = int(os.environ.get("BENCH_INTAKE_DELIVERIES", "4000"))
PACED_S = float(os.environ.get("BENCH_INTAKE_PACED_S", "10"))
CLIENTS = 8
RATE = 200.0
STORM = 10_000
ACTION_ALERTS = 100

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


@contextmanager
def _server(config: Path, url: str, home: Path, *extra: str) -> Iterator[int]:
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
        yield port
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
            **_percentiles([t for _, t in answers])}


def _paced(port: int, path: str, make: Callable[[int], bytes], offset: int) -> dict[str, Any]:
    """RATE deliveries a second on a fixed schedule, each timed from its own sending."""
    client = _Client(port)
    count = int(RATE * PACED_S)
    start = time.perf_counter() + 0.2

    def send(i: int) -> tuple[int, float]:
        delay = start + i / RATE - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        return client.post(path, make(offset + i))

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(send, range(count)))
    return {"statuses": sorted({s for s, _ in answers}), **_percentiles([t for _, t in answers])}


def _percentiles(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {"p50": statistics.median(ordered), "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]}


def _database_figures(config: Path, url: str, home: Path, label: str) -> dict[str, Any]:
    unique = [_body(i) for i in range(DELIVERIES // 2)]
    pairs = [b for body in unique for b in (body, body)]
    with _server(config, url, home) as port:
        _throughput(port, "/hooks/am", [_body(10**6 + i) for i in range(200)])  # warm-up
        hook = _throughput(port, "/hooks/am", pairs)
        floor = _throughput(port, "/floor", pairs)
        paced_hook = _paced(port, "/hooks/am", _body, 2 * 10**6)
        paced_floor = _paced(port, "/floor", _body, 3 * 10**6)
    return {"database": label, "hook": hook, "floor": floor, "paced_hook": paced_hook, "paced_floor": paced_floor}


def _alert_to_action(tmp: Path) -> list[float]:
    config = write_service(tmp / "action")
    (tmp / "action" / "runbooks" / "disk-full.yaml").write_text(ACTION_RUNBOOK, encoding="utf-8")
    started = tmp / "action" / "work" / "started"
    sent: dict[str, float] = {}
    with _server(config, f"sqlite:///{tmp}/action/service.db", tmp / "action" / "home", "--workers") as port:
        client = _Client(port)
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
    with _server(config, url, tmp / "storm" / "home") as port:
        _throughput(port, "/hooks/am", [body] * STORM)
    store = Store.open(url)
    try:
        return len(store.runs()), sum(store.deliveries().values())
    finally:
        store.close()


def run(ctx: Context) -> bool:
    info = machine(ctx)
    cluster = PgCluster.create().start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-intake-") as name:
            tmp = Path(name)
            config = write_service(tmp)
            figures = [_database_figures(config, f"sqlite:///{tmp}/sqlite.db", tmp / "home", "SQLite"),
                       _database_figures(config, cluster.new_database("intake"), tmp / "home", "PostgreSQL")]
            action = _alert_to_action(tmp)
            storm_runs, storm_stored = _storm(tmp)
    finally:
        cluster.destroy()
    info["load_average_after"] = load_average()
    return _report(ctx, info, figures, action, (storm_runs, storm_stored))


def _report(ctx: Context, info: dict[str, Any], figures: list[dict[str, Any]], action: list[float],
            storm: tuple[int, int]) -> bool:
    rows, targets = [], []
    for f in figures:
        db = f["database"]
        for what, key, paced in (("hook", "hook", "paced_hook"), ("floor (one row)", "floor", "paced_floor")):
            t, p = f[key], f[paced]
            rows.append([db, what, f"{t['per_second']:.0f}", fmt_seconds(t["p50"]), fmt_seconds(t["p99"]),
                         fmt_seconds(p["p50"]), fmt_seconds(p["p99"])])
        targets += [Target(f"{db}: deliveries/s, 8 clients", f["hook"]["per_second"], 500, below=False, unit="/s"),
                    Target(f"{db}: p99 at {RATE:.0f}/s", f["paced_hook"]["p99"], 0.050),
                    Target(f"{db}: median / floor's at {RATE:.0f}/s",
                           f["paced_hook"]["p50"] / f["paced_floor"]["p50"], 1.5, unit="x")]
    waits = _percentiles(action) if action else {"p50": float("inf"), "p99": float("inf")}
    targets += [Target("alert to first command, p50", waits["p50"], 0.100),
                Target("alert to first command, p99", waits["p99"], 0.300),
                Target(f"{len(action)} of {ACTION_ALERTS} alerts acted on", float(len(action)), ACTION_ALERTS,
                       below=False, unit=""),
                Target(f"duplicate storm: {STORM} deliveries, runs", float(storm[0]), 1.0, below=False, unit=""),
                Target("duplicate storm: at most one run", float(storm[0]), 2.0, unit="")]
    print_tables(["database", "endpoint", "deliveries/s", "p50 (8 clients)", "p99 (8 clients)", f"p50 at {RATE:.0f}/s",
                  f"p99 at {RATE:.0f}/s"], rows, targets,
                 heading=machine_line("Intake", info, f"{DELIVERIES} Alertmanager deliveries, half duplicates"),
                 note=f"alert to action over {len(action)} alerts: p50 {fmt_seconds(waits['p50'])}, "
                      f"p99 {fmt_seconds(waits['p99'])}; storm: {storm[1]} deliveries stored, {storm[0]} run(s)")
    write_json(ctx.out_dir / "intake.json", {
        "benchmark": "intake", "machine": info, "deliveries": DELIVERIES, "clients": CLIENTS, "rate": RATE,
        "databases": figures, "alert_to_action": {"alerts": len(action), **waits},
        "storm": {"deliveries": STORM, "stored": storm[1], "runs": storm[0]},
        "targets": [{"name": t.name, "limit": t.limit, "measured": t.measured, "verdict": t.verdict}
                    for t in targets]})
    return all(t.met for t in targets)
