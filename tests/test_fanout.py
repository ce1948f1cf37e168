"""Fan-out over hosts with a fake remote executor: concurrency, rolling batches,
max_failures, per-host results, events and the console."""

from __future__ import annotations

import io
import threading

import pytest

from engine.executors.base import Cancel, Invocation, NullSink
from engine.fleet.fanout import FanOut, FanOutResult, Policy
from engine.language.model import Target
from engine.run.console import Console
from engine.run.events import HostFinished, Stamp, StepOutput
from engine.testing import FakeRemote, ScriptedExecutor, run_text

HOSTS = [f"web-{i}" for i in range(1, 11)]


def fan(remote: FakeRemote, policy: Policy, hosts: list[str] = HOSTS, cancel: Cancel | None = None) -> FanOutResult:
    return FanOut(remote).execute(Invocation("step", "run", "uptime"), hosts, policy, NullSink(), cancel or Cancel())


def batches_of(log: list[tuple[str, str]]) -> list[set[str]]:
    """Hosts grouped by rolling batch: a batch ends when nothing is running any more."""
    out: list[set[str]] = [set()]
    running = 0
    for kind, host in log:
        if kind == "start":
            if running == 0 and out[-1]:
                out.append(set())
            out[-1].add(host)
            running += 1
        else:
            running -= 1
    return out


def test_every_host_runs_and_results_are_per_host() -> None:
    remote = FakeRemote({"web-3": {"exit_code": 2, "stderr": "boom"}, "web-4": "hello"})
    result = fan(remote, Policy())
    assert list(result.hosts) == HOSTS
    assert result.failed == ["web-3"] and len(result.succeeded) == 9
    assert result.hosts["web-3"].view() == {"status": "failed", "exit_code": 2, "stdout": "", "stderr": "boom",
                                            "duration": 0.0, "error": "exit code 2"}
    assert result.hosts["web-4"].view()["stdout"] == "hello"
    assert not result.ok and result.error() == "1 of 10 host(s) failed: web-3: exit code 2"


def test_parallel_limits_how_many_hosts_run_at_once() -> None:
    remote = FakeRemote(delay=0.03)
    assert fan(remote, Policy(parallel=3)).ok
    assert remote.max_running == 3


def test_serial_runs_rolling_batches() -> None:
    """`serial: 3` on 10 hosts: batches of 3, 3, 3, 1, each after the previous one ended."""
    remote = FakeRemote(delay=0.01)
    assert fan(remote, Policy(parallel=10, serial=3)).ok
    assert batches_of(remote.log) == [set(HOSTS[0:3]), set(HOSTS[3:6]), set(HOSTS[6:9]), {HOSTS[9]}]


def test_serial_percent_rounds_down_but_never_below_one() -> None:
    assert [len(b) for b in Policy(serial="25%").batches(HOSTS)] == [2, 2, 2, 2, 2]
    assert [len(b) for b in Policy(serial="5%").batches(HOSTS)] == [1] * 10
    assert Policy(max_failures="25%").tolerated(10) == 2 and Policy().tolerated(10) == 0


def test_max_failures_stops_starting_hosts_and_fails_the_step() -> None:
    """max_failures 1: after the second failure no host starts; running ones finish."""
    script = {h: {"exit_code": 1} for h in HOSTS[:4]}
    remote = FakeRemote(script, delay=0.01)
    result = fan(remote, Policy(parallel=2, max_failures=1))
    statuses = [result.hosts[h].status for h in HOSTS]
    assert statuses[:2] == ["failed", "failed"]
    assert statuses.count("not_run") >= 6 and set(statuses[2:4]) <= {"failed", "not_run"}
    assert not result.ok and result.stopped
    assert "max_failures tolerates 1" in (result.error() or "") and "not started" in (result.error() or "")
    assert len(remote.calls) <= 4


def test_failures_within_max_failures_leave_the_step_ok() -> None:
    remote = FakeRemote({"web-2": 1, "web-7": {"host_status": "unreachable", "error": "connection refused"}})
    result = fan(remote, Policy(max_failures="20%"))
    assert result.ok and result.failed == ["web-2", "web-7"]
    assert result.hosts["web-7"].status == "unreachable"
    assert len(remote.calls) == 10


def test_without_max_failures_every_host_runs_but_the_step_fails() -> None:
    remote = FakeRemote({"web-1": 1}, delay=0.005)
    result = fan(remote, Policy(parallel=1))
    assert len(remote.calls) == 10 and not result.ok and not result.not_run


def test_serial_without_max_failures_stops_the_rollout_after_a_failed_batch() -> None:
    """A rolling change never moves on to the next batch after a failure."""
    remote = FakeRemote({"web-4": 1})
    result = fan(remote, Policy(serial=3))
    assert [h for h in HOSTS if result.hosts[h].status != "not_run"] == HOSTS[:6]
    assert result.not_run == HOSTS[6:]


def test_cancel_starts_no_new_host_and_aborts() -> None:
    cancel = Cancel()
    remote = FakeRemote(delay=5)
    threading.Timer(0.1, cancel.set).start()
    result = fan(remote, Policy(parallel=2), cancel=cancel)
    assert result.cancelled and not result.ok and result.error() == "interrupted"
    assert [result.hosts[h].status for h in HOSTS[:2]] == ["aborted", "aborted"]
    assert result.not_run == HOSTS[2:]


