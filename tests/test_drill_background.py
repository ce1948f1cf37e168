"""Background helpers in a drill: never started (the drill's guard would refuse a process);
the scenario's response for the helper's id says whether it runs, dies before it is
ready, or dies while the block runs."""

from __future__ import annotations

from pathlib import Path

from simkit import drill, finished, records

RUNBOOK = """\
defaults: {timeout: 5m}
remediation:
  - id: through_tunnel
    background:
      - {id: port_forward, run: "kubectl -n etcd port-forward svc/etcd 2379:2379", ready: {port: 2379}}
    block:
      - {id: status, run: "etcdctl --endpoints=127.0.0.1:2379 endpoint status"}
      - {id: defrag, run: "etcdctl --endpoints=127.0.0.1:2379 defrag"}
"""

STEPS = """\
  - {step: status, stdout: "{{ 'up' if state.forwarding else 'no tunnel' }}", duration: 1m}
  - {step: defrag, stdout: defragmented}
"""


def test_a_scripted_helper_runs_around_the_block_and_its_set_changes_the_world(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, "state: {forwarding: false}\nresponses:\n"
                "  - {step: port_forward, stdout: 'Forwarding from 127.0.0.1:2379', set: {forwarding: true}}\n" + STEPS)
    assert finished(run, "status")["stdout"] == "up"
    assert finished(run, "through_tunnel")["status"] == "ok"
    [started] = records(run, "background.started")
    [stopped] = records(run, "background.stopped")
    assert (started["helper"], started["pid"], started["error"]) == ("port_forward", None, None)
    assert started["command"] == "kubectl -n etcd port-forward svc/etcd 2379:2379"
    assert (stopped["died"], stopped["exit_code"]) == (False, -15)


def test_a_helper_that_dies_before_it_is_ready_fails_the_block_before_its_steps(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, "responses:\n  - {step: port_forward, exit_code: 1, "
                "stderr: 'error: services \"etcd\" not found'}\n" + STEPS)
    assert finished(run, "through_tunnel")["error"] == ("background helper port_forward exited with code 1 before "
                                                        "it was ready: error: services \"etcd\" not found")
    assert not records(run, "step.started", step="status")
    assert run.result.outcome == "failed"


def test_a_helper_that_dies_while_the_block_runs_fails_it_after_that_step(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, "state: {forwarding: true}\nresponses:\n"
                "  - {step: port_forward, exit_code: 1, duration: 30s, stderr: lost connection to pod}\n" + STEPS)
    assert finished(run, "through_tunnel")["error"] == ("background helper port_forward exited with code 1 while "
                                                        "the block ran: lost connection to pod (after step status)")
    assert not records(run, "step.started", step="defrag")
    [stopped] = records(run, "background.stopped")
    assert stopped["died"] and stopped["exit_code"] == 1
