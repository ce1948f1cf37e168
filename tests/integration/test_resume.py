"""`runbook resume` of runs that failed, were aborted or refused, as an operator does it:
the end of the run says how to continue, nothing is run again without their word, the
journal says who resumed and why, and times after a resume follow the wall clock."""

from __future__ import annotations

import getpass
import json
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from livekit import (
    Terminal,
    Workspace,
    assert_clean_failure_output,
    collected,
    complete_journal,
    events,
    journal_records,
    kill_leftovers,
    runbook_text,
    started_steps,
    stop,
    wait_for,
)

pytestmark = pytest.mark.integration

STEPS = ("prepare", "second", "third")


def failing_runbook(*, rollback: bool = False) -> str:
    """`second` fails until fixed.txt exists; every step counts its runs in NAME.count."""
    undo = '\n    rollback: [{id: undo_prepare, run: "echo undone >> undone.count"}]' if rollback else ""
    return runbook_text("remediation:\n"
                        f'  - id: prepare\n    run: "echo ran >> prepare.count"{undo}\n'
                        '  - id: second\n    run: "echo ran >> second.count; test -e fixed.txt"\n'
                        '  - {id: third, run: "echo ran >> third.count"}\n', id="resumable")


def counts(ws: Workspace) -> dict[str, int]:
    return {name: len(path.read_text().splitlines()) if (path := ws.root / f"{name}.count").exists() else 0
            for name in (*STEPS, "undone")}


def failed_run(ws: Workspace, *, rollback: bool = False) -> tuple[Path, str]:
    ws.write("live.yaml", failing_runbook(rollback=rollback))
    done = ws.run("run", "live.yaml")
    assert done.code == 1, done.text
    return ws.only_run(), done.out


def continue_lines(out: str) -> list[str]:
    """The commands the end of a run offers (`to continue: ...`, `or: ...`)."""
    return [line.split(": ", 1)[1].split("    (")[0] for line in out.splitlines()
            if line.strip().startswith(("to continue:", "or:"))]


def resumed(records: list[dict[str, Any]]) -> dict[str, Any]:
    [record] = events(records, "run.resumed")
    return record


def test_a_failed_run_says_how_to_continue_and_reruns_the_failed_step_when_told(ws: Workspace) -> None:
    run_dir, out = failed_run(ws)
    assert continue_lines(out) == [f"runbook resume {run_dir} --rerun-failed",
                                   f"runbook resume {run_dir} --skip second"]
    undecided = ws.run("resume", run_dir)
    assert undecided.code == 2 and "step second failed (exit code 1): pass --rerun-failed" in undecided.err
    assert_clean_failure_output(undecided)
    assert events(journal_records(run_dir), "run.started") == events(journal_records(run_dir), "run.started")[:1]
    (ws.root / "fixed.txt").touch()
    done = ws.run(*continue_lines(out)[0].split()[1:], "--reason", "disk replaced")
    assert done.code == 0, done.text
    assert counts(ws) == {"prepare": 1, "second": 2, "third": 1, "undone": 0}  # prepare is not run again
    records = complete_journal(run_dir)
    assert [r["outcome"] for r in events(records, "run.finished")] == ["failed", "resolved"]
    note = resumed(records)
    assert (note["by"], note["reason"], note["previous"], note["stop_step"], note["rerun"]) == (
        getpass.getuser(), "disk replaced", "failed", "second", ["second"])
    assert "resumed by" in done.out and "running again: second" in done.out


def test_the_update_sent_as_a_run_resumes_names_the_phase_it_resumes_in(ws: Workspace) -> None:
    ws.write("live.yaml", runbook_text("""\
        updates: {channel: status, every: 1h}
        detection:
          - {id: probe, run: "true"}
        remediation:
          - {id: fix, run: "test -e fixed.txt"}
        """, id="phased"))
    assert ws.run("run", "live.yaml").code == 1
    (ws.root / "fixed.txt").touch()
    assert ws.run("resume", ws.only_run(), "--rerun-failed").code == 0
    updates = [r["message"] for r in events(complete_journal(ws.only_run()), "notify.sent")]
    [opening] = [m for m in updates if "resumed" in m]
    assert "phase remediation" in opening, updates


