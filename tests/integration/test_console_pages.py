"""The console's pages on a real `runbook serve`: an Alertmanager webhook whose label is
hostile HTML starts a run; the runs page lists it, the run page shows its steps and the
output's last lines from the stored journal, the report opens once it has ended, the
alerts page shows what became of each alert (a route's run, or no route); every value is
escaped text. The runs list filters by runbook, status and day and pages 50 at a time."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import pytest
from consolekit import Browser, hidden, set_password, write_config
from hookkit import alertmanager, am_alert, bearer, encode, post, serving, stop
from postgres import wait_for

from engine.service.store import NewRun, Store

pytestmark = pytest.mark.integration
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
SOURCES = """sources:
  am: {type: alertmanager, auth: {bearer: {env: AM_TOKEN}}}
routes:
  - name: disk
    match: {alertname: DiskFull}
    runbook: echo-host
"""
ECHO = """\
kind: runbook
version: 1
id: echo-host
title: Echo the host
inputs:
  host: {type: string, alert: labels.instance}
remediation:
  - id: say
    run: "for i in $(seq 1 40); do echo line-$i; done; echo {{ inputs.host }}"
"""


def _signed_in(tmp_path: Path, extra: str = "") -> tuple[Path, Path]:
    config, home = write_config(tmp_path, extra), tmp_path / "home"
    (tmp_path / "runbooks" / "echo-host.yaml").write_text(ECHO, encoding="utf-8")
    assert set_password(config, home, "alice").returncode == 0
    return config, home


def test_a_hostile_alert_and_its_run_are_shown_as_text(tmp_path: Path) -> None:
    config, home = _signed_in(tmp_path, SOURCES)
    with serving(config, home) as (base, proc):
        browser = Browser(base)
        assert browser.sign_in("alice").status == 303
        status, reply = post(f"{base}/hooks/am", encode(alertmanager(am_alert(HOSTILE), am_alert(
            "web-1", name="Unknown"))), bearer())
        assert status == 202, reply
        run_id = next(a["run_id"] for a in reply["alerts"] if a.get("run_id"))
        wait_for(lambda: "finished" in browser.get(f"/runs/{run_id}").text, 60, "the run to finish")
        runs = browser.get("/")
        assert f'href="/runs/{run_id}"' in runs.text and "echo-host" in runs.text
        page = browser.get(f"/runs/{run_id}").text
        assert "say" in page and "line-40" in page and "line-5\n" not in page  # the output's last 20 lines
        for text in (runs.text, page):
            assert "<script>alert" not in text and "<img src=x" not in text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in page
        report = browser.get(f"/runs/{run_id}/report")
        assert report.status == 200 and "echo-host" in report.text and "<script>alert" not in report.text
        assert f"run {run_id} in the store sqlite:" in report.text and "runbook-console-" not in report.text
        own = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', report.text)
        assert report.headers.get_all("Content-Security-Policy") == [html.unescape(own.group(1))]
        alerts = browser.get("/alerts/view").text
        assert "&lt;script&gt;" in alerts and "<script>alert" not in alerts
        assert f'href="/runs/{run_id}">the run</a>' in alerts
        unrouted = browser.get("/alerts/view?unrouted=1").text
        assert "Unknown" in unrouted and "(no route)" in unrouted and "DiskFull" not in unrouted
        assert browser.get("/runs/no-such-run").status == 404
        stop(proc, home)


def test_runs_are_filtered_and_paged(tmp_path: Path) -> None:
    config, home = _signed_in(tmp_path)
    store = Store.open(f"sqlite:///{home / 'service.db'}")
    try:
        for i in range(60):
            store.enqueue(NewRun("bulk", "bulk.yaml", {}, run_id=f"bulk-{i:02d}"))
            if i % 20 == 0:
                time.sleep(0.01)  # distinct queue times
        store.enqueue(NewRun("other", "other.yaml", {}, run_id="other-1", mode="drill"))
        store.cancel("other-1", "not needed")
    finally:
        store.close()
    with serving(config, home, "--no-workers") as (base, proc):
        browser = Browser(base)
        browser.sign_in("alice")
        first = browser.get("/").text
        assert first.count('href="/runs/') == 50 and "other-1" in first and 'rel="prev"' not in first
        older = re.search(r'rel="next" href="/\?([^"]+)"', first).group(1)
        second = browser.get("/?" + older.replace("&amp;", "&")).text
        assert second.count('href="/runs/') == 11 and "bulk-00" in second and 'rel="next"' not in second
        newer = re.search(r'rel="prev" href="/\?([^"]+)"', second).group(1)
        back = browser.get("/?" + newer.replace("&amp;", "&")).text
        assert back.count('href="/runs/') == 50 and "other-1" in back and 'rel="prev"' not in back
        assert browser.get("/?before=yesterday").status == 400
        bulk = browser.get("/?runbook=bulk&status=queued").text
        assert "other-1" not in bulk and "bulk-59" in bulk and 'rel="next"' in bulk
        drills = browser.get("/?mode=drill").text
        assert drills.count('href="/runs/') == 1 and "other-1" in drills and "<option selected>drill</option>" in drills
        assert browser.get("/?mode=live&runbook=other").text.count('href="/runs/') == 0
        game = browser.get("/?mode=game")
        assert game.status == 400 and "mode: &#39;game&#39; is not one of live, dry-run, drill" in game.text
        cancelled = browser.get("/?status=cancelled").text
        assert cancelled.count('href="/runs/') == 1 and "other-1" in cancelled
        today = time.strftime("%Y-%m-%d", time.gmtime())
        assert browser.get(f"/?since={today}&until={today}").text.count('href="/runs/') == 50
        assert browser.get("/?until=2001-01-01").text.count('href="/runs/') == 0
        bad = browser.get("/?since=yesterday")
        assert bad.status == 400 and "since: &#39;yesterday&#39; is not a date" in bad.text
        stop(proc, home)


ASKS = """\
kind: runbook
version: 1
id: asks
title: Asks and approves
triage:
  - id: triage
    manual: Is the disk filling with logs?
    ask:
      cause: {prompt: Cause, choices: [logs, data], sets: vars.cause}
