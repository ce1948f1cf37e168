"""The people's API on a real `runbook serve` (uvicorn on a free loopback port): an alert
starts a runbook that asks a question and an approval; `runbook answer --server` answers
the question, the wrong person's token is refused the approval (403, saying why), the
right one's gives it; the run's journal streams as Server-Sent Events while it runs; and
/openapi.json describes every route the app serves."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hookkit import SECRETS, alertmanager, am_alert, bearer, encode, post, serving, stop
from postgres import wait_for

pytestmark = pytest.mark.integration
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"

RUNBOOK = """\
kind: runbook
version: 1
id: people
title: People
inputs:
  host: {type: string, alert: labels.instance}
  dir: {type: string}
triage:
  - id: triage
    manual: Is {{ inputs.host }} filling with logs?
    ask:
      cause: {prompt: Cause, choices: [logs, data], sets: vars.cause}
remediation:
  - id: restart
    run: "echo {{ vars.cause }} >> {{ inputs.dir }}/restart.count"
    confirm: {message: "Restart {{ inputs.host }}?", role: dba}
"""

CONFIG = """\
kind: serve
version: 1
runbooks: [runbooks]
sources:
  am: {{type: alertmanager, auth: {{bearer: {{env: AM_TOKEN}}}}}}
routes:
  - name: disk
    match: {{alertname: DiskFull}}
    runbook: people
    inputs: {{dir: "{work}"}}
channels: channels.yaml
slack: {{signing_secret: {{env: SLACK_SIGNING_SECRET}}, channel: approvals}}
people:
  - {{name: alice, roles: [dba], slack: U0ALICE}}
  - {{name: bob, roles: [oncall], slack: U0BOB}}
"""


@pytest.fixture(autouse=True)
def _slack_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SLACK_SECRET)


class _FakeSlack(http.server.ThreadingHTTPServer):
    """Slack's Web API on a loopback port: chat.postMessage bodies, as posted."""

    def __init__(self) -> None:
        self.posted: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), _SlackHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api"