def test_the_failed_step_can_be_skipped_by_someone_who_did_it_by_hand(ws: Workspace) -> None:
    run_dir, _ = failed_run(ws)
    done = ws.run("resume", run_dir, "--skip", "second", "--as", "alice", "--reason", "ran it by hand")
    assert done.code == 0, done.text
    assert counts(ws) == {"prepare": 1, "second": 1, "third": 1, "undone": 0}
    records = complete_journal(run_dir)
    skipped = [r for r in events(records, "step.finished") if r["step"] == "second"][-1]
    assert (skipped["status"], skipped["reason"]) == ("skipped", "skipped on resume: ran it by hand")
    assert (resumed(records)["by"], resumed(records)["skip"]) == ("alice", ["second"])


def test_after_rollbacks_undid_completed_steps_resume_needs_to_be_told_where_to_continue(ws: Workspace) -> None:
    run_dir, out = failed_run(ws, rollback=True)
    assert counts(ws)["undone"] == 1
    assert continue_lines(out)[0] == f"runbook resume {run_dir} --from prepare"
    refused = ws.run("resume", run_dir, "--rerun-failed")
    assert refused.code == 2
    assert "its rollbacks undid prepare" in refused.err and "Pass --from prepare" in refused.err
    (ws.root / "fixed.txt").touch()
    done = ws.run("resume", run_dir, "--from", "prepare")
    assert done.code == 0, done.text
    assert counts(ws) == {"prepare": 2, "second": 2, "third": 1, "undone": 1}
    assert resumed(complete_journal(run_dir))["undone"] == ["prepare"]


def test_an_undone_step_is_not_rolled_back_twice_when_resumed_past_it(ws: Workspace) -> None:
    run_dir, _ = failed_run(ws, rollback=True)
    done = ws.run("resume", run_dir, "--from", "second")  # second fails again
    assert done.code == 1, done.text
    assert counts(ws) == {"prepare": 1, "second": 2, "third": 0, "undone": 1}
    assert "rollback" not in [r["event"].split(".")[0] for r in journal_records(run_dir)[-6:]]


def test_from_and_skip_name_steps_the_runbook_has(ws: Workspace) -> None:
    run_dir, _ = failed_run(ws)
    done = ws.run("resume", run_dir, "--from", "secnd", "--skip", "thrid")
    assert done.code == 2
    assert "--from secnd: runbook 'resumable' has no step 'secnd' (did you mean 'second'?)" in done.err
    assert "--skip thrid: runbook 'resumable' has no step 'thrid' (did you mean 'third'?)" in done.err
    done = ws.run("resume", run_dir, "--skip", "prepare")
    assert done.code == 2 and "step prepare already completed" in done.err


def test_an_aborted_run_resumes_at_the_step_that_was_stopped(ws: Workspace, marker: str) -> None:
    ws.write("live.yaml", runbook_text(f"""\
        remediation:
          - {{id: first, run: "echo ran >> first.count"}}
          - id: slow
            run: "echo ran >> slow.count; if [ ! -e fixed.txt ]; then touch slow.started; sleep {marker}; fi"
          - {{id: last, run: "echo ran >> last.count"}}
        """, id="abortable"))
    proc = ws.start("run", "live.yaml")
    try:
        wait_for(lambda: (ws.root / "slow.started").exists(), what="the slow step")
        proc.send_signal(signal.SIGTERM)
        done = collected(proc)
    finally:
        stop(proc)
    assert done.code == 130, done.text
    run_dir = ws.only_run()
    assert f"to continue: runbook resume {run_dir} --rerun-failed" in done.out
    (ws.root / "fixed.txt").touch()
    again = ws.run("resume", run_dir, "--rerun-failed")
    assert again.code == 0, again.text
    assert [(ws.root / f"{n}.count").read_text().count("ran") for n in ("first", "slow", "last")] == [1, 2, 1]
    assert resumed(complete_journal(run_dir))["previous"] == "aborted"


