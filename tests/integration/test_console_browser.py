"""The console in a real browser (Debian's Chromium, headless, over the DevTools protocol)
against a real `runbook serve`: signing in through the form, a run started by an alert
followed live on its page without a reload (the page's script hears the journal's events
and swaps in what the server renders again), no console error or CSP violation on any
page (and the check does see one when there is), a hostile alert label shown as text, and
a forged cross-origin form refused."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cdp import Page, chromium
from consolekit import PASSWORD, set_password, write_config
from hookkit import alertmanager, am_alert, bearer, encode, post, serving, stop

from engine.service.store import NewRun, Store

pytestmark = pytest.mark.integration
HOSTILE = '"><img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
SOURCES = """sources:
  am: {type: alertmanager, auth: {bearer: {env: AM_TOKEN}}}
routes:
  - name: disk
    match: {alertname: DiskFull}
    runbook: slow
"""
SLOW = """\
kind: runbook
version: 1
id: slow
title: Slow and steady
inputs:
  host: {type: string, alert: labels.instance}
triage:
  - id: look
    run: "sleep 2; echo looked at {{ inputs.host }}"
remediation:
  - id: fix
    run: "sleep 2; echo fixed-it"
"""


def _config(tmp_path: Path) -> tuple[Path, Path]:
    config, home = write_config(tmp_path, SOURCES), tmp_path / "home"
    (tmp_path / "runbooks" / "slow.yaml").write_text(SLOW, encoding="utf-8")
    assert set_password(config, home, "alice").returncode == 0
    return config, home


def _sign_in(page: Page, base: str) -> None:
    page.go(f"{base}/runs/x")
    page.wait_for("location.pathname === '/login'", 30, "the sign-in page")
    page.evaluate(f"document.getElementById('name').value = 'alice';"
                  f"document.getElementById('password').value = {PASSWORD!r};"
                  "document.querySelector('form.login button').click()")
    page.wait_for("location.pathname === '/runs/x' && document.readyState === 'complete'", 30,
                  "the page asked for, after signing in")


def test_a_run_is_followed_live_and_no_page_breaks_the_policy(tmp_path: Path) -> None:
    config, home = _config(tmp_path)
    with serving(config, home) as (base, proc), chromium() as browser:
        page = browser.page()
        _sign_in(page, base)
        assert "There is no such run" in page.text()
        status, reply = post(f"{base}/hooks/am", encode(alertmanager(am_alert(HOSTILE))), bearer())
        assert status == 202, reply
        run_id = next(a["run_id"] for a in reply["alerts"] if a.get("run_id"))
        page.go(f"{base}/runs/{run_id}")
        assert "fixed-it" not in page.text()
        page.evaluate("window.sameDocument = 'yes'")
        page.wait_for("document.getElementById('live').textContent.includes('follows the run')", 30)
        page.wait_for("document.body.innerText.includes('fixed-it')", 60, "the last step's output, live")
        page.wait_for("document.getElementById('run-status').textContent.includes('finished')", 30)
        page.wait_for("document.getElementById('live').textContent.includes('has ended')", 30)
        assert page.evaluate("window.sameDocument") == "yes"  # updated in place, never reloaded
        assert f"looked at {HOSTILE}" in page.text()  # the output, as text
        assert page.evaluate("window.pwned === undefined && document.querySelectorAll('main img').length === 0")
        for path in ("/", "/alerts/view", f"/runs/{run_id}"):
            page.go(base + path)
            browser.pump(0.5)
            assert page.problems() == [], (path, page.problems())
            assert path == "/" or HOSTILE in page.text()  # the alert's label, as text
        assert page.evaluate("window.pwned === undefined && document.querySelectorAll('main img').length === 0")
        page.evaluate("document.body.insertAdjacentHTML('beforeend', '<img src=\"http://127.0.0.2:9/x.png\">')")
        browser.pump(1.0)
        assert any("Content Security Policy" in p for p in page.problems())  # the check sees a violation
        stop(proc, home)


@contextmanager
def _attacker(target: str) -> Iterator[str]:
    """Another origin (another port) serving a page that posts a forged sign-out form."""
    page = (f'<form id="f" method="post" action="{target}/logout"><input name="csrf" value="forged"></form>'
            '<script>document.getElementById("f").submit()</script>').encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_forged_form_from_another_origin_is_refused(tmp_path: Path) -> None:
    config, home = _config(tmp_path)
    with serving(config, home) as (base, proc), chromium() as browser, _attacker(base) as evil:
        page = browser.page()
        _sign_in(page, base)
        page.go(evil)
        page.wait_for("location.pathname === '/logout' && document.readyState === 'complete'", 30)
        assert "security token is missing or stale" in page.text()
        page.go(f"{base}/")
        assert page.evaluate("location.pathname") == "/" and "alice" in page.text()  # still signed in
        page.evaluate("document.querySelector('form.signout button').click()")
        page.wait_for("location.pathname === '/login'", 30, "signing out with the real form")
        stop(proc, home)


APPROVES = """\
kind: runbook
version: 1
id: approves
title: Approves
triage:
  - id: look
    run: "sleep 1; echo looked"