class _SlackHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        server: Any = self.server
        if self.path == "/api/chat.postMessage" and self.headers.get("Authorization") == "Bearer xoxb-test":
            server.posted.append(json.loads(body))
        answer = json.dumps({"ok": True, "ts": "1700000000.000100"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(autouse=True)
def slack_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[_FakeSlack]:
    server = _FakeSlack()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_API_URL", server.url)
    yield server
    server.shutdown()
    server.server_close()


def _service(tmp: Path) -> Path:
    (tmp / "channels.yaml").write_text(
        "kind: channels\nchannels:\n  approvals: {type: slack, url: \"" + os.environ["SLACK_API_URL"]
        + "\", token: {env: SLACK_BOT_TOKEN}, channel: C0APPROVALS}\n", encoding="utf-8")
    (tmp / "runbooks").mkdir()
    (tmp / "work").mkdir()
    (tmp / "runbooks" / "people.yaml").write_text(RUNBOOK, encoding="utf-8")
    config = tmp / "serve.yaml"
    config.write_text(CONFIG.format(work=tmp / "work"), encoding="utf-8")
    return config


def _runbook(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}, "RUNBOOK_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "engine", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def _store_records(home: Path, run_id: str) -> list[str]:
    from engine.service.store import Store

    store = Store.open(f"sqlite:///{home}/service.db")
    try:
        return store.records(run_id)
    finally:
        store.close()


def _call(method: str, url: str, token: str | None, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _stream(url: str, token: str, into: list[tuple[str, str]]) -> None:
    """Read a Server-Sent Events stream to its `end` event: (event, data) pairs."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=120) as response:
        event = data = ""
        for raw in response:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif not line and event:
                into.append((event, data))
                if event == "end":
                    return
                event = data = ""


def test_a_routed_runs_question_and_approval_answered_by_the_cli_and_the_api(tmp_path: Path) -> None:
    config, home = _service(tmp_path), tmp_path / "home"
    with serving(config, home) as (base, proc):
        tokens = {name: _runbook(home, "token", "create", name, "-c", str(config)).stdout.strip()
                  for name in ("alice", "bob")}
        status, answer = post(f"{base}/hooks/am", encode(alertmanager(am_alert("db-1"))), bearer(SECRETS["AM_TOKEN"]))
        assert status == 202, answer
        run_id = answer["alerts"][0]["run_id"]
        run_url = f"{base}/api/runs/{run_id}"

        def waits_at(step: str) -> bool:
            run = _call("GET", run_url, tokens["bob"])[1]
            return run["status"] == "waiting" and any(q["step"] == step and q["status"] == "open"
                                                      for q in run["questions"])

        wait_for(lambda: waits_at("triage"), 60, "the run to wait at triage")
        assert _call("GET", run_url, None)[0] == 401
        done = _runbook(home, "answer", run_id, "triage", "cause=logs", "--server", base, "--token", tokens["bob"])
        assert done.returncode == 0 and f"answered step triage of run {run_id} as bob" in done.stdout, done.stderr
        wait_for(lambda: waits_at("restart"), 60, "the run to wait for its approval")
        events: list[tuple[str, str]] = []
        reader = threading.Thread(target=_stream, args=(f"{run_url}/events", tokens["bob"], events))
        reader.start()
        approve = f"{run_url}/questions/restart/answer"
        status, refused = _call("POST", approve, tokens["bob"], {"answer": {"approved": True}})
        assert status == 403 and refused["error"] == (
            f"bob may not answer step restart of run {run_id}: it needs the role dba (their roles: oncall)")
        assert _call("POST", approve, "rbt_forged", {"answer": {"approved": True}})[0] == 401
        assert not (tmp_path / "work" / "restart.count").exists()
        status, given = _call("POST", approve, tokens["alice"], {"answer": {"approved": True}})
        assert status == 200 and given["answered_by"] == "alice", given
        reader.join(120)
        assert (tmp_path / "work" / "restart.count").read_text() == "logs\n"
        names = [e for e, _ in events]
        assert names[0] == "run.started" and names[-2:] == ["run.finished", "end"]
        [approval] = [json.loads(d) for e, d in events if e == "approval"]
        assert (approval["approved"], approval["by"], approval["role"]) == (True, "alice", "dba")
        assert approval["via"] == "api"
        [answered] = [json.loads(d) for e, d in events if e == "prompt.answered"]
        assert (answered["by"], answered["via"]) == ("bob", "cli")  # `runbook answer --server` is the CLI
        listed = _call("GET", f"{base}/api/runs?status=finished&runbook=people", tokens["alice"])[1]["runs"]
        assert [(r["id"], r["outcome"], r["mode"]) for r in listed] == [(run_id, "resolved", "live")]
        assert _call("GET", f"{base}/api/runs?mode=drill", tokens["alice"])[1]["runs"] == []
        assert [r["id"] for r in _call("GET", f"{base}/api/runs?mode=live", tokens["alice"])[1]["runs"]] == [run_id]
        assert _call("GET", f"{base}/api/runs?mode=game", tokens["alice"]) == (
            400, {"error": "mode: 'game' is not one of live, dry-run, drill"})
        assert _call("GET", run_url, tokens["alice"])[1]["mode"] == "live"
        status, doc = _call("GET", f"{base}/openapi.json", None)
        assert status == 200 and "/api/runs/{run_id}/events" in doc["paths"]
        stop(proc, home)


def test_the_openapi_document_describes_every_route(tmp_path: Path) -> None:
    from starlette.routing import Route

    from engine import __version__
    from engine.service.app import build_app
    from engine.service.openapi import document
    from engine.service.store import Store

    store = Store.open(f"sqlite:///{tmp_path}/service.db")
    try:
        app = build_app(store, None, None)
        served = {r.path for r in app.routes if isinstance(r, Route)} | {"/hooks/{source}"}
    finally:
        store.close()
    doc = document(__version__)
    assert served <= set(doc["paths"]), served - set(doc["paths"])
    assert doc["openapi"].startswith("3.1") and doc["components"]["securitySchemes"]["token"]["scheme"] == "bearer"



def _slack_click(base: str, message: dict[str, Any], user: str, action: str, *, secret: str = SLACK_SECRET,
                 age: float = 0) -> tuple[int, Any]:
    """A click on a button of the approval message the service posted, sent as Slack
    sends it: a form with the block_actions payload, signed with the app's signing secret."""
    from urllib.parse import urlencode

    from engine.service.slack import signature

    [button] = [b for b in message["blocks"][1]["elements"] if b["action_id"] == action]
    payload = {"type": "block_actions", "user": {"id": user, "username": user.lower(), "team_id": "T0001"},
               "api_app_id": "A0001", "container": {"type": "message", "channel_id": "C0001"},
               "trigger_id": "1.2.3", "actions": [{**button, "block_id": message["blocks"][1]["block_id"],
                                                     "action_ts": str(time.time())}]}
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time() - age))
    request = urllib.request.Request(f"{base}/slack/interactions", data=body, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature(secret, stamp, body)})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_an_approval_from_slack_is_verified_and_the_slack_user_mapped_to_a_person(
        tmp_path: Path, slack_api: _FakeSlack) -> None:
    config, home = _service(tmp_path), tmp_path / "home"
    with serving(config, home) as (base, proc):
        bob = _runbook(home, "token", "create", "bob", "-c", str(config)).stdout.strip()
        run_id = post(f"{base}/hooks/am", encode(alertmanager(am_alert("db-1"))), bearer())[1]["alerts"][0]["run_id"]
        run_url = f"{base}/api/runs/{run_id}"

        def question(step: str) -> dict[str, Any] | None:
            run = _call("GET", run_url, bob)[1]
            return next((q for q in run["questions"] if q["step"] == step and q["status"] == "open"), None)

        wait_for(lambda: question("triage") is not None, 60, "the run to wait at triage")
        assert _call("POST", f"{run_url}/questions/triage/answer", bob, {"answer": {"cause": "data"}})[0] == 200
        wait_for(lambda: question("restart") is not None, 60, "the run to wait for its approval")
        wait_for(lambda: len(slack_api.posted) == 2, 30, "the service to post the approval to Slack")
        assert slack_api.posted[0]["channel"] == "C0APPROVALS"
        assert f"runbook answer {run_id} triage cause=logs|data" in slack_api.posted[0]["text"]
        asked = slack_api.posted[1]
        assert "waits for approval of step *restart* (needs the role *dba*): Restart db-1?" in asked["text"]
        status, why = _slack_click(base, asked, "U0ALICE", "approve", secret="not-the-secret")
        assert (status, why["error"]) == (401, "X-Slack-Signature does not match the signing secret")
        status, why = _slack_click(base, asked, "U0ALICE", "approve", age=600)
        assert status == 401 and "a replay is refused" in why["error"]
        status, why = _slack_click(base, asked, "U0MALLORY", "approve")
        assert status == 403 and "Slack user U0MALLORY is nobody" in why["error"]
        status, why = _slack_click(base, asked, "U0BOB", "approve")
        assert status == 403 and "it needs the role dba (their roles: oncall)" in why["error"]
        assert question("restart") is not None  # still waiting: nothing above decided it
        status, done = _slack_click(base, asked, "U0ALICE", "approve")
        assert status == 200 and done["text"].startswith("Approved by alice: step restart"), done
        wait_for(lambda: _call("GET", run_url, bob)[1]["status"] == "finished", 60, "the run to finish")
        assert (tmp_path / "work" / "restart.count").read_text() == "data\n"
        events = [json.loads(line) for line in _store_records(home, run_id)]
        [answered] = [e for e in events if e["event"] == "prompt.answered"]
        [approval] = [e for e in events if e["event"] == "approval"]
        assert (answered["by"], answered["via"], approval["by"], approval["via"]) == ("bob", "api", "alice", "slack")
        report = _runbook(home, "report", "--database", f"sqlite:///{home}/service.db", run_id)
        assert "| alice (dba) via slack | Restart db-1? | approved |" in report.stdout, report.stdout + report.stderr
        assert "| bob (oncall) via api |" in report.stdout
        log = stop(proc, home)
    assert "X-Slack-Signature does not match" in log  # refusals are logged for whoever watches
