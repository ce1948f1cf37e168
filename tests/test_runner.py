"""engine.run.runner (with engine.run._step): the execution loop on a virtual clock, with the
scripted executor of engine.testing. No process is started here; tests/integration
runs the same loop with real commands."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from engine.executors.base import Invocation, Result
from engine.executors.notify import Channel, Notifier
from engine.executors.prompts import ApprovalReply, ApprovalRequest, Participant, ScriptedPrompter
from engine.run.events import (
    Approval,
    PriorityChanged,
    RunFinished,
    StepAttempt,
    StepFinished,
    StepOutput,
    StepStarted,
)
from engine.run.runner import RunResult
from engine.run.services import Services
from engine.testing import Recorder, ScriptedExecutor, run_text


def runbook(body: str, *, head: str = "") -> str:
    """A runbook around `body` (phases and steps, dedented)."""
    return ("kind: runbook\nversion: 1\nid: unit\ntitle: Unit runbook\ndefaults: {timeout: 30s}\n"
            + textwrap.dedent(head) + textwrap.dedent(body))


def finished(events: Recorder) -> dict[str, StepFinished]:
    """step.finished by step id (the last one wins)."""
    return {e.step: e for e in events.named("step.finished") if isinstance(e, StepFinished)}


def order(events: Recorder) -> list[str]:
    """Ids of the steps that started, in order (rollbacks included)."""
    return [e.step for e in events.named("step.started") if isinstance(e, StepStarted)]


def run_finished(events: Recorder) -> RunFinished:
    [event] = events.named("run.finished")
    assert isinstance(event, RunFinished)
    return event


def elapsed_of(events: Recorder, name: str, step: str) -> list[float]:
    return [stamp.elapsed for e, stamp in events.events if e.name == name and getattr(e, "step", None) == step]


# -- phases, when, expect ------------------------------------------------------------------------

PHASES = """\
recovery:
  - {id: r1, run: echo r1}
remediation:
  - {id: m1, run: echo m1}
triage:
  - {id: t1, run: echo t1}
detection:
  - {id: d1, run: echo d1}
  - {id: d2, run: echo d2}
