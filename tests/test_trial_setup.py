"""What a trial of an estimate does before and after its steps: the same for every trial
of a plan, so done once per plan or not at all (issue 14, item 4). Each test pins one
piece of that work by what it calls; what the trials give back is pinned by
tests/test_trials.py and the journal byte tests."""

from __future__ import annotations

import os
import select
from pathlib import Path
from typing import Any

import pytest
from simkit import load_pair
from support import python_calls

from engine.executors.base import Cancel
from engine.language.validation import load_runbook
from engine.run.state import Incident, RunState
from engine.simulation.trials import run_trials

RUNBOOK = """\
defaults: {timeout: 1h}
detection:
  - {id: probe, run: probe}
triage:
  - {id: fix, run: fix}
"""
SCENARIO = """\
responses:
  - {step: probe, duration: {min: 1s, max: 5s}}
  - {step: fix, duration: 10s}
objectives: {outcome: resolved}
"""


def test_a_run_state_and_its_incident_are_made_without_their_own_setattr(tmp_path: Path) -> None:
    """RunState and Incident watch assignments (a change makes the next template context
    again); a call of that __setattr__ for each field as they were made cost a trial
    about 65k instructions. Made, they hold what the dataclass fields say; set, they
    still invalidate."""
    _, runbook = load_pair(tmp_path, RUNBOOK, SCENARIO)
    calls = python_calls(lambda: RunState(runbook, "r1", "test", {"a": 1}, 5.0, clock=lambda: 7.0))
    assert not [c for c in calls if c.endswith("__setattr__")]
    state = RunState(runbook, "r1", "test", {"a": 1}, 5.0)
    assert (state.phase, state.vars, state.steps, state.incident, state.shown_vars) == \
        ("detection", {}, {}, Incident(), {})
    assert not [c for c in python_calls(lambda: Incident("high", "low")) if c.endswith("__setattr__")]
    before = state.context()
    state.phase = "triage"
    assert before["run"]["phase"] == "detection" and state.context()["run"]["phase"] == "triage"


def test_a_runbook_without_updates_or_escalation_makes_no_supervisor(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The supervisor of `updates:` and `escalation:` was imported and made at every run,
    every trial, and then dropped when the runbook had neither."""
    from engine.run import incident

    made: list[object] = []
    real = incident.IncidentSupervisor.__init__

    def spy(self: Any, *args: Any) -> None:
        made.append(self)
        real(self, *args)

    monkeypatch.setattr(incident.IncidentSupervisor, "__init__", spy)
    scenario, runbook = load_pair(tmp_path, RUNBOOK, SCENARIO)
    assert run_trials(scenario, runbook, 3, jobs=1).outcomes == {"resolved": 3}
    assert made == []
    supervised = tmp_path / "supervised"
    supervised.mkdir()
    scenario, runbook = load_pair(supervised, "updates: {channel: ops}\n" + RUNBOOK, SCENARIO)
    assert run_trials(scenario, runbook, 3, jobs=1).outcomes == {"resolved": 3}
    assert len(made) == 3


def test_trials_make_no_pipe_for_a_cancel_nothing_waits_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's Cancel made its pipe as it was made (seven system calls with closing it);
    nothing in a drill waits on its fd, so a trial makes none."""
    scenario, runbook = load_pair(tmp_path, RUNBOOK, SCENARIO)
    pipes: list[tuple[int, int]] = []
    real = os.pipe
    monkeypatch.setattr(os, "pipe", lambda: pipes.append(real()) or pipes[-1])
    run_trials(scenario, runbook, 5, jobs=1)
    assert pipes == []


def test_a_cancel_s_pipe_is_made_when_its_fd_is_first_asked_for() -> None:
    """Set before the pipe exists, it is readable as soon as there is one; cleared, it
    is not; closed, it has no fd and makes none."""
    cancel = Cancel()
    cancel.set()
    fd = cancel.fileno()
    assert fd >= 0 and cancel.fileno() == fd
    assert select.select([fd], [], [], 0)[0] == [fd]
    cancel.clear()
    assert select.select([fd], [], [], 0)[0] == [] and not cancel.is_set()
    cancel.set()
    assert select.select([fd], [], [], 0)[0] == [fd]
    cancel.close()
    assert cancel.fileno() == -1
    never = Cancel()
    never.clear()
    never.close()
    never.set()
    assert never.fileno() == -1 and never.is_set()


def test_a_drill_s_host_resolver_reads_no_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$RUNBOOK_INVENTORY is never a drill's; reading os.environ for it (to throw the
    value away) was most of what making a trial's resolver cost."""
    from engine.fleet.hosts import Resolver
    from engine.simulation.drill import DrillHosts

    monkeypatch.setenv("RUNBOOK_INVENTORY", str(tmp_path / "inventory.yaml"))
    assert Resolver().path == str(tmp_path / "inventory.yaml")
    calls = python_calls(lambda: DrillHosts(None))
    assert DrillHosts(None).path is None
    assert calls == ["test_trial_setup.py:<lambda>", "drill.py:__init__", "hosts.py:__init__"]


