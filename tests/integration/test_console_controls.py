"""Abort and resume from the console, on a real `runbook serve`: a person holding a
control role (console.roles.control) stops a running run as Ctrl-C would (its step's
command is killed, the run ends aborted, saying who and why), then resumes it as
`runbook resume` would (from its journal: the steps done stay done, the interrupted one is
asked about, the run goes on to its end); anyone else is refused, naming the role; a run
not yet running is cancelled at once. All of it on the audit trail, with how it came."""

from __future__ import annotations

from pathlib import Path

import pytest
from consolekit import Browser, hidden, set_password, write_config
from hookkit import serving, stop
from postgres import wait_for

from engine.service.store import NewRun, Store

pytestmark = pytest.mark.integration
EXTRA = "workers: {lease: 3s}\nconsole:\n  roles: {control: [dba]}\n"
LONG = """\
kind: runbook
version: 1
id: long
title: A long wait
remediation:
  - id: first
    run: "echo first >> {work}/log"
  - id: wait
    run: "if [ -e {work}/again ]; then echo waited >> {work}/log; else touch {work}/again; sleep 60; fi"
  - id: last
    run: "echo last >> {work}/log"
"""


def _status(browser: Browser, run_id: str) -> str:
    text = browser.get(f"/runs/{run_id}").text
    start = text.index('id="run-status"')
    return text[text.index(">", start) + 1:text.index("</dd>", start)]


def test_a_running_run_is_aborted_and_resumed_from_the_console(tmp_path: Path) -> None:
    config, home = write_config(tmp_path, EXTRA), tmp_path / "home"
    (tmp_path / "runbooks" / "long.yaml").write_text(LONG.format(work=tmp_path), encoding="utf-8")
    for name in ("alice", "bob"):
        assert set_password(config, home, name).returncode == 0
    with serving(config, home) as (base, proc):
        store = Store.open(f"sqlite:///{home / 'service.db'}")
        run_id = store.enqueue(NewRun("long", str(tmp_path / "runbooks" / "long.yaml"))).id
        alice, bob = Browser(base), Browser(base)
        alice.sign_in("alice")
        bob.sign_in("bob")
        wait_for(lambda: (tmp_path / "again").exists(), 60, "the long step to start")
        page = bob.get(f"/runs/{run_id}").text
        assert 'id="abort"' not in page
        refused = bob.post(f"/runs/{run_id}/abort", {"csrf": hidden(page, "csrf")})
        assert refused.status == 403 and "To abort a run takes the role(s) dba (yours: oncall)" in refused.text
        page = alice.get(f"/runs/{run_id}").text
        assert alice.post(f"/runs/{run_id}/abort", {"csrf": "forged"}).status == 403
        done = alice.post(f"/runs/{run_id}/abort", {"csrf": hidden(page, "csrf"), "reason": "wrong host"})
        assert done.status == 303
        wait_for(lambda: store.run(run_id).status == "finished", 60, "the run to stop")
        run = store.run(run_id)
        assert (run.outcome, run.reason) == ("aborted", "aborted by alice from the console: wrong host"), run
        assert (tmp_path / "log").read_text() == "first\n"
        page = alice.get(f"/runs/{run_id}").text
        assert 'id="resume"' in page and 'id="abort"' not in page
        again = alice.post(f"/runs/{run_id}/abort", {"csrf": hidden(page, "csrf")})
        assert again.status == 409 and "has already ended (finished)" in again.text
        assert alice.post(f"/runs/{run_id}/resume", {"csrf": hidden(page, "csrf")}).status == 303
        wait_for(lambda: store.run(run_id).status in ("waiting", "finished"), 60, "the resumed run")
        if store.run(run_id).status == "waiting":  # asked, as runbook resume asks, about the stopped step
            page = alice.get(f"/runs/{run_id}").text
            [question] = store.questions(run_id=run_id)
            assert question.kind == "interrupted" and "Run the interrupted step again" in page
            answer = {"csrf": hidden(page, "csrf"), "interrupted": "rerun", "running": "wait"}
            reply = alice.post(f"/runs/{run_id}/questions/{question.step}", answer)
            assert reply.status == 303, reply.text
        wait_for(lambda: store.run(run_id).status == "finished", 60, "the resumed run to end")
        assert store.run(run_id).outcome == "resolved"
        assert (tmp_path / "log").read_text() == "first\nwaited\nlast\n"
        trail = [(a["who"], a["what"]) for a in store.audit_trail(run_id) if a["what"].startswith("run.")]
        assert ("alice", "run.abort") in trail and ("alice", "run.resume") in trail
        people = alice.get(f"/runs/{run_id}").text
        assert "<strong>alice</strong> aborted the run: aborted by alice from the console: wrong host" in people
        store.close()
        stop(proc, home)


