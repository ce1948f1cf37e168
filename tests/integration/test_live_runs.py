"""`runbook run` for real, in a subprocess: each fault ends with a message naming the step,
the right outcome and exit code, rollbacks as the policy says, and a whole journal; no
traceback reaches the user; hostile inputs and templates stay harmless; secrets never
reach the disk or the console."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from livekit import (
    Server,
    Workspace,
    assert_clean_failure_output,
    closed_port,
    complete_journal,
    events,
    finished_step,
    iter_files,
    live_processes_with,
    runbook_text,
    started_steps,
)

pytestmark = pytest.mark.integration


def with_fault(fault: str) -> str:
    """A remediation where `fault` (the step's fields, indented by four) is the second
    step: the first has a rollback, the third must never run."""
    return runbook_text(
        "remediation:\n"
        "  - id: prepare\n"
        "    run: echo prepared\n"
        "    rollback:\n"
        '      - {id: undo_prepare, run: "echo undone > undone.txt"}\n'
        "  - id: fault\n"
        f"{fault}\n"
        "  - id: never\n"
        '    run: "echo ran > never.txt"\n')


def assert_failed_at_fault(ws: Workspace, done: object, error: str) -> dict[str, object]:
    """The common ending of every fault: exit 1, the step and its error on the console,
    rollbacks of what completed, nothing after it, and a whole journal."""
    from livekit import Done

    assert isinstance(done, Done)
    assert done.code == 1, done.text
    assert_clean_failure_output(done)
    assert "✗ fault FAILED" in done.out and error in done.out
    assert "■ outcome: failed at step fault" in done.out
    assert (ws.root / "undone.txt").read_text() == "undone\n"
    assert not (ws.root / "never.txt").exists()
    records = complete_journal(ws.only_run())
    step = finished_step(records, "fault")
    assert step["status"] == "failed" and error in step["error"]
    end = records[-1]
    assert end["outcome"] == "failed" and end["failed_step"] == "fault" and error in end["reason"]
    assert [r["step"] for r in events(records, "step.finished") if r.get("rollback_of")] == ["undo_prepare"]
    assert "never" not in started_steps(records)
    return step


# -- the faults --------------------------------------------------------------------------------------------


def test_command_not_found(ws: Workspace) -> None:
    ws.write("live.yaml", with_fault("    run: no-such-command-xyz --now"))
    done = ws.run("run", "live.yaml")
    step = assert_failed_at_fault(ws, done, "command not found")
    assert step["exit_code"] == 127 and "no-such-command-xyz" in step["stderr"]


def test_non_zero_exit(ws: Workspace) -> None:
    ws.write("live.yaml", with_fault("    run: echo 'disk still full' >&2; exit 3"))
    done = ws.run("run", "live.yaml")
    step = assert_failed_at_fault(ws, done, "exit code 3")
    assert step["exit_code"] == 3 and step["stderr"] == "disk still full\n"
    assert "│ disk still full" in done.out  # stderr streamed to the console too


def test_timeout_kills_the_whole_process_group(ws: Workspace, marker: str) -> None:
    """`sleep &` grandchildren keep the pipes open: they must die with the step."""
    ws.write("live.yaml", with_fault(
        f"    run: sleep {marker} & sleep {marker} & echo started; sleep {marker}\n    timeout: 1s"))
    done = ws.run("run", "live.yaml")
    assert_failed_at_fault(ws, done, "timed out after 1s")
    assert live_processes_with(marker) == []


def test_a_template_error_names_the_file_and_line(ws: Workspace) -> None:
    ws.write("live.yaml", with_fault('    run: "echo {{ steps.prepare.outputs.missing }}"'))
    done = ws.run("run", "live.yaml")
    step = assert_failed_at_fault(ws, done, "live.yaml:12:")
    assert "missing" in step["error"]


def test_an_http_connection_refused(ws: Workspace) -> None:
    port = closed_port()
    ws.write("live.yaml", with_fault(f'    http: {{url: "http://127.0.0.1:{port}/health"}}'))
    done = ws.run("run", "live.yaml")
    assert_failed_at_fault(ws, done, "connection refused")
    assert f"GET http://127.0.0.1:{port}/health" in done.out


def test_continue_on_error_keeps_going_and_resolves(ws: Workspace) -> None:
    ws.write("live.yaml", with_fault("    run: exit 4\n    continue_on_error: true"))
    done = ws.run("run", "live.yaml")
    assert done.code == 0, done.text
    assert (ws.root / "never.txt").exists() and not (ws.root / "undone.txt").exists()
    assert finished_step(complete_journal(ws.only_run()), "fault")["status"] == "failed"


# -- outcomes and exit codes -------------------------------------------------------------------------------


def test_a_resolved_run_exits_0_and_its_journal_is_whole(ws: Workspace) -> None:
    ws.write("live.yaml", runbook_text("""\
        detection:
          - {id: usage, run: echo 96, outputs: {pct: "{{ stdout | int }}"}, expect: "outputs.pct > 90"}
        recovery:
          - id: verify
            run: "echo {{ steps.usage.outputs.pct - 30 }}"
            until: "stdout | int < 90"
            every: 1s
            timeout: 10s
        """))
    done = ws.run("run", "live.yaml")
    assert done.code == 0, done.text
    assert "■ outcome: resolved" in done.out and "journal: " in done.out
    records = complete_journal(ws.only_run())
    assert finished_step(records, "usage")["outputs"] == {"pct": 96}
    assert finished_step(records, "verify")["stdout"] == "66\n"
    assert (ws.only_run() / "logs" / "usage.stdout.log").read_text() == "96\n"


def test_detection_that_does_not_confirm_exits_5_without_rollbacks(ws: Workspace) -> None:
    ws.write("live.yaml", runbook_text("""\
        detection:
          - id: prepare
            run: "true"
            rollback: [{id: undo, run: "touch undone.txt"}]
          - {id: usage, run: echo 40, expect: "stdout | int > 90"}
        remediation:
          - {id: fix, run: touch fixed.txt}
        """))
    done = ws.run("run", "live.yaml")
    assert done.code == 5, done.text
    assert "! usage not confirmed" in done.out and "■ outcome: not_confirmed" in done.out
    assert not (ws.root / "undone.txt").exists() and not (ws.root / "fixed.txt").exists()
    assert complete_journal(ws.only_run())[-1]["outcome"] == "not_confirmed"


def test_an_invalid_runbook_exits_2_with_positions(ws: Workspace) -> None:
    ws.write("bad.yaml", runbook_text("remediation:\n  - {id: Bad-Id, run: x}\n"))
    done = ws.run("run", "bad.yaml")
    assert done.code == 2
    assert "bad.yaml:7:" in done.err
    assert_clean_failure_output(done)
    assert ws.run_dirs() == []  # nothing started


def test_bad_inputs_exit_2_listing_every_problem(ws: Workspace) -> None:
    ws.write("live.yaml", runbook_text("""\
        inputs:
          host: {type: string}
          pct: {type: integer, maximum: 99}
        detection:
          - {id: check, run: "true"}
        """))
    done = ws.run("run", "live.yaml", "-i", "pct=120", "-i", "hots=x")
    assert done.code == 2
    assert "missing input 'host'" in done.err and "must be at most 99" in done.err
    assert "no input 'hots' (did you mean 'host'?)" in done.err
    assert ws.run_dirs() == []


def test_bad_answers_and_roles_are_reported_with_the_inputs_before_anything_runs(ws: Workspace) -> None:
    """An unknown step, a value outside the choices and an undeclared role used to be
    ignored, or caught only when the run reached the step, after detection had run."""
    ws.write("live.yaml", runbook_text("""\
        roles: [incident_commander, responder]
        inputs:
          pct: {type: integer, maximum: 99}
        detection:
          - {id: probe, run: "touch detected.txt"}
        triage:
          - {id: assess, manual: What is wrong?, ask: {cause: {choices: [logs, data]}}}
        """))
    done = ws.run("run", "live.yaml", "-i", "pct=120", "--answer", "asess.cause=logs",
                  "--answer", "assess.cause=crashd", "--as", "sam:comander")
    assert done.code == 2, done.text
    assert_clean_failure_output(done)
    assert done.err.splitlines()[1:] == [
        "  input 'pct' (from -i) must be at most 99, got 120",
        "  --answer asess.cause=logs: runbook 'live-test' has no step 'asess' (did you mean 'assess'?)",
        "  --answer assess.cause=crashd: answer one of: logs, data",
        "  --as sam:comander: the runbook declares no role 'comander' (did you mean 'incident_commander'?) "
        "(roles: incident_commander, responder)"]
    assert not (ws.root / "detected.txt").exists()
    assert ws.run_dirs() == []


def test_a_manual_step_without_a_terminal_fails_naming_the_flag(ws: Workspace) -> None:
    ws.write("live.yaml", runbook_text("""\
        triage:
          - {id: assess, manual: What is wrong?, ask: {cause: {choices: [logs, data]}}}
          - {id: act, run: "echo cause={{ steps.assess.answers.cause }}"}
        """))
    failed = ws.run("run", "live.yaml")
    assert failed.code == 1 and "pass --answer assess.cause=VALUE (one of: logs, data)" in failed.out
    answered = ws.run("run", "live.yaml", "--answer", "assess.cause=logs")
    assert answered.code == 0 and "│ cause=logs" in answered.out


def test_a_confirm_needs_yes_when_not_interactive(ws: Workspace) -> None:
    ws.write("live.yaml", runbook_text("""\
        remediation:
          - {id: restart, run: touch restarted.txt, confirm: "Restart it?"}
        """))
    refused = ws.run("run", "live.yaml")
    assert refused.code == 1 and "pass --yes to approve" in refused.out
    assert not (ws.root / "restarted.txt").exists()
    approved = ws.run("run", "live.yaml", "--yes")
    assert approved.code == 0 and (ws.root / "restarted.txt").exists()


def test_a_role_restricted_approval_is_refused_for_the_wrong_role(ws: Workspace) -> None:
    ws.write("live.yaml", runbook_text("""\
        roles: [incident_commander, responder]
        remediation:
          - id: restart
            run: touch restarted.txt
            confirm: {message: Restart it?, role: incident_commander}
        """))
    wrong = ws.run("run", "live.yaml", "--yes", "--as", "bob:responder")
    assert wrong.code == 7 and "approval requires the role incident_commander" in wrong.out
    assert not (ws.root / "restarted.txt").exists()
    [refused_dir] = ws.run_dirs()
    right = ws.run("run", "live.yaml", "--yes", "--as", "alice:incident_commander")
    assert right.code == 0 and "approved by alice (incident_commander)" in right.out
    [approved_dir] = [d for d in ws.run_dirs() if d != refused_dir]  # ids of one second sort at random
    approval = events(complete_journal(approved_dir), "approval")[0]
    assert approval["by"] == "alice" and approval["role"] == "incident_commander"


def test_runs_lists_each_run_with_its_outcome(ws: Workspace) -> None:
    ws.write("ok.yaml", runbook_text("detection:\n  - {id: a, run: 'true'}\n", id="ok-book"))
    ws.write("bad.yaml", runbook_text("detection:\n  - {id: a, run: 'false'}\n", id="bad-book"))
    assert ws.run("run", "ok.yaml").code == 0
    assert ws.run("run", "bad.yaml").code == 1
    listing = ws.run("runs", "-f", "json")
    rows = {r["runbook"]: r for r in json.loads(listing.out)}
    assert rows["ok-book"]["outcome"] == "resolved" and rows["bad-book"]["outcome"] == "failed"


def test_runs_text_listing_starts_with_a_header_and_keeps_its_columns_aligned(ws: Workspace) -> None:
    ws.write("ok.yaml", runbook_text("detection:\n  - {id: a, run: 'true'}\n", id="ok-book"))
    ws.write("long.yaml", runbook_text("detection:\n  - {id: a, run: 'false'}\n",
                                       id="a-runbook-with-a-rather-long-identifier"))
    assert ws.run("run", "ok.yaml").code == 0
    assert ws.run("run", "long.yaml").code == 1
    lines = ws.run("runs").out.splitlines()
    assert lines[0].split() == ["RUN", "MODE", "OUTCOME", "DURATION", "STARTED"]
    assert len(lines) == 3
    assert len({line.index("live") for line in lines[1:]} | {lines[0].index("MODE")}) == 1


# -- hostile inputs and templates ----------------------------------------------------------------------------


def test_a_shell_injection_input_stays_one_argument(ws: Workspace, tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    ws.write("live.yaml", runbook_text("""\
        inputs: {name: {type: string}}
        remediation:
          - {id: greet, run: "printf '[%s]\\\\n' {{ inputs.name }}"}
        """))
    value = f"x; touch {pwned}"
    done = ws.run("run", "live.yaml", "-i", f"name={value}")
    assert done.code == 0, done.text
    assert not pwned.exists()
    assert f"│ [{value}]" in done.out
    assert finished_step(complete_journal(ws.only_run()), "greet")["stdout"] == f"[{value}]\n"


@pytest.mark.parametrize("value", ["$(touch PWNED)", "`touch PWNED`", "a'b; touch PWNED; echo 'c", "{{ 7 * 7 }}"])
def test_inputs_are_never_run_or_rendered_as_templates(ws: Workspace, value: str) -> None:
    ws.write("live.yaml", runbook_text("""\
        inputs: {name: {type: string}}
        remediation:
          - {id: greet, run: "printf '%s\\\\n' {{ inputs.name }}"}
          - {id: tell, notify: {channel: console, message: "got {{ inputs.name }}"}}
        """))
    done = ws.run("run", "live.yaml", "-i", f"name={value}")
    assert done.code == 0, done.text
    assert not (ws.root / "PWNED").exists()
    assert f"│ {value}\n" in done.out and f"got {value}" in done.out
    assert "│ 49\n" not in done.out and "got 49" not in done.out


def test_sandbox_escapes_are_refused(ws: Workspace) -> None:
    ws.write("live.yaml", runbook_text("""\
        remediation:
          - {id: probe, run: echo ok}
          - {id: escape, run: "echo {{ steps.probe.stdout.__class__.__mro__[1].__subclasses__() }}"}
        """))
    done = ws.run("run", "live.yaml")
    assert done.code in (1, 2), done.text  # refused when validated, or when rendered
    assert_clean_failure_output(done)
    assert "<class" not in done.text
    assert "refused by the sandbox" in done.text or "__class__" in done.err


def test_an_escape_smuggled_in_at_run_time_is_refused(ws: Workspace) -> None:
    """A template reached through data (a command's output, then `item` of for_each) is
    text, never evaluated; a real escape attempt in the runbook is stopped by the sandbox
    when rendered."""
    ws.write("live.yaml", runbook_text("""\
        remediation:
          - {id: probe, run: "echo e3sgJycuX19jbGFzc19fIH19 | base64 -d"}
          - {id: each, run: "echo {{ item }}", for_each: "steps.probe.stdout.splitlines()"}
          - id: escape
            run: "echo {{ (steps.each | attr('__cl' ~ 'ass__')) }}"
        """))
    done = ws.run("run", "live.yaml")
    assert_clean_failure_output(done)
    assert "│ {{ ''.__class__ }}" in done.out
    assert "<class" not in done.text
    assert done.code == 1 and "refused by the sandbox" in done.out


def test_a_secret_never_reaches_the_journal_logs_or_console(ws: Workspace, tmp_path: Path) -> None:
    secret = "tok-7f3a9c-SECRET"
    status = tmp_path / "status.log"
    ws.write("channels.yaml", f"kind: channels\nchannels:\n  status: {{type: file, path: {status}}}\n")
    with Server({"/": lambda request: (200, '{"token_seen": true}')}) as server:
        ws.write("live.yaml", runbook_text(f"""\
            inputs:
              token: {{type: string, secret: true, env: RB_TOKEN}}
            remediation:
              - id: echo
                run: "echo {{{{ inputs.token }}}}; echo err {{{{ inputs.token }}}} >&2"
                outputs: {{seen: "{{{{ stdout | trim }}}}"}}
              - id: split
                run: "printf 'tok-7f3'; sleep 0.2; printf 'a9c-SECRET\\\\n'"
              - id: piped
                run: cat
                stdin: "{{{{ inputs.token }}}}"
              - {{id: keep, set: {{copy: "{{{{ steps.echo.outputs.seen }}}}"}}}}
              - {{id: tell, notify: {{channel: status, message: "token is {{{{ vars.copy }}}}"}}}}
              - id: call
                http:
                  url: "{server.url}/api?t={{{{ inputs.token }}}}"
                  headers: {{Authorization: "Bearer {{{{ inputs.token }}}}"}}
              - {{id: bad, run: "echo {{{{ inputs.token | int }}}}", continue_on_error: true}}
              - {{id: fail, run: "echo {{{{ inputs.token }}}} >&2; exit 2"}}
            """))
        done = ws.run("run", "live.yaml", "--channels", "channels.yaml", env={"RB_TOKEN": secret})
        assert server.requests and secret in server.requests[0].path  # the real value was used
        assert server.requests[0].headers["Authorization"] == f"Bearer {secret}"
    assert done.code == 1, done.text
    assert secret not in done.out and secret not in done.err
    assert "│ ***" in done.out and "token is ***" in done.out
    run_dir = ws.only_run()
    files = list(iter_files(run_dir))
    assert any(f.name == "split.stdout.log" for f in files)
    for path in files:
        data = path.read_bytes()
        assert secret.encode() not in data, path
        assert b"7f3a9c" not in data, path  # not even a piece of it
    assert secret not in status.read_text() and "token is ***" in status.read_text()
    records = complete_journal(run_dir)
    assert records[0]["inputs"] == {"token": "***"}
    assert finished_step(records, "echo")["outputs"] == {"seen": "***"}


def test_a_runs_directory_that_cannot_be_written_exits_3_before_anything_runs(ws: Workspace) -> None:
    ws.write("runs-here", "a file, not a directory")
    ws.write("live.yaml", runbook_text("detection:\n  - {id: check, run: touch ran.txt}\n"))
    done = ws.run("run", "live.yaml", "--runs-dir", "runs-here/runs")
    assert done.code == 3, done.text
    assert_clean_failure_output(done)
    assert "cannot open the journal runs-here/runs/" in done.err and "Not a directory" in done.err
    assert not (ws.root / "ran.txt").exists()
