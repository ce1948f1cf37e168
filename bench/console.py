"""Console benchmark: how soon the live run page shows an event, and the runs page over
10,000 runs. A real `runbook serve` on a free loopback port (SQLite, and a throwaway
PostgreSQL cluster: tests/integration/postgres.py), signed in with a real password.

  a. live: a 200-step run (each step `sleep 0.02`). A client follows the run page as
     console.js does: the run's Server-Sent Events (/runs/ID/events) and, on each, one
     fetch of the page at a time (events arriving meanwhile make one more fetch). An
     event is *shown* when a page fetched after it arrived is back. Latency is measured
     from the record's own time stamp (`t`, taken before the journal writes it), so it
     includes the write: p99 target 250 ms. Three set-ups: SQLite with the embedded
     workers (woken in-process), PostgreSQL with the embedded workers, and PostgreSQL
     with a separate `runbook worker` process (woken by LISTEN/NOTIFY).
  b. runs page: 10,000 runs (20 runbooks, every status, outcome and mode, over 30 days)
     listed with filters, server time from the `Server-Timing` header (the time until the
     answer starts: the page is rendered whole before), in turns over the filters: the
     whole list, a runbook, finished and failed, drills, one day, and the 100th page by
     following `Older` links. Target: p95 under 300 ms on SQLite and on PostgreSQL.

Each has its floor measured in the same turns: a GET of /healthz after each page fetch
(what a request costs the client on this machine at this moment), and the server time of
a static file among the filters: on a busy shared machine the tails are the scheduler's.
"""

from __future__ import annotations

import json
import os
import queue
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from bench._timing import ROOT, Context, Target, load_average, machine, machine_line, print_tables, write_json

sys.path.insert(0, str(ROOT / "tests" / "integration"))
from consolekit import Browser, set_password, write_config
from hookkit import free_port
from postgres import PgCluster

DESCRIPTION = "web console: an event on the live run page (p99 < 250 ms), the runs page over 10,000 runs (< 300 ms)"
STEPS = int(os.environ.get("BENCH_CONSOLE_STEPS", "200"))
RUNS = int(os.environ.get("BENCH_CONSOLE_RUNS", "10000"))
TURNS = int(os.environ.get("BENCH_CONSOLE_TURNS", "15"))
SHOWN_P99, PAGE_P95 = 0.250, 0.300
LONG = "kind: runbook\nversion: 1\nid: long\ntitle: Two hundred steps\nremediation:\n{steps}\n"


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


@contextmanager
def _serve(config: Path, home: Path, database: str, *extra: str) -> Iterator[str]:
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}, "RUNBOOK_HOME": str(home)}
    with open(home / "serve.log", "ab") as log:
        proc = subprocess.Popen([str(ROOT / ".venv" / "bin" / "runbook"), "serve", "--config", str(config),
                                 "--listen", f"127.0.0.1:{port}", "--database", database, *extra], env=env,
                                stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not _ready(base):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"runbook serve did not start: {(home / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(60)


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=5) as reply:
            return reply.status == 200
    except OSError:
        return False


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _follow(browser: Browser, run_id: str, arrived: queue.Queue[tuple[float, float] | None]) -> None:
    """The run's events as console.js hears them: (record time, arrival time) each."""
    request = urllib.request.Request(f"{browser.base}/runs/{run_id}/events")
    with browser.opener.open(request, timeout=300) as stream:
        for raw in stream:
            line = raw.decode()
            if line.startswith("data: {"):
                arrived.put((_epoch(json.loads(line[6:])["t"]), time.time()))
            elif line.startswith("event: end"):
                break
    arrived.put(None)


