"""What the intake tests and the intake benchmark share: a serve config with one source of
each kind, a runbook routes start, payloads in the senders' real shapes, signed as the
senders sign them, and a real `runbook serve` process to post them to."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from postgres import free_port, wait_for

SECRETS = {"AM_TOKEN": "am-token-1", "GRAFANA_KEY": "grafana-key", "PD_KEY": "pd-key-new", "CI_PASSWORD": "pw"}

RUNBOOK = """\
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
    run: "sleep {{ inputs.pause }}; echo {{ inputs.host }} >> {{ inputs.dir }}/cleaned"
"""

CONFIG = """\
kind: serve
version: 1
runbooks: [runbooks]
sources:
  am: {{type: alertmanager, auth: {{bearer: {{env: AM_TOKEN}}}}}}
  grafana: {{type: grafana, auth: {{hmac: {{env: GRAFANA_KEY, timestamp_header: X-Grafana-Alerting-Timestamp}}}}}}
  pd: {{type: pagerduty, auth: {{hmac: {{env: PD_KEY}}}}}}
  ci:
    type: generic
    auth: {{basic: {{username: ci, password: {{env: CI_PASSWORD}}}}}}
    map: {{alerts: checks, name: check, status: state, labels: tags, fingerprint: id, starts_at: since}}
routes:
  - name: disk
    match: {{alertname: DiskFull, labels_match: {{instance: "db-[0-9]+"}}}}
    runbook: disk-full
    inputs: {{dir: "{work}", pause: "{pause}"}}
    pool: {pool}
    unattended: [remediation]
    once_within: {once_within}
  - name: pager
    match: {{source: pd, labels: {{service: checkout}}}}
    runbook: runbooks/disk-full.yaml
    inputs: {{dir: "{work}", host: pd-host}}
  - name: ci
    match: {{source: ci}}
    runbook: disk-full
    inputs: {{dir: "{work}", host: ci-host}}
"""


def write_service(tmp: Path, *, pause: float = 0, once_within: str = "1s", pool: str = "{}") -> Path:
    """A serve config (and its runbooks/) in `tmp`; runs write to tmp/work."""
    (tmp / "runbooks").mkdir(parents=True, exist_ok=True)
    (tmp / "work").mkdir(exist_ok=True)
    (tmp / "runbooks" / "disk-full.yaml").write_text(RUNBOOK, encoding="utf-8")
    config = tmp / "serve.yaml"
    text = CONFIG.format(work=tmp / "work", pause=pause, once_within=once_within, pool=pool)
    config.write_text(text, encoding="utf-8")
    return config


def alertmanager(*alerts: Mapping[str, Any], status: str = "firing", group_key: str = '{}:{alertname="DiskFull"}'
                 ) -> dict[str, Any]:
    """An Alertmanager webhook (version 4) of these alerts."""
    return {"version": "4", "groupKey": group_key, "truncatedAlerts": 0, "status": status, "receiver": "runbook",
            "groupLabels": {"alertname": "DiskFull"}, "commonLabels": {"alertname": "DiskFull"},
            "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "alerts": list(alerts)}


def am_alert(instance: str, *, status: str = "firing", starts: str = "2026-12-04T21:00:00Z",
             name: str = "DiskFull") -> dict[str, Any]:
    ends = "2026-12-04T21:30:00Z" if status == "resolved" else "0001-01-01T00:00:00Z"
    return {"status": status, "labels": {"alertname": name, "instance": instance, "severity": "page"},
            "annotations": {"summary": f"{instance}: disk 97% full"}, "startsAt": starts, "endsAt": ends,
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": hashlib.sha1(instance.encode()).hexdigest()[:16]}


def grafana(instance: str) -> dict[str, Any]:
    body = alertmanager(am_alert(instance))
    body.update(version="1", orgId=1, title="[FIRING:1] DiskFull", state="alerting", message="disk full")
    body["alerts"][0].update(values={"B": 97.2}, valueString="[ var='B' value=97.2 ]",
                             dashboardURL="http://grafana/d/abc", panelURL="http://grafana/d/abc?viewPanel=2",
                             silenceURL="http://grafana/alerting/silence/new")
    return body


def pagerduty(kind: str = "incident.triggered", incident: str = "Q1ABC") -> dict[str, Any]:
    return {"event": {"id": f"01E{kind}{incident}", "event_type": kind, "resource_type": "incident",
                      "occurred_at": "2026-12-04T21:00:00.000Z", "agent": None, "client": None,
                      "data": {"id": incident, "type": "incident", "self": f"https://api.pagerduty.com/incidents/{incident}",
                               "html_url": f"https://acme.pagerduty.com/incidents/{incident}", "number": 7,
                               "status": kind.rpartition(".")[2], "title": "Checkout latency high",
                               "created_at": "2026-12-04T20:59:00Z",
                               "service": {"id": "PSVC", "type": "service_reference", "summary": "checkout"},
                               "urgency": "high", "priority": {"id": "P1", "summary": "P1"}}}}


def encode(body: Any) -> bytes:
    return json.dumps(body).encode()


def bearer(token: str = SECRETS["AM_TOKEN"]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def grafana_signed(body: bytes, key: str = SECRETS["GRAFANA_KEY"], stamp: float | None = None) -> dict[str, str]:
    """As Grafana signs with a Timestamp Header: hex HMAC-SHA256 of `<timestamp>:<body>`."""
    ts = str(int(time.time() if stamp is None else stamp))
    sig = hmac.new(key.encode(), ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Grafana-Alerting-Signature": sig, "X-Grafana-Alerting-Timestamp": ts}


def pagerduty_signed(body: bytes, *keys: str) -> dict[str, str]:
    """As PagerDuty signs: `v1=<hex HMAC-SHA256>` per signing secret, comma-separated."""
    sigs = [f"v1={hmac.new(k.encode(), body, hashlib.sha256).hexdigest()}" for k in keys]
    return {"X-PagerDuty-Signature": ",".join(sigs)}


def post(url: str, body: bytes, headers: Mapping[str, str] | None = None, timeout: float = 30) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


@contextmanager
def serving(config: Path, home: Path, *extra: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`runbook serve --config CONFIG` on a free loopback port, ready; its base URL. Its
    log goes to HOME/serve.log (a pipe nobody reads would fill and stall the server:
    it logs a line per request)."""
    port = free_port()
    home.mkdir(parents=True, exist_ok=True)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}, **SECRETS,
           "RUNBOOK_HOME": str(home)}
    with open(home / "serve.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "engine", "serve", "--config", str(config), "--listen",
                                 f"127.0.0.1:{port}", *extra], env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get(f"{base}/readyz")[0] == 200 or proc.poll() is not None, 60, "runbook serve to be ready")
        if proc.poll() is not None:
            raise AssertionError(f"runbook serve exited: {(home / 'serve.log').read_text()}")
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def stop(proc: subprocess.Popen[bytes], home: Path) -> str:
    """SIGTERM; a clean exit (status 0) with no traceback. Its log."""
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    text = (home / "serve.log").read_text()
    assert proc.returncode == 0 and "Traceback" not in text, text
    return text