def test_a_queued_run_is_cancelled_at_once(tmp_path: Path) -> None:
    config, home = write_config(tmp_path, EXTRA), tmp_path / "home"
    assert set_password(config, home, "alice").returncode == 0
    with serving(config, home, "--no-workers") as (base, proc):
        store = Store.open(f"sqlite:///{home / 'service.db'}")
        run_id = store.enqueue(NewRun("hello", str(tmp_path / "runbooks" / "hello.yaml"))).id
        alice = Browser(base)
        alice.sign_in("alice")
        page = alice.get(f"/runs/{run_id}").text
        assert alice.post(f"/runs/{run_id}/abort", {"csrf": hidden(page, "csrf")}).status == 303
        assert store.run(run_id).status == "cancelled"
        assert 'id="resume"' in alice.get(f"/runs/{run_id}").text
        store.close()
        stop(proc, home)


def test_abort_then_resume_in_a_browser(tmp_path: Path) -> None:
    """In Chromium, with the keyboard: Abort (a reason typed, Tab, Enter) stops the run and
    the page shows it aborted; Resume puts it back; the question about the stopped step
    appears live and is answered; the run ends resolved. No console error, no CSP report."""
    from cdp import chromium
    from consolekit import PASSWORD

    config, home = write_config(tmp_path, EXTRA), tmp_path / "home"
    (tmp_path / "runbooks" / "long.yaml").write_text(LONG.format(work=tmp_path), encoding="utf-8")
    assert set_password(config, home, "alice").returncode == 0
    with serving(config, home) as (base, proc), chromium() as browser:
        store = Store.open(f"sqlite:///{home / 'service.db'}")
        run_id = store.enqueue(NewRun("long", str(tmp_path / "runbooks" / "long.yaml"))).id
        store.close()
        page = browser.page()
        page.go(f"{base}/runs/{run_id}")
        page.evaluate(f"document.getElementById('name').value = 'alice';"
                      f"document.getElementById('password').value = {PASSWORD!r};"
                      "document.querySelector('form.login button').click()")
        page.wait_for(f"location.pathname === '/runs/{run_id}' && document.readyState === 'complete'", 30)
        wait_for(lambda: (tmp_path / "again").exists(), 60, "the long step to start")
        page.wait_for("document.getElementById('abort-reason') !== null", 30, "the abort form")
        page.evaluate("document.getElementById('abort-reason').focus()")
        page.call("Input.insertText", {"text": "wrong host"})
        page.press("Tab")
        assert page.evaluate("document.activeElement.id") == "abort"
        page.press("Enter")
        page.wait_for("document.getElementById('run-status').textContent.includes('aborted')", 60, "aborted")
        page.wait_for("document.getElementById('resume') !== null", 30, "the resume button")
        page.evaluate("document.getElementById('resume').focus()")
        page.press("Enter")
        page.wait_for("document.body.innerText.includes('Run the interrupted step again')", 60, "the question, live")
        page.evaluate("document.querySelector('form.answer select').focus()")
        page.press("Tab")
        page.press("Tab")
        assert page.evaluate("document.activeElement.id").startswith("answer-")
        page.press("Enter")
        page.wait_for("document.getElementById('run-status').textContent.includes('resolved')", 60, "resolved")
        assert (tmp_path / "log").read_text() == "first\nwaited\nlast\n"
        assert page.problems() == [], page.problems()
        stop(proc, home)
