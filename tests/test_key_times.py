"""engine/run/key_times.py: a drill's key times folded from its events as they are
emitted are exactly what metrics.timings() folds from the journal's records."""

from __future__ import annotations

from pathlib import Path

import pytest
from simkit import load_pair
from support import python_calls

from engine.language.validation import load_runbook, load_scenario
from engine.run.bus import EventBus
from engine.run.clock import VirtualClock
from engine.run.events import StepFinished, StepStarted
from engine.run.key_times import KeyTimes
from engine.run.masking import Masker
from engine.run.metrics import timings
from engine.simulation._spread import TrialPlan
from engine.simulation.drill import DrillSetup, run_scenario

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_key_times_folded_as_emitted_equal_the_journal_fold(path: Path) -> None:
    scenario = load_scenario(str(path))
    runbook = load_runbook(scenario.runbook_path)
    for seed in (0, 1, 7):
        run = run_scenario(scenario, runbook, DrillSetup(seed=seed))
        assert run.records
        assert run.timings == timings(run.records), f"seed {seed}"


SECRET_ITEMS = """\
inputs:
  token: {type: string, secret: true, default: s3cr3t-value}
defaults: {timeout: 1h}
detection:
  - {id: probe, run: "probe {{ inputs.token }}", expect: exit_code == 0}
triage:
  - {id: assess, manual: What is it?, ask: {cause: {choices: [logs, data]}}}
remediation:
  - id: each
    for_each: [a, b, c]
    run: "fix {{ item }}"
  - {id: retried, run: flaky, retries: {attempts: 3, delay: 5s}}
recovery:
  - {id: verify, run: verify, expect: exit_code == 0}
"""
SCENARIO = """\
responses:
  - {step: probe, duration: 10s}
  - {step: each, duration: {min: 1s, max: 9s}}
  - step: retried
    attempts: [{exit_code: 1, duration: 2s}, {exit_code: 0, duration: 3s}]
  - {step: verify, duration: 5s}
participants:
  assess: {answers: {cause: logs}, after: {median: 1m, p90: 4m}}
objectives: {outcome: resolved, time_to_recover: 1h}
"""


def test_key_times_equal_with_secrets_items_retries_and_answers(tmp_path: Path) -> None:
    scenario, runbook = load_pair(tmp_path, SECRET_ITEMS, SCENARIO)
    for seed in range(5):
        run = run_scenario(scenario, runbook, DrillSetup(seed=seed))
        assert run.timings == timings(run.records)
        assert run.timings.retries == 1 and run.timings.answers and run.timings.steps["each"].attempts == 3


def test_a_trial_keeps_its_timings_and_score_not_its_records(tmp_path: Path) -> None:
    scenario, runbook = load_pair(tmp_path, SECRET_ITEMS, SCENARIO)
    trial = TrialPlan(scenario, runbook, 3, 1).run(0)
    lone = run_scenario(scenario, runbook, DrillSetup(seed=3, run_id=f"{scenario.id}-trial0"))
    assert trial.records == [] and lone.records
    assert trial.timings == lone.timings and trial.scorecard == lone.scorecard


def test_a_step_s_two_events_are_folded_with_one_collector_call_each() -> None:
    """step.started and step.finished go straight to Collector.started/finished (no
    Collector.at, no check of types the engine made), and the bus asks the masker for
    nothing when no secret is known: three of a simulated step's Python calls."""
    key_times = KeyTimes()
    bus = EventBus(VirtualClock(), [key_times], Masker())
    entered = python_calls(lambda: (bus.emit(StepStarted("s1", "detection", "run")),
                                bus.emit(StepFinished("s1", "detection", "run", "ok", 2.0))))
    assert [f for f in entered if f.split(":")[0] in ("metrics.py", "masking.py", "key_times.py")] == [
        "key_times.py:on_event", "metrics.py:started", "key_times.py:on_event", "metrics.py:finished"]
    timing = key_times.result().steps["s1"]
    assert (timing.phase, timing.status, timing.kind, timing.duration, timing.attempts) == (
        "detection", "ok", "run", 2.0, 1)
