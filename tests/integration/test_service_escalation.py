"""Escalation rules keep running while a service run is parked for a person: no worker
holds the run, yet an unanswered question pages once its `after:` has passed on the
run's clock, exactly once with several workers looking (SQLite and PostgreSQL), and the
run, once answered, does not fire the rule again."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from postgres import wait_for

from engine.service.prompts import decide, open_question
from engine.service.store import NewRun, PersonRow, Store
from engine.service.worker import Worker, WorkerOptions

pytestmark = pytest.mark.integration

RUNBOOK = """\
kind: runbook
version: 1
id: paged
title: Paged
inputs:
  dir: {type: string}
escalation:
  - {after: 2s, unacknowledged: true, notify: pager, message: "{{ runbook.title }}: {{ escalation.reason }}"}
  - {after: 1h, notify: pager}
remediation:
  - id: restart
    run: "echo ran >> {{ inputs.dir }}/restart.count"
    confirm: {message: Restart it?, role: dba}
"""

ALICE = PersonRow("alice", ("dba",))


def _records(store: Store, run_id: str, event: str) -> list[dict[str, Any]]:
    return [r for r in map(json.loads, store.records(run_id)) if r["event"] == event]


def _pages(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _paged(store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runbook: str
           ) -> tuple[Path, str, list[Worker]]:
    """A run of `runbook` queued, its pager a file channel, two workers started (stop them):
    the pager's file, the run's id, the workers."""
    pager = tmp_path / "pager.log"
    channels = tmp_path / "channels.yaml"
    channels.write_text(f"kind: channels\nchannels:\n  pager: {{type: file, path: {pager}}}\n", encoding="utf-8")
    monkeypatch.setenv("RUNBOOK_CHANNELS", str(channels))
    (tmp_path / "paged.yaml").write_text(runbook, encoding="utf-8")
    store.set_people([ALICE])
    run_id = store.enqueue(NewRun("paged", str(tmp_path / "paged.yaml"), {"dir": str(tmp_path)})).id
    workers = [Worker(store, WorkerOptions(slots=1, lease=5.0, poll=0.1, escalate_every=0.2,
                                           scratch=tmp_path / f"scratch-{i}")).start() for i in range(2)]
    return pager, run_id, workers


def test_a_parked_run_escalates_once_with_two_workers_looking(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pager, run_id, workers = _paged(store, tmp_path, monkeypatch, RUNBOOK)
    try:
        wait_for(lambda: (r := store.run(run_id)) is not None and r.status == "waiting", 60, "the run to park")
        assert not any(w.active for w in workers)  # parked: no worker holds it
        wait_for(lambda: len(_pages(pager)) >= 1, 60, "the escalation to page")
        time.sleep(2.0)  # both workers look again several times meanwhile
        assert len(_pages(pager)) == 1
        [fired] = _records(store, run_id, "escalation.fired")
        assert (fired["rule"], fired["channel"], fired["step"]) == (0, "pager", "restart")
        assert fired["reason"] == "step restart has waited 2s without an answer"
        [sent] = _records(store, run_id, "notify.sent")
        assert (sent["purpose"], sent["ok"], sent["message"]) == (
            "escalation", True, "Paged: step restart has waited 2s without an answer")
        assert fired["elapsed"] >= 2.0  # on the run's clock
        decide(store, open_question(store, run_id, "restart"), ALICE, {"approved": True}, "api")
        wait_for(lambda: (r := store.run(run_id)) is not None and r.status == "finished", 60, "the run to finish")
    finally:
        for worker in workers:
            worker.stop()
    run = store.run(run_id)
    assert run is not None and run.outcome == "resolved"
    assert len(_pages(pager)) == 1 and len(_records(store, run_id, "escalation.fired")) == 1
    seqs = [json.loads(line)["seq"] for line in store.records(run_id)]
    assert seqs == list(range(1, len(seqs) + 1))  # one journal, no gap, no seq written twice
    assert (tmp_path / "restart.count").read_text() == "ran\n"


def test_a_hand_off_rule_ends_the_parked_run_escalated(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`handoff: true`: the run nobody answered ends there, escalated, its question
    cancelled, as its runner would end it; once, with two workers looking."""
    handing_off = RUNBOOK.replace("notify: pager, message:", "notify: pager, handoff: true, message:")
    pager, run_id, workers = _paged(store, tmp_path, monkeypatch, handing_off)
    try:
        wait_for(lambda: (r := store.run(run_id)) is not None and r.status == "finished", 60, "the hand-off")
        time.sleep(1.0)
    finally:
        for worker in workers:
            worker.stop()
    run = store.run(run_id)
    assert run is not None and run.outcome == "escalated", run
    assert run.reason == "handed off to pager: step restart has waited 2s without an answer"
    assert len(_pages(pager)) == 1 and not (tmp_path / "restart.count").exists()
    assert store.questions(run_id=run_id) == [] and [q.status for q in store.questions(run_id=run_id, status=None)] \
        == ["cancelled"]
    events = [json.loads(line) for line in store.records(run_id)]
    assert [e["event"] for e in events][-3:] == ["escalation.fired", "notify.sent", "run.finished"]
    assert (events[-1]["outcome"], events[-1]["failed_step"]) == ("escalated", "restart")
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