remediation:
  - id: restart
    run: "echo restarting for {{ vars.cause }}"
    confirm: {message: "Restart the database?", role: dba}
"""


def _question_of(page: str, step: str) -> bool:
    return 'action="/runs/' in page and f'/questions/{step}"' in page


def test_questions_and_approvals_are_answered_on_the_run_page_by_the_right_role(tmp_path: Path) -> None:
    config, home = _signed_in(tmp_path)
    (tmp_path / "runbooks" / "asks.yaml").write_text(ASKS, encoding="utf-8")
    assert set_password(config, home, "bob").returncode == 0
    with serving(config, home) as (base, proc):
        store = Store.open(f"sqlite:///{home / 'service.db'}")
        run_id = store.enqueue(NewRun("asks", str(tmp_path / "runbooks" / "asks.yaml"), {})).id
        store.close()
        alice, bob = Browser(base), Browser(base)
        alice.sign_in("alice")
        bob.sign_in("bob")
        wait_for(lambda: _question_of(bob.get(f"/runs/{run_id}").text, "triage"), 60, "the question")
        page = bob.get(f"/runs/{run_id}").text
        assert "Is the disk filling with logs?" in page and "<option>data</option>" in page
        answered = bob.post(f"/runs/{run_id}/questions/triage", {"csrf": hidden(page, "csrf"), "cause": "logs"})
        assert answered.status == 303 and answered.location == f"/runs/{run_id}"
        wait_for(lambda: "Restart the database?" in bob.get(f"/runs/{run_id}").text, 60, "the approval")
        page = bob.get(f"/runs/{run_id}").text
        assert "Waiting for someone with the role dba (yours: oncall)" in page and not _question_of(page, "restart")
        assert "Waiting on the role dba: alice, for step restart (an approval, since" in page
        assert "<strong>bob</strong> answered step triage: cause=logs (via console)." in page
        forced = bob.post(f"/runs/{run_id}/questions/restart", {"csrf": hidden(page, "csrf"), "approved": "yes"})
        assert forced.status == 403 and "bob may not answer step restart" in forced.text
        forged = alice.post(f"/runs/{run_id}/questions/restart", {"csrf": "forged", "approved": "yes"})
        assert forged.status == 403 and "security token" in forged.text
        page = alice.get(f"/runs/{run_id}").text
        assert _question_of(page, "restart")
        done = alice.post(f"/runs/{run_id}/questions/restart", {"csrf": hidden(page, "csrf"), "approved": "yes",
                                                                "reason": "logs rotated"})
        assert done.status == 303
        wait_for(lambda: "finished" in alice.get(f"/runs/{run_id}").text, 60, "the run to finish")
        assert "restarting for logs" in alice.get(f"/runs/{run_id}").text
        doings = alice.get(f"/runs/{run_id}").text
        assert "<strong>alice</strong> approved step restart: reason=logs rotated (via console)." in doings
        assert "Waiting on" not in doings
        late = alice.post(f"/runs/{run_id}/questions/restart", {"csrf": hidden(page, "csrf"), "approved": "yes"})
        assert late.status == 409 and "has no open question at step restart" in late.text
        stop(proc, home)
