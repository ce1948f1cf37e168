"""A route's policy, applied by a real `runbook serve` on SQLite and PostgreSQL: its
unattended phases run with nobody asked, leaving them waits for the gate role's approval,
and a step the route names waits for its role's approval although the runbook has no
`confirm:`. Journaled: who approved, how, and that the policy (not the runbook) asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from hookkit import alertmanager, am_alert, bearer, encode, post, serving, stop
from postgres import wait_for

from engine.service.store import Store

pytestmark = pytest.mark.integration

RUNBOOK = """\
kind: runbook
version: 1
id: policy
title: Policy
inputs:
  host: {type: string, alert: labels.instance}
  dir: {type: string}
detection:
  - id: check
    run: "echo checked >> {{ inputs.dir }}/check.count"
    rollback:
      - id: uncheck
        run: "echo undone >> {{ inputs.dir }}/undo.count"
triage:
  - id: classify
    manual: Is {{ inputs.host }} filling with logs?
    ask:
      cause: {prompt: Cause, choices: [logs, data], default: logs, sets: vars.cause}
remediation:
  - id: restart
    run: "echo {{ vars.cause }} >> {{ inputs.dir }}/restart.count"
recovery:
  - id: verify
    run: "echo ok >> {{ inputs.dir }}/verify.count"
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
    runbook: policy
    inputs: {{dir: "{work}"}}
    unattended: [detection, triage]
    gate_role: oncall
    approvals: {{restart: dba}}
people:
  - {{name: alice, roles: [dba]}}
  - {{name: bob, roles: [oncall]}}
"""


def _service(tmp: Path) -> Path:
    (tmp / "runbooks").mkdir()
    (tmp / "work").mkdir()
    (tmp / "runbooks" / "policy.yaml").write_text(RUNBOOK, encoding="utf-8")
    config = tmp / "serve.yaml"
    config.write_text(CONFIG.format(work=tmp / "work"), encoding="utf-8")
    return config


def _runbook(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}, "RUNBOOK_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "engine", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def _call(method: str, url: str, token: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


class _Service:
    """A serving `runbook serve` with the people's tokens, and the run an alert started."""

    def __init__(self, base: str, home: Path, config: Path, database: str) -> None:
        self.base, self.database = base, database
        self.tokens = {name: _runbook(home, "token", "create", name, "-c", str(config), "--database",
                                      database).stdout.strip() for name in ("alice", "bob")}
        status, body = post(f"{base}/hooks/am", encode(alertmanager(am_alert("db-1"))), bearer())
        assert status == 202, body
        self.run_id = body["alerts"][0]["run_id"]
        self.url = f"{base}/api/runs/{self.run_id}"

    def run(self) -> dict[str, Any]:
        return _call("GET", self.url, self.tokens["bob"])[1]

    def waits_at(self, step: str) -> None:
        def asked() -> bool:
            run = self.run()
            return run["status"] == "waiting" and any(q["step"] == step and q["status"] == "open"
                                                      for q in run["questions"])
        wait_for(asked, 60, f"the run to wait at {step}")

    def answer(self, who: str, step: str, approved: bool, reason: str = "") -> tuple[int, Any]:
        return _call("POST", f"{self.url}/questions/{step}/answer", self.tokens[who],
                     {"answer": {"approved": approved, "reason": reason}})

    def finished(self) -> dict[str, Any]:
        wait_for(lambda: self.run()["status"] == "finished", 60, "the run to finish")
        return self.run()

    def events(self, event: str) -> list[dict[str, Any]]:
        store = Store.open(self.database)
        try:
            return [r for r in map(json.loads, store.records(self.run_id)) if r["event"] == event]
        finally:
            store.close()


def test_unattended_phases_run_through_the_gate_and_a_policy_approval_wait_for_their_roles(
        tmp_path: Path, database: str) -> None:
    config, home, work = _service(tmp_path), tmp_path / "home", tmp_path / "work"
    with serving(config, home, "--database", database) as (base, proc):
        service = _Service(base, home, config, database)
        service.waits_at("gate:remediation")
        # detection and triage ran with nobody asked: the question took its default
        assert (work / "check.count").read_text() == "checked\n" and not (work / "restart.count").exists()
        assert [q["step"] for q in service.run()["questions"]] == ["gate:remediation"]
        status, why = service.answer("alice", "gate:remediation", True)
        assert status == 403 and "it needs the role oncall (their roles: dba)" in why["error"], why
        assert service.answer("bob", "gate:remediation", True)[0] == 200
        service.waits_at("restart")  # no confirm: in the runbook; the route's approvals: ask for one
        assert not (work / "restart.count").exists()
        status, why = service.answer("bob", "restart", True)
        assert status == 403 and "it needs the role dba (their roles: oncall)" in why["error"], why
        assert service.answer("alice", "restart", True)[0] == 200
        run = service.finished()
        assert run["outcome"] == "resolved", run
        [answered] = service.events("prompt.answered")
        approvals = service.events("approval")
        stop(proc, home)
    assert (work / "restart.count").read_text() == "logs\n" and (work / "verify.count").read_text() == "ok\n"
    assert (answered["step"], answered["answers"], answered["by"]) == ("classify", {"cause": "logs"}, "route disk")
    assert [(a["step"], a["approved"], a["by"], a["role"], a["required_role"], a["via"], a["policy"])
            for a in approvals] == [("gate:remediation", True, "bob", "oncall", "oncall", "api", "route disk"),
                                    ("restart", True, "alice", "dba", "dba", "api", "route disk")]
    report = _runbook(home, "report", "--database", database, service.run_id).stdout
    assert "| alice (dba) via api | Run step 'restart'? | approved | requires dba; asked by route disk |" in report


def test_a_refused_gate_ends_the_run_refused_and_rolls_back(tmp_path: Path, database: str) -> None:
    config, home, work = _service(tmp_path), tmp_path / "home", tmp_path / "work"
    with serving(config, home, "--database", database) as (base, proc):
        service = _Service(base, home, config, database)
        service.waits_at("gate:remediation")
        assert service.answer("bob", "gate:remediation", False, "the disk is being replaced")[0] == 200
        run = service.finished()
        [approval] = service.events("approval")
        stop(proc, home)
    assert run["outcome"] == "refused", run
    assert "approval to go on into remediation refused by bob (oncall): the disk is being replaced" in run["reason"]
    assert not (work / "restart.count").exists() and (work / "undo.count").read_text() == "undone\n"
    assert (approval["approved"], approval["by"], approval["policy"]) == (False, "bob", "route disk")
