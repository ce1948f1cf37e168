"""engine.run.console: what an operator sees. Plain text unless colour is asked for; the CLI
asks for colour only on a terminal without NO_COLOR."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest

from engine.cli.base import use_color as _use_color
from engine.run.console import PARTIAL_LIMIT, Console
from engine.run.events import (
    Approval,
    Event,
    NotifySent,
    PhaseStarted,
    RollbackFinished,
    RollbackStarted,
    RunFinished,
    RunStarted,
    Stamp,
    StepAttempt,
    StepFinished,
    StepOutput,
    StepStarted,
)
from engine.testing import ScriptedExecutor, run_text

ANSI = re.compile(r"\033\[[0-9;]*m")


def show(*events: Event, color: bool = False, unicode: bool = True, elapsed: float = 75.0) -> str:
    stream = io.StringIO()
    console = Console(stream, color=color, unicode=unicode)
    for event in events:
        console.on_event(event, Stamp(1, 0.0, elapsed))
    return stream.getvalue()


RUN = [
    RunStarted("r1", "disk-full", "Filesystem nearly full", "/rb.yaml", "live", {"host": "db-1", "token": "***"}),
    PhaseStarted("detection"),
    StepStarted("usage", "detection", "run", "Measure usage", "df /var", "box", ["db-1"]),
    StepOutput("usage", "stdout", "96\n", "db-1"),
    StepOutput("usage", "stderr", "warning\n"),
    StepFinished("usage", "detection", "run", "ok", 1.5, outputs={"pct": 96}),
    StepStarted("clean", "detection", "run", command="rm -rf /tmp/x"),
    StepFinished("clean", "detection", "run", "failed", 0.2, exit_code=1, error="exit code 1"),
    RunFinished("failed", 2.0, "exit code 1", "clean", "exit code 1", {"detection": 2.0}),
]


def test_plain_output_has_no_escape_codes() -> None:
    text = show(*RUN, color=False)
    assert "\033[" not in text


def test_colour_output_paints_status_and_keeps_the_same_text() -> None:
    coloured = show(*RUN, color=True)
    assert "\033[32m" in coloured and "\033[31m" in coloured  # green ok, red failure
    assert ANSI.sub("", coloured) == show(*RUN, color=False)


def test_a_step_s_lines_in_colour_are_painted_as_they_were() -> None:
    """The exact escape codes of a step's first and last lines (bold name, cyan target,
    dimmed command and time, green or red status), and none without colour."""
    events = [StepStarted("usage", "detection", "run", "Measure usage", "df /var", "box", ["db-1"]),
              StepFinished("usage", "detection", "run", "ok", 1.5, 2),
              StepStarted("clean", "detection", "run", command="rm -rf /tmp/x"),
              StepFinished("clean", "detection", "run", "failed", 0.2, exit_code=1, error="exit code 1")]
    def shown(color: bool) -> str:
        stream = io.StringIO()
        console = Console(stream, color=color, unicode=True)
        for event in events:
            console.on_event(event, Stamp(1, 0.0, 75.0))
        console.terminal.flush()  # the last line is held for the next one
        return stream.getvalue()

    assert shown(True) == (
        "\033[2m[01:15]\033[0m ▶ \033[1musage\033[0m  Measure usage\033[36m  [box: db-1]\033[0m\n"
        "\033[2m        $ df /var\033[0m\n"
        "\033[2m[01:15]\033[0m \033[32m✓ usage ok\033[0m\033[2m 1.5s, 2 attempts\033[0m\n"
        "\033[2m[01:15]\033[0m ▶ \033[1mclean\033[0m\033[36m\033[0m\n"
        "\033[2m        $ rm -rf /tmp/x\033[0m\n"
        "\033[2m[01:15]\033[0m \033[31m✗ clean FAILED\033[0m\033[2m 200ms\033[0m: exit code 1\n")
    assert shown(False) == ANSI.sub("", shown(True))


def test_without_colour_a_step_s_lines_are_made_without_calling_paint() -> None:
    """paint() without colour returns its text: a plain step called it five times, a
    call each; its lines are as they were."""
    from support import python_calls

    stream = io.StringIO()
    console = Console(stream, unicode=True)
    console.on_event(StepStarted("s0", "remediation", "run"), Stamp(1, 0.0, 75.0))  # a second's clock mark: once
    entered = python_calls(lambda: [console.on_event(event, Stamp(1, 0.0, 75.0)) for event in (
        StepStarted("s1", "remediation", "run", "", "true"), StepFinished("s1", "remediation", "run", "ok", 0.002))])
    console.terminal.flush()
    assert "console.py:paint" not in entered
    assert stream.getvalue() == "[01:15] ▶ s0\n[01:15] ▶ s1\n        $ true\n[01:15] ✓ s1 ok 2ms\n"


@pytest.mark.parametrize("unicode", [True, False])
def test_a_step_s_lines_within_a_second_already_marked_call_no_clock_mark_nor_sym(unicode: bool) -> None:
    """A step's first and last lines take the second's clock mark as made (made again only
    when the second changes) and their arrow inline: four calls a step saved; the lines
    are as they were, and a new second still gets its own mark."""
    from support import python_calls

    stream = io.StringIO()
    console = Console(stream, unicode=unicode)
    console.on_event(StepStarted("s0", "remediation", "run"), Stamp(1, 0.0, 75.0))
    entered = python_calls(lambda: [console.on_event(event, Stamp(1, 0.0, 75.5)) for event in (
        StepStarted("s1", "remediation", "run", "", "true"), StepFinished("s1", "remediation", "run", "ok", 0.002))])
    console.on_event(StepFinished("s0", "remediation", "run", "ok", 61.0), Stamp(1, 0.0, 136.0))
    console.terminal.flush()
    assert "console.py:_clock_mark" not in entered and "console.py:sym" not in entered
    arrow, ok = ("▶", "✓") if unicode else (">", "ok")
    assert stream.getvalue() == (f"[01:15] {arrow} s0\n[01:15] {arrow} s1\n        $ true\n[01:15] {ok} s1 ok 2ms\n"
                                 f"[02:16] {ok} s0 ok 1m1s\n")


def test_a_barrier_with_nothing_held_enters_no_flush_and_one_with_a_line_held_sends_it() -> None:
    """Before each step's command the console shows what is held: with nothing held (most
    barriers: the step's first line went out whole) it does not enter Terminal.flush()."""
    from support import python_calls

    stream = io.StringIO()
    console = Console(stream, unicode=False)
    console.on_event(StepStarted("s1", "remediation", "run"), Stamp(1, 0.0, 1.0))
    entered = python_calls(console.barrier)
    assert "terminal.py:flush" not in entered and stream.getvalue() == "[00:01] > s1\n"
    console.on_event(StepFinished("s1", "remediation", "run", "ok", 0.002), Stamp(2, 0.0, 1.0))
    assert stream.getvalue() == "[00:01] > s1\n"  # held for the next line or barrier
    console.barrier()
    assert stream.getvalue() == "[00:01] > s1\n[00:01] ok s1 ok 2ms\n"


