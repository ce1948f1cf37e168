"""Workers on a real SQLite file and a real PostgreSQL: the store-backed journal is byte for
byte the file journal, queued runs are carried out once, a worker SIGKILLed in the middle
of a step loses its run to another that continues it from the stored journal (completed
steps never run twice; an interrupted step that is not idempotent waits for a person), and
SIGTERM drains (runs in progress finish, or are handed over)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from postgres import PgCluster, wait_for
from servicekit import queue_run, takeover_runbook

from engine.service.store import Store
from engine.service.worker import Worker, WorkerOptions

pytestmark = pytest.mark.integration


def _counts(work: Path) -> dict[str, int]:
    return {name: len(p.read_text().splitlines()) if (p := work / f"{name}.count").exists() else 0
            for name in ("first", "slow", "last")}


def _options(tmp_path: Path, **kw: Any) -> WorkerOptions:
    return WorkerOptions(**{"slots": 2, "lease": 2.0, "poll": 0.1, "drain_timeout": 10.0,
                            "scratch": tmp_path / "scratch", **kw})


def _status(store: Store, run_id: str) -> str:
    run = store.run(run_id)
    assert run is not None
    return run.status


def test_a_worker_carries_out_queued_runs_once_each(store: Store, tmp_path: Path) -> None:
    runbook = takeover_runbook(tmp_path)
    ids = [queue_run(store, runbook, tmp_path / f"work{i}") for i in range(3)]
    worker = Worker(store, _options(tmp_path)).start()
    try:
        wait_for(lambda: all(_status(store, i) == "finished" for i in ids), 60, "the three runs to finish")
    finally:
        worker.stop()
    for i, run_id in enumerate(ids):
        run = store.run(run_id)
        assert run is not None and run.outcome == "resolved" and run.claims == 1
        assert _counts(tmp_path / f"work{i}") == {"first": 1, "slow": 1, "last": 1}
        assert run.inputs["token"] == "***"  # a secret input is not kept once the run has ended
    assert sorted(r for r, _ in worker.done) == sorted(ids)


def _worker_process(database: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RUNBOOK_HOME": str(tmp_path / "home")}
    return subprocess.Popen([sys.executable, "-m", "engine", "worker", "--database", database, "--lease", "2",
                             "--slots", "1", "--drain-timeout", "20"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _kill_mid_step(store: Store, database: str, tmp_path: Path, *, idempotent: bool) -> tuple[str, Path]:
    """Queue a run, let a worker process start its `slow` step, SIGKILL the worker."""
    work = tmp_path / "work"
    run_id = queue_run(store, takeover_runbook(tmp_path, idempotent=idempotent, sleep=3), work)
    proc = _worker_process(database, tmp_path)
    try:
        wait_for(lambda: _counts(work)["slow"] == 1, 60, "the worker process to start step slow")
    finally:
        proc.kill()
        proc.wait()
    assert _status(store, run_id) == "running"  # its lease has yet to expire
    return run_id, work


def test_a_sigkilled_workers_run_is_taken_over_and_completed_steps_never_rerun(
        store: Store, database: str, tmp_path: Path) -> None:
    """The idempotent step that was interrupted runs again (after the command the dead
    worker left running has ended); `first` is restored from the journal, not rerun."""
    run_id, work = _kill_mid_step(store, database, tmp_path, idempotent=True)
    worker = Worker(store, _options(tmp_path)).start()
    try:
        wait_for(lambda: _status(store, run_id) == "finished", 60, "the run to finish on the second worker")
    finally:
        worker.stop()
    run = store.run(run_id)
    assert run is not None and (run.outcome, run.claims) == ("resolved", 2)
    assert _counts(work) == {"first": 1, "slow": 2, "last": 1}
    assert [a["what"] for a in store.audit_trail(run_id)] == ["lease.takeover"]
    events = [line for line in store.records(run_id) if '"run.resumed"' in line]
    assert len(events) == 1 and "taken over from worker" in events[0]


def test_an_interrupted_step_that_is_not_idempotent_waits_for_a_person(
        store: Store, database: str, tmp_path: Path) -> None:
    run_id, work = _kill_mid_step(store, database, tmp_path, idempotent=False)
    worker = Worker(store, _options(tmp_path)).start()
    try:
        wait_for(lambda: _status(store, run_id) == "waiting", 60, "the run to wait for a person")
        [question] = store.questions(run_id=run_id)
        assert question.step == "slow" and "not idempotent" in question.text
        assert "(answer interrupted: rerun or skip)" in question.text and "--" not in question.text
        assert _counts(work) == {"first": 1, "slow": 1, "last": 0}
        store.answer(question.id, {"interrupted": "skip"}, "alice")
        wait_for(lambda: _status(store, run_id) == "finished", 60, "the run to finish once answered")
    finally:
        worker.stop()
    assert _counts(work) == {"first": 1, "slow": 1, "last": 1}
    run = store.run(run_id)
    assert run is not None and run.outcome == "resolved"
    assert store.questions(run_id=run_id, status="closed")[0].answered_by == "alice"
    [resumed] = [json.loads(line) for line in store.records(run_id) if '"run.resumed"' in line]
    assert resumed["by"] == "alice" and resumed["reason"].startswith("continued as alice answered: step slow was")


def test_sigterm_lets_the_run_in_progress_finish_then_the_worker_exits(
        store: Store, database: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    run_id = queue_run(store, takeover_runbook(tmp_path, sleep=2), work)
    proc = _worker_process(database, tmp_path)
    try:
        wait_for(lambda: _counts(work)["slow"] == 1, 60, "the worker process to start step slow")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err.decode()
    run = store.run(run_id)
    assert run is not None and (run.status, run.outcome) == ("finished", "resolved")
    assert _counts(work) == {"first": 1, "slow": 1, "last": 1}


def test_a_drain_past_its_timeout_hands_the_run_over(store: Store, tmp_path: Path) -> None:
    """Stopped where it is, back in the queue at once, its journal as it was: the next
    worker continues it (the interrupted idempotent step runs again)."""
    work = tmp_path / "work"
    run_id = queue_run(store, takeover_runbook(tmp_path, idempotent=True, sleep=30), work)
    first = Worker(store, _options(tmp_path, drain_timeout=0.2)).start()
    wait_for(lambda: _counts(work)["slow"] == 1, 60, "step slow to start")
    first.stop()
    assert first.done == [(run_id, "handed over")]
    run = store.run(run_id)
    assert run is not None and run.status == "queued" and run.lease_owner is None
    assert not any('"run.finished"' in line for line in store.records(run_id))
    assert [a["what"] for a in store.audit_trail(run_id)] == ["lease.released"]


def test_a_postgresql_restart_mid_run_loses_nothing(postgres: PgCluster, tmp_path: Path) -> None:
    """The worker's writes wait for the database and go on; its own lease, expired during
    the outage, is renewed, never claimed a second time by itself."""
    store = Store.open(postgres.new_database("restart_mid_run"), patience=60)
    work = tmp_path / "work"
    run_id = queue_run(store, takeover_runbook(tmp_path, sleep=4), work)
    worker = Worker(store, _options(tmp_path, lease=1.0)).start()
    try:
        wait_for(lambda: _counts(work)["slow"] == 1, 60, "step slow to start")
        postgres.restart()
        wait_for(lambda: _status(store, run_id) == "finished", 90, "the run to finish after the restart")
    finally:
        worker.stop()
    run = store.run(run_id)
    assert run is not None and (run.outcome, run.claims) == ("resolved", 1)
    assert _counts(work) == {"first": 1, "slow": 1, "last": 1}
    seqs = [json.loads(line)["seq"] for line in store.records(run_id)]
    assert seqs == list(range(1, len(seqs) + 1)) and '"run.finished"' in store.records(run_id)[-1]
    store.close()


def test_a_bug_while_carrying_out_a_run_fails_that_run_and_the_worker_goes_on(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.service import execution

    runbook = takeover_runbook(tmp_path)
    broken = queue_run(store, runbook, tmp_path / "w1")
    real = execution.Execution._carry_out

    def carry_out(self: execution.Execution, run_dir: Path) -> str:
        if self.run.id == broken:
            raise RuntimeError("boom")
        return real(self, run_dir)

    monkeypatch.setattr(execution.Execution, "_carry_out", carry_out)
    worker = Worker(store, _options(tmp_path, slots=1)).start()
    try:
        wait_for(lambda: _status(store, broken) == "finished", 60, "the broken run to end")
        fine = queue_run(store, runbook, tmp_path / "w2")
        wait_for(lambda: _status(store, fine) == "finished", 60, "the next run, on the same slot")
    finally:
        worker.stop()
    failed, ok = store.run(broken), store.run(fine)
    assert failed is not None and (failed.outcome, failed.reason) == ("failed", "internal error: RuntimeError: boom")
    assert ok is not None and ok.outcome == "resolved"
