"""Stopping a live run: SIGTERM, Ctrl-C typed on a terminal (once, twice), SIGKILL then
`runbook resume`, and the run lock between two live runs."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from livekit import (
    Terminal,
    Workspace,
    assert_clean_failure_output,
    collected,
    complete_journal,
    events,
    finished_step,
    journal_records,
    kill_leftovers,
    live_processes_with,
    runbook_text,
    started_steps,
    stop,
    wait_for,
)

from engine.executors.timestamps import iso

pytestmark = pytest.mark.integration


def long_step_runbook(marker: str, *, id: str = "interrupt") -> str:
    """`prepare` (with a rollback), then `slow`, which says it started and sleeps."""
    return runbook_text(f"""\
        remediation:
          - id: prepare
            run: echo prepared
            rollback:
              - {{id: undo_prepare, run: "echo undone > undone.txt"}}
          - id: slow
            run: "touch slow.started; sleep {marker}"
          - id: after
            run: touch after.txt
        """, id=id)


# -- SIGTERM ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [(), ("--no-rollback-on-abort",)])
def test_sigterm_stops_the_step_and_rolls_back_as_the_policy_says(
        ws: Workspace, marker: str, flags: tuple[str, ...]) -> None:
    ws.write("live.yaml", long_step_runbook(marker))
    proc = ws.start("run", "live.yaml", *flags)
    try:
        wait_for(lambda: (ws.root / "slow.started").exists(), what="the slow step")
        proc.send_signal(signal.SIGTERM)
        done = collected(proc, timeout=30)
    finally:
        stop(proc)
    assert done.code == 130, done.text
    assert_clean_failure_output(done)
    assert "✗ slow aborted" in done.out and "■ outcome: aborted at step slow" in done.out
    assert live_processes_with(marker) == []  # the step's processes went with it
    assert not (ws.root / "after.txt").exists()
    records = complete_journal(ws.only_run())
    assert finished_step(records, "slow")["status"] == "aborted"
    [rollback] = events(records, "rollback.finished")
    if flags:
        assert rollback["skipped"] and not (ws.root / "undone.txt").exists()
        assert "rollbacks skipped" in done.out
    else:
        assert rollback["status"] == "ok" and (ws.root / "undone.txt").exists()


# -- Ctrl-C on a terminal ---------------------------------------------------------------------------------


def terminal(ws: Workspace, *args: str) -> Terminal:
    return Terminal(ws.command(*args), ws.root, {**ws.env, "TERM": "dumb"})


@pytest.mark.parametrize(("answer", "rolled_back"), [(b"y\r", True), (b"n\r", False), (b"\r", True)])
def test_ctrl_c_once_stops_the_step_and_asks_whether_to_roll_back(
        ws: Workspace, marker: str, answer: bytes, rolled_back: bool) -> None:
    ws.write("live.yaml", long_step_runbook(marker))
    term = terminal(ws, "run", "live.yaml")
    try:
        term.expect("$ touch slow.started")
        wait_for(lambda: (ws.root / "slow.started").exists(), what="the slow step")
        term.type(b"\x03")
        term.expect("Run the rollbacks of 1 completed step(s)? [Y/n]")
        assert live_processes_with(marker) == []  # the step stopped before the question
        term.type(answer)
        assert term.wait() == 130, term.text
    finally:
        term.kill()
    assert "Traceback" not in term.text
    assert (ws.root / "undone.txt").exists() is rolled_back
    records = complete_journal(ws.only_run())
    assert records[-1]["outcome"] == "aborted"
    assert events(records, "rollback.finished")[0]["skipped"] is not rolled_back


def test_ctrl_c_twice_aborts_with_rollbacks_skipped_and_closes_the_journal(ws: Workspace, marker: str) -> None:
    ws.write("live.yaml", long_step_runbook(marker))
    term = terminal(ws, "run", "live.yaml")
    try:
        term.expect("$ touch slow.started")
        wait_for(lambda: (ws.root / "slow.started").exists(), what="the slow step")
        term.type(b"\x03")
        term.expect("[Y/n]")
        term.type(b"\x03")
        assert term.wait() == 130, term.text
    finally:
        term.kill()
    assert "Traceback" not in term.text and "Aborted!" not in term.text
    assert "rollbacks skipped" in term.text and "outcome: aborted" in term.text
    assert not (ws.root / "undone.txt").exists()
    records = complete_journal(ws.only_run())
    assert events(records, "rollback.finished")[0]["skipped"] is True


def test_after_ctrl_c_the_final_update_is_still_rendered_and_sent(ws: Workspace, marker: str) -> None:
    """The first Ctrl-C stops the step; it must not also stop the run's last message."""
    ws.write("live.yaml", runbook_text(f"""\
        updates: {{channel: status, every: 1h}}
        remediation:
          - id: slow
            run: "touch slow.started; sleep {marker}"
        """))
    term = terminal(ws, "run", "live.yaml")
    try:
        wait_for(lambda: (ws.root / "slow.started").exists(), what="the slow step")
        term.type(b"\x03")
        assert term.wait() == 130, term.text
    finally:
        term.kill()
    assert "template failed" not in term.text and "interrupted while" not in term.text
    [final] = [r for r in events(complete_journal(ws.only_run()), "notify.sent") if r.get("purpose") == "update"][-1:]
    assert final["ok"] and "aborted" in final["message"], final


