"""POST /hooks/<source> on a real `runbook serve` (uvicorn on a free loopback port), with
the senders' real payloads signed as they sign them: an alert starts its runbook with
inputs from the alert; every refusal is a clear 4xx (never a traceback); a duplicate
storm starts exactly one run; a resolved alert cancels its queued run or is recorded on
a running one; once_within throttles per label set; an unrouted alert is kept and shown;
a store that cannot take a delivery answers 503."""

from __future__ import annotations

import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hookkit import (
    SECRETS,
    alertmanager,
    am_alert,
    basic,
    bearer,
    encode,
    get,
    grafana,
    grafana_signed,
    pagerduty,
    pagerduty_signed,
    post,
    serving,
    stop,
    write_service,
)
from postgres import PgCluster, wait_for

from engine.service.store import Store

pytestmark = pytest.mark.integration


def _stop(proc: subprocess.Popen[bytes], home: Path | None = None) -> str:
    """SIGTERM; a clean exit with no traceback. Its log (`runbook serve`'s, given its home)."""
    if home is not None:
        return stop(proc, home)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    text = err.decode()
    assert proc.returncode == 0 and "Traceback" not in text, text
    return text


def _runs(store: Store, status: str | None = None) -> list[str]:
    return [r.id for r in store.runs(status=status)]


def _ended(store: Store, n: int) -> bool:
    return len(_runs(store, "finished")) + len(_runs(store, "cancelled")) >= n


def test_each_sender_starts_its_runbook_with_inputs_from_the_alert(tmp_path: Path, database: str) -> None:
    config = write_service(tmp_path)
    with serving(config, tmp_path / "home", "--database", database) as (base, proc):
        status, answer = post(f"{base}/hooks/am", encode(alertmanager(am_alert("db-1"), am_alert("web-1"))), bearer())
        assert status == 202
        queued, unrouted = answer["alerts"]
        assert queued["action"] == "queued" and queued["detail"].startswith("route disk: run ")
        assert unrouted == {"fingerprint": am_alert("web-1")["fingerprint"], "name": "DiskFull", "status": "firing",
                            "action": "unrouted", "detail": "no route matches it: stored, no run", "run_id": None}
        body = encode(grafana("db-2"))
        assert post(f"{base}/hooks/grafana", body, grafana_signed(body))[0] == 202
        body = encode(pagerduty())
        assert post(f"{base}/hooks/pd", body, pagerduty_signed(body, "pd-key-old", SECRETS["PD_KEY"]))[0] == 202
        checks = {"checks": [{"check": "BackupMissing", "state": "failing", "id": "b1", "since": "t1", "tags": {}}]}
        assert post(f"{base}/hooks/ci", encode(checks), basic("ci", SECRETS["CI_PASSWORD"]))[0] == 202
        store = Store.open(database)
        wait_for(lambda: _ended(store, 4), 60, "the four runs to finish")
        assert sorted((tmp_path / "work" / "cleaned").read_text().split()) == ["ci-host", "db-1", "db-2", "pd-host"]
        run = store.run(queued["run_id"])
        assert run is not None and run.outcome == "resolved" and run.inputs["host"] == "db-1"
        assert run.alert is not None and run.alert["labels"]["instance"] == "db-1"  # journaled as a CLI run's
        shown = store.alerts(unrouted=True)  # the API lists them to a token's holder (test_service_api)
        assert [(a.labels["instance"], a.route, a.run_id) for a in shown] == [("web-1", None, None)]
        assert get(f"{base}/alerts")[0] == 404 and get(f"{base}/api/alerts?unrouted=1")[0] == 401
        [routed] = [a for a in store.alerts() if a.run_id == run.id]
        assert routed.route == "disk" and routed.policy["unattended"] == ["remediation"]
        store.close()
        _stop(proc, tmp_path / "home")


def test_every_refusal_is_a_clear_4xx_and_no_traceback(tmp_path: Path) -> None:
    config = write_service(tmp_path)
    with serving(config, tmp_path / "home") as (base, proc):
        good = encode(alertmanager(am_alert("db-1")))
        assert post(f"{base}/hooks/nope", good, bearer()) == (404, {
            "error": "no source named 'nope' (sources: am, ci, grafana, pd)"})
        assert post(f"{base}/hooks/am", good) == (401, {
            "error": "missing credentials: expected Authorization: Bearer <token>"})
        assert post(f"{base}/hooks/am", good, bearer("stolen"))[1] == {"error": "the bearer token is not this source's"}
        body = encode(grafana("db-1"))
        assert post(f"{base}/hooks/grafana", body, grafana_signed(body, "guessed"))[0] == 401
        assert post(f"{base}/hooks/grafana", body, grafana_signed(body, stamp=time.time() - 3600))[0] == 401
        body = encode(pagerduty())
        assert post(f"{base}/hooks/pd", body, pagerduty_signed(body, "old-one", "other"))[1] == {
            "error": "no signature in X-PagerDuty-Signature matches the body (signed with another secret, or altered)"}
        assert post(f"{base}/hooks/ci", b"{}", basic("ci", "wrong"))[0] == 401
        assert post(f"{base}/hooks/am", b"x" * (2 << 20), bearer()) == (413, {
            "error": "the body is larger than 1048576 bytes"})
        status, answer = post(f"{base}/hooks/am", b'{"alerts": [{"labels": {"alertname": 1}', bearer())
        assert status == 400 and answer["error"].startswith("the body is not JSON: ") and answer["delivery"] == 1
        status, answer = post(f"{base}/hooks/am", encode({"version": "4", "alerts": [{"labels": {}}]}), bearer())
        assert (status, answer["error"]) == (400, "status is missing: expected firing or resolved")
        metrics = get(f"{base}/metrics")[1]
        assert 'runbook_deliveries_total{status="rejected"} 2.0' in metrics
        assert 'runbook_deliveries_refused_total{reason="unauthenticated"} 6.0' in metrics
        assert 'runbook_deliveries_refused_total{reason="too_large"} 1.0' in metrics
        log = _stop(proc, tmp_path / "home")
    assert "refused a delivery from 127.0.0.1: the bearer token is not this source's" in log
    assert "stolen" not in log


