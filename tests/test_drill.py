"""engine.simulation.drill and people: scripted participants, timings from the journal,
and the scorecard, checked against timings computed by hand from small scenarios."""

from __future__ import annotations

from pathlib import Path

import pytest
from simkit import drill, finished, load_pair, path_of, records

from engine.run.journal import read_journal
from engine.run.journal_writer import JournalWriter
from engine.run.metrics import timings
from engine.simulation.drill import DrillSetup, render_scorecard, run_scenario, score

# A runbook with every phase, a question, a role-gated approval, a retry and a poll.
RUNBOOK = """\
defaults: {timeout: 30m}
roles: [incident_commander, responder]
detection:
  - {id: probe, run: probe, expect: exit_code == 0}
triage:
  - {id: look, run: look}
  - id: assess
    role: responder
    manual: What is filling the disk?
    ask: {cause: {choices: [logs, data]}}
remediation:
  - id: compress
    when: steps.assess.answers.cause == 'logs'
    run: gzip big.log
    confirm: {message: Compress the logs?, role: incident_commander}
    retries: {attempts: 3, delay: 5s}
  - id: reboot
    when: steps.assess.answers.cause == 'data'
    run: reboot
    confirm: Reboot?
recovery:
  - {id: verify, run: verify, until: stdout == 'ok', every: 30s, timeout: 5m}
"""

# Hand-computed timeline (seconds from the alert):
#   probe    0 -> 20      (20 s)
#   look    20 -> 60      (40 s)
#   assess  60 -> 120     sam answers after 1 m           => acknowledged 120 (first human action)
#                                                           => triaged 120
#   compress 120 -> 305   dana approves after 2 m (240), attempt 1 fails after 10 s (250),
#                         retry delay 5 s (255), attempt 2 takes 50 s => mitigated 305
#   reboot   skipped
#   verify 305 -> 345     poll 1 takes 5 s (310, "wait"), every 30 s (340), poll 2 5 s => recovered 345
SCENARIO = """\
roles: {incident_commander: dana, responder: sam}
responses:
  - {step: probe, duration: 20s}
  - {step: look, duration: 40s}
  - step: compress
    attempts:
      - {exit_code: 1, stderr: "gzip: No space left on device", duration: 10s}
      - {exit_code: 0, duration: 50s}
  - step: verify
    attempts:
      - {stdout: wait, duration: 5s}
      - {stdout: ok, duration: 5s}
participants:
  assess: {answers: {cause: logs}, after: 1m, by: sam}
  compress: {approve: true, after: 2m, by: dana}
"""

OBJECTIVES = """\
objectives:
  outcome: resolved
  time_to_acknowledge: 2m
  time_to_triage: 1m59s
  time_to_mitigate: 6m
  time_to_recover: 5m
  must_run: [compress]
  must_not_run: [reboot]
  max_retries: 0
"""


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    return drill(tmp_path, RUNBOOK, SCENARIO + OBJECTIVES)


# -- timings -----------------------------------------------------------------------------------


def test_timings_match_the_hand_computed_timeline(run) -> None:  # type: ignore[no-untyped-def]
    t = run.timings
    assert (t.acknowledged, t.triaged, t.mitigated, t.recovered) == (120, 120, 305, 345)
    assert t.duration == 345 and t.outcome == "resolved"


def test_step_timings_hold_start_end_duration_attempts_and_time_waiting_on_people(run) -> None:  # type: ignore[no-untyped-def]
    steps = run.timings.steps
    got = {s: (steps[s].started, steps[s].finished, steps[s].duration, steps[s].attempts, steps[s].waited)
           for s in ("probe", "look", "assess", "compress", "verify")}
    assert got == {
        "probe": (0, 20, 20, 1, 0),
        "look": (20, 60, 40, 1, 0),
        "assess": (60, 120, 60, 1, 60),
        "compress": (120, 305, 185, 2, 120),
        "verify": (305, 345, 40, 1, 0),
    }
    assert steps["reboot"].status == "skipped" and not run.timings.ran("reboot")


