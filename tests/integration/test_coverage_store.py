"""`runbook coverage --database`: the runs of the service's store (SQLite and a real
PostgreSQL) count as the journals of a run directory do."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from servicekit import queue_run, takeover_runbook

from engine.cli.commands import cli
from engine.language.validation import load_runbook
from engine.run.session import LiveOptions, run_at
from engine.service.journal import StoreJournal
from engine.service.store import Store

pytestmark = pytest.mark.integration


def test_coverage_counts_the_live_runs_of_the_store(store: Store, database: str, tmp_path: Path) -> None:
    runbook = takeover_runbook(tmp_path)
    run_id = queue_run(store, runbook, tmp_path / "work")
    store.claim("w1", {}, 60)
    options = LiveOptions(install_signals=False, show_output=False, stream=io.StringIO(), machine_lock=False,
                          journal=lambda d: StoreJournal(store, run_id, "w1"))
    assert run_at(load_runbook(runbook), {"dir": str(tmp_path / "work"), "token": "x"}, options, run_id=run_id,
                  run_dir=tmp_path / run_id).outcome == "resolved"
    store.finish(run_id, "w1", "resolved")
    result = CliRunner().invoke(cli, ["coverage", str(runbook), "--database", database, "-f", "json"],
                                env={"RUNBOOK_HOME": str(tmp_path / "home")})
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    live = data["runbooks"][0]["modes"]["live"]
    assert live["runs"] == 1 and data["journals"] == 1
    assert live["steps_percent"] and live["steps_percent"] > 0
    assert data["runbooks"][0]["modes"]["test"]["runs"] == 0
