"""Template bounds in a live run: a costly template fails its step at once, and Ctrl-C or
SIGTERM stops a template that is still being evaluated, with the journal closed."""

from __future__ import annotations

import signal

import pytest
from livekit import (
    Workspace,
    assert_clean_failure_output,
    collected,
    complete_journal,
    finished_step,
    journal_records,
    runbook_text,
    stop,
    wait_for,
)

pytestmark = pytest.mark.integration


def test_a_costly_template_fails_its_step_at_once(ws: Workspace) -> None:
    ws.write("live.yaml", runbook_text("""\
        triage:
          - {id: huge, run: "echo {{ 9 ** (9 ** 9) }}"}
        """))
    done = ws.run("run", "live.yaml", "--non-interactive", timeout=60)
    assert done.code == 1, done.text
    assert_clean_failure_output(done)
    assert "too costly to evaluate: `**` would make an integer" in finished_step(
        complete_journal(ws.only_run()), "huge")["error"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_a_template_still_being_evaluated(ws: Workspace, sig: signal.Signals) -> None:
    ws.write("live.yaml", runbook_text("""\
        inputs: {text: {type: string, default: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa}}
        triage:
          - {id: ready, run: echo ready}
          - {id: backtrack, run: "echo {{ inputs.text | regex_search('(a+)+b') }}"}
          - {id: after, run: touch after.txt}
        """))
    proc = ws.start("run", "live.yaml", "--non-interactive", env={"RUNBOOK_TEMPLATE_TIMEOUT": "600"})
    try:
        wait_for(lambda: _finished(ws, "ready"), what="the step before the costly template")
        proc.send_signal(sig)
        done = collected(proc, timeout=30)
    finally:
        stop(proc)
    assert done.code == 130, done.text
    assert_clean_failure_output(done)
    records = complete_journal(ws.only_run())
    step = finished_step(records, "backtrack")
    assert step["status"] == "aborted" and "interrupted while the template was evaluated" in step["error"]
    assert records[-1]["outcome"] == "aborted" and not (ws.root / "after.txt").exists()


def _finished(ws: Workspace, step: str) -> bool:
    dirs = [d for d in ws.run_dirs() if (d / "journal.jsonl").exists()]
    return bool(dirs) and any(r.get("step") == step and r["event"] == "step.finished"
                              for r in journal_records(dirs[0]))