def _live(store_url: str, work: Path, separate_worker: bool) -> dict[str, Any]:
    """One 200-step run followed as the page follows it: each event's delivery and display latency."""
    from engine.service.store import NewRun, Store

    home = work / ("home-" + ("pg" if "postgres" in store_url else "sqlite") + ("-w" if separate_worker else ""))
    home.mkdir()
    config = write_config(work)
    runbook = work / "runbooks" / "long.yaml"
    runbook.write_text(LONG.format(steps="\n".join(f'  - {{id: s{n}, run: "sleep 0.02"}}' for n in range(STEPS))),
                       encoding="utf-8")
    set_password(config, home, "alice", database=store_url)
    extra = ("--no-workers",) if separate_worker else ()
    worker = None
    with _serve(config, home, store_url, *extra) as base:
        if separate_worker:
            env = {**os.environ, "RUNBOOK_HOME": str(home)}
            worker = subprocess.Popen([str(ROOT / ".venv" / "bin" / "runbook"), "worker", "--database", store_url],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            browser = Browser(base)
            browser.sign_in("alice")
            store = Store.open(store_url)
            run_id = store.enqueue(NewRun("long", str(runbook))).id
            store.close()
            return _measure(browser, run_id)
        finally:
            if worker is not None:
                worker.terminate()
                worker.wait(60)


def _measure(browser: Browser, run_id: str) -> dict[str, Any]:
    arrived: queue.Queue[tuple[float, float] | None] = queue.Queue()
    reader = threading.Thread(target=_follow, args=(browser, run_id, arrived), daemon=True)
    reader.start()
    delivered, shown, floor, fetches, ended = [], [], [], 0, False
    while not ended:
        batch = [arrived.get(timeout=300)]
        while not arrived.empty():
            batch.append(arrived.get_nowait())
        ended = batch[-1] is None
        events = [e for e in batch if e is not None]
        if not events:
            continue
        page = browser.get(f"/runs/{run_id}")  # started after these events arrived: it shows them
        done = time.time()
        fetches += 1
        assert page.status == 200, page.status
        delivered += [got - at for at, got in events]
        shown += [done - at for at, _ in events]
        t0 = time.time()  # the floor, in the same turn: a request that does nothing (the machine's share)
        browser.get("/healthz")
        floor.append(time.time() - t0)
    reader.join(60)
    return {"events": len(shown), "fetches": fetches, "delivered_p50": _pct(delivered, 50),
            "delivered_p99": _pct(delivered, 99), "shown_p50": _pct(shown, 50), "shown_p99": _pct(shown, 99),
            "shown_max": max(shown), "floor_p50": _pct(floor, 50), "floor_p99": _pct(floor, 99)}


# -- b. the runs page over 10,000 runs ----------------------------------------------------------


def _fill(store_url: str) -> float:
    """RUNS runs over the last 30 days, written in one transaction (the store's own table
    definition; a bench may write SQL, the engine's code may not). Returns a day in the middle."""
    from sqlalchemy import insert

    from engine.service.store import Store, tables

    rng = random.Random(16)
    now = time.time()
    rows = []
    for i in range(RUNS):
        status = rng.choice(("finished",) * 8 + ("cancelled", "queued"))
        rows.append({"id": f"run-{i:05d}", "runbook": f"rb-{rng.randrange(20):02d}", "file": "/rb.yaml",
                     "inputs": "{}", "secrets": "[]", "answers": "{}", "alert": None, "pool": "{}",
                     "origin": "bench", "status": status, "claims": 1, "last_seq": 10,
                     "outcome": rng.choice(("resolved", "resolved", "failed", "aborted")) if status == "finished"
                     else None, "mode": rng.choice(("live", "live", "drill", "dry-run")),
                     "created_at": now - rng.uniform(0, 30 * 86400), "started_at": None, "finished_at": None})
    store = Store.open(store_url)
    with store.engine.begin() as conn:
        conn.execute(insert(tables.runs), rows)
    store.close()
    return now - 15 * 86400


def _server_ms(browser: Browser, path: str) -> tuple[float, str]:
    reply = browser.get(path)
    assert reply.status == 200, (path, reply.status)
    return float(re.search(r"dur=([0-9.]+)", reply.headers["Server-Timing"]).group(1)) / 1000, reply.text


def _deep_page(browser: Browser) -> float:
    """The server time of the 100th page, reached by following `Older` links."""
    path, took = "/", 0.0
    for _ in range(100):
        took, text = _server_ms(browser, path)
        link = re.search(r'rel="next" href="(/\?[^"]+)"', text)
        if link is None:
            break
        path = link.group(1).replace("&amp;", "&")
    return took


def _runs_page(store_url: str, work: Path, label: str) -> dict[str, Any]:
    home = work / f"home-list-{label}"
    home.mkdir()
    config = write_config(work)
    set_password(config, home, "alice", database=store_url)
    day = time.strftime("%Y-%m-%d", time.gmtime(_fill(store_url)))
    filters = {"floor: a static file": "/static/console.css",
               "all": "/", "runbook": "/?runbook=rb-07", "finished, failed": "/?status=finished&outcome=failed",
               "drills": "/?mode=drill", "one day": f"/?since={day}&until={day}"}
    times: dict[str, list[float]] = {name: [] for name in [*filters, "100th page"]}
    with _serve(config, home, store_url, "--no-workers") as base:
        browser = Browser(base)
        browser.sign_in("alice")
        _server_ms(browser, "/")  # warm-up: templates compiled, connections opened
        for _ in range(TURNS):  # in turns: a machine getting busier slows every filter alike
            for name, path in filters.items():
                times[name].append(_server_ms(browser, path)[0])
        times["100th page"].append(_deep_page(browser))
    return {name: {"p50": _pct(v, 50), "p95": _pct(v, 95), "max": max(v), "n": len(v)} for name, v in times.items()}


def run(ctx: Context) -> bool:
    info = machine(ctx)
    cluster = PgCluster.create().start()
    cpu0 = os.times()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
            work = Path(tmp)
            live = {"SQLite, embedded workers": _live(f"sqlite:///{work}/live.db", work, False),
                    "PostgreSQL, embedded workers": _live(cluster.new_database("live"), work, False),
                    "PostgreSQL, a runbook worker process": _live(cluster.new_database("livew"), work, True)}
            pages = {"SQLite": _runs_page(f"sqlite:///{work}/list.db", work, "sqlite"),
                     "PostgreSQL": _runs_page(cluster.new_database("list"), work, "pg")}
    finally:
        cluster.destroy()
    cpu = os.times()
    info["load_average_after"] = load_average()
    return _report(ctx, info, live, pages, cpu.children_user + cpu.children_system - cpu0.children_user
                   - cpu0.children_system)


def _report(ctx: Context, info: dict[str, Any], live: dict[str, Any], pages: dict[str, Any], cpu: float) -> bool:
    ms = lambda s: f"{s * 1000:.0f} ms"  # noqa: E731
    targets = [Target(f"event shown, p99 ({name})", r["shown_p99"], SHOWN_P99) for name, r in live.items()]
    targets += [Target(f"runs page, p95 of every filter ({db})",
                       max(f["p95"] for name, f in r.items() if not name.startswith("floor")), PAGE_P95)
                for db, r in pages.items()]
    rows = [[name, str(r["events"]), str(r["fetches"]), f"{ms(r['delivered_p50'])} / {ms(r['delivered_p99'])}",
             f"{ms(r['shown_p50'])} / {ms(r['shown_p99'])}", ms(r["shown_max"])] for name, r in live.items()]
    rows += [[f"floor: GET /healthz after each fetch ({name})", str(r["fetches"]), "", "",
              f"{ms(r['floor_p50'])} / {ms(r['floor_p99'])}", ""] for name, r in live.items()]
    rows += [[f"runs page, {db}: {name}", str(f["n"]), "", "", f"{ms(f['p50'])} / {ms(f['p95'])}", ms(f["max"])]
             for db, r in pages.items() for name, f in r.items()]
    print_tables(["measured", "events / requests", "page fetches", "delivered p50 / p99", "shown (server) p50 / p95-99",
                  "max"], rows, targets,
                 heading=machine_line("Console", info, f"{STEPS}-step run, {RUNS} runs listed, {TURNS} turns",
                                      f"CPU of the servers and workers {cpu:.1f} s"))
    write_json(ctx.out_dir / "console.json", {"benchmark": "console", "machine": info, "live": live, "pages": pages,
                                              "cpu_children_s": cpu,
                                              "targets": [{"name": t.name, "limit": t.limit, "measured": t.measured,
                                                           "verdict": t.verdict} for t in targets]})
    return all(t.met for t in targets)