def test_retries_and_polls_are_counted_apart(run) -> None:  # type: ignore[no-untyped-def]
    assert (run.timings.retries, run.timings.polls) == (1, 1)


def test_time_on_people_and_on_machines_add_up_to_the_steps_durations(run) -> None:  # type: ignore[no-untyped-def]
    t = run.timings
    assert t.human_time == 60 + 120
    assert t.machine_time == 20 + 40 + 0 + 65 + 40


def test_time_per_role_and_per_participant(run) -> None:  # type: ignore[no-untyped-def]
    t = run.timings
    roles = t.per_role()
    assert roles["responder"] == {"steps": 1, "time": 60.0, "responses": 1, "waited": 60.0}
    # dana approved compress as incident commander: the role owns no step, and is there.
    assert roles["incident_commander"] == {"steps": 0, "time": 0.0, "responses": 1, "waited": 120.0}
    assert roles["(automation)"]["steps"] == 5 and roles["(automation)"]["time"] == 20 + 40 + 185 + 40
    assert roles["(automation)"]["responses"] == 0
    assert t.per_participant() == {"sam": {"responses": 1, "waited": 60.0},
                                   "dana": {"responses": 1, "waited": 120.0}}


def test_answers_and_approvals_record_who_in_which_role(run) -> None:  # type: ignore[no-untyped-def]
    answered = records(run, "prompt.answered")[0]
    approval = records(run, "approval")[0]
    assert (answered["by"], answered["role"], answered["answers"], answered["waited"]) == (
        "sam", "responder", {"cause": "logs"}, 60)
    assert (approval["by"], approval["role"], approval["required_role"], approval["approved"]) == (
        "dana", "incident_commander", "incident_commander", True)


# -- the scorecard -----------------------------------------------------------------------------


def test_scorecard_checks_each_objective_with_its_margin(run) -> None:  # type: ignore[no-untyped-def]
    checks = {c.objective: (c.actual, c.met, c.note) for c in run.scorecard.checks}
    assert checks == {
        "outcome": ("resolved", True, ""),
        "time_to_acknowledge": ("2m", True, "0ms to spare"),
        "time_to_triage": ("2m", False, "missed by 1s"),
        "time_to_mitigate": ("5m5s", True, "55s to spare; remediation done; compress acted"),
        "time_to_recover": ("5m45s", False, "missed by 45s"),
        "must_run compress": ("ok", True, ""),
        "must_not_run reboot": ("not run", True, ""),
        "max_retries": ("1", False, ""),
    }
    assert not run.scorecard.passed
    assert [c.objective for c in run.scorecard.missed] == ["time_to_triage", "time_to_recover", "max_retries"]


def test_all_objectives_met_passes(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, SCENARIO + """\
        objectives:
          outcome: resolved
          time_to_triage: 2m
          time_to_recover: 5m45s
          max_retries: 1
        """.replace("        ", ""))
    assert run.scorecard.passed and run.scorecard.missed == []


def test_an_objective_never_reached_is_missed_as_never(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, SCENARIO.replace("{stdout: ok, duration: 5s}", "{stdout: wait, duration: 5s}")
                + "objectives: {time_to_recover: 1h, outcome: resolved}\n")
    checks = {c.objective: (c.actual, c.met, c.note) for c in run.scorecard.checks}
    assert checks["time_to_recover"] == ("never", False, "not reached")
    assert checks["outcome"] == ("failed", False, "")
    assert run.timings.mitigated == 305 and run.timings.recovered is None