def test_ctrl_c_at_an_approval_prompt_aborts_the_run(ws: Workspace) -> None:
    ws.write("live.yaml", runbook_text("""\
        remediation:
          - {id: restart, run: touch restarted.txt, confirm: "Restart the service?"}
        """))
    term = terminal(ws, "run", "live.yaml")
    try:
        term.expect("Restart the service? [y/N]")
        term.type(b"\x03")
        assert term.wait() == 130, term.text
    finally:
        term.kill()
    assert "Traceback" not in term.text
    assert not (ws.root / "restarted.txt").exists()
    assert finished_step(complete_journal(ws.only_run()), "restart")["status"] == "aborted"


def test_refusing_an_approval_ends_the_run_refused_with_exit_7_escalates_and_rolls_back(ws: Workspace) -> None:
    """A refusal is a decision, not Ctrl-C: outcome `refused` (exit 7, not 130), rollbacks
    run without asking, and `on_failure` escalation tells someone."""
    ws.write("channels.yaml", f"kind: channels\nchannels:\n  owners: {{type: file, path: {ws.root / 'owners.log'}}}\n")
    ws.write("live.yaml", runbook_text("""\
        escalation:
          - {on_failure: true, notify: owners}
        remediation:
          - id: prepare
            run: echo prepared
            rollback:
              - {id: undo_prepare, run: "echo undone > undone.txt"}
          - {id: restart, run: touch restarted.txt, confirm: "Restart the service?"}
        """))
    term = terminal(ws, "run", "live.yaml", "--as", "dana", "--channels", "channels.yaml")
    try:
        term.expect("Restart the service? [y/N]")
        term.type(b"n\r")
        term.expect("Why not? (recorded; Enter to skip):")
        term.type(b"peak hours\r")
        assert term.wait() == 7, term.text
    finally:
        term.kill()
    assert "Traceback" not in term.text and "[Y/n]" not in term.text  # rollbacks are not asked about
    assert "outcome: refused at step restart" in term.text and "approval refused by dana: peak hours" in term.text
    assert not (ws.root / "restarted.txt").exists()
    assert (ws.root / "undone.txt").exists()
    assert "step restart: approval refused by dana: peak hours" in (ws.root / "owners.log").read_text()
    records = complete_journal(ws.only_run())
    assert (records[-1]["outcome"], records[-1]["failed_step"]) == ("refused", "restart")
    assert events(records, "approval")[0]["by"] == "dana"