"""


def test_phases_run_in_order_whatever_the_order_in_the_file() -> None:
    result, events = run_text(runbook(PHASES), executor=ScriptedExecutor({"echo *": "x"}))
    assert result.outcome == "resolved"
    assert order(events) == ["d1", "d2", "t1", "m1", "r1"]
    phases = [e.phase for e in events.named("phase.started")]  # type: ignore[attr-defined]
    assert phases == ["detection", "triage", "remediation", "recovery"]


def test_the_journaled_events_of_a_run_start_and_end_with_the_run() -> None:
    _, events = run_text(runbook(PHASES), executor=ScriptedExecutor({"echo *": "x"}))
    names = events.names()
    assert names[0] == "run.started" and names[-1] == "run.finished"
    assert names.count("step.started") == names.count("step.finished") == 5


def test_a_false_when_skips_the_step_and_a_true_one_runs_it() -> None:
    text = runbook("""\
        detection:
          - {id: probe, run: echo 3, outputs: {n: "{{ stdout | int }}"}}
          - {id: big, run: echo big, when: "steps.probe.outputs.n > 5"}
          - {id: small, run: echo small, when: "steps.probe.outputs.n <= 5"}
        """)
    executor = ScriptedExecutor({"probe": "3\n", "echo *": "ok"})
    result, events = run_text(text, executor=executor)
    steps = finished(events)
    assert result.outcome == "resolved"
    assert steps["big"].status == "skipped" and steps["big"].reason == "when was false"
    assert steps["small"].status == "ok"
    assert [c.step for c in executor.calls] == ["probe", "small"]


def test_a_skipped_step_is_seen_as_skipped_by_later_templates() -> None:
    text = runbook("""\
        detection:
          - {id: never, run: echo no, when: "false"}
          - {id: after, run: "echo {{ steps.never.status }}"}
        """)
    executor = ScriptedExecutor({"*": "ok"})
    run_text(text, executor=executor)
    assert executor.calls[-1].command == "echo skipped"


def test_expect_true_passes_and_false_fails_outside_detection() -> None:
    text = runbook("""\
        remediation:
          - {id: check, run: echo 7, outputs: {n: "{{ stdout | int }}"}, expect: "outputs.n == 8"}
        """)
    result, events = run_text(text, executor=ScriptedExecutor({"check": "7"}))
    assert result.outcome == "failed" and result.failed_step == "check"
    assert finished(events)["check"].error == "expect `outputs.n == 8` was false"


def test_not_confirmed_in_detection_ends_the_run_without_rollbacks() -> None:
    text = runbook("""\
        detection:
          - id: prepare
            run: echo prep
            rollback: [{id: undo_prepare, run: echo undo}]
          - {id: usage, run: echo 40, outputs: {pct: "{{ stdout | int }}"}, expect: "outputs.pct >= 90"}
          - {id: later, run: echo later}
        """)
    executor = ScriptedExecutor({"usage": "40", "*": "ok"})
    result, events = run_text(text, executor=executor)
    assert result.outcome == "not_confirmed"
    assert finished(events)["usage"].status == "not_confirmed"
    assert "undo_prepare" not in order(events) and "later" not in order(events)
    assert events.named("rollback.started") == []
    assert run_finished(events).outcome == "not_confirmed"


def test_an_expect_false_in_detection_is_not_retried() -> None:
    text = runbook("""\
        detection:
          - {id: usage, run: echo 40, expect: "stdout | int >= 90", retries: {attempts: 3, delay: 1s}}
        """)
    executor = ScriptedExecutor({"usage": "40"})
    result, _ = run_text(text, executor=executor)
    assert result.outcome == "not_confirmed" and len(executor.calls) == 1


# -- retries, polling, timeouts --------------------------------------------------------------------


def test_retries_wait_delay_then_multiply_it_by_backoff() -> None:
    text = runbook("""\
        remediation:
          - {id: flaky, run: do-it, retries: {attempts: 4, delay: 5s, backoff: 2}}
        """)
    executor = ScriptedExecutor({"flaky": [1, 1, 1, "done"]})
    result, events = run_text(text, executor=executor)
    assert result.outcome == "resolved"
    assert len(executor.calls) == 4
    waits = [e.next_in for e in events.named("step.attempt") if isinstance(e, StepAttempt)]
    assert waits == [5.0, 10.0, 20.0]
    step = finished(events)["flaky"]
    assert step.attempts == 4 and step.duration == pytest.approx(35.0)


def test_retries_respect_max_delay_and_give_up_after_the_last_attempt() -> None:
    text = runbook("""\
        remediation:
          - {id: flaky, run: do-it, retries: {attempts: 3, delay: 10s, backoff: 3, max_delay: 15s}}
        """)
    executor = ScriptedExecutor({"flaky": 2})
    result, events = run_text(text, executor=executor)
    assert result.outcome == "failed"
    assert [e.next_in for e in events.named("step.attempt")] == [10.0, 15.0]  # type: ignore[attr-defined]
    assert finished(events)["flaky"].attempts == 3
    assert finished(events)["flaky"].error == "exit code 2"


def test_a_retried_attempt_starts_after_its_delay_on_the_clock() -> None:
    text = runbook("""\
        remediation:
          - {id: flaky, run: do-it, retries: {attempts: 2, delay: 30s}}
        """)
    starts: list[float] = []

    def reply(inv: Invocation) -> Result:
        starts.append(executor.clock.monotonic())  # run_text gives the executor its clock
        ok = len(starts) == 2
        return Result(inv.command, None, "", "", 0 if ok else 1, 0.0, 0.0, ok, None if ok else "exit code 1")

    executor = ScriptedExecutor({"flaky": reply})
    result, _ = run_text(text, executor=executor)
    assert result.outcome == "resolved"
    assert starts[1] - starts[0] == pytest.approx(30.0)


def test_until_polls_every_interval_until_true() -> None:
    text = runbook("""\
        recovery:
          - {id: verify, run: check, until: "stdout | int < 90", every: 10s, timeout: 5m}
        """)
    executor = ScriptedExecutor({"verify": ["97", "95", "80"]})
    result, events = run_text(text, executor=executor)
    assert result.outcome == "resolved"
    assert len(executor.calls) == 3
    polls = [e for e in events.named("step.attempt") if isinstance(e, StepAttempt)]
    assert [p.polling for p in polls] == [True, True] and {p.next_in for p in polls} == {10.0}
    assert finished(events)["verify"].duration == pytest.approx(20.0)


def test_until_gives_up_at_its_timeout_with_the_number_of_polls() -> None:
    text = runbook("""\
        recovery:
          - {id: verify, run: check, until: "stdout | int < 90", every: 10s, timeout: 1m}
        """)
    executor = ScriptedExecutor({"verify": "97"})
    result, events = run_text(text, executor=executor)
    assert result.outcome == "failed"
    assert len(executor.calls) == 7  # t = 0, 10, ... 60
    step = finished(events)["verify"]
    assert step.error == "until `stdout | int < 90` was still false after 7 poll(s) in 1m"
    assert step.duration == pytest.approx(60.0)


def test_each_poll_gets_the_time_left_as_its_timeout() -> None:
    text = runbook("""\
        recovery:
          - {id: verify, run: check, until: "stdout == 'ok'", every: 20s, timeout: 1m}
        """)
    executor = ScriptedExecutor({"verify": ["no", "no", "ok"]})
    run_text(text, executor=executor)
    assert [c.timeout for c in executor.calls] == pytest.approx([60.0, 40.0, 20.0])


def test_the_step_timeout_reaches_the_executor() -> None:
    text = runbook("""\
        remediation:
          - {id: quick, run: x, timeout: 7s}
          - {id: default, run: y}
        """)
    executor = ScriptedExecutor({"*": "ok"})
    run_text(text, executor=executor)
    assert [c.timeout for c in executor.calls] == [7.0, 30.0]


def test_the_run_timeout_caps_every_step_and_ends_a_long_poll() -> None:
    text = runbook("""\
        timeout: 1m
        remediation:
          - {id: slow, run: x, timeout: 10m}
        recovery:
          - {id: verify, run: check, until: "stdout == 'ok'", every: 10s, timeout: 10m}
        """)
    executor = ScriptedExecutor({"slow": {"stdout": "done", "duration": 30}, "verify": "no"})
    result, _ = run_text(text, executor=executor)
    assert executor.calls[0].timeout == pytest.approx(60.0)
    assert result.outcome == "failed" and result.failed_step == "verify"
    assert result.duration <= 60.0 + 1e-6


# -- failures, continue_on_error, rollbacks --------------------------------------------------------

ROLLBACKS = """\
remediation:
  - id: one
    run: echo one
    rollback: [{id: undo_one, run: echo undo one}]
  - id: two
    run: echo two
    rollback:
      - {id: undo_two_a, run: echo undo two a}
      - {id: undo_two_b, run: echo undo two b}
  - id: skipped
    run: echo skipped
    when: "false"
    rollback: [{id: undo_skipped, run: echo undo skipped}]
  - id: three
    run: echo three
    rollback: [{id: undo_three, run: echo undo three}]
  - id: never
    run: echo never
    rollback: [{id: undo_never, run: echo undo never}]