remediation:
  - id: restart
    run: "echo restarted"
    confirm: {message: "Restart the database?", role: dba}
"""


def test_an_approval_is_given_with_the_keyboard_alone(tmp_path: Path) -> None:
    config, home = _config(tmp_path)
    (tmp_path / "runbooks" / "approves.yaml").write_text(APPROVES, encoding="utf-8")
    with serving(config, home) as (base, proc), chromium() as browser:
        store = Store.open(f"sqlite:///{home / 'service.db'}")
        run_id = store.enqueue(NewRun("approves", str(tmp_path / "runbooks" / "approves.yaml"), {})).id
        store.close()
        page = browser.page()
        _sign_in(page, base)
        page.go(f"{base}/runs/{run_id}")  # while its first step runs: the form comes live
        page.wait_for("!!document.querySelector('form.answer button[value=yes]')", 60, "the approval form")
        for _ in range(30):  # Tab through the page, from the top, to the Approve button
            if page.evaluate("document.activeElement.value === 'yes'"):
                break
            page.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Approve"
        browser.pump(2.0)  # live refreshes that come meanwhile leave the person where they are
        assert page.evaluate("document.activeElement.textContent") == "Approve"
        page.press("Enter")
        page.wait_for("document.body.innerText.includes('restarted')", 60, "the approved step's output")
        assert page.problems() == []
        stop(proc, home)


def test_the_runs_list_follows_runs_starting_and_ending_without_a_reload(tmp_path: Path) -> None:
    """The newest page of runs listens to /events/runs: a run queued while it is open
    appears, then shows running and finished, in the same document; an older page does
    not follow (it would shift under the reader)."""
    config, home = _config(tmp_path)
    with serving(config, home) as (base, proc), chromium() as browser:
        page = browser.page()
        _sign_in(page, base)
        page.go(f"{base}/")
        page.evaluate("window.sameDocument = 'yes'")
        page.wait_for("document.getElementById('live').textContent.includes('runs appear')", 30)
        store = Store.open(f"sqlite:///{home / 'service.db'}")
        try:
            run_id = store.enqueue(NewRun("slow", str(tmp_path / "runbooks" / "slow.yaml"), {"host": "db-1"})).id
        finally:
            store.close()
        row = f"document.querySelector('a[href=\"/runs/{run_id}\"]')"
        page.wait_for(f"{row} !== null", 60, "the new run in the list")
        page.wait_for(f"{row}.closest('tr').innerText.includes('running')", 60, "the run shown running")
        page.wait_for(f"{row}.closest('tr').innerText.includes('finished')", 60, "the run shown finished")
        assert page.evaluate("window.sameDocument") == "yes"
        assert page.problems() == [], page.problems()
        stop(proc, home)


def test_an_expired_session_sends_the_browser_back_to_sign_in(tmp_path: Path) -> None:
    """A sign-in lasts `console.session`; after it, the same browser's next page asks again,
    and signing in again returns to the page it asked for."""
    config = write_config(tmp_path, SOURCES + "console: {session: 3s}\n")
    home = tmp_path / "home"
    (tmp_path / "runbooks" / "slow.yaml").write_text(SLOW, encoding="utf-8")
    assert set_password(config, home, "alice").returncode == 0
    with serving(config, home) as (base, proc), chromium() as browser:
        page = browser.page()
        _sign_in(page, base)
        page.go(f"{base}/")
        assert page.evaluate("location.pathname") == "/" and "alice" in page.text()
        time.sleep(4)
        page.go(f"{base}/")
        page.wait_for("location.pathname === '/login'", 30, "the sign-in page after the session expired")
        _sign_in(page, base)  # back to the page asked for
        stop(proc, home)