def test_must_run_a_step_that_failed_or_did_not_run_is_missed(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, SCENARIO.replace("cause: logs", "cause: data")
                + "  reboot: {approve: true}\n"
                + "objectives: {must_run: [compress, reboot], must_not_run: [compress]}\n")
    checks = {c.objective: (c.actual, c.met) for c in run.scorecard.checks}
    assert checks["must_run compress"] == ("skipped", False)
    assert checks["must_run reboot"] == ("failed", False)  # no response for reboot: unscripted
    assert checks["must_not_run compress"] == ("not run", True)
    assert run.scorecard.unscripted == ["reboot"]


def test_running_a_step_that_must_not_run_is_a_wrong_turn(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, SCENARIO + "objectives: {must_not_run: [look]}\n")
    assert [(c.objective, c.actual, c.met) for c in run.scorecard.checks] == [("must_not_run look", "ran", False)]
    assert "ran look, which must not run" in run.scorecard.wrong_turns


def test_a_refused_approval_ends_the_drill_refused_and_is_a_wrong_turn(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, SCENARIO.replace("approve: true", "approve: false")
                + "objectives: {outcome: resolved}\n")
    assert run.result.outcome == "refused"
    assert [(c.objective, c.expected, c.actual, c.met) for c in run.scorecard.checks] == [
        ("outcome", "resolved", "refused", False)]
    assert finished(run, "compress")["status"] == "refused"
    assert "compress: approval refused (refused)" in run.scorecard.wrong_turns
    assert run.timings.triaged == 120 and run.timings.mitigated is None


def test_a_scenario_can_expect_a_refusal(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, SCENARIO.replace("approve: true", "approve: false")
                + "objectives: {outcome: refused}\n")
    assert [(c.objective, c.actual, c.met) for c in run.scorecard.checks] == [("outcome", "refused", True)]


def test_a_failed_step_is_a_wrong_turn(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, SCENARIO.replace("{exit_code: 0, duration: 50s}", "{exit_code: 1}"))
    assert run.result.outcome == "failed"
    assert "compress failed" in run.scorecard.wrong_turns


def test_an_unscripted_step_fails_the_scorecard_even_with_every_objective_met(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, SCENARIO.replace("  - {step: look, duration: 40s}\n", "")
                + "objectives: {must_run: [probe]}\n")
    assert all(c.met for c in run.scorecard.checks)
    assert run.scorecard.unscripted == ["look"] and not run.scorecard.passed


# -- mitigation means the fault was acted on -----------------------------------------------------

# A wrong turn: the trainee calls it `data`, the only remediation step that would act is
# skipped, a hand-over message goes out instead: the remediation phase ends "ok" having
# done nothing to the fault.
WRONG_TURN_RUNBOOK = """\
defaults: {timeout: 30m}
triage:
  - {id: assess, manual: What broke?, ask: {cause: {choices: [crash, config]}}}
remediation:
  - {id: restart, when: "steps.assess.answers.cause == 'crash'", run: systemctl restart app}
  - {id: hand_over, when: "steps.assess.answers.cause != 'crash'", notify: {channel: owners, message: yours}}
"""
WRONG_TURN_SCENARIO = """\
state: {healthy: false}
responses:
  - {step: restart, duration: 20s, set: {healthy: true}}
participants:
  assess: {answers: {cause: CAUSE}, after: 1m}
objectives: {time_to_mitigate: 10m}
"""


def test_a_wrong_turn_that_remediated_nothing_is_not_mitigated(tmp_path: Path) -> None:
    """The remediation phase ended without any step acting: "not mitigated" is a miss."""
    run = drill(tmp_path, WRONG_TURN_RUNBOOK, WRONG_TURN_SCENARIO.replace("CAUSE", "config"))
    assert finished(run, "restart")["status"] == "skipped" and run.result.outcome == "resolved"
    assert run.timings.mitigated is None
    check = next(c for c in run.scorecard.checks if c.objective == "time_to_mitigate")
    assert (check.actual, check.met) == ("never", False)
    assert check.note == "not mitigated: no remediation step acted and succeeded"