def test_a_refused_step_asks_for_approval_again_when_resumed(ws: Workspace) -> None:
    ws.write("live.yaml", runbook_text("""\
        remediation:
          - {id: check, run: "echo ran >> check.count"}
          - {id: restart, run: touch restarted.txt, confirm: "Restart it?"}
        """, id="gated"))
    terminal = Terminal(ws.command("run", "live.yaml", "--as", "dana"), ws.root, {**ws.env, "TERM": "dumb"})
    try:
        terminal.expect("Restart it? [y/N]")
        terminal.type(b"n\r")
        terminal.expect("Why not?")
        terminal.type(b"\r")  # no reason given: the refusal still names who
        assert terminal.wait() == 7, terminal.text
    finally:
        terminal.kill()
    run_dir = ws.only_run()
    done = ws.run("resume", run_dir, "--rerun-failed", "--yes", "--as", "erin")
    assert done.code == 0, done.text
    assert (ws.root / "restarted.txt").exists() and (ws.root / "check.count").read_text() == "ran\n"
    approvals = events(complete_journal(run_dir), "approval")
    assert [(a["approved"], a["by"]) for a in approvals] == [(False, "dana"), (True, "erin")]


def test_on_a_terminal_resume_asks_why_and_what_to_do_with_the_failed_step(ws: Workspace) -> None:
    run_dir, _ = failed_run(ws)
    terminal = Terminal(ws.command("resume", run_dir), ws.root, {**ws.env, "TERM": "dumb"})
    try:
        terminal.expect("Why resume this run?")
        terminal.type(b"fixed the disk\r")
        terminal.expect("Step second failed (exit code 1). Run it again? [y/N]")
        (ws.root / "fixed.txt").touch()
        terminal.type(b"y\r")
        assert terminal.wait() == 0, terminal.text
    finally:
        terminal.kill()
    assert "Traceback" not in terminal.text
    note = resumed(complete_journal(run_dir))
    assert (note["reason"], note["rerun"]) == ("fixed the disk", ["second"])
    assert counts(ws) == {"prepare": 1, "second": 2, "third": 1, "undone": 0}


def test_declining_on_a_terminal_resumes_nothing_and_leaves_the_journal_as_it_was(ws: Workspace) -> None:
    run_dir, _ = failed_run(ws)
    before = (run_dir / "journal.jsonl").read_bytes()
    terminal = Terminal(ws.command("resume", run_dir, "--reason", "x"), ws.root, {**ws.env, "TERM": "dumb"})
    try:
        terminal.expect("Run it again? [y/N]")
        terminal.type(b"n\r")
        terminal.expect("Skip second and go on after it? [y/N]")
        terminal.type(b"n\r")
        assert terminal.wait() == 2, terminal.text
    finally:
        terminal.kill()
    assert "nothing resumed" in terminal.text
    assert (run_dir / "journal.jsonl").read_bytes() == before
    assert counts(ws) == {"prepare": 1, "second": 1, "third": 0, "undone": 0}


# -- times after a resume ----------------------------------------------------------------------------------