def test_the_run_header_shows_runbook_run_and_inputs() -> None:
    text = show(*RUN)
    assert "▶▶ Filesystem nearly full  runbook disk-full · run r1 · live" in text
    assert "inputs: host=db-1 token=***" in text


def test_a_step_shows_clock_title_target_command_and_output() -> None:
    lines = show(*RUN).splitlines()
    assert "[01:15] ▶ usage  Measure usage  [box: db-1]" in lines
    assert "        $ df /var" in lines
    assert "        │ db-1: 96" in lines
    assert "        │ warning" in lines
    assert any(line.startswith("[01:15] ✓ usage ok 1.5s") and "pct=96" in line for line in lines)


def test_a_failure_shows_the_error_and_the_outcome_names_the_step() -> None:
    text = show(*RUN)
    assert "✗ clean FAILED 200ms: exit code 1" in text
    assert "■ outcome: failed at step clean in 2s: exit code 1" in text


def test_without_unicode_the_symbols_are_ascii() -> None:
    text = show(*RUN, unicode=False)
    assert text.isascii()
    assert ">> Filesystem nearly full" in text and "XX clean FAILED" in text and "| db-1: 96" in text


def test_unicode_follows_the_stream_encoding() -> None:
    class Latin1(io.StringIO):
        encoding = "latin-1"

    class Utf8(io.StringIO):
        encoding = "UTF-8"

    assert not Console(Latin1()).unicode and Console(Utf8()).unicode


def test_retries_polls_approvals_notifications_and_rollbacks_are_shown() -> None:
    text = show(
        StepAttempt("flaky", 1, False, 1, "exit code 1", 0.1, 5.0),
        StepAttempt("verify", 2, False, None, None, 0.1, 10.0, True),
        Approval("restart", True, "alice", "incident_commander"),
        Approval("restart", False, "bob", None, "incident_commander", message="too risky"),
        NotifySent("status", "Disk full on db-1\nsecond line", False, "HTTP status 500"),
        RollbackStarted("failed: exit code 1", ["two", "one"]),
        RollbackFinished("ok"),
        RollbackFinished("skipped", skipped=True),
    )
    assert "↻ attempt 1 failed (exit code 1); retrying in 5s" in text
    assert "… not yet (poll 2); next check in 10s" in text
    assert "approved by alice (incident_commander)" in text
    assert "not approved by bob: too risky" in text
    assert "→ notify [status] Disk full on db-1  (not delivered: HTTP status 500)" in text
    assert "          second line" in text
    assert "↺ rollback (failed: exit code 1): two, one" in text
    assert "↺ rollback ok" in text and "↺ rollbacks skipped" in text