def test_approvals_and_questions_are_answered_on_the_terminal(ws: Workspace) -> None:
    ws.write("live.yaml", runbook_text("""\
        triage:
          - {id: assess, manual: What fills the disk?, ask: {cause: {choices: [logs, data]}}}
        remediation:
          - {id: act, run: "echo cause={{ steps.assess.answers.cause }}", confirm: "Act on it?"}
        """))
    term = terminal(ws, "run", "live.yaml")
    try:
        term.expect("cause [logs/data]: ")
        term.type(b"nonsense\r")
        term.expect("answer one of: logs, data")
        term.type(b"logs\r")
        term.expect("Act on it? [y/N]")
        term.type(b"y\r")
        assert term.wait() == 0, term.text
    finally:
        term.kill()
    assert "│ cause=logs" in term.text
    records = complete_journal(ws.only_run())
    assert events(records, "prompt.answered")[0]["answers"] == {"cause": "logs"}
    assert events(records, "approval")[0]["approved"] is True


def test_ctrl_c_stops_a_wait_and_a_hanging_request_at_once(ws: Workspace) -> None:
    """Neither a `wait` nor an HTTP request that never answers keeps an operator waiting."""
    import socket

    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        ws.write("live.yaml", runbook_text(f"""\
            remediation:
              - {{id: pause, wait: 10m, continue_on_error: true}}
              - id: hang
                http: {{url: "http://127.0.0.1:{silent.getsockname()[1]}/"}}
                timeout: 10m
            """))
        term = terminal(ws, "run", "live.yaml")
        try:
            term.expect("▶ pause")
            started = time.monotonic()
            term.type(b"\x03")
            assert term.wait() == 130, term.text
            assert time.monotonic() - started < 15
        finally:
            term.kill()
        records = complete_journal(ws.only_run())
        assert finished_step(records, "pause")["status"] == "aborted"

        ws.write("live.yaml", runbook_text(f"""\
            remediation:
              - id: hang
                http: {{url: "http://127.0.0.1:{silent.getsockname()[1]}/"}}
                timeout: 10m
            """, id="hang"))
        term = terminal(ws, "run", "live.yaml")
        try:
            term.expect("▶ hang")
            time.sleep(0.3)
            started = time.monotonic()
            term.type(b"\x03")
            assert term.wait() == 130, term.text
            assert time.monotonic() - started < 15
        finally:
            term.kill()
    assert "✗ hang aborted" in term.text


@pytest.mark.parametrize(("no_color", "coloured"), [(True, False), (False, True)])
def test_a_terminal_gets_colour_unless_no_color_is_set(ws: Workspace, no_color: bool, coloured: bool) -> None:
    ws.write("live.yaml", runbook_text("detection:\n  - {id: check, run: echo hi}\n"))
    env = {k: v for k, v in ws.env.items() if k != "NO_COLOR"}
    if no_color:
        env["NO_COLOR"] = "1"
    term = Terminal(ws.command("run", "live.yaml"), ws.root, {**env, "TERM": "xterm"})
    try:
        assert term.wait() == 0, term.text
    finally:
        term.kill()
    assert ("\033[" in term.text) is coloured


# -- SIGKILL and resume --------------------------------------------------------------------------------------


def crash_mid_step(ws: Workspace, marker: str) -> Path:
    """Start a run, SIGKILL the engine while `second` runs; returns the run directory."""
    ws.write("live.yaml", runbook_text(f"""\
        remediation:
          - {{id: first, run: "echo ran >> first.count"}}
          - id: second
            run: "echo ran >> second.count; if [ ! -e resumed ]; then touch second.started; sleep {marker}; fi"
          - {{id: third, run: "echo ran >> third.count"}}
        """, id="crashy"))
    proc = ws.start("run", "live.yaml")
    try:
        wait_for(lambda: (ws.root / "second.started").exists(), what="the second step")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        stop(proc)
    kill_leftovers(marker)  # an engine killed with -9 cannot stop what it started
    (ws.root / "resumed").touch()
    return ws.only_run()


def counts(ws: Workspace) -> dict[str, int]:
    return {name: len((ws.root / f"{name}.count").read_text().splitlines())
            if (ws.root / f"{name}.count").exists() else 0 for name in ("first", "second", "third")}