def wall(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(record["t"].replace("Z", "+00:00")).timestamp()


def test_times_after_a_resume_are_wall_time_since_the_run_started(ws: Workspace, marker: str) -> None:
    """The clock used to go on from the last record before the crash: the review said
    `Recovered +4s` for a run that recovered 9s after it started."""
    ws.write("live.yaml", runbook_text(f"""\
        detection:
          - {{id: probe, run: "true"}}
        remediation:
          - id: fix
            run: "if [ ! -e resumed ]; then touch fix.started; sleep {marker}; fi"
        recovery:
          - {{id: verify, run: "true"}}
        """, id="timed"))
    proc = ws.start("run", "live.yaml")
    try:
        wait_for(lambda: (ws.root / "fix.started").exists(), what="the fix step")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        stop(proc)
    kill_leftovers(marker)
    time.sleep(2.5)  # the engine is down: this time counts
    (ws.root / "resumed").touch()
    run_dir = ws.only_run()
    done = ws.run("resume", run_dir, "--rerun-interrupted")
    assert done.code == 0, done.text
    records = journal_records(run_dir)
    start = wall(records[0]) - records[0]["elapsed"]
    for record in records:  # every stamp agrees with the wall clock (ms rounding, and a little slack)
        assert abs(record["elapsed"] - (wall(record) - start)) < 0.05, record
    finish = records[-1]
    assert abs(finish["duration"] - finish["elapsed"]) < 0.05
    # Phases that ended before the crash are not entered again (they used to repeat at 0 ms).
    assert [r["phase"] for r in events(records, "phase.started")] == ["detection", "remediation", "remediation",
                                                                       "recovery"]
    assert finish["phases"]["remediation"] >= 2.5  # from its first start, downtime included
    report = json.loads(ws.run("report", run_dir, "-f", "json").out)
    recovered_at = events(records, "phase.finished")[-1]["elapsed"]
    assert {k["name"]: k["at"] for k in report["key_times"]}["recovered"] == pytest.approx(recovered_at, abs=0.002)
    assert report["duration"] == pytest.approx(finish["duration"])
    line = next(x for x in ws.run("report", run_dir).out.splitlines() if x.startswith("| Recovered |"))
    # t=0 is the run.started stamp for the review's wall times
    assert datetime.fromtimestamp(wall(records[0]) + recovered_at, tz=timezone.utc).strftime("%H:%M:%S") in line
    assert started_steps(records).count("probe") == 1
    assert resumed(complete_journal(run_dir))["downtime"] >= 2.5


# -- commands the killed engine left running ------------------------------------------------------------------


def killed_mid_step(ws: Workspace, run: str, *, idempotent: bool = False, env: dict[str, str] | None = None,
                    head: str = "", target: str = "", started: Callable[[], bool] | None = None) -> Path:
    """SIGKILL a real `runbook run` while step `work` runs `run` (which touches
    work.started first, unless `started` says how to tell); the command keeps running."""
    where = f"    target: {target}\n" if target else ""
    ws.write("live.yaml", runbook_text(
        f"remediation:\n  - id: work\n    run: {json.dumps(run)}\n    idempotent: {str(idempotent).lower()}\n"
        f"{where}  - {{id: after, run: 'echo ran >> {ws.root}/after.count'}}\n", id="orphans", head=head))
    proc = ws.start("run", "live.yaml", env=env)
    begun = started or (lambda: (ws.root / "work.started").exists())
    try:
        wait_for(lambda: begun() or proc.poll() is not None, what="the work step")
        assert proc.poll() is None, collected(proc).text
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        stop(proc)
    return ws.only_run()


def test_a_command_left_running_by_a_killed_engine_is_found_and_never_started_twice(
        ws: Workspace, marker: str) -> None:
    from livekit import live_processes_with

    run_dir = killed_mid_step(ws, f"echo ran >> {ws.root}/work.count; touch {ws.root}/work.started; "
                                  f"sleep {marker}", idempotent=True)
    [group] = events(journal_records(run_dir), "step.process")
    assert (group["step"], group["host"]) == ("work", None) and live_processes_with(marker)
    done = ws.run("resume", run_dir)  # idempotent, so it would run again: not while the first copy runs
    assert done.code == 2, done.text
    assert (f"step work is still running (process group {group['pgid']} on this machine, started by the "
            "earlier attempt): pass --wait-running to wait for it to end, or --stop-running") in done.err
    assert (ws.root / "work.count").read_text() == "ran\n"
    ws.write("live.yaml", (ws.root / "live.yaml").read_text().replace(f"sleep {marker}", "true"))
    done = ws.run("resume", run_dir, "--stop-running")
    assert done.code == 0, done.text
    assert live_processes_with(marker) == []  # the whole group was stopped before the step ran again
    assert f"stopping step work: process group {group['pgid']} on this machine" in done.out
    note = resumed(complete_journal(run_dir))
    assert note["leftovers"] == [{"step": "work", "pgid": group["pgid"], "host": None, "action": "stop"}]
    assert (ws.root / "work.count").read_text() == "ran\nran\n"


def test_resume_can_wait_for_a_command_left_running_to_end(ws: Workspace) -> None:
    # The first copy ends only when the gate opens, and the gate opens only once the resume
    # says it is waiting: no sleep to outlast, however loaded the machine.
    gate = ws.root / "gate"
    run_dir = killed_mid_step(ws, f"touch {ws.root}/work.started; echo start >> {ws.root}/order.txt; "
                                  f"while [ ! -e {gate} ]; do sleep 0.05; done; echo end >> {ws.root}/order.txt")
    proc = ws.start("resume", run_dir, "--wait-running", "--rerun-interrupted")
    never_hang = threading.Timer(60, gate.touch)  # should the resume never say it waits
    never_hang.start()
    try:
        seen: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if "waiting for step work to end" in line:
                break
        assert seen and "waiting for step work to end" in seen[-1], "".join(seen)
        assert (ws.root / "order.txt").read_text().split() == ["start"]  # still running, not started again
        gate.touch()
        done = collected(proc)
    finally:
        never_hang.cancel()
        stop(proc)
    assert done.code == 0, done.text
    # The first copy ended before the second started: never two at once.
    assert (ws.root / "order.txt").read_text().split() == ["start", "end", "start", "end"]
    assert resumed(complete_journal(run_dir))["leftovers"][0]["action"] == "wait"


def test_a_command_is_found_by_its_marks_even_if_its_group_never_reached_the_journal(
        ws: Workspace, marker: str) -> None:
    """The window between the spawn and the journal line: the environment marks close it."""
    from livekit import live_processes_with

    run_dir = killed_mid_step(ws, f"touch {ws.root}/work.started; sleep {marker}")
    journal = run_dir / "journal.jsonl"
    journal.write_text("".join(line + "\n" for line in journal.read_text().splitlines()
                               if '"step.process"' not in line))
    done = ws.run("resume", run_dir, "--skip-interrupted")
    assert done.code == 2 and "step work is still running (process group" in done.err, done.text
    done = ws.run("resume", run_dir, "--skip-interrupted", "--stop-running")
    assert done.code == 0, done.text
    assert live_processes_with(marker) == []


def test_an_ssh_command_left_running_is_found_and_stopped_over_ssh(ws: Workspace, marker: str, cluster: Any,
                                                                  ssh_env: Path) -> None:
    from sshd import remote_alive, target_yaml

    host = cluster.hosts[0]
    env = {"HOME": str(ssh_env), "RUNBOOK_KNOWN_HOSTS": str(cluster.directory / "known_hosts")}
    gate = Path(tempfile.mkdtemp(prefix="resume-ssh-"))  # the remote account cannot read the workspace
    gate.chmod(0o777)
    try:
        run_dir = killed_mid_step(ws, f"if [ ! -e {gate}/resumed ]; then sleep {marker}; fi", env=env,
                                  head=f"targets: {{box: {target_yaml(cluster, [host])}}}\n", target="box",
                                  started=lambda: remote_alive(marker))
        [group] = events(journal_records(run_dir), "step.process")
        assert group["host"] == host and remote_alive(marker)
        done = ws.run("resume", run_dir, "--rerun-interrupted", env=env)
        assert done.code == 2, done.text
        assert f"step work is still running (process group {group['pgid']} on {host}" in done.err
        (gate / "resumed").touch()
        done = ws.run("resume", run_dir, "--rerun-interrupted", "--stop-running", env=env)
    finally:
        shutil.rmtree(gate, ignore_errors=True)
    assert done.code == 0, done.text
    assert not remote_alive(marker)
    assert resumed(complete_journal(run_dir))["leftovers"] == [
        {"step": "work", "pgid": group["pgid"], "host": host, "action": "stop"}]