def test_without_mitigated_when_the_remediation_phase_end_counts_once_a_step_acted(tmp_path: Path) -> None:
    run = drill(tmp_path, WRONG_TURN_RUNBOOK, WRONG_TURN_SCENARIO.replace("CAUSE", "crash"))
    assert run.timings.mitigated == 80  # answered at 1m, restart took 20s
    check = next(c for c in run.scorecard.checks if c.objective == "time_to_mitigate")
    assert check.met and check.note == "8m40s to spare; remediation done; restart acted"


def test_mitigated_when_is_the_first_moment_the_world_condition_holds(tmp_path: Path) -> None:
    """The world decides: mitigated when the restart's reply made the service healthy,
    journaled as incident.mitigated with the step that did it."""
    body = WRONG_TURN_RUNBOOK + "  - {id: after, run: sleep}\n"
    scenario = WRONG_TURN_SCENARIO.replace("CAUSE", "crash").replace(
        "responses:\n", "responses:\n  - {step: after, duration: 5m}\n") + "mitigated_when: state.healthy\n"
    run = drill(tmp_path, body, scenario)
    assert records(run, "mitigation.watched")[0]["condition"] == "state.healthy"
    mitigated = records(run, "incident.mitigated")
    assert [(r["elapsed"], r["step"]) for r in mitigated] == [(80, "restart")]
    assert run.timings.mitigated == 80  # not the phase end at 6m20s
    check = next(c for c in run.scorecard.checks if c.objective == "time_to_mitigate")
    assert check.note == "8m40s to spare; `state.healthy` became true after restart"


def test_mitigated_when_that_never_holds_is_a_miss_even_when_steps_ran(tmp_path: Path) -> None:
    run = drill(tmp_path, WRONG_TURN_RUNBOOK,
                WRONG_TURN_SCENARIO.replace("CAUSE", "crash").replace("set: {healthy: true}", "set: {healthy: false}")
                + "mitigated_when: state.healthy\n")
    assert finished(run, "restart")["status"] == "ok" and run.timings.mitigated is None
    check = next(c for c in run.scorecard.checks if c.objective == "time_to_mitigate")
    assert not check.met and check.note == "not mitigated: `state.healthy` never held in the simulated world"


def test_an_injected_event_can_mitigate_and_is_named(tmp_path: Path) -> None:
    event = "events:\n  - {at: 30s, message: a peer fixed it, set: {healthy: true}}\n"
    run = drill(tmp_path, WRONG_TURN_RUNBOOK, WRONG_TURN_SCENARIO.replace("CAUSE", "config")
                + "mitigated_when: state.healthy\n" + event)
    assert run.timings.mitigated == 30
    assert run.timings.mitigated_by == "`state.healthy` became true at injected event 1"


def test_the_scorecard_can_be_recomputed_from_the_journal_file_alone(tmp_path: Path) -> None:
    scenario, runbook = load_pair(tmp_path, RUNBOOK, SCENARIO + OBJECTIVES)
    with JournalWriter(tmp_path / "run", fsync=False) as journal:
        live = run_scenario(scenario, runbook, DrillSetup(observers=[journal]))
    from_file = timings(read_journal(tmp_path / "run").records)
    again = score(scenario, from_file)
    assert [(c.objective, c.actual, c.met) for c in again.checks] == [
        (c.objective, c.actual, c.met) for c in live.scorecard.checks]
    assert (from_file.acknowledged, from_file.triaged, from_file.mitigated, from_file.recovered) == (
        120, 120, 305, 345)