def test_a_killed_run_leaves_an_unfinished_journal_that_runs_lists(ws: Workspace, marker: str) -> None:
    run_dir = crash_mid_step(ws, marker)
    records = journal_records(run_dir)  # every line whole
    assert [r["event"] for r in records[-2:]] == ["step.started", "step.process"]  # the command's group, too
    assert records[-1]["step"] == "second" and records[-1]["host"] is None
    assert "unfinished" in ws.run("runs").out


def test_resume_after_sigkill_skips_the_interrupted_step_when_told(ws: Workspace, marker: str) -> None:
    run_dir = crash_mid_step(ws, marker)
    done = ws.run("resume", run_dir, "--skip-interrupted")
    assert done.code == 0, done.text
    assert "(resumed)" in done.out
    assert counts(ws) == {"first": 1, "second": 1, "third": 1}  # no completed step ran again
    records = complete_journal(run_dir)
    assert finished_step(records, "second")["status"] == "skipped"
    assert records[-1]["outcome"] == "resolved"
    assert started_steps(records).count("first") == 1


def test_resume_reruns_the_interrupted_step_when_told(ws: Workspace, marker: str) -> None:
    run_dir = crash_mid_step(ws, marker)
    done = ws.run("resume", run_dir, "--rerun-interrupted")
    assert done.code == 0, done.text
    assert counts(ws) == {"first": 1, "second": 2, "third": 1}
    assert complete_journal(run_dir)[-1]["outcome"] == "resolved"


def test_resume_without_a_terminal_asks_for_a_decision_about_the_interrupted_step(
        ws: Workspace, marker: str) -> None:
    run_dir = crash_mid_step(ws, marker)
    done = ws.run("resume", run_dir)
    assert done.code != 0
    assert_clean_failure_output(done)
    assert "step second was running when the engine stopped" in done.text
    assert "--rerun-interrupted" in done.text and "--skip-interrupted" in done.text
    assert counts(ws) == {"first": 1, "second": 1, "third": 0}
    assert journal_records(run_dir)[-1]["event"] == "step.process"  # untouched: still resumable
    assert ws.run("resume", run_dir, "--skip-interrupted").code == 0  # following the advice works


def test_resume_survives_a_torn_last_line(ws: Workspace, marker: str) -> None:
    run_dir = crash_mid_step(ws, marker)
    with open(run_dir / "journal.jsonl", "ab") as handle:
        handle.write(b'{"seq": 99, "event": "step.fin')  # the engine died mid-write
    done = ws.run("resume", run_dir, "--skip-interrupted")
    assert done.code == 0, done.text
    complete_journal(run_dir)  # every line parses again


def test_a_finished_run_cannot_be_resumed(ws: Workspace) -> None:
    ws.write("live.yaml", runbook_text("detection:\n  - {id: check, run: 'true'}\n"))
    assert ws.run("run", "live.yaml").code == 0
    done = ws.run("resume", ws.only_run())
    assert done.code == 2 and "already finished (resolved); nothing to resume" in done.err


# -- the run lock ------------------------------------------------------------------------------------------


def test_a_second_live_run_fails_naming_the_first(ws: Workspace, marker: str) -> None:
    ws.write("live.yaml", long_step_runbook(marker))
    first = ws.start("run", "live.yaml")
    try:
        wait_for(lambda: (ws.root / "slow.started").exists(), what="the first run's step")
        second = ws.run("run", "live.yaml")
        run_id = ws.only_run().name
        [lock_file] = (ws.root / ".runbook" / "locks").glob("*.lock")
        held = json.loads(lock_file.read_text())
        first.send_signal(signal.SIGTERM)
        collected(first)
    finally:
        stop(first)
    assert second.code == 4, second.text
    assert_clean_failure_output(second)
    assert f"another run of this runbook on localhost is in progress: run {run_id} (pid {first.pid} on" in second.err
    assert held["run_id"] == run_id and held["pid"] == first.pid
    assert f"started {iso(held['started_at'])}" in second.err
    assert len(ws.run_dirs()) == 1  # the refused run left nothing