def test_an_executor_bug_fails_the_host_not_the_run() -> None:
    class Broken:
        def run(self, invocation: Invocation, sink: object, cancel: Cancel) -> object:
            raise RuntimeError("oops")

    result = FanOut(Broken()).execute(Invocation("s", "run", "x"), ["a"], Policy(), NullSink(), Cancel())  # type: ignore[arg-type]
    assert result.hosts["a"].status == "failed" and "internal error: RuntimeError: oops" in (result.error() or "")


def test_the_step_overrides_the_target_policy() -> None:
    target = Target("web", hosts=("a",), parallel=4, serial=2, max_failures=1)

    class Step:
        parallel, serial, max_failures = 8, None, "10%"

    assert Policy.of(Step(), target) == Policy(8, 2, "10%")  # type: ignore[arg-type]
    assert Policy.of(None, None) == Policy(10, None, None)


# -- through the runner ----------------------------------------------------------------------

RUNBOOK = """\
kind: runbook
version: 1
id: fleet
title: Fleet
inputs:
  token: {type: string, secret: true, default: hunter2-token}
defaults: {timeout: 30s}
targets:
  web: {hosts: [web-1, web-2, web-3], parallel: 2}
  one: {hosts: [web-1]}
detection:
  - id: versions
    target: web
    run: cat /etc/version
    outputs:
      web2: "{{ hosts['web-2'].stdout | trim }}"
  - id: single
    target: one
    run: echo 41
    outputs: {next: "{{ stdout | int + 1 }}"}
  - id: report
    run: echo {{ steps.versions.hosts['web-3'].exit_code }} {{ steps.single.outputs.next }}
"""


def test_per_host_results_reach_templates_events_and_the_journal() -> None:
    remote = FakeRemote({"web-1:versions": "1.0\n", "web-2:versions": "1.1\n", "web-3:versions": "1.0\n",
                         "single": "41\n"})
    result, recorder = run_text(RUNBOOK, remote=FanOut(remote), executor=ScriptedExecutor({"report": "done"}))
    assert result.outcome == "resolved"
    versions = result.steps["versions"]
    assert versions.outputs == {"web2": "1.1"}
    assert set(versions.hosts) == {"web-1", "web-2", "web-3"}
    assert versions.hosts["web-2"]["status"] == "ok" and versions.hosts["web-2"]["stdout"] == "1.1\n"
    assert result.steps["single"].stdout == "41\n" and result.steps["single"].outputs == {"next": 42}
    assert [getattr(e, "command", "") for e in recorder.named("step.started")][-1] == "echo 0 42"
    finished = [e for e in recorder.named("host.finished") if isinstance(e, HostFinished)]
    assert sorted((e.step, e.host, e.status) for e in finished if e.step == "versions") == [
        ("versions", "web-1", "ok"), ("versions", "web-2", "ok"), ("versions", "web-3", "ok")]
    assert finished[2].done == 3 and finished[2].total == 3
    outputs = [e for e in recorder.named("step.output") if isinstance(e, StepOutput) and e.step == "versions"]
    assert {e.host for e in outputs} == {"web-1", "web-2", "web-3"}


def test_host_output_and_errors_are_masked() -> None:
    """A secret printed by a host, or in its error, never reaches an observer."""
    remote = FakeRemote({"web-2": {"stdout": "token=hunter2-token", "exit_code": 1},
                         "web-3": {"host_status": "auth_failed", "error": "rejected hunter2-token"}})
    result, recorder = run_text(RUNBOOK, remote=FanOut(remote))
    assert result.outcome == "failed"
    seen = repr([e.record() for e, _ in recorder.events])
    assert "hunter2-token" not in seen and "***" in seen


def test_a_failed_host_fails_the_step_with_every_host_recorded() -> None:
    remote = FakeRemote({"web-2": {"host_status": "unreachable", "error": "connection refused"}})
    result, recorder = run_text(RUNBOOK, remote=FanOut(remote))
    assert result.outcome == "failed" and result.failed_step == "versions"
    assert "web-2: connection refused" in result.reason
    finished = recorder.named("step.finished")[0]
    assert finished.hosts["web-2"]["status"] == "unreachable"  # type: ignore[attr-defined]


def test_without_a_remote_executor_a_target_step_fails_clearly() -> None:
    result, _ = run_text(RUNBOOK)
    assert result.outcome == "failed" and "remote execution is not available" in result.reason


@pytest.mark.parametrize("unicode", [True, False])
def test_console_shows_progress_failures_and_a_host_table(unicode: bool) -> None:
    out = io.StringIO()
    console = Console(out, unicode=unicode)
    remote = FakeRemote({"web-2": {"exit_code": 3}})
    run_text(RUNBOOK, remote=FanOut(remote), observers=[console])
    text = out.getvalue()
    assert "web-2 failed: exit code 3" in text
    dot = "·" if unicode else "|"
    assert f"[3/3] 2 ok {dot} 1 failed {dot} 0 running" in text
    table = text[text.index("host   status"):].splitlines()
    assert table[1].split()[:3] == ["web-2", "failed", "3"]  # failures first
    assert {line.split()[0] for line in table[2:4]} == {"web-1", "web-3"}


def test_console_progress_is_throttled_for_big_fleets() -> None:
    out = io.StringIO()
    console = Console(out, unicode=False)
    for done in range(1, 51):
        console.on_event(HostFinished("s", f"h{done}", "ok", 0, 0.1, None, done, 0, 50 - done, 50),
                         Stamp(done, 0.0, done * 0.01))
    lines = [line for line in out.getvalue().splitlines() if "ok | 0 failed" in line]
    assert [line.split()[0] for line in lines] == ["[1/50]", "[50/50]"]
