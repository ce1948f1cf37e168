"""People answer a service run's questions from anywhere: the stored prompter parks the
run at a question (no thread waits on it), a person proven by a token answers it with the
role it needs, and the next worker continues the run, journaling who answered and when."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from postgres import wait_for

from engine.service.prompts import Forbidden, decide, open_question
from engine.service.store import NewRun, PersonRow, Store
from engine.service.worker import Worker, WorkerOptions

pytestmark = pytest.mark.integration

RUNBOOK = """\
kind: runbook
version: 1
id: people
title: People
defaults: {timeout: 1m}
inputs:
  dir: {type: string}
triage:
  - id: triage
    manual: Is the disk filling?
    ask:
      cause: {prompt: Cause, choices: [logs, data], sets: vars.cause}
remediation:
  - id: restart
    run: "echo {{ vars.cause }} >> {{ inputs.dir }}/restart.count"
    confirm: {message: Restart it?, role: dba}
"""

ALICE, BOB = PersonRow("alice", ("dba",), "U0ALICE"), PersonRow("bob", ("oncall",), "U0BOB")


def _queue(store: Store, tmp_path: Path) -> str:
    runbook = tmp_path / "people.yaml"
    runbook.write_text(RUNBOOK, encoding="utf-8")
    return store.enqueue(NewRun("people", str(runbook), {"dir": str(tmp_path)})).id


def _worker(store: Store, tmp_path: Path) -> Worker:
    return Worker(store, WorkerOptions(slots=1, lease=5.0, poll=0.1, scratch=tmp_path / "scratch")).start()


def _waits_at(store: Store, run_id: str, step: str) -> None:
    def parked() -> bool:
        run = store.run(run_id)
        asked = {q.step for q in store.questions(run_id=run_id)}
        return run is not None and run.status == "waiting" and step in asked
    wait_for(parked, 60, f"the run to wait at step {step}")


def _records(store: Store, run_id: str, event: str) -> list[dict[str, Any]]:
    return [r for r in map(json.loads, store.records(run_id)) if r["event"] == event]


def test_a_question_parks_the_run_and_the_answer_of_a_proven_person_continues_it(
        store: Store, tmp_path: Path) -> None:
    store.set_people([ALICE, BOB])
    run_id = _queue(store, tmp_path)
    worker = _worker(store, tmp_path)
    try:
        _waits_at(store, run_id, "triage")
        assert not worker.active  # parked: no slot holds it while it waits
        decide(store, open_question(store, run_id, "triage"), BOB, {"cause": "logs"}, "cli")
        _waits_at(store, run_id, "restart")
        question = open_question(store, run_id, "restart")
        with pytest.raises(Forbidden, match=r"bob may not answer step restart .* needs the role dba"):
            decide(store, question, BOB, {"approved": "yes"}, "api")
        assert not (tmp_path / "restart.count").exists()
        decide(store, question, ALICE, {"approved": "yes"}, "api")
        wait_for(lambda: (r := store.run(run_id)) is not None and r.status == "finished", 60, "the run to finish")
    finally:
        worker.stop()
    assert [what for _, what in worker.done] == ["waiting", "waiting", "resolved"]
    run = store.run(run_id)
    assert run is not None and run.outcome == "resolved"
    assert (tmp_path / "restart.count").read_text() == "logs\n"
    [answered] = _records(store, run_id, "prompt.answered")
    assert (answered["step"], answered["answers"], answered["by"]) == ("triage", {"cause": "logs"}, "bob")
    assert answered["via"] == "cli"  # how the answer came is journaled, not only on the audit trail
    resumed = _records(store, run_id, "run.resumed")
    assert [(r["by"], r["previous"], r["rerun"]) for r in resumed] == [
        ("bob", "stopped to wait for a person", ["triage"]), ("alice", "stopped to wait for a person", ["restart"])]
    [approval] = _records(store, run_id, "approval")
    assert (approval["approved"], approval["by"], approval["role"], approval["via"]) == (True, "alice", "dba", "api")
    assert approval["policy"] is None  # the runbook's confirm asked, not a route's policy
    trail = [(a["who"], json.loads(a["detail"])["via"])
             for a in store.audit_trail(run_id) if a["what"] == "question.answered"]
    assert trail == [("bob", "cli"), ("alice", "api")]
    from engine.reporting.report import build_report

    report = build_report(store.export(run_id, tmp_path / "exported"))
    # parked twice, resumed twice: still one bar a step, the waits the people's, none "stopped"
    assert [b.step for b in report.timeline.bars] == ["triage", "restart"]
    assert all(s.kind == "people" for b in report.timeline.bars for s in b.segments)


SERVE = """\
kind: serve
version: 1
people:
  - {name: alice, roles: [dba], slack: U0ALICE}
  - {name: bob, roles: [oncall], slack: U0BOB}
"""


def _cli(*args: str) -> Any:
    from click.testing import CliRunner

    from engine.cli.commands import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_runbook_answer_and_approve_with_a_token_against_the_store(
        store: Store, database: str, tmp_path: Path) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text(SERVE, encoding="utf-8")
    tokens = {name: _cli("token", "create", name, "-c", str(config), "--database", database).output.strip()
              for name in ("alice", "bob")}
    assert all(t.startswith("rbt_") for t in tokens.values())
    run_id = _queue(store, tmp_path)
    worker = _worker(store, tmp_path)
    try:
        _waits_at(store, run_id, "triage")
        listed = _cli("questions", "--database", database, "--token", tokens["bob"])
        assert f"runbook answer {run_id} triage cause=logs|data" in listed.output, listed.output
        done = _cli("answer", run_id, "triage", "cause=data", "--database", database, "--token", tokens["bob"])
        assert done.exit_code == 0 and f"answered step triage of run {run_id} as bob" in done.output
        _waits_at(store, run_id, "restart")
        listed = _cli("questions", run_id, "--database", database, "--token", tokens["bob"])
        assert f"step restart (approval, role dba): Restart it?\n  runbook approve {run_id} restart" in listed.output
        refused = _cli("approve", run_id, "restart", "--database", database, "--token", tokens["bob"])
        assert refused.exit_code == 77 and "it needs the role dba (their roles: oncall)" in refused.output
        forged = _cli("approve", run_id, "restart", "--database", database, "--token", "rbt_forged")
        assert forged.exit_code == 77 and "not known" in forged.output
        ok = _cli("approve", run_id, "restart", "--database", database, "--token", tokens["alice"])
        assert ok.exit_code == 0, ok.output
        revoked = _cli("token", "revoke", "bob", "--database", database)
        assert revoked.output == "revoked 1 token(s) of bob\n"
        late = _cli("questions", "--database", database, "--token", tokens["bob"])
        assert late.exit_code == 77 and "not known to this service (revoked" in late.output
        wait_for(lambda: (r := store.run(run_id)) is not None and r.status == "finished", 60, "the run to finish")
    finally:
        worker.stop()
    assert (tmp_path / "restart.count").read_text() == "data\n"
