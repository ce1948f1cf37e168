"""The console's pages of the past on a real `runbook serve`, over SQLite and PostgreSQL:
statistics as `runbook stats --database` computes them, the runbooks the config serves
with their last runs and their flow as a picture, and the audit trail (who signed in,
failed to, answered), readable only by the roles the config names for it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from consolekit import Browser, set_password, write_config
from hookkit import serving, stop
from postgres import wait_for

from engine.service.store import NewRun, Store

pytestmark = pytest.mark.integration
ROLES = "console:\n  roles: {audit: [dba]}\n"
BROKEN = "kind: runbook\nversion: 1\nid: [not a runbook\n"


def _cli(home: Path, database: str, *args: str) -> str:
    import os
    import subprocess
    import sys

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}, "RUNBOOK_HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "engine", *args, "--database", database], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_stats_runbooks_and_the_audit_trail_as_pages(tmp_path: Path, database: str) -> None:
    config, home = write_config(tmp_path, ROLES), tmp_path / "home"
    (tmp_path / "runbooks" / "broken.yaml").write_text(BROKEN, encoding="utf-8")  # not served, no error
    assert set_password(config, home, "alice", database=database).returncode == 0
    assert set_password(config, home, "bob", database=database).returncode == 0
    with serving(config, home, "--database", database) as (base, proc):
        store = Store.open(database)
        try:
            run_ids = [store.enqueue(NewRun("hello", str(tmp_path / "runbooks" / "hello.yaml"))).id for _ in range(2)]
            wait_for(lambda: all(store.run(r).status == "finished" for r in run_ids), 90, "the runs to finish")
        finally:
            store.close()
        alice, bob = Browser(base), Browser(base)
        assert bob.sign_in("bob", "not bob's password").status == 401
        assert alice.sign_in("alice").status == 303 and bob.sign_in("bob").status == 303

        stats = alice.get("/stats")
        assert stats.status == 200 and "hello (live)" in stats.text and "resolved 2" in stats.text
        cli = _cli(home, database, "stats")  # the same figures as the command
        row = next(line for line in cli.splitlines() if line.startswith("hello (live)"))
        assert re.split(r"\s{2,}", row)[1:3] == ["2", "resolved 2"]

        runbooks = alice.get("/runbooks").text
        assert "<code>hello</code></a>: Hello" in runbooks and "broken" not in runbooks
        assert all(f'href="/runs/{r}"' in runbooks for r in run_ids) and "live," in runbooks
        graph = alice.get("/runbooks/hello/graph.svg")
        assert graph.status == 200 and graph.headers["Content-Type"].startswith("image/svg+xml")
        assert "<svg xmlns=" in graph.text and "greet" in graph.text
        assert "script-src" not in graph.headers["Content-Security-Policy"]
        assert alice.get("/runbooks/nothing/graph.svg").status == 404

        assert 'href="/audit"' in alice.get("/").text and 'href="/audit"' not in bob.get("/").text
        refused = bob.get("/audit")
        assert refused.status == 403 and "for the role(s) dba (yours: oncall)" in refused.text
        trail = alice.get("/audit").text
        assert "login.failed" in trail and "from: 127.0.0.1" in trail and "via: password" in trail
        failed = alice.get("/audit?what=login.failed").text
        assert failed.count("<tr>") == 2 and "bob" in failed and "alice" not in failed.split("<tbody>")[1]
        stop(proc, home)


def test_a_finished_drill_reads_as_its_debrief(tmp_path: Path) -> None:
    """A drill run kept in the store (mode drill) links to its debrief, scored against its
    scenario with the same renderer as `runbook report`; a live run's to its review draft."""
    import json
    import os
    import shutil
    import subprocess
    import sys

    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    config, home = write_config(tmp_path, ROLES), tmp_path / "home"
    for name in ("valid-runbook.yaml", "valid-scenario.yaml"):
        shutil.copy(fixtures / name, tmp_path / "runbooks" / name)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}, "RUNBOOK_HOME": str(home)}
    drill = subprocess.run([sys.executable, "-m", "engine", "drill", str(tmp_path / "runbooks" / "valid-scenario.yaml"),
                            "--scripted", "--speed", "100", "--runs-dir", str(tmp_path / "runs"), "--no-color"],
                           env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert drill.returncode == 0, drill.stdout + drill.stderr
    lines = next((tmp_path / "runs").rglob("journal.jsonl")).read_text(encoding="utf-8").splitlines()
    assert set_password(config, home, "alice").returncode == 0
    store = Store.open(f"sqlite:///{home / 'service.db'}")
    try:
        run_id = store.enqueue(NewRun("disk-full", str(tmp_path / "runbooks" / "valid-runbook.yaml"),
                                      mode="drill")).id
        store.claim("w1", {}, 60)
        store.append(run_id, "w1", [(json.loads(line)["seq"], json.loads(line)["event"], line) for line in lines])
        store.finish(run_id, "w1", "resolved")
    finally:
        store.close()
    with serving(config, home, "--no-workers") as (base, proc):
        alice = Browser(base)
        alice.sign_in("alice")
        page = alice.get(f"/runs/{run_id}").text
        assert f'href="/runs/{run_id}/report">The debrief</a>' in page and "<dd>drill</dd>" in page
        debrief = alice.get(f"/runs/{run_id}/report")
        assert debrief.status == 200 and "Drill debrief: Log storm fills /var" in debrief.text
        assert "Scorecard" in debrief.text
        stop(proc, home)
