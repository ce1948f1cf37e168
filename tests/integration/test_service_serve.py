"""A real `runbook serve` process on a free loopback port, driven over HTTP: the embedded
default (SQLite under $RUNBOOK_HOME, workers in-process) carries out a queued run;
/healthz, /readyz and /metrics say what is true; with PostgreSQL, serve and a separate
`runbook worker` share the store, and /readyz follows the database going away and back.
SIGTERM ends both cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from postgres import PgCluster, free_port, wait_for
from servicekit import queue_run, takeover_runbook

from engine.service.store import Store

pytestmark = pytest.mark.integration


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


@contextmanager
def _process(args: list[str], home: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}, "RUNBOOK_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "engine", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _terminate(proc: subprocess.Popen[bytes]) -> str:
    """SIGTERM; the process must exit 0 without a traceback. Its stderr."""
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    text = err.decode()
    assert proc.returncode == 0, text
    assert "Traceback" not in text
    return text


def _finished(store: Store, run_id: str) -> bool:
    run = store.run(run_id)
    return run is not None and run.status == "finished"


def test_the_embedded_default_serves_and_carries_out_runs(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    base = f"http://127.0.0.1:{port}"
    with _process(["serve", "--listen", f"127.0.0.1:{port}"], home) as proc:
        wait_for(lambda: _get(f"{base}/healthz")[0] == 200, 60, "runbook serve to answer /healthz")
        status, body = _get(f"{base}/readyz")
        assert status == 200 and json.loads(body) == {"ready": True, "store": "sqlite", "workers": 4}
        store = Store.open(f"sqlite:///{home}/service.db")  # the default store, made by serve
        run_id = queue_run(store, takeover_runbook(tmp_path), tmp_path / "work")
        wait_for(lambda: _finished(store, run_id), 60, "the embedded worker to carry out the run")
        run = store.run(run_id)
        assert run is not None and run.outcome == "resolved"
        metrics = _get(f"{base}/metrics")[1]
        assert 'runbook_runs{status="finished"} 1.0' in metrics
        assert 'runbook_runs_finished_total{outcome="resolved"} 1.0' in metrics
        assert "runbook_queue_depth 0.0" in metrics and "runbook_store_up 1.0" in metrics
        assert _request_id(f"{base}/nope", "trace-42") == "trace-42"  # the caller's id, echoed
        assert re.fullmatch(r"[0-9a-f]{16}", _request_id(f"{base}/healthz", "bad id\u00e9"))
        log = _terminate(proc)
        store.close()
    assert "listening on http://127.0.0.1:" in log
    assert "stopped (1 run(s) carried out, 0 handed over, 0 time(s) parked for a person, 0 lost" in log
    assert "request=trace-42 method=GET path=/nope status=404 ms=" in log
    assert "path=/healthz" not in log  # probes are logged at DEBUG only


def _request_id(url: str, given: str) -> str:
    request = urllib.request.Request(url, headers={"X-Request-Id": given})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(response.headers["X-Request-Id"])
    except urllib.error.HTTPError as exc:
        return str(exc.headers["X-Request-Id"])


def test_serve_and_a_worker_share_postgresql_and_readyz_follows_it(postgres: PgCluster, tmp_path: Path) -> None:
    url, port = postgres.new_database("serve_shared"), free_port()
    base = f"http://127.0.0.1:{port}"
    with _process(["serve", "--database", url, "--listen", f"127.0.0.1:{port}", "--no-workers"], tmp_path) as server, \
            _process(["worker", "--database", url, "--lease", "5"], tmp_path) as worker:
        wait_for(lambda: _get(f"{base}/readyz")[0] == 200, 60, "runbook serve to be ready")
        assert json.loads(_get(f"{base}/readyz")[1]) == {"ready": True, "store": "postgresql", "workers": 0}
        store = Store.open(url)
        run_id = queue_run(store, takeover_runbook(tmp_path), tmp_path / "work")
        wait_for(lambda: _finished(store, run_id), 60, "the worker process to carry out the run")
        postgres.stop()
        try:
            status, body = _get(f"{base}/readyz")
            assert status == 503 and "the store cannot be reached" in json.loads(body)["reason"]
            assert _get(f"{base}/healthz")[0] == 200  # alive, only not ready
        finally:
            postgres.start()
        wait_for(lambda: _get(f"{base}/readyz")[0] == 200, 60, "ready again once PostgreSQL is back")
        store.close()
        _terminate(worker)
        _terminate(server)


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with _process(["serve", "--listen", f"127.0.0.1:{port}"], tmp_path) as proc:
            _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.decode().strip() == f"runbook: error: cannot listen on 127.0.0.1:{port}: Address already in use"