def test_a_line_split_across_chunks_is_shown_once_whole() -> None:
    text = show(StepOutput("s", "stdout", "hel"), StepOutput("s", "stdout", "lo\nwor"),
                StepFinished("s", "triage", "run", "ok"))
    assert "        │ hello\n" in text and "        │ wor\n" in text


def test_stderr_lines_are_red_in_colour() -> None:
    text = show(StepOutput("s", "stderr", "bad\nworse\n"), color=True)
    assert text == "        │ \033[31mbad\033[0m\n        │ \033[31mworse\033[0m\n"


def test_an_endless_line_is_shown_in_pieces_not_kept_whole() -> None:
    """Output without newlines (binary, progress bars) must not pile up in memory."""
    stream = io.StringIO()
    console = Console(stream, unicode=False)
    chunk = "x" * 65536
    for _ in range(20):
        console.on_event(StepOutput("flood", "stdout", chunk), Stamp(0, 0.0, 0.0))
    assert all(len(rest) <= PARTIAL_LIMIT for rest in console._partial.values())
    assert stream.getvalue().count("x") >= 19 * 65536


def test_quiet_consoles_show_no_output_but_every_step() -> None:
    stream = io.StringIO()
    console = Console(stream, show_output=False)
    for event in RUN:
        console.on_event(event, Stamp(1, 0.0, 0.0))
    text = stream.getvalue()
    assert "96" not in text.replace("pct=96", "") and "warning" not in text
    assert "usage ok" in text


def test_a_real_run_prints_every_step_in_order() -> None:
    stream = io.StringIO()
    text = """\
kind: runbook
version: 1
id: console-run
title: Console run
defaults: {timeout: 30s}
detection:
  - {id: first, run: echo one}
remediation:
  - {id: second, run: echo two}
"""
    run_text(text, executor=ScriptedExecutor({"*": "out\n"}), observers=[Console(stream, unicode=True)])
    printed = stream.getvalue()
    assert printed.index("▶ first") < printed.index("── remediation") < printed.index("▶ second")
    assert "■ outcome: resolved in 0ms" in printed


# -- manual steps and polled output -----------------------------------------------------------------


MANUAL = """\
kind: runbook
version: 1
id: manual-text
title: Manual text
inputs:
  host: {type: string, default: db-1}
  token: {type: string, secret: true, default: s3cr3t-value}
defaults: {timeout: 30s}
triage:
  - id: check_logs
    title: Look at the app log
    manual: |
      Open the app log on {{ inputs.host }}:
        journalctl -u app --since '10 min ago'
      Log in with {{ inputs.token }}.
"""


def test_a_manual_steps_instructions_are_rendered_journaled_and_shown_before_the_answer() -> None:
    stream = io.StringIO()
    _, recorder = run_text(MANUAL, observers=[Console(stream, unicode=True)])
    [started] = [e for e in recorder.named("step.started") if isinstance(e, StepStarted)]
    assert started.instructions == ("Open the app log on db-1:\n  journalctl -u app --since '10 min ago'\n"
                                    "Log in with ***.")
    text = stream.getvalue()
    assert "s3cr3t-value" not in text
    lines = text.splitlines()
    at = lines.index("[00:00] ▶ check_logs  Look at the app log")
    assert lines[at + 1:at + 4] == ["        Open the app log on db-1:",
                                    "          journalctl -u app --since '10 min ago'",
                                    "        Log in with ***."]
    assert text.index("Log in with") < text.index("answered")


def polls(*bodies: str, final: str = "ok") -> list[Event]:
    """An HTTP step polled with `until`: one body per poll (no trailing newline), then the last."""
    out: list[Event] = [StepStarted("probe", "recovery", "http", command="GET http://127.0.0.1/health")]
    for number, body in enumerate(bodies, 1):
        out += [StepOutput("probe", "stdout", body), StepAttempt("probe", number, False, None, None, 0.1, 10.0, True)]
    return [*out, StepOutput("probe", "stdout", final), StepFinished("probe", "recovery", "http", "ok", 30.0)]


def test_bodies_without_a_newline_do_not_run_together_across_polls() -> None:
    lines = show(*polls("502 Bad Gateway", "503 Service Unavailable")).splitlines()
    assert "        │ 502 Bad Gateway" in lines and "        │ 503 Service Unavailable" in lines
    assert "        │ ok" in lines
    assert not any("Gateway503" in line or "Unavailableok" in line for line in lines)


