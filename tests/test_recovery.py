"""engine.run.recovery: what a damaged journal still tells resume, and what it refuses to guess."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.errors import JournalError
from engine.run.recovery import recover

START = {"seq": 1, "event": "run.started", "t": "2026-12-04T10:00:00.000Z", "elapsed": 0.0,
         "run_id": "r-1", "file": "rb.yaml", "mode": "live", "inputs": {"host": "db-1"}}


def journal(tmp_path: Path, *records: dict[str, Any]) -> Path:
    run_dir = tmp_path / "r-1"
    run_dir.mkdir()
    (run_dir / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return run_dir


def test_fields_of_the_wrong_type_are_read_as_missing(tmp_path: Path) -> None:
    run_dir = journal(tmp_path, START,
                      {"seq": 2, "event": "step.finished", "step": "probe", "status": "ok", "duration": "long",
                       "attempts": "many", "hosts": ["web-1"], "outputs": ["x"], "elapsed": "soon"},
                      {"seq": 3, "event": "step.finished", "status": "ok"},
                      {"seq": 4, "event": "run.finished", "outcome": "failed", "duration": {}})
    found = recover(run_dir)
    probe = found.steps["probe"]
    assert (probe.status, probe.duration, probe.attempts, probe.hosts, probe.outputs) == ("ok", 0.0, 1, {}, {})
    assert list(found.steps) == ["probe"] and found.outcome == "failed"


def test_a_finished_step_without_a_readable_status_is_not_taken_as_done(tmp_path: Path) -> None:
    run_dir = journal(tmp_path, START, {"seq": 2, "event": "step.finished", "step": "probe", "status": ["ok"]})
    assert recover(run_dir).steps["probe"].status == "failed"


def test_a_start_without_a_run_id_takes_the_directory_name(tmp_path: Path) -> None:
    run_dir = journal(tmp_path, {k: v for k, v in START.items() if k != "run_id"})
    assert recover(run_dir).run_id == "r-1"


def test_a_start_without_the_runbook_file_is_a_journal_error(tmp_path: Path) -> None:
    run_dir = journal(tmp_path, {**START, "file": None})
    with pytest.raises(JournalError, match="does not name the runbook file"):
        recover(run_dir)