def test_a_duplicate_storm_starts_exactly_one_run(tmp_path: Path, database: str) -> None:
    """An HA pair and its retries post one notification 3,000 times at once (`make bench`
    posts 10,000): one run, every delivery stored, all but one as a duplicate."""
    config = write_service(tmp_path)
    body = encode(alertmanager(am_alert("db-1")))
    with serving(config, tmp_path / "home", "--database", database) as (base, proc):
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda _: post(f"{base}/hooks/am", body, bearer())[0], range(3000)))
        assert sorted(set(answers)) == [200, 202] and answers.count(202) == 1
        # The same alert again in another grouping (another notification): nothing new.
        again = alertmanager(am_alert("db-1"), am_alert("db-7"), group_key="{}:{severity=\"page\"}")
        status, answer = post(f"{base}/hooks/am", encode(again), bearer())
        assert status == 202 and [a["action"] for a in answer["alerts"]] == ["duplicate", "queued"]
        store = Store.open(database)
        wait_for(lambda: _ended(store, 2), 60, "the runs to finish")
        assert len(store.runs()) == 2
        assert store.deliveries() == {"accepted": 2, "duplicate": 2999}
        assert (tmp_path / "work" / "cleaned").read_text().split() == ["db-1", "db-7"] or sorted(
            (tmp_path / "work" / "cleaned").read_text().split()) == ["db-1", "db-7"]
        store.close()
        _stop(proc, tmp_path / "home")


def test_a_resolved_alert_never_remediates(tmp_path: Path, postgres: PgCluster) -> None:
    """Queued (no worker yet): its run is cancelled. Running: recorded on the run, which
    goes on. Never seen firing: stored, no run."""
    database = postgres.new_database("intake_resolved")
    config = write_service(tmp_path, pause=3)
    with serving(config, tmp_path / "home", "--database", database, "--no-workers") as (base, proc):
        _, first = post(f"{base}/hooks/am", encode(alertmanager(am_alert("db-1"))), bearer())
        resolved = alertmanager(am_alert("db-1", status="resolved"), status="resolved")
        status, answer = post(f"{base}/hooks/am", encode(resolved), bearer())
        run_id = first["alerts"][0]["run_id"]
        assert status == 202 and answer["alerts"][0]["action"] == "cancelled"
        assert answer["alerts"][0]["run_id"] == run_id
        store = Store.open(database)
        assert (store.run(run_id).status, store.run(run_id).reason) == (  # type: ignore[union-attr]
            "cancelled", "its alert resolved before it started")
        late = alertmanager(am_alert("db-3", status="resolved"), status="resolved")
        assert post(f"{base}/hooks/am", encode(late), bearer())[1]["alerts"][0]["action"] == "recorded"
        _, running = post(f"{base}/hooks/am", encode(alertmanager(am_alert("db-2"))), bearer())
        running_id = running["alerts"][0]["run_id"]
        with subprocess.Popen([*_worker(database)], env=_env(tmp_path), stderr=subprocess.PIPE) as worker:
            wait_for(lambda: store.run(running_id).status == "running", 60, "the worker to start the run")  # type: ignore[union-attr]
            _, answer = post(f"{base}/hooks/am", encode(alertmanager(am_alert("db-2", status="resolved"),
                                                                     status="resolved")), bearer())
            assert answer["alerts"][0]["action"] == "recorded"
            assert answer["alerts"][0]["detail"] == f"resolved while run {running_id} is running: recorded on the run"
            assert [e["what"] for e in store.audit_trail(running_id)] == ["alert.resolved"]
            wait_for(lambda: store.run(running_id).status == "finished", 60, "the run to finish anyway")  # type: ignore[union-attr]
            _, again = post(f"{base}/hooks/am", encode(alertmanager(am_alert("db-2", status="resolved"),
                                                                   status="resolved", group_key="other")), bearer())
            assert again["alerts"][0]["action"] == "duplicate"
            _stop(worker)  # type: ignore[arg-type]
        assert len(store.runs()) == 2
        store.close()
        _stop(proc, tmp_path / "home")