def test_a_poll_that_answers_the_same_says_so_instead_of_printing_it_again() -> None:
    text = show(*polls("<html>502 Bad Gateway</html>", "<html>502 Bad Gateway</html>",
                       "<html>502 Bad Gateway</html>"))
    assert text.count("502 Bad Gateway") == 1
    assert text.count("(output unchanged since the last poll)") == 2
    lines = text.splitlines()
    assert lines.index("        │ <html>502 Bad Gateway</html>") < lines.index(
        "        … not yet (poll 1); next check in 10s")
    assert "        │ ok" in lines


def test_a_poll_whose_output_changes_is_shown_again_in_full() -> None:
    text = show(*polls("starting\n", "starting\n", "warming up\n"))
    assert text.count("starting") == 1 and text.count("warming up") == 1
    assert text.count("unchanged") == 1


# -- colour choice (the CLI's) ---------------------------------------------------------------------------


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("flag", "tty", "no_color", "expected"), [
    (None, True, False, True),
    (None, True, True, False),   # NO_COLOR wins over a terminal
    (None, False, False, False),  # a pipe or a file: plain
    (True, False, True, True),   # --color wins over everything
    (False, True, False, False),
])
def test_colour_is_used_on_a_terminal_unless_no_color_or_a_flag_says_otherwise(
        monkeypatch: pytest.MonkeyPatch, flag: bool | None, tty: bool, no_color: bool, expected: bool) -> None:
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    else:
        monkeypatch.delenv("NO_COLOR", raising=False)
    stream: Any = Tty() if tty else io.StringIO()
    assert _use_color(flag, stream) is expected


def test_a_large_fleet_is_named_in_a_step_header_by_its_first_hosts_and_a_count() -> None:
    """A 1,000-host target's first line is not a 17 kB list; eight hosts or fewer are all named."""
    fleet = [f"10.0.{n // 250}.{n % 250}" for n in range(1000)]
    text = show(StepStarted("check", "detection", "run", command="true", target="fleet", hosts=fleet))
    header = text.splitlines()[0]
    assert header.endswith("[fleet: 10.0.0.0, 10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4, 10.0.0.5, "
                           "... and 994 more (1000 hosts)]")
    eight = show(StepStarted("check", "detection", "run", command="true", target="web", hosts=fleet[:8]))
    assert f"[web: {', '.join(fleet[:8])}]" in eight


def test_a_step_start_is_written_and_flushed_once() -> None:
    """Its lines go out in one write: a run of many short steps paid a write (a system
    call) and a flush for each line."""

    class Counting(io.StringIO):
        writes, flushes = 0, 0

        def write(self, text: str) -> int:
            self.writes += 1
            return super().write(text)

        def flush(self) -> None:
            self.flushes += 1

    stream = Counting()
    console = Console(stream, color=False, unicode=True)
    console.on_event(StepStarted("check", "detection", "manual", "Look", instructions="Open the dashboard.\nRead it."),
                     Stamp(1, 0.0, 75.0))
    console.on_event(StepStarted("df", "detection", "run", command="df /var"), Stamp(2, 0.0, 75.0))
    assert (stream.writes, stream.flushes) == (2, 2)
    assert stream.getvalue() == ("[01:15] ▶ check  Look\n        Open the dashboard.\n        Read it.\n"
                                 "[01:15] ▶ df\n        $ df /var\n")


def test_a_step_last_line_goes_out_with_the_next_step_first_or_at_a_barrier() -> None:
    """On a pipe, a step's `✓` line is held in the stream's buffer and sent in the same
    write as what follows it: the next step's start, or whatever the next barrier
    (before a command, a prompt, a wait) finds held. A run of many short steps paid a
    write per step for it."""

    class Counting(io.StringIO):
        flushes = 0

        def flush(self) -> None:
            self.flushes += 1

    stream = Counting()
    console = Console(stream, color=False, unicode=True)
    console.on_event(StepFinished("a", "detection", "run", "ok", duration=0.25), Stamp(1, 0.0, 1.0))
    assert stream.flushes == 0 and stream.getvalue() == ""
    console.on_event(StepStarted("b", "detection", "run", command="true"), Stamp(2, 0.0, 1.0))
    assert stream.flushes == 1
    console.on_event(StepFinished("b", "detection", "run", "failed", error="exit code 1"), Stamp(3, 0.0, 2.0))
    console.barrier()
    console.barrier()  # nothing held: no flush
    assert stream.flushes == 2
    assert stream.getvalue().endswith("[00:01] ▶ b\n        $ true\n[00:02] ✗ b FAILED 0ms: exit code 1\n")
