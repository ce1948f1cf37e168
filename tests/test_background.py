"""Background helpers of a block (a port-forward, a tunnel), live: started in a process
group of their own before the block's first step, ready-checked, stopped when the block
ends however it ends, journaled; one that dies fails the block with what it printed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.executors.local import LocalExecutor
from engine.reporting.markdown import render_markdown
from engine.reporting.report import build_report
from engine.testing import run_text
from tests.test_runner import finished, order, runbook


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def gone(pgid: int) -> bool:
    """No process of the group is left (killed ones may take a moment to be reaped)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        if all(_zombie(pid) for pid in _members(pgid)):
            return True
        time.sleep(0.05)
    return False


def _members(pgid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()  # noqa: SIM115
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
                found.append(int(entry))
    return found


def _zombie(pid: int) -> bool:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def block(helpers: str, steps: str) -> str:
    """A runbook whose detection is a block with these helpers and steps (YAML flow
    lists), then a step after it."""
    return runbook(f"""\
        detection:
          - id: tunnel
            background: {helpers}
            block: {steps}
          - {{id: after, run: "echo after"}}
        """)


def test_a_helper_is_ready_on_its_port_serves_the_block_and_is_stopped_with_its_group() -> None:
    port = free_port()
    text = block(f'[{{id: server, run: "sleep 300 & python3 -m http.server {port} --bind 127.0.0.1", '
                 f'ready: {{port: {port}}}, timeout: 20s}}]',
                 f'[{{id: fetch, run: "curl -fsS -o /dev/null -w %{{http_code}} http://127.0.0.1:{port}/"}}]')
    result, events = run_text(text, executor=LocalExecutor())
    assert result.outcome == "resolved"
    assert finished(events)["fetch"].stdout == "200"
    [started] = events.named("background.started")
    [stopped] = events.named("background.stopped")
    assert (started.step, started.helper, started.error) == ("tunnel", "server", None)
    assert stopped.exit_code == -15 and not stopped.died and "Serving HTTP" in stopped.output
    assert gone(started.pid)  # the sleep it started went with it
    seen = [(e.name, getattr(e, "step", None)) for e, _ in events.events if e.journaled]
    assert seen.index(("background.started", "tunnel")) < seen.index(("step.started", "fetch"))
    assert seen.index(("step.finished", "fetch")) < seen.index(("background.stopped", "tunnel"))
    assert seen.index(("background.stopped", "tunnel")) < seen.index(("step.finished", "tunnel"))


def test_a_helper_that_dies_while_the_block_runs_fails_it_with_its_output() -> None:
    text = block('[{id: forward, run: "sleep 0.3; echo lost connection to pod >&2; exit 3"}]',
                 '[{id: slow, run: "sleep 1.5"}, {id: never, run: "echo never"}]')
    result, events = run_text(text, executor=LocalExecutor())
    assert result.outcome == "failed"
    assert finished(events)["tunnel"].error == ("background helper forward exited with code 3 while the block ran: "
                                                "lost connection to pod (after step slow)")
    assert "never" not in order(events) and "after" not in order(events)
    [stopped] = events.named("background.stopped")
    assert stopped.died and stopped.exit_code == 3


def test_a_helper_not_ready_in_time_fails_the_block_before_its_first_step_and_is_stopped() -> None:
    port = free_port()
    text = block(f'[{{id: forward, run: "echo waiting; sleep 300", ready: {{port: {port}}}, timeout: 1s}}]',
                 '[{id: fetch, run: "echo fetch"}]')
    result, events = run_text(text, executor=LocalExecutor())
    assert result.outcome == "failed"
    error = finished(events)["tunnel"].error
    assert error == (f"background helper forward not ready after 1s (waited until port {port} accepts "
                     "connections): waiting")
    assert "fetch" not in order(events)
    [started] = events.named("background.started")
    assert started.error is not None and gone(started.pid)


def test_a_failing_step_inside_still_stops_the_helper() -> None:
    text = block('[{id: forward, run: "echo Forwarding from 127.0.0.1; sleep 300", ready: {output: Forwarding from}}]',
                 '[{id: broken, run: "exit 4"}]')
    result, events = run_text(text, executor=LocalExecutor())
    assert result.outcome == "failed" and finished(events)["broken"].status == "failed"
    [started] = events.named("background.started")
    [stopped] = events.named("background.stopped")
    assert started.ready == "its output shows 'Forwarding from'" and not stopped.died and gone(started.pid)


def test_background_is_refused_on_a_step_that_is_not_a_block() -> None:
    from engine.language.validation import ValidationFailed

    text = runbook("""\
        detection:
          - {id: alone, run: echo hi, background: [{id: pf, run: sleep 5}]}
        """)
    with pytest.raises(ValidationFailed, match="background"):
        run_text(text)


def test_the_review_lists_each_helper_and_names_one_that_died(tmp_path: Path) -> None:
    """`runbook run` then `runbook report`: the helpers are among what was done, and a
    helper that died is among what failed, with what it printed."""
    (tmp_path / "rb.yaml").write_text(block(
        '[{id: steady, run: "sleep 300"}, {id: flaky, run: "sleep 0.3; echo tunnel closed >&2; exit 3"}]',
        '[{id: slow, run: "sleep 1.5"}]'), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "engine", "run", "rb.yaml", "--yes"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    [run_dir] = (tmp_path / ".runbook" / "runs").iterdir()
    text = render_markdown(build_report(run_dir))
    assert "| steady (of tunnel) | background |   | `sleep 300` | stopped with its block |" in text
    assert "| flaky (of tunnel) | background |" in text and "| died (exit code 3) |" in text
    assert "background helper flaky of tunnel died (exit code 3)" in text and "tunnel closed" in text


def test_a_helper_gets_the_runbooks_default_environment() -> None:
    """`defaults.env` (a KUBECONFIG, a proxy) reaches the helpers as it reaches commands."""
    text = block('[{id: forward, run: "echo $GREETING from helper; sleep 300", '
                 'ready: {output: hello from helper}, timeout: 10s}]', '[{id: use, run: "echo used"}]')
    text = text.replace("defaults: {timeout: 30s}", "defaults: {timeout: 30s, env: {GREETING: hello}}")
    result, events = run_text(text, executor=LocalExecutor())
    assert result.outcome == "resolved"
    [stopped] = events.named("background.stopped")
    assert stopped.output.startswith("hello from helper")