def test_render_scorecard_shows_checks_retries_people_and_slowest_steps(run) -> None:  # type: ignore[no-untyped-def]
    text = render_scorecard(run.scorecard)
    assert text.startswith("Scorecard: Drill scenario (sc)\n  outcome: resolved\n")
    assert "  met    time_to_acknowledge: 2m (objective <= 2m)  (0ms to spare)\n" in text
    assert "  MISSED time_to_triage: 2m (objective <= 1m59s)  (missed by 1s)\n" in text
    assert "  retries: 1   polls: 1   hints used: 0\n" in text
    assert "  time waiting on people: 3m; on machines: 2m45s\n" in text
    assert "    sam: 1 response(s), waited 1m\n" in text
    assert "  slowest steps: compress 3m5s, assess 1m, look 40s, verify 40s, probe 20s\n" in text
    assert text.endswith("  FAILED: 3 objective(s) missed\n")


# -- people ------------------------------------------------------------------------------------


def test_a_participant_named_only_by_role_is_found_in_the_scenario_roles(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, SCENARIO.replace("{approve: true, after: 2m, by: dana}",
                                                    "{approve: true, after: 2m, role: incident_commander}"))
    approval = records(run, "approval")[0]
    assert (approval["by"], approval["role"], approval["approved"]) == ("dana", "incident_commander", True)


def test_a_step_role_is_taken_as_the_answering_role_when_the_participant_names_none(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, SCENARIO.replace("{answers: {cause: logs}, after: 1m, by: sam}",
                                                    "{answers: {cause: logs}, after: 1m}"))
    answered = records(run, "prompt.answered")[0]
    assert (answered["by"], answered["role"]) == ("sam", "responder")


def test_a_participant_asking_for_the_hint_is_recorded_and_counted(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, SCENARIO.replace("after: 1m, by: sam}", "after: 1m, by: sam, hint: true}")
                + "hints: {assess: Which directory grew in the last hour?}\n")
    hints = records(run, "hint.shown")
    assert [(h["step"], h["hint"], h["by"], h["elapsed"]) for h in hints] == [
        ("assess", "Which directory grew in the last hour?", "sam", 60)]
    assert len(run.timings.hints) == 1
    assert "hints used: 1" in render_scorecard(run.scorecard)
    assert run.timings.acknowledged == 60  # asking for a hint is the first human action


def test_a_missing_answer_fails_the_step_naming_the_field(tmp_path: Path) -> None:
    """Lint (RB207) warns ahead of time; at run time the step fails clearly."""
    run = drill(tmp_path, RUNBOOK.replace("ask: {cause: {choices: [logs, data]}}",
                                          "ask: {cause: {choices: [logs, data]}, size: {type: number}}"),
                SCENARIO, validate=False)
    assert finished(run, "assess")["error"] == "step assess: the scenario gives no answer for 'size'"


def test_a_scripted_answer_outside_the_choices_fails_the_step_not_the_drill(tmp_path: Path) -> None:
    """Lint (RB207) catches it ahead of time; at run time the step fails naming the field."""
    run = drill(tmp_path, RUNBOOK, SCENARIO.replace("cause: logs", "cause: network"), validate=False)
    assert finished(run, "assess")["error"] == (
        "step assess: the scenario's answer for 'cause' is not valid: answer one of: logs, data")
    assert run.result.outcome == "failed"


def test_a_default_fills_a_field_the_participant_does_not_answer(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK.replace("ask: {cause: {choices: [logs, data]}}",
                                          "ask: {cause: {choices: [logs, data]}, size: {type: number, default: 3}}"),
                SCENARIO)
    assert finished(run, "assess")["answers"] == {"cause": "logs", "size": 3}


def test_scripted_waits_of_people_are_sampled_from_their_distribution(tmp_path: Path) -> None:
    sc = SCENARIO.replace("after: 1m, by: sam", "after: {min: 10s, max: 50s}, by: sam")
    one = drill(tmp_path / "1", RUNBOOK, sc, seed=3)
    two = drill(tmp_path / "2", RUNBOOK, sc, seed=3)
    waited = records(one, "prompt.answered")[0]["waited"]
    assert 10 <= waited <= 50 and waited == records(two, "prompt.answered")[0]["waited"]


