"""A game day in three real browsers (Debian's Chromium, headless, over the DevTools
protocol; one browser context each): the trainer opens a room and sends the link, two
participants join and get roles, each answers their own role's prompt, the trainer pauses
and resumes (the trainees' pages follow without a reload), a trainee reloads mid-drill
and finds their question where it was, and everyone reaches the scorecard and the
debrief. A trainee's page never holds the trainer's notes, faults or an event's kind; no
page has a console error or a CSP violation. Screenshots at 1280 px go to
/tmp/screens-room/."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cdp import Page, chromium
from consolekit import PASSWORD, set_password
from hookkit import serving, stop
from roomkit import FAULT, HERRING, NOTES, write_drill_files

pytestmark = pytest.mark.integration
SCREENS = Path("/tmp/screens-room")


def _sign_in(page: Page, base: str, name: str) -> None:
    page.go(f"{base}/drills")
    page.wait_for("location.pathname === '/login'", 30, "the sign-in page")
    page.evaluate(f"document.getElementById('name').value = {json.dumps(name)};"
                  f"document.getElementById('password').value = {PASSWORD!r};"
                  "document.querySelector('form.login button').click()")
    page.wait_for("location.pathname === '/drills' && document.readyState === 'complete'", 30, "the game days")


def _click(page: Page, selector: str, what: str, timeout: float = 60) -> None:
    page.wait_for(f"!!document.querySelector({json.dumps(selector)})", timeout, what)
    page.evaluate(f"window.roomOld = true; document.querySelector({json.dumps(selector)}).click()")


def _submit(page: Page, selector: str, what: str, timeout: float = 60) -> None:
    """Click a form's button and wait for the page the form leads to (a new document)."""
    _click(page, selector, what, timeout)
    page.wait_for("window.roomOld === undefined && document.readyState === 'complete'", 30, f"{what}: the next page")


def _screenshot(page: Page, name: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    height = int(page.evaluate("Math.ceil(document.documentElement.scrollHeight)"))
    page.call("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": max(height, 600),
                                                     "deviceScaleFactor": 1, "mobile": False})
    shot = page.call("Page.captureScreenshot", {"format": "png"})
    (SCREENS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))
    page.call("Emulation.clearDeviceMetricsOverride")


def _html(page: Page) -> str:
    return str(page.evaluate("document.documentElement.outerHTML"))


def test_a_three_person_game_day_from_the_link_to_the_debrief(tmp_path: Path) -> None:
    config, home = write_drill_files(tmp_path), tmp_path / "home"
    for name in ("tess", "rita", "ivan"):
        assert set_password(config, home, name).returncode == 0
    with serving(config, home) as (base, proc), chromium() as browser:
        tess, rita, ivan = browser.page(), browser.page(), browser.page()
        for page, name in ((tess, "tess"), (rita, "rita"), (ivan, "ivan")):
            _sign_in(page, base, name)
        tess.evaluate("document.getElementById('speed').value = '50'")
        _submit(tess, "#open-room", "the start form")
        tess.wait_for("!!document.getElementById('join-link')", 30, "the room")
        room, link = str(tess.evaluate("location.href")), str(tess.evaluate(
            "document.getElementById('join-link').textContent"))
        for page in (rita, ivan):
            page.go(link)
            _submit(page, "#join", "the join button")
            page.wait_for(f"location.href === {json.dumps(room)} && document.readyState === 'complete'", 30)
        tess.wait_for("!!document.getElementById('role-ivan')", 30, "both participants, live on the trainer's page")
        tess.evaluate("document.getElementById('role-rita').value = 'responder';"
                      "document.getElementById('role-ivan').value = 'incident_commander'")
        _submit(tess, "#assign", "the roles form")
        _submit(tess, "#start", "the start button")
        rita.wait_for("document.getElementById('my-role').textContent.includes('responder')", 30, "rita's role")
        _submit(ivan, "button[id^=ack-]", "the page ringing, live")
        rita.wait_for("!!document.querySelector('select[id$=-cause]')", 60, "rita's question, live")
        ivan.wait_for("document.body.innerText.includes('Waiting on rita (responder)')", 30)
        assert not ivan.evaluate("!!document.querySelector('select[id$=-cause]')")
        tess.evaluate("document.getElementById('inject').value = '1'")
        _submit(tess, "#control-inject", "the inject form")
        rita.wait_for("document.body.innerText.includes('Payments team asks')", 30, "the injected message")
        assert "inject" not in rita.text()  # the event reads as it happened, not as the trainer's doing
        _submit(tess, "#control-pause", "the pause button")
        rita.wait_for("document.getElementById('room-status').textContent.includes('paused')", 30, "the pause")
        _screenshot(tess, "trainer-room")
        _screenshot(rita, "trainee-room")
        _submit(tess, "#control-resume", "the resume button")
        rita.wait_for("document.getElementById('room-status').textContent.includes('running')", 30, "the resume")
        rita.go(room)  # a reload mid-drill: the question is still hers, where it was
        rita.wait_for("!!document.querySelector('select[id$=-cause]')", 30, "the question after a reload")
        rita.evaluate("document.querySelector('select[id$=-cause]').value = 'consumers'")
        _submit(rita, "button[id^=answer-]", "rita's answer button")
        _submit(ivan, "button[id^=approve-]", "ivan's approval, live")
        for page in (tess, rita, ivan):
            page.wait_for("!!document.getElementById('debrief')", 90, "the scorecard and the debrief link")
        for page in (rita, ivan):
            html = _html(page)
            for secret in (NOTES, FAULT, HERRING):
                assert secret not in html, secret
        assert NOTES in _html(tess) and FAULT in _html(tess)
        _screenshot(rita, "trainee-scorecard")
        for page in (tess, rita, ivan):
            assert page.problems() == [], page.problems()
        _click(rita, "#debrief", "the debrief link")
        rita.wait_for("location.pathname.endsWith('/report') && document.readyState === 'complete'", 30)
        assert "rita" in rita.text() and "ivan" in rita.text()
        _screenshot(rita, "trainee-debrief")
        stop(proc, home)