"""


def test_on_failure_rollbacks_of_completed_steps_run_in_reverse_order() -> None:
    executor = ScriptedExecutor({"three": {"exit_code": 1, "stderr": "boom"}, "*": "ok"})
    result, events = run_text(runbook(ROLLBACKS), executor=executor)
    assert result.outcome == "failed" and result.failed_step == "three"
    started = order(events)
    assert started[started.index("three") + 1:] == ["undo_two_a", "undo_two_b", "undo_one"]
    rollback = events.named("rollback.started")[0]
    assert rollback.steps == ["two", "one"]  # type: ignore[attr-defined]
    assert events.named("rollback.finished")[0].status == "ok"  # type: ignore[attr-defined]


def test_rollbacks_belong_to_their_step_and_run_only_if_it_ran() -> None:
    executor = ScriptedExecutor({"three": 1, "*": "ok"})
    _, events = run_text(runbook(ROLLBACKS), executor=executor)
    started = order(events)
    assert "undo_skipped" not in started  # skipped by `when`
    assert "undo_three" not in started    # the failed step did not complete
    assert "undo_never" not in started    # never reached


def test_rollback_steps_are_journaled_with_the_step_they_undo() -> None:
    executor = ScriptedExecutor({"three": 1, "*": "ok"})
    _, events = run_text(runbook(ROLLBACKS), executor=executor)
    undo = {e.step: e.rollback_of for e in events.named("step.finished")  # type: ignore[attr-defined]
            if e.rollback_of}  # type: ignore[attr-defined]
    assert undo == {"undo_two_a": "two", "undo_two_b": "two", "undo_one": "one"}


def test_a_failing_rollback_makes_the_rollback_failed_but_the_others_still_run() -> None:
    executor = ScriptedExecutor({"three": 1, "undo_two_a": 1, "*": "ok"})
    result, events = run_text(runbook(ROLLBACKS), executor=executor)
    assert result.outcome == "failed"
    assert "undo_one" in order(events)
    assert events.named("rollback.finished")[0].status == "failed"  # type: ignore[attr-defined]


def test_a_resolved_run_runs_no_rollback() -> None:
    _, events = run_text(runbook(ROLLBACKS), executor=ScriptedExecutor({"*": "ok"}))
    assert events.named("rollback.started") == []


def test_continue_on_error_records_the_failure_and_goes_on() -> None:
    text = runbook("""\
        triage:
          - {id: optional, run: collect, continue_on_error: true}
          - {id: next, run: "echo {{ steps.optional.status }} {{ steps.optional.exit_code }}"}
        """)
    executor = ScriptedExecutor({"optional": 3, "*": "ok"})
    result, events = run_text(text, executor=executor)
    assert result.outcome == "resolved"
    assert finished(events)["optional"].status == "failed"
    assert executor.calls[-1].command == "echo failed 3"


def test_exit_codes_lists_the_codes_that_count_as_success() -> None:
    text = runbook("""\
        triage:
          - {id: active, run: systemctl is-active x, exit_codes: [0, 3]}
          - {id: strict, run: false-ish}
        """)
    executor = ScriptedExecutor({"active": 3, "strict": 3})
    result, events = run_text(text, executor=executor)
    steps = finished(events)
    assert steps["active"].status == "ok" and steps["active"].exit_code == 3
    assert steps["strict"].status == "failed" and result.failed_step == "strict"
    assert executor.calls[0].exit_codes == (0, 3)


def test_a_failed_run_names_the_step_and_its_error_in_run_finished() -> None:
    text = runbook("""\
        remediation:
          - {id: broken, run: nosuch}
        """)
    executor = ScriptedExecutor({"broken": {"exit_code": 127, "stderr": "nosuch: not found"}})
    result, events = run_text(text, executor=executor)
    end = run_finished(events)
    assert (end.outcome, end.failed_step, end.error) == ("failed", "broken", "exit code 127")
    assert finished(events)["broken"].stderr == "nosuch: not found"
    assert result.reason == "exit code 127"


def test_a_template_error_at_run_time_fails_the_step_naming_file_and_line() -> None:
    text = runbook("""\
        remediation:
          - {id: probe, run: echo x}
          - {id: use, run: "echo {{ steps.probe.outputs.missing }}"}
        """)
    result, events = run_text(text, executor=ScriptedExecutor({"*": "ok"}), file="rb.yaml")
    assert result.outcome == "failed" and result.failed_step == "use"
    error = finished(events)["use"].error or ""
    assert error.startswith("rb.yaml:8:") and "missing" in error


# -- confirm, roles ----------------------------------------------------------------------------------

CONFIRM = """\
roles: [incident_commander, responder]
remediation:
  - id: prepare
    run: echo prepare
    rollback: [{id: undo_prepare, run: echo undo}]
  - id: restart
    run: systemctl restart app
    confirm: "Restart app on {{ runbook.id }}?"
