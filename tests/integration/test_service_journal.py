"""The store-backed journal: the same run's events written to journal.jsonl and to the
store (SQLite and a real PostgreSQL) come out of the store byte for byte the same."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from servicekit import queue_run, takeover_runbook

from engine.cli.commands import cli
from engine.language.validation import load_runbook
from engine.run.journal_writer import JournalWriter
from engine.run.session import LiveOptions, run_at
from engine.service.journal import StoreJournal
from engine.service.store import Store
from engine.service.store.database import database_url

pytestmark = pytest.mark.integration


class _Tee:
    """Both journals at once: the file a CLI run writes and the store's."""

    wants_output = True

    def __init__(self, *journals: Any) -> None:
        self.journals = journals

    def on_event(self, event: Any, stamp: Any) -> None:
        for j in self.journals:
            j.on_event(event, stamp)

    def barrier(self) -> None:
        for j in self.journals:
            j.barrier()

    def __enter__(self) -> _Tee:
        return self

    def __exit__(self, *exc: object) -> None:
        for j in self.journals:
            j.close()


def test_the_stored_journal_is_byte_for_byte_the_file_journal(store: Store, tmp_path: Path) -> None:
    """The same run's events, to journal.jsonl and to the store: the export is identical,
    logs included (NUL bytes, UTF-8), secrets masked in both, and `runbook report` reads it."""
    runbook = takeover_runbook(tmp_path)
    run_id = queue_run(store, runbook, tmp_path / "work")
    store.claim("w1", {}, 60)

    options = LiveOptions(install_signals=False, show_output=False, stream=io.StringIO(), machine_lock=False,
                          journal=lambda d: _Tee(JournalWriter(d), StoreJournal(store, run_id, "w1")))
    result = run_at(load_runbook(runbook), {"dir": str(tmp_path / "work"), "token": "s3cr3t-value"}, options,
                    run_id=run_id, run_dir=tmp_path / "cli", secrets=("s3cr3t-value",))
    assert result.outcome == "resolved"
    exported = store.export(run_id, tmp_path / "exported")
    assert exported.read_bytes() == (tmp_path / "cli" / "journal.jsonl").read_bytes()
    assert b"s3cr3t-value" not in exported.read_bytes()
    cli_logs = sorted(p.relative_to(tmp_path / "cli") for p in (tmp_path / "cli" / "logs").rglob("*") if p.is_file())
    assert cli_logs and [p.name for p in cli_logs] == sorted(p.name for p in (tmp_path / "exported" / "logs").iterdir())
    for rel in cli_logs:
        assert (tmp_path / "exported" / rel).read_bytes() == (tmp_path / "cli" / rel).read_bytes()
    report = CliRunner().invoke(cli, ["report", str(tmp_path / "exported"), "-f", "json"])
    assert report.exit_code == 0, report.output
    assert '"resolved"' in report.output


def test_report_stats_and_from_run_read_runs_from_the_store(store: Store, database: str, tmp_path: Path) -> None:
    """With --database they take run ids: the same report as from the CLI run's directory."""
    runbook = takeover_runbook(tmp_path)
    run_id = queue_run(store, runbook, tmp_path / "work")
    store.claim("w1", {}, 60)
    options = LiveOptions(install_signals=False, show_output=False, stream=io.StringIO(), machine_lock=False,
                          journal=lambda d: _Tee(JournalWriter(d), StoreJournal(store, run_id, "w1")))
    run_at(load_runbook(runbook), {"dir": str(tmp_path / "work"), "token": "x"}, options, run_id=run_id,
           run_dir=tmp_path / run_id)
    store.finish(run_id, "w1", "resolved")
    runner = CliRunner()
    from_store = runner.invoke(cli, ["report", "--database", database, run_id, "-f", "json"])
    from_dir = runner.invoke(cli, ["report", str(tmp_path / run_id), "-f", "json"])
    assert from_store.exit_code == 0 and from_dir.exit_code == 0, from_store.output
    shown = json.loads(from_store.output)
    assert shown.pop("source") == f"run {run_id} in {database_url(database)}"
    assert shown == {k: v for k, v in json.loads(from_dir.output).items() if k != "source"}
    stats = runner.invoke(cli, ["stats", "--database", database, "-f", "json"])
    assert stats.exit_code == 0 and '"resolved": 1' in stats.output, stats.output
    scenario = runner.invoke(cli, ["scenario", "from-run", "--database", database, run_id])
    assert scenario.exit_code == 0 and "kind: scenario" in scenario.output, scenario.output
    listed = runner.invoke(cli, ["runs", "--database", database])
    assert listed.exit_code == 0 and run_id in listed.output and "resolved" in listed.output, listed.output
    exported = runner.invoke(cli, ["export", run_id, "--database", database, "-o", str(tmp_path / "exp")])
    assert exported.exit_code == 0 and exported.output == f"wrote {tmp_path / 'exp' / 'journal.jsonl'}\n"
    assert (tmp_path / "exp" / "journal.jsonl").read_bytes() == (tmp_path / run_id / "journal.jsonl").read_bytes()
    again = runner.invoke(cli, ["export", run_id, "--database", database, "-o", str(tmp_path / "exp")])
    assert again.exit_code == 2 and "exists already" in again.output
    missing = runner.invoke(cli, ["report", "--database", database, "nope"])
    assert missing.exit_code == 3 and "has no run nope" in missing.output