def _worker(database: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "engine", "worker", "--database", database]


def _env(tmp_path: Path) -> dict[str, str]:
    import os

    return {**{k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}, "RUNBOOK_HOME": str(tmp_path)}


def test_once_within_throttles_per_label_set_and_the_pool_picks_the_workers(tmp_path: Path) -> None:
    """A new firing of db-1 eight minutes later is throttled (route once_within: 1h); db-2
    is not. The route's pool (region: eu) goes with the runs: this server's workers have
    no labels, so they leave them queued for workers in the eu pool."""
    config = write_service(tmp_path, once_within="1h", pool="{region: eu}")
    with serving(config, tmp_path / "home") as (base, proc):
        answers = []
        for starts, instance in (("2026-12-04T21:00:00Z", "db-1"), ("2026-12-04T21:08:00Z", "db-1"),
                                 ("2026-12-04T21:08:00Z", "db-2")):
            _, answer = post(f"{base}/hooks/am", encode(alertmanager(am_alert(instance, starts=starts))), bearer())
            answers.append(answer["alerts"][0])
        assert [a["action"] for a in answers] == ["queued", "throttled", "queued"]
        assert answers[1]["detail"].startswith(f"route disk started run {answers[0]['run_id']} for the same labels")
        assert answers[1]["run_id"] == answers[0]["run_id"]
        time.sleep(2)  # the embedded workers poll meanwhile
        store = Store.open(f"sqlite:///{tmp_path}/home/service.db")
        runs = [store.run(a["run_id"]) for a in (answers[0], answers[2])]
        assert [(r.status, r.pool) for r in runs if r is not None] == [("queued", {"region": "eu"})] * 2
        store.close()
        _stop(proc, tmp_path / "home")


def test_a_route_whose_runbook_is_missing_stops_serve_at_start(tmp_path: Path) -> None:
    config = write_service(tmp_path)
    config.write_text(config.read_text().replace("runbook: disk-full", "runbook: disk-ful", 1))
    import sys

    done = subprocess.run([sys.executable, "-m", "engine", "serve", "--config", str(config), "--listen", "127.0.0.1:0"],
                          env={**_env(tmp_path), **SECRETS}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "route disk: no runbook 'disk-ful': not a file beside the config, nor the id of a runbook in" in done.stderr


def test_a_store_that_cannot_take_a_delivery_answers_503(tmp_path: Path, postgres: PgCluster) -> None:
    """Alertmanager retries a 5xx: nothing is half-written meanwhile."""
    database = postgres.new_database("intake_readonly")
    config = write_service(tmp_path)
    with serving(config, tmp_path / "home", "--database", database, "--no-workers") as (base, proc):
        postgres.sql("ALTER DATABASE intake_readonly SET default_transaction_read_only = on")
        postgres.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'intake_readonly'")
        status, answer = post(f"{base}/hooks/am", encode(alertmanager(am_alert("db-1"))), bearer())
        assert status == 503 and "the database is read-only" in answer["error"]
        postgres.sql("ALTER DATABASE intake_readonly SET default_transaction_read_only = off")
        postgres.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'intake_readonly'")
        store = Store.open(database)
        assert store.deliveries() == {} and store.runs() == []
        status, answer = post(f"{base}/hooks/am", encode(alertmanager(am_alert("db-1"))), bearer())
        assert status == 202 and answer["alerts"][0]["action"] == "queued"  # the retry is taken whole
        store.close()
        _stop(proc, tmp_path / "home")


def test_a_stalled_sender_gets_408_and_holds_up_nobody(tmp_path: Path) -> None:
    """Headers and half a body, then nothing: the others are served meanwhile, and the
    stalled one is answered 408 once its body has not come for 10 s."""
    import socket

    config = write_service(tmp_path)
    with serving(config, tmp_path / "home") as (base, proc):
        port = int(base.rpartition(":")[2])
        body = encode(alertmanager(am_alert("db-1")))
        with socket.create_connection(("127.0.0.1", port), timeout=60) as slow:
            head = (f"POST /hooks/am HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {SECRETS['AM_TOKEN']}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
            slow.sendall(head.encode() + body[:20])
            status, answer = post(f"{base}/hooks/am", encode(alertmanager(am_alert("db-2"))), bearer())
            assert status == 202 and answer["alerts"][0]["action"] == "queued"
            reply = ""
            while "\r\n\r\n{" not in reply or not reply.endswith("}"):
                part = slow.recv(4096).decode()
                if not part:
                    break
                reply += part
        assert reply.startswith("HTTP/1.1 408 ") and "the body stopped coming for 10 s" in reply
        assert 'runbook_deliveries_refused_total{reason="too_slow"} 1.0' in get(f"{base}/metrics")[1]
        _stop(proc, tmp_path / "home")