def test_the_lock_holds_whatever_runs_directory_each_run_journals_to(ws: Workspace, marker: str) -> None:
    """E12: the lock is the machine's (RUNBOOK_LOCK_DIR), never beside the journal."""
    ws.write("live.yaml", long_step_runbook(marker))
    first = ws.start("run", "live.yaml", "--runs-dir", "first/runs")
    try:
        wait_for(lambda: (ws.root / "slow.started").exists(), what="the first run's step")
        second = ws.run("run", "live.yaml", "--runs-dir", "second/runs", env={"RUNBOOK_HOME": str(ws.root / "other")})
        first.send_signal(signal.SIGTERM)
        collected(first)
    finally:
        stop(first)
    assert second.code == 4 and "another run of this runbook on localhost is in progress" in second.err, second.text
    assert not (ws.root / "second" / "runs").exists()


def test_a_stale_lock_of_a_killed_run_is_taken_over(ws: Workspace, marker: str) -> None:
    ws.write("live.yaml", long_step_runbook(marker))
    first = ws.start("run", "live.yaml")
    try:
        wait_for(lambda: (ws.root / "slow.started").exists(), what="the first run's step")
        first.send_signal(signal.SIGKILL)
        first.wait(30)
    finally:
        stop(first)
    kill_leftovers(marker)
    dead = ws.only_run().name
    (ws.root / "slow.started").unlink()
    ws.write("live.yaml", long_step_runbook("0.01"))
    done = ws.run("run", "live.yaml")
    assert done.code == 0, done.text
    assert f"took over the lock of run {dead} (pid {first.pid})" in done.out


def test_runs_on_other_hosts_do_not_block_each_other(ws: Workspace, marker: str) -> None:
    text = runbook_text(f"""\
        inputs: {{host: {{type: string}}}}
        targets: {{box: {{hosts: ["{{{{ inputs.host }}}}"]}}}}
        remediation:
          - {{id: slow, run: "touch started-{{{{ inputs.host }}}}; sleep {marker}"}}
        """, id="per-host")
    ws.write("live.yaml", text)
    first = ws.start("run", "live.yaml", "-i", "host=db-1")
    try:
        wait_for(lambda: (ws.root / "started-db-1").exists(), what="the first run")
        other = ws.start("run", "live.yaml", "-i", "host=db-2")
        wait_for(lambda: (ws.root / "started-db-2").exists() or other.poll() is not None, what="the second run")
        assert other.poll() is None, collected(other).text  # running, not refused
        same = ws.run("run", "live.yaml", "-i", "host=db-1")
        assert same.code == 4 and "on db-1 is in progress" in same.err
        for proc in (first, other):
            os.kill(proc.pid, signal.SIGTERM)
            collected(proc)
    finally:
        stop(first)


def test_resume_restores_vars_and_the_incident_priority_set_before_the_crash(ws: Workspace, marker: str) -> None:
    ws.write("live.yaml", runbook_text(f"""\
        triage:
          - id: rate
            manual: How bad is it?
            ask:
              impact: {{choices: [low, medium, high], sets: incident.impact}}
              urgency: {{choices: [low, medium, high], sets: incident.urgency}}
              owner: {{type: text, sets: vars.owner}}
        remediation:
          - id: slow
            run: "if [ ! -e resumed ]; then touch slow.started; sleep {marker}; fi"
          - id: show
            run: "echo owner={{{{ vars.owner }}}} priority={{{{ incident.priority }}}}"
        """, id="resume-state"))
    proc = ws.start("run", "live.yaml", "--answer", "rate.impact=high", "--answer", "rate.urgency=medium",
                    "--answer", "rate.owner=alice")
    try:
        wait_for(lambda: (ws.root / "slow.started").exists(), what="the slow step")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        stop(proc)
    kill_leftovers(marker)
    (ws.root / "resumed").touch()
    done = ws.run("resume", ws.only_run(), "--skip-interrupted")
    assert done.code == 0, done.text
    assert "│ owner=alice priority=P2" in done.out