"""


def test_an_approved_confirm_runs_the_step_and_journals_the_approval() -> None:
    executor = ScriptedExecutor({"*": "ok"})
    result, events = run_text(runbook(CONFIRM), executor=executor, yes=True)
    assert result.outcome == "resolved"
    [approval] = events.named("approval")
    assert isinstance(approval, Approval)
    assert approval.approved and approval.message == "Restart app on unit?"
    assert executor.calls[-1].command == "systemctl restart app"


def test_a_refused_confirm_ends_the_run_refused_naming_who_and_why_and_rolls_back() -> None:
    """A refusal is a decision, not an interruption: its own outcome, not `aborted`."""
    executor = ScriptedExecutor({"*": "ok"})

    class Refuser(ScriptedPrompter):
        def approve(self, request: ApprovalRequest) -> ApprovalReply:
            return ApprovalReply(False, "bob", "incident_commander", 0.0, "too risky")

    result, events = _run_with_prompter(runbook(CONFIRM), executor, Refuser())
    assert result.outcome == "refused" and result.failed_step == "restart"
    assert result.reason == "approval refused by bob (incident_commander): too risky"
    assert "systemctl restart app" not in [c.command for c in executor.calls]
    assert finished(events)["restart"].status == "refused"
    assert "undo_prepare" in order(events)
    [end] = events.named("run.finished")
    assert (end.outcome, end.failed_step) == ("refused", "restart")  # type: ignore[attr-defined]


def test_a_refusal_inside_an_included_runbook_ends_the_run_refused(tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text(runbook(CONFIRM).replace("id: unit", "id: child"))
    text = runbook("remediation:\n  - {id: inner, include: child.yaml}\n")

    class Refuser(ScriptedPrompter):
        def approve(self, request: ApprovalRequest) -> ApprovalReply:
            return ApprovalReply(False, "bob")

    result, events = _run_with_prompter(text, ScriptedExecutor({"*": "ok"}), Refuser(), file=str(tmp_path / "p.yaml"))
    assert result.outcome == "refused" and result.failed_step == "inner"
    assert finished(events)["inner/restart"].status == "refused"
    assert finished(events)["inner"].status == "refused"


def test_a_confirm_with_no_one_to_answer_fails_naming_the_flag() -> None:
    result, events = run_text(runbook(CONFIRM), executor=ScriptedExecutor({"*": "ok"}), yes=False)
    assert result.outcome == "failed"
    assert "--yes" in (finished(events)["restart"].error or "")


def test_a_role_restricted_approval_is_refused_for_the_wrong_role() -> None:
    text = runbook(CONFIRM.replace('confirm: "Restart app on {{ runbook.id }}?"',
                                   "confirm: {message: Restart?, role: incident_commander}"))
    executor = ScriptedExecutor({"*": "ok"})
    result, events = run_text(text, executor=executor, participants=[Participant("bob", "responder")])
    assert result.outcome == "refused"
    [approval] = events.named("approval")
    assert isinstance(approval, Approval)
    assert not approval.approved and approval.required_role == "incident_commander"
    assert "incident_commander" in approval.message
    assert "systemctl restart app" not in [c.command for c in executor.calls]


def test_a_role_restricted_approval_is_granted_to_that_role_and_names_who() -> None:
    text = runbook(CONFIRM.replace('confirm: "Restart app on {{ runbook.id }}?"',
                                   "confirm: {message: Restart?, role: incident_commander}"))
    people = [Participant("bob", "responder"), Participant("alice", "incident_commander")]
    result, events = run_text(text, executor=ScriptedExecutor({"*": "ok"}), participants=people)
    assert result.outcome == "resolved"
    [approval] = events.named("approval")
    assert (approval.by, approval.role) == ("alice", "incident_commander")  # type: ignore[attr-defined]


def _run_with_prompter(text: str, executor: ScriptedExecutor, prompter: Any,
                       file: str = "runbook.yaml") -> tuple[RunResult, Recorder]:
    """run_text with a custom prompter (run_text builds a ScriptedPrompter itself)."""
    from engine.language.builder import build_runbook
    from engine.language.loader import load_text
    from engine.language.validation import load_runbook
    from engine.run.bus import EventBus
    from engine.run.clock import VirtualClock
    from engine.run.inputs import resolve
    from engine.run.runner import Runner

    book = build_runbook(load_text(text, file))
    clock = VirtualClock()
    executor.clock = clock
    recorder = Recorder()
    services = Services(local=executor, http=executor, prompter=prompter,
                        notifier=Notifier(console=lambda _: None), load_runbook=load_runbook)
    runner = Runner(book, resolve(book, environ={}).values, services=services,
                    bus=EventBus(clock, [recorder]), clock=clock, run_id="test")
    return runner.run(), recorder


# -- manual steps ------------------------------------------------------------------------------------


def test_manual_answers_are_typed_and_visible_to_later_steps() -> None:
    text = runbook("""\
        triage:
          - id: assess
            manual: What fills the disk?
            ask:
              cause: {choices: [logs, data]}
              size: {type: number}
          - {id: act, run: "echo {{ steps.assess.answers.cause }} {{ steps.assess.answers.size + 1 }}"}
        """)
    executor = ScriptedExecutor({"*": "ok"})
    result, events = run_text(text, executor=executor, answers={"assess": {"cause": "logs", "size": "41"}})
    assert result.outcome == "resolved"
    assert finished(events)["assess"].answers == {"cause": "logs", "size": 41}
    assert executor.calls[-1].command == "echo logs 42"


def test_an_unanswered_question_fails_naming_the_answer_flag() -> None:
    text = runbook("""\
        triage:
          - {id: assess, manual: Look., ask: {cause: {choices: [logs, data]}}}
        """)
    result, events = run_text(text)
    assert result.outcome == "failed"
    assert "--answer assess.cause=VALUE" in (finished(events)["assess"].error or "")


# -- for_each, outputs, set, vars, incident ---------------------------------------------------------


def test_for_each_runs_once_per_item_with_item_and_per_item_results() -> None:
    text = runbook("""\
        remediation:
          - {id: pods, run: list, outputs: {names: "{{ stdout.split() }}"}}
          - {id: restart, run: "kubectl delete pod {{ item }}", for_each: "steps.pods.outputs.names"}
        """)
    executor = ScriptedExecutor({"pods": "a b c", "kubectl delete pod b": 1, "kubectl *": "deleted"})
    result, events = run_text(text, executor=executor)
    commands = [c.command for c in executor.calls[1:]]
    assert commands == ["kubectl delete pod a", "kubectl delete pod b"]  # stops at the failed item
    step = finished(events)["restart"]
    assert step.status == "failed" and "item 1 ('b')" in (step.error or "")
    assert [(i["index"], i["item"], i["status"]) for i in step.items] == [(0, "a", "ok"), (1, "b", "failed")]
    assert result.outcome == "failed"


def item_lines(events: Recorder, step: str) -> list[str]:
    return [e.text for e in events.named("step.output") if isinstance(e, StepOutput) and e.step == step
            and e.stream == "info"]


def test_a_for_each_step_whose_items_are_all_skipped_says_skipped_and_no_count() -> None:
    """No "3 of 3 item(s) done" before "skipped": nothing was done."""
    text = runbook("""\
        remediation:
          - {id: each, run: "echo {{ item }}", for_each: [x, y, z], when: "item == 'none'"}
        """)
    _, events = run_text(text)
    assert finished(events)["each"].status == "skipped"
    assert item_lines(events, "each") == []


def test_a_for_each_count_tells_done_skipped_and_failed_items_apart() -> None:
    text = runbook("""\
        remediation:
          - {id: each, run: "echo {{ item }}", for_each: [x, y, z], when: "item != 'x'"}
        """)
    _, events = run_text(text, executor=ScriptedExecutor({"echo z": 1, "*": "ok"}))
    assert item_lines(events, "each") == ["1 of 3 item(s) done, 1 skipped (when was false), 1 failed"]


def test_for_each_over_a_literal_list_exposes_items_to_later_steps() -> None:
    text = runbook("""\
        remediation:
          - {id: each, run: "echo {{ item }}", for_each: [x, y]}
          - {id: after, run: "echo {{ steps.each.items | map(attribute='stdout') | join(',') }}"}
        """)
    executor = ScriptedExecutor({"echo x": "X", "echo y": "Y", "*": "ok"})
    result, _ = run_text(text, executor=executor)
    assert result.outcome == "resolved"
    assert executor.calls[-1].command == "echo X,Y"


def test_a_single_expression_output_keeps_its_type() -> None:
    text = runbook("""\
        detection:
          - id: probe
            run: probe
            outputs:
              pct: "{{ stdout | int }}"
              ratio: "{{ stdout | float / 100 }}"
              doc: "{{ stdout | from_json }}"
              text: "pct={{ stdout | int }}"
            expect: "outputs.pct + 1 == 43"
        """)
    result, events = run_text(text, executor=ScriptedExecutor({"probe": "42"}))
    assert result.outcome == "resolved"
    assert finished(events)["probe"].outputs == {"pct": 42, "ratio": 0.42, "doc": 42, "text": "pct=42"}


def test_set_assigns_vars_with_their_types_for_later_steps() -> None:
    text = runbook("""\
        vars: {limit: 3}
        triage:
          - {id: probe, run: probe, outputs: {n: "{{ stdout | int }}"}}
          - {id: remember, set: {count: "{{ steps.probe.outputs.n * 2 }}", label: "n={{ vars.limit }}"}}
          - {id: use, run: "echo {{ vars.count + vars.limit }} {{ vars.label }}"}
        """)
    executor = ScriptedExecutor({"probe": "5", "*": "ok"})
    result, events = run_text(text, executor=executor)
    assert result.outcome == "resolved"
    assert executor.calls[-1].command == "echo 13 n=3"
    assert finished(events)["remember"].vars == {"limit": 3, "count": 10, "label": "n=3"}


def test_setting_impact_and_urgency_gives_a_priority_and_an_event() -> None:
    text = runbook("""\
        triage:
          - {id: rate, set: {incident.impact: high, incident.urgency: medium}}
          - {id: page, run: "echo {{ incident.priority }}"}
        """)
    executor = ScriptedExecutor({"*": "ok"})
    _, events = run_text(text, executor=executor)
    changes = [e for e in events.named("priority.changed") if isinstance(e, PriorityChanged)]
    assert changes[-1].priority == "P2" and changes[-1].step == "rate"
    assert (changes[-1].impact, changes[-1].urgency) == ("high", "medium")
    assert executor.calls[-1].command == "echo P2"


def test_an_answer_with_sets_changes_the_priority() -> None:
    text = runbook("""\
        severity: {matrix: default, impact: low, urgency: low}
        triage:
          - id: rate
            manual: How bad?
            ask: {impact: {choices: [low, medium, high], sets: incident.impact}}
        """)
    _, events = run_text(text, answers={"rate": {"impact": "high"}})
    change = events.named("priority.changed")[-1]
    assert (change.previous, change.priority) == ("P5", "P3")  # type: ignore[attr-defined]


# -- include ---------------------------------------------------------------------------------------------


def test_include_runs_the_sub_runbook_with_its_inputs(tmp_path: Path) -> None:
    child = tmp_path / "child.yaml"
    child.write_text(runbook("""\
        inputs: {who: {type: string}, times: {type: integer}}
        remediation:
          - {id: greet, run: "echo hello {{ inputs.who }} {{ inputs.times * 2 }}"}
        """).replace("id: unit", "id: child"), encoding="utf-8")
    parent = runbook("""\
        inputs: {name: {type: string, default: db-1}}
        remediation:
          - {id: sub, include: {runbook: child.yaml, inputs: {who: "{{ inputs.name }}", times: 2}}}
          - {id: after, run: "echo {{ steps.sub.outputs.outcome }}"}
        """)
    executor = ScriptedExecutor({"*": "ok"})
    result, events = _run_with_loader(parent, tmp_path, executor)
    assert result.outcome == "resolved"
    assert [c.command for c in executor.calls] == ["echo hello db-1 4", "echo resolved"]
    assert "sub/greet" in order(events)
    assert [e.name for e in events.named("run.finished")] == ["run.finished"]  # one run, not two


def test_a_failing_include_fails_the_parent_step(tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text(runbook("""\
        remediation:
          - {id: broken, run: nope}
        """).replace("id: unit", "id: child"), encoding="utf-8")
    parent = runbook("""\
        remediation:
          - {id: sub, include: child.yaml}
        """)
    result, events = _run_with_loader(parent, tmp_path, ScriptedExecutor({"nope": 1}))
    assert result.outcome == "failed" and result.failed_step == "sub"
    assert "included runbook child ended failed" in (finished(events)["sub"].error or "")


def _run_with_loader(text: str, folder: Path, executor: ScriptedExecutor) -> tuple[RunResult, Recorder]:
    """Run `text` as parent.yaml in `folder`, built without lint: validate refuses a bad include
    (RB119, RB131-RB133), so these runs are the ones where the included file changed after
    the parent was checked. Included runbooks are loaded (and validated) as in a live run."""
    from engine.language.builder import build_runbook
    from engine.language.loader import load_file
    from engine.language.validation import load_runbook
    from engine.run.bus import EventBus
    from engine.run.clock import VirtualClock
    from engine.run.inputs import resolve
    from engine.run.runner import Runner

    path = folder / "parent.yaml"
    path.write_text(text, encoding="utf-8")
    book = build_runbook(load_file(path))
    clock = VirtualClock()
    executor.clock = clock
    recorder = Recorder()
    services = Services(local=executor, http=executor, prompter=ScriptedPrompter(yes=True),
                        notifier=Notifier(console=lambda _: None), load_runbook=load_runbook)
    runner = Runner(book, resolve(book, environ={}).values, services=services,
                    bus=EventBus(clock, [recorder]), clock=clock, run_id="test")
    return runner.run(), recorder


# -- wait, notify, http, secrets -------------------------------------------------------------------------


def test_a_wait_step_advances_the_clock_by_its_duration() -> None:
    text = runbook("""\
        recovery:
          - {id: settle, wait: 2m}
        """)
    result, events = run_text(text)
    assert result.duration == pytest.approx(120.0)
    assert finished(events)["settle"].duration == pytest.approx(120.0)


def test_notify_renders_the_message_and_journals_it(tmp_path: Path) -> None:
    text = runbook("""\
        remediation:
          - {id: tell, notify: {channel: status, message: "{{ runbook.title }} in {{ run.phase }}"}}
        """)
    log = tmp_path / "status.log"
    notifier = Notifier({"status": Channel("status", "file", path=str(log))}, console=lambda _: None)
    result, events = run_text(text, notifier=notifier)
    assert result.outcome == "resolved"
    sent = events.named("notify.sent")[0]
    assert (sent.channel, sent.message, sent.ok) == ("status", "Unit runbook in remediation", True)  # type: ignore
    assert "Unit runbook in remediation" in log.read_text()


@pytest.mark.parametrize("required", [False, True])
def test_a_failed_delivery_is_reported_and_fails_the_step_only_when_required(required: bool) -> None:
    text = runbook(f"""\
        remediation:
          - {{id: tell, notify: {{channel: status, message: hi, required: {str(required).lower()}}}}}
          - {{id: after, run: next}}
        """)
    notifier = Notifier({"status": Channel("status", "file", path="/nonexistent/dir/x.log")},
                        console=lambda _: None)
    result, events = run_text(text, notifier=notifier, executor=ScriptedExecutor({"*": "ok"}))
    [sent] = events.named("notify.sent")
    assert not sent.ok and "channel 'status'" in (sent.error or "")  # type: ignore[attr-defined]
    assert result.outcome == ("failed" if required else "resolved")
    assert finished(events)["tell"].status == ("failed" if required else "ok")


def test_a_channel_the_config_does_not_name_fails_the_step_even_when_not_required() -> None:
    text = runbook("""\
        remediation:
          - {id: tell, notify: {channel: stauts, message: hi}}
        """)
    notifier = Notifier({"status": Channel("status", "stdout")}, console=lambda _: None)
    result, events = run_text(text, notifier=notifier)
    assert result.outcome == "failed"
    assert "channel 'stauts' is not in" in (finished(events)["tell"].error or "")
    assert "did you mean 'status'?" in (finished(events)["tell"].error or "")


def test_an_http_step_sends_a_json_body_and_reads_the_json_answer() -> None:
    text = runbook("""\
        inputs: {queue: {type: string, default: jobs}}
        triage:
          - id: depth
            http: {url: "http://api.local/q/{{ inputs.queue }}", method: POST, body: {name: "{{ inputs.queue }}"}}
            outputs: {ready: "{{ json.messages_ready }}"}
        """)
    http = ScriptedExecutor({"depth": {"status": 200, "body": '{"messages_ready": 12}'}})
    result, events = run_text(text, http=http)
    assert result.outcome == "resolved"
    [call] = http.calls
    assert call.http is not None and call.http.url == "http://api.local/q/jobs"
    assert call.http.body == b'{"name": "jobs"}'
    assert finished(events)["depth"].outputs == {"ready": 12}


def test_an_http_status_outside_the_accepted_codes_fails_the_step() -> None:
    text = runbook("""\
        triage:
          - {id: health, http: {url: "http://svc.local/health", status: [200, 204]}}
        """)
    result, events = run_text(text, http=ScriptedExecutor({"health": {"status": 503, "body": "down"}}))
    assert result.outcome == "failed"
    assert finished(events)["health"].error == "HTTP status 503"


def test_a_secret_input_is_masked_in_every_event() -> None:
    text = runbook("""\
        inputs: {token: {type: string, secret: true}}
        remediation:
          - {id: call, run: "curl -H 'auth: {{ inputs.token | raw }}' x", outputs: {echo: "{{ stdout }}"}}
        """)
    executor = ScriptedExecutor({"call": "got hunter2-secret back"})
    _, events = run_text(text, executor=executor, inputs={"token": "hunter2-secret"})
    assert "hunter2-secret" in executor.calls[0].command  # the command itself gets the value
    for event, _ in events.events:
        assert "hunter2-secret" not in repr(event.record())
    assert finished(events)["call"].outputs == {"echo": "got *** back"}


def test_a_scripted_step_slower_than_its_timeout_times_out() -> None:
    text = runbook("""\
        remediation:
          - {id: slow, run: x, timeout: 10s}
        """)
    result, events = run_text(text, executor=ScriptedExecutor({"slow": {"stdout": "late", "duration": 60}}))
    assert result.outcome == "failed"
    assert finished(events)["slow"].error == "timed out after 10s"
    assert result.duration == pytest.approx(10.0)


def test_an_include_with_bad_inputs_fails_the_step_not_the_engine(tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text(runbook("""\
        inputs: {who: {type: string}}
        remediation:
          - {id: greet, run: "echo {{ inputs.who }}"}
        """).replace("id: unit", "id: child"), encoding="utf-8")
    parent = runbook("""\
        remediation:
          - id: prepare
            run: echo prepare
            rollback: [{id: undo_prepare, run: echo undo}]
          - {id: sub, include: {runbook: child.yaml, inputs: {whom: x}}}
        """)
    result, events = _run_with_loader(parent, tmp_path, ScriptedExecutor({"*": "ok"}))
    assert result.outcome == "failed" and result.failed_step == "sub"
    error = finished(events)["sub"].error or ""
    assert "missing input 'who'" in error and "no input 'whom'" in error
    assert "undo_prepare" in order(events)


def test_an_include_of_an_invalid_runbook_fails_the_step(tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text("kind: runbook\nversion: 1\nid: Bad\n", encoding="utf-8")
    parent = runbook("""\
        remediation:
          - {id: sub, include: child.yaml}
        """)
    result, events = _run_with_loader(parent, tmp_path, ScriptedExecutor({"*": "ok"}))
    assert result.outcome == "failed" and result.failed_step == "sub"
    assert "child.yaml" in (finished(events)["sub"].error or "")


def test_a_secret_cut_by_an_output_tail_leaves_no_fragment() -> None:
    """Tails are cut after masking: a cut through the secret must not leave its end behind."""
    text = runbook("""\
        inputs: {token: {type: string, secret: true}}
        remediation:
          - {id: call, run: "use {{ inputs.token }}", retries: {attempts: 2, delay: 1s}}
        """)
    secret = "SECRETVALUE-X9Q7"
    noisy = {"stdout": secret + "y" * 1020, "stderr": secret + "z" * 4090, "exit_code": 1}
    _, events = run_text(text, executor=ScriptedExecutor({"call": noisy}), inputs={"token": secret})
    assert events.named("step.attempt") and events.named("step.finished")
    for event, _ in events.events:
        assert "X9Q7" not in repr(event.record())


def test_raw_applies_to_the_use_that_says_it_not_to_the_value_kept() -> None:
    """`| raw` in a `set:`, an output or a for_each item does not make later uses unquoted:
    each use is quoted unless it says `raw` itself, as after a resume (the journal keeps text)."""
    text = runbook("""\
        inputs: {x: {type: string}}
        triage:
          - {id: remember, set: {y: "{{ inputs.x | raw }}"}}
          - {id: probe, run: probe, outputs: {o: "{{ inputs.x | raw }}"}}
          - {id: each, for_each: "[inputs.x | raw]", run: "each {{ item }}"}
          - {id: use, run: "echo {{ vars.y }} {{ steps.probe.outputs.o }} {{ vars.y | raw }}"}
        """)
    executor = ScriptedExecutor({"*": "ok"})
    result, _ = run_text(text, inputs={"x": "a; b"}, executor=executor)
    assert result.outcome == "resolved"
    assert [c.command for c in executor.calls[-2:]] == ["each 'a; b'", "echo 'a; b' 'a; b' a; b"]


@pytest.mark.parametrize(("follow", "old", "new", "decision"), [
    ("same-origin", "http://a:8080/x", "http://a:8080/y", "follow"),
    ("same-origin", "http://a/x", "https://a/y", "follow"),           # an upgrade on the same host
    ("same-origin", "http://a:8080/x", "http://a:8081/y", "stop"),    # another port is another origin
    ("same-origin", "http://a/x", "http://b/y", "stop"),
    (True, "http://a/x", "http://b/y", "strip"),
    (True, "https://a/x", "http://a/y", "refuse"),                     # never to plain http
    ("same-origin", "https://a/x", "http://b/y", "refuse"),
    (False, "http://a/x", "http://a/y", "stop"),
])
def test_redirect_decisions(follow: Any, old: str, new: str, decision: str) -> None:
    from engine.executors.http import redirect_decision

    assert redirect_decision(follow, old, new) == decision


def test_a_duration_too_long_for_any_clock_ends_the_run_cleanly_naming_its_place(tmp_path: Path) -> None:
    """E8: a 400-digit timeout is a validate error (RB135); a runbook built without that check
    fails at the start with the place, instead of an OverflowError in the executor."""
    from engine.language.builder import build_runbook
    from engine.language.loader import load_text
    from engine.run.bus import EventBus
    from engine.run.clock import VirtualClock
    from engine.run.runner import Runner

    text = runbook(f"""\
        detection:
          - {{id: a, run: "true", timeout: {'9' * 400}s}}
        """)
    book = build_runbook(load_text(text, "huge.yaml"))
    executor = ScriptedExecutor({"*": "ok"})
    clock = VirtualClock()
    executor.clock = clock
    recorder = Recorder()
    services = Services(local=executor, http=executor, prompter=ScriptedPrompter(yes=True),
                        notifier=Notifier(console=lambda _: None))
    result = Runner(book, {}, services=services, bus=EventBus(clock, [recorder]), clock=clock, run_id="t").run()
    assert result.outcome == "failed"
    assert result.reason == "huge.yaml:7:35: duration is longer than the 30d maximum"
    assert recorder.named("run.finished") and not executor.calls


def test_a_command_without_a_template_builds_no_template_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain command renders as it is written: building the context (the run's inputs,
    vars, steps, incident) for it was a cost every such step paid."""
    from engine.run.state import RunState

    built: list[int] = []
    real = RunState.context
    monkeypatch.setattr(RunState, "context", lambda self, **current: built.append(1) or real(self, **current))
    _, events = run_text(runbook("remediation:\n  - {id: a, run: df}\n  - {id: b, run: uptime}\n"),
                         executor=ScriptedExecutor({"a": "", "b": ""}))
    assert order(events) == ["a", "b"] and built == []
    _, events = run_text(runbook("remediation:\n  - {id: a, run: 'echo {{ run.id }}'}\n"),
                         executor=ScriptedExecutor({"a": ""}))
    assert built and finished(events)["a"].status == "ok"
