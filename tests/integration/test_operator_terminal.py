"""What an operator reads on a real terminal (a pseudo-terminal running `runbook run`):
a manual step's instructions before the question, and messages from timers (updates
every second here) drawn above an open prompt, which is redrawn with what was typed."""

from __future__ import annotations

import re
import time

import pytest
from livekit import Terminal, Workspace, complete_journal, events, runbook_text

pytestmark = pytest.mark.integration

MANUAL = """\
inputs: {host: {type: string, default: db-1}}
updates: {channel: status, every: 1s}
triage:
  - id: check_logs
    title: Look at the app log
    manual: |
      Open the app log on {{ inputs.host }}:
        journalctl -u app --since '10 min ago'
      Look for OOM kills or stack traces.
"""


def wait_for_text(term: Terminal, pattern: str, since: int, timeout: float = 30.0) -> str:
    """The terminal's output after byte `since`, once `pattern` matches in it."""
    deadline = time.monotonic() + timeout
    while True:
        text = term.output[since:].decode("utf-8", errors="replace")
        if re.search(pattern, text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{pattern!r} never appeared; the terminal shows:\n{term.text}")
        term._read(0.2)


def rendered(raw: str) -> str:
    """The text as a terminal shows it: what a line-clear (`\\r ESC [K`) wiped is gone."""
    lines = raw.replace("\r\n", "\n").split("\n")
    return "\n".join(line.rsplit("\r\033[K", 1)[-1] for line in lines)


def test_instructions_come_before_the_question_and_updates_redraw_the_open_prompt(ws: Workspace) -> None:
    ws.write("live.yaml", runbook_text(MANUAL))
    term = Terminal(ws.command("run", "live.yaml", "--no-color"), ws.root, {**ws.env, "TERM": "xterm"})
    try:
        term.expect("Press Enter when done: ")
        term.type(b"looked at it")
        term.expect("looked at it")
        # An update arrives while the prompt is open: the prompt's line is cleared, the
        # update printed, and the prompt drawn again with what was typed so far.
        after = wait_for_text(term, r"still open[^\n]*\n   Press Enter when done: looked at it", len(term.output))
        term.type(b"\r")
        assert term.wait() == 0, term.text
    finally:
        term.kill()
    assert re.search(r"\r\033\[K +→ update \[status\][^\n]*still open", after), after
    screen = rendered(term.text)
    assert not re.search(r"Press Enter when done: [^\n]*→ update", screen), screen
    shown = ("        Open the app log on db-1:\n          journalctl -u app --since '10 min ago'\n"
             "        Look for OOM kills or stack traces.\n")
    assert "▶ check_logs  Look at the app log\n" + shown in screen
    assert screen.index(shown) < screen.index("Press Enter when done:")
    [started] = [e for e in events(complete_journal(ws.only_run()), "step.started") if e["step"] == "check_logs"]
    assert started["instructions"] == ("Open the app log on db-1:\n  journalctl -u app --since '10 min ago'\n"
                                       "Look for OOM kills or stack traces.")


def test_a_piped_run_prints_the_instructions_and_each_message_on_lines_of_their_own(ws: Workspace) -> None:
    ws.write("live.yaml", runbook_text(MANUAL))
    done = ws.run("run", "live.yaml", "--yes")
    assert done.code == 0, done.text
    assert "        Open the app log on db-1:\n          journalctl -u app" in done.out