def test_without_an_acknowledge_entry_the_first_step_acknowledges_when_nobody_acts(tmp_path: Path) -> None:
    run = drill(tmp_path, "detection:\n  - {id: a, run: a, timeout: 1m}\n", "responses:\n  - {step: a, duration: 5s}\n")
    assert run.timings.acknowledged == 0


ACK = "  acknowledge: {after: 45s, by: sam}\n"


def test_an_acknowledge_participant_takes_the_page_after_its_delay(tmp_path: Path) -> None:
    """Everything after shifts by the 45 s it took to take the page (the reserved key validates)."""
    run = drill(tmp_path, RUNBOOK, SCENARIO + ACK)
    acked = records(run, "incident.acknowledged")
    assert [(a["elapsed"], a["by"], a["role"]) for a in acked] == [(45, "sam", "responder")]
    t = run.timings
    assert (t.acknowledged, t.triaged, t.mitigated, t.recovered) == (45, 165, 350, 390)


# -- the run itself ----------------------------------------------------------------------------


def test_a_drill_runs_in_test_mode_with_the_scenario_and_seed_in_the_run_id(run) -> None:  # type: ignore[no-untyped-def]
    started = records(run, "run.started")[0]
    assert (started["mode"], started["scenario"], started["run_id"]) == ("test", "sc", "sc-seed0")


def test_the_same_seed_gives_the_same_journal(tmp_path: Path) -> None:
    sc = SCENARIO.replace("after: 1m, by: sam", "after: {median: 1m, p90: 3m}, by: sam")
    one = drill(tmp_path / "1", RUNBOOK, sc, seed=5)
    two = drill(tmp_path / "2", RUNBOOK, sc, seed=5)
    other = drill(tmp_path / "3", RUNBOOK, sc, seed=6)

    def strip(recs: list[dict]) -> list[dict]:  # type: ignore[type-arg]
        return [{k: v for k, v in r.items() if k != "file"} for r in recs]

    assert strip(one.records) == strip(two.records)
    assert strip(one.records) != strip(other.records)


def test_secret_inputs_are_masked_in_the_drill_journal(tmp_path: Path) -> None:
    run = drill(tmp_path, """\
        defaults: {timeout: 1m}
        inputs: {token: {type: string, secret: true}}
        detection:
          - {id: call, run: "curl -H 'Authorization: {{ inputs.token }}' api"}
        """, """\
        inputs: {token: s3cr3t-drill-token}
        responses:
          - {step: call, stdout: "echo {{ inputs.token }}"}
        """)
    text = repr(run.records)
    assert "s3cr3t-drill-token" not in text
    assert finished(run, "call")["stdout"] == "echo ***"
    assert path_of(run.records) == [("call", "ok")]


def test_timings_of_damaged_records_are_computed_without_a_crash() -> None:
    """A hand-edited or damaged journal still gives timings: odd values count as nothing."""
    records = [
        {"event": "run.started", "elapsed": "x", "incident": ["not", "a", "mapping"]},
        {"event": "step.started", "step": "a", "elapsed": None, "role": {"odd": 1}},
        {"event": "prompt.answered", "step": "a", "waited": {"nested": 1}, "by": ["x"], "elapsed": float("nan")},
        {"event": "step.finished", "step": "a", "status": "ok", "duration": [1], "attempts": "three", "elapsed": 5},
        {"event": "run.finished", "outcome": "resolved", "duration": True},
    ]
    t = timings(records)
    assert t.steps["a"].duration == 0 and t.steps["a"].attempts == 0 and t.steps["a"].waited == 0
    assert t.priority is None and t.duration == 0 and t.outcome == "resolved"
    assert t.per_role() == {"{'odd': 1}": {"steps": 1, "time": 0.0, "responses": 0, "waited": 0.0},
                            "(no role)": {"steps": 0, "time": 0.0, "responses": 1, "waited": 0.0}}
    assert t.per_participant() == {"['x']": {"responses": 1, "waited": 0.0}}