def test_run_started_names_an_absolute_runbook_file_found_once(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The absolute path of a runbook whose file is absolute already is kept on the
    runbook; a relative one is made absolute from the working directory every time."""
    from engine.run.digest import runbook_file

    _, runbook = load_pair(tmp_path, RUNBOOK, SCENARIO)
    assert os.path.isabs(runbook.file)
    assert runbook_file(runbook) == os.path.abspath(runbook.file)
    assert not [c for c in python_calls(lambda: runbook_file(runbook)) if "posixpath" in c]
    monkeypatch.chdir(tmp_path)
    relative = load_runbook("rb.yaml")
    assert relative.file == "rb.yaml" and runbook_file(relative) == str(tmp_path / "rb.yaml")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert runbook_file(relative) == str(tmp_path / "elsewhere" / "rb.yaml")


def test_a_drill_s_hooks_leave_the_runner_once_they_have_done_their_work(tmp_path: Path) -> None:
    """Taking the page (before the first phase) and watching `mitigated_when` (at the
    start) are done once; the hooks stayed, and every step's end looked for their
    on_step_finished. The run still acknowledges and mitigates as before."""
    from simkit import drill, records

    runners: list[Any] = []
    run = drill(tmp_path, RUNBOOK, SCENARIO + "state: {up: false}\nmitigated_when: state.up == false\n"
                "participants:\n  acknowledge: {by: ann, after: 30s}\n", ready=lambda r, w: runners.append(r))
    assert runners[0].hooks == []
    assert [r["by"] for r in records(run, "incident.acknowledged")] == ["ann"]
    assert run.timings.acknowledged == 30.0 and run.timings.mitigated is not None


def test_a_drill_folds_its_phases_from_their_events_not_their_records(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The key times of a trial took each phase event's record (made for nothing else)
    and looked its handler up by name; they come from the event's fields now, and give
    what the journal's records give (tests/test_key_times.py compares the two folds)."""
    from engine.run.metrics import Collector

    folded: list[str] = []
    real = Collector.add
    monkeypatch.setattr(Collector, "add", lambda self, r: folded.append(r["event"]) or real(self, r))
    scenario, runbook = load_pair(tmp_path, RUNBOOK, SCENARIO)
    stats = run_trials(scenario, runbook, 2, jobs=1)
    assert stats.outcomes == {"resolved": 2} and len(stats.samples["triaged"]) == 2
    assert folded == ["run.started", "run.finished"] * 2


def test_a_run_state_remembers_its_context_past_its_own_setattr(tmp_path: Path) -> None:
    _, runbook = load_pair(tmp_path, RUNBOOK, SCENARIO)
    state = RunState(runbook, "r1", "test", {}, 0.0)
    state.phase = "triage"
    assert not [c for c in python_calls(state.context) if c.endswith("__setattr__")]
    assert state.context()["run"]["phase"] == "triage"


def test_a_trial_s_replies_pass_time_and_skip_the_sink_without_asking(tmp_path: Path) -> None:
    """A reply's duration goes straight to the clock (world.pass_time was a call of its
    own, and a fan-out's hosts went through a view of the world that forwarded every
    attribute); with nobody showing output (a trial), the sink is not asked whether it
    wants any. Simulated time and the step's output are as before."""
    from engine.simulation._spread import TrialPlan

    scenario, runbook = load_pair(tmp_path, RUNBOOK, SCENARIO.replace("duration: 10s", "duration: 10s, stdout: up"))
    plan = TrialPlan(scenario, runbook, 0, 1)
    plan.run(0)
    runs: list[Any] = []
    calls = python_calls(lambda: runs.append(plan.run(0)))
    assert not [c for c in calls if c in ("world.py:pass_time", "_output.py:wants_output", "world.py:__getattr__")]
    run = runs[0]
    assert run.result.steps["fix"].stdout == "up" and run.timings.steps["fix"].duration == 10.0


def test_a_trial_refuses_real_effects_and_finds_its_page_taker_without_calls_from_c(tmp_path: Path) -> None:
    """The audit guard around a trial's run was a `with` (its __enter__ and __exit__
    entered from C), and asking the world-reacting prompter for `acknowledge` went
    through its __getattr__; both are plain calls now. Real effects are still refused."""
    from engine.simulation import guard
    from engine.simulation._spread import TrialPlan

    scenario, runbook = load_pair(tmp_path, RUNBOOK, SCENARIO)
    plan = TrialPlan(scenario, runbook, 0, 1)
    calls = python_calls(lambda: plan.run(0))
    assert "guard.py:refuse" in calls and "guard.py:restore" in calls
    assert not [c for c in calls if c in ("guard.py:__enter__", "guard.py:__exit__", "people.py:__getattr__")]
    previous = guard.refuse()
    try:
        with pytest.raises(guard.RealEffectRefused):
            os.system("true")
    finally:
        guard.restore(previous)
    assert os.system("true") == 0


def test_a_simulated_sleep_with_no_timer_due_moves_time_on_in_one_call() -> None:
    """Every command of a trial sleeps its duration on the virtual clock; sleep() called
    advance_to() even when no timer fell due on the way (most sleeps). A timer that does
    still fires at its own time, and a sleep never goes back."""
    from engine.run.clock import VirtualClock

    clock = VirtualClock()
    assert python_calls(lambda: clock.sleep(5.0))[1:] == ["clock.py:sleep"]
    fired: list[float] = []
    clock.call_at(7.0, lambda: fired.append(clock.monotonic()))
    assert python_calls(lambda: clock.sleep(1.0))[1:] == ["clock.py:sleep"]
    clock.sleep(3.0)
    assert fired == [7.0] and clock.monotonic() == 9.0
    clock.sleep(-4.0)
    clock.sleep(float("nan"))
    assert clock.monotonic() == 9.0


def test_the_drill_guard_lets_other_audit_events_by_at_a_glance(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a drill has run, its audit hook hears every audit event of the process, and
    a trial raises about four a step (filling a frozen Result or Invocation assigns its
    class): such an event is let by on its first two letters, before the thread's state
    is read. The blocked ones are refused as before, prefixes included."""
    from engine.simulation import guard

    class State:
        reads = 0

        @property
        def active(self) -> bool:
            State.reads += 1
            return True

    monkeypatch.setattr(guard, "_state", State())
    monkeypatch.setattr(guard, "attempts", [])
    for event in ("object.__setattr__", "open", "builtins.id", "os.listdir", "socket.getaddrinfo"):
        guard._hook(event, ())
    assert State.reads == 0
    for event in ("subprocess.Popen", "os.exec", "os.forkpty", "socket.connect", "pty.spawn"):
        with pytest.raises(guard.RealEffectRefused, match=event.replace(".", r"\.")):
            guard._hook(event, ())
    assert State.reads == 5 and len(guard.attempts) == 5
