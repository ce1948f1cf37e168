"""The drill room over HTTP against a real `runbook serve`: a trainer opens a room from the
console, two people join by its link and get roles, each answers their own role's prompt
(the other is refused), the trainer pauses and resumes, and everyone sees the scorecard at
the end. A trainee's page and stream never carry the trainer's notes, the scenario's
faults or an event's kind; the stream resumes from Last-Event-ID."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from consolekit import Browser, hidden, set_password
from hookkit import serving
from postgres import wait_for
from roomkit import FAULT, HERRING, NOTES, write_drill_files

pytestmark = pytest.mark.integration
TRAINER_ONLY = (NOTES, FAULT, HERRING, "Poisoned message", "queue-stuck-poison", "Live scorecard", "inject 1")


def _people(tmp_path: Path) -> tuple[Path, Path]:
    config, home = write_drill_files(tmp_path), tmp_path / "home"
    for name in ("tess", "rita", "ivan", "olga"):
        assert set_password(config, home, name).returncode == 0
    return config, home


def _token(config: Path, home: Path, name: str) -> str:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}, "RUNBOOK_HOME": str(home)}
    done = subprocess.run([sys.executable, "-m", "engine", "token", "create", name, "-c", str(config)],
                          capture_output=True, text=True, env=env, timeout=120)
    found = re.search(r"rbt_\S+", done.stdout)
    assert done.returncode == 0 and found, done.stdout + done.stderr
    return found.group(0)


def _signed(base: str, name: str) -> Browser:
    browser = Browser(base)
    assert browser.sign_in(name).status == 303
    return browser


def _post(browser: Browser, page: str, action: str, fields: dict[str, str] | None = None) -> str:
    """Post one of `page`'s forms (by its action) with its CSRF token; the page it leads to."""
    form = browser.get(page)
    reply = browser.post(action, {"csrf": hidden(form.text, "csrf"), **(fields or {})})
    assert reply.status == 303, (action, reply.status, reply.text[-2000:])
    return reply.location


def _open_room(base: str, trainer: Browser) -> tuple[str, str]:
    index = trainer.get("/drills").text
    scenario = re.search(r'<option value="([^"]+queue-stuck-poison.yaml)"', index)
    assert scenario, index
    room = _post(trainer, "/drills", "/drills", {"scenario": scenario.group(1), "speed": "50"})
    link = re.search(r'<code id="join-link">([^<]+)</code>', trainer.get(room).text)
    assert link and link.group(1).startswith(f"{base}/drills/join/"), link
    return room, link.group(1)[len(base):]


def _prompt_id(browser: Browser, room: str, step_text: str) -> str:
    found: list[str] = []

    def asked() -> bool:
        page = browser.get(room).text
        hit = re.search(rf'<section class="question" id="prompt-(\d+)">\s*<h3>{step_text}', page)
        found[:] = [hit.group(1)] if hit else []
        return bool(found)
    wait_for(asked, 60, f"the room to ask: {step_text}")
    return found[0]


def _stream(browser: Browser, room: str, last: int | None = None, limit: int = 400) -> str:
    """The room's stream read until its end (or `limit` lines), as this browser."""
    headers = {"Last-Event-ID": str(last)} if last is not None else {}
    request = urllib.request.Request(browser.base + room + "/stream", headers=headers)
    lines = []
    with browser.opener.open(request, timeout=60) as response:
        for raw in response:
            lines.append(raw.decode())
            if raw.startswith(b"event: end") or len(lines) >= limit:
                break
    return "".join(lines)


def test_a_game_day_over_http_from_the_link_to_the_scorecard(tmp_path: Path) -> None:
    config, home = _people(tmp_path)
    with serving(config, home) as (base, _):
        tess, rita, ivan, olga = (_signed(base, n) for n in ("tess", "rita", "ivan", "olga"))
        assert "Start a game day" not in rita.get("/drills").text
        room, join = _open_room(base, tess)
        assert olga.get(room).status == 404  # the room's address alone lets nobody in
        for trainee in (rita, ivan):
            assert _post(trainee, join, join) == room
        _post(tess, room, room + "/roles", {"role-rita": "responder", "role-ivan": "incident_commander"})
        _post(tess, room, room + "/start")
        _post(ivan, room, room + "/prompts/" + _prompt_id(ivan, room, "The page is ringing"))
        cause = _prompt_id(rita, room, "cause")
        found = re.search(r'href="/runs/([^"/?]+)"', tess.get("/").text)
        assert found, tess.get("/").text
        run = f"/runs/{found.group(1)}"
        assert tess.get(run).status == 200 and olga.get(run).status == 403
        kept = rita.get(run)
        assert kept.status == 403 and f"follow it in its room, {room}" in kept.text, kept.text
        assert rita.get(run + "/events").status == 403 and rita.get(run + "/report").status == 403
        token = _token(config, home, "rita")
        api = rita.get(f"/api/{run[1:]}/events", headers={"Authorization": f"Bearer {token}"})
        assert api.status == 403 and "game day's drill" in api.text  # nor through the API with her token
        assert "Waiting on rita (responder)" in ivan.get(room).text
        assert f'id="f-{cause}-cause"' not in ivan.get(room).text and f'id="f-{cause}-cause"' in rita.get(room).text
        wrong = ivan.post(room + f"/prompts/{cause}", {"csrf": hidden(ivan.get(room).text, "csrf"),
                                                       "cause": "producer"})
        assert wrong.status == 403 and "step cause is for the responder" in wrong.text
        forged = tess.post(room + "/control", {"verb": "end", "csrf": "forged"})
        assert forged.status == 403 and "security token" in forged.text  # every form of the room is CSRF-checked
        _post(tess, room, room + "/control", {"verb": "pause"})
        wait_for(lambda: "paused by the trainer" in rita.get(room).text, 30, "the pause to show")
        _post(tess, room, room + "/control", {"verb": "resume"})
        _post(tess, room, room + "/control", {"verb": "inject", "arg": "1"})
        wait_for(lambda: "Payments team asks" in rita.get(room).text, 30, "the injected event's message")
        _post(rita, room, room + f"/prompts/{cause}/hint")
        wait_for(lambda: "one message the consumers keep retrying" in rita.get(room).text, 30, "the hint")
        assert "one message the consumers keep retrying" not in ivan.get(room).text
        _post(rita, room, room + f"/prompts/{cause}", {"cause": "consumers"})
        _post(ivan, room, room + "/prompts/" + _prompt_id(ivan, room, "restart"), {"approved": "yes"})
        wait_for(lambda: "Scorecard" in rita.get(room).text, 90, "the drill to end")
        trainee_page, trainee_stream = rita.get(room).text, _stream(rita, room)
        trainer_stream = _stream(tess, room)
        for text in TRAINER_ONLY:
            assert text not in trainee_page and text not in trainee_stream, text
        assert NOTES in tess.get(room).text and FAULT in tess.get(room).text and HERRING in trainer_stream
        assert "rita" in trainee_page and "incident_commander" in trainee_page and 'id="debrief"' in trainee_page
        assert rita.get(run).status == 200 and rita.get(run + "/events").status == 403
        seqs = [int(n) for n in re.findall(r"^id: (\d+)$", trainee_stream, re.M)]
        resumed = [int(n) for n in re.findall(r"^id: (\d+)$", _stream(rita, room, last=seqs[4]), re.M)]
        assert seqs == sorted(seqs) and resumed == seqs[5:]
