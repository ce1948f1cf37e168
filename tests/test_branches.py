"""A multi-way branch (`switch:`), a step that ends the run (`end:`) and what a refused
approval does (`on_refuse:`), issue 12 items 2 and 3: the run loop on a virtual clock,
the dry-run plan and a drill."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.executors.prompts import ApprovalReply, ApprovalRequest, ScriptedPrompter
from engine.language.model import case_matches
from engine.run.runner import RunResult
from engine.testing import Recorder, ScriptedExecutor, run_text
from tests.test_runner import _run_with_prompter, finished, order, run_finished, runbook

CAUSE = """\
inputs:
  team: {type: string, default: network}
triage:
  - id: cause
    manual: What is the cause?
    ask:
      cause: {choices: [tls, dns, network, false_alarm, other]}
remediation:
  - id: prepare
    run: echo prepare
    rollback:
      - {id: undo_prepare, run: echo undo}
  - id: by_cause
    switch: steps.cause.answers.cause
    cases:
      tls:
        - {id: renew, run: echo renew}
        - {id: reload, run: echo reload}
      dns:
        - {id: flush, run: echo flush}
      network:
        - id: hand_over
          end: {outcome: escalated, reason: "Handed over to the {{ inputs.team }} team"}
      false_alarm:
        - {id: no_fault, end: {outcome: not_confirmed, reason: False alarm}}
    default:
      - {id: unknown_cause, run: echo unknown}
  - {id: after, run: "echo after {{ steps.by_cause.outputs.case }}"}
"""


def _cause(answer: str) -> tuple[RunResult, Recorder, ScriptedExecutor]:
    executor = ScriptedExecutor({"echo *": "x"})
    result, events = run_text(runbook(CAUSE), executor=executor, answers={"cause": {"cause": answer}})
    return result, events, executor


def test_a_switch_runs_the_steps_of_the_case_its_value_picks() -> None:
    result, events, executor = _cause("tls")
    assert result.outcome == "resolved", result.reason
    assert order(events) == ["cause", "prepare", "by_cause", "renew", "reload", "after"]
    switch = finished(events)["by_cause"]
    assert (switch.status, switch.case, switch.outputs) == ("ok", "tls", {"case": "tls"})
    assert finished(events)["renew"].block == "by_cause"
    assert executor.calls[-1].command == "echo after tls"


def test_a_switch_runs_default_when_no_case_matches() -> None:
    _, events, _ = _cause("other")
    assert order(events)[-3:] == ["by_cause", "unknown_cause", "after"]
    assert finished(events)["by_cause"].case == "default"


@pytest.mark.parametrize(("key", "value", "matches"), [
    ("3", 3, True), (3, 3.0, True), ("true", True, True), (True, True, True), ("yes", True, False),
    ("tls", "tls", True), (1, "1", True), ("x", None, False), ("null", None, True), (True, "True", False),
])
def test_case_keys_are_compared_after_taking_the_value_s_type(key: object, value: object, matches: bool) -> None:
    assert case_matches(key, value) is matches


def test_an_end_step_ends_the_run_with_its_outcome_and_reason() -> None:
    result, events, _ = _cause("network")
    assert (result.outcome, result.reason) == ("escalated", "Handed over to the network team")
    assert result.failed_step == "hand_over"
    end = finished(events)["hand_over"]
    assert (end.status, end.outcome) == ("ok", "escalated")
    assert "after" not in order(events)
    assert "undo_prepare" not in order(events)  # escalated: nothing is undone
    assert run_finished(events).outcome == "escalated"


def test_an_end_step_that_fails_the_run_rolls_back_as_a_failure_does() -> None:
    text = runbook(CAUSE.replace("outcome: not_confirmed", "outcome: failed"))
    result, events = run_text(text, executor=ScriptedExecutor({"echo *": "x"}),
                              answers={"cause": {"cause": "false_alarm"}})
    assert (result.outcome, result.reason) == ("failed", "False alarm")
    assert order(events)[-1] == "undo_prepare"


REFUSE = """\
remediation:
  - id: restart
    run: echo restart
    confirm: {{message: Restart?, on_refuse: {on_refuse}}}
  - {{id: after, run: echo after}}
"""


class Refuser(ScriptedPrompter):
    def approve(self, request: ApprovalRequest) -> ApprovalReply:
        return ApprovalReply(False, "bob", None, 0.0, "not now")


def _refused(on_refuse: str) -> tuple[RunResult, Recorder, ScriptedExecutor]:
    executor = ScriptedExecutor({"echo *": "x"})
    result, events = _run_with_prompter(runbook(REFUSE.format(on_refuse=on_refuse)), executor, Refuser())
    return result, events, executor


def test_on_refuse_skip_skips_the_step_and_the_run_goes_on() -> None:
    result, events, executor = _refused("skip")
    assert result.outcome == "resolved"
    restart = finished(events)["restart"]
    assert restart.status == "skipped" and restart.reason == "approval refused by bob: not now"
    assert [c.command for c in executor.calls] == ["echo after"]


def test_on_refuse_end_ends_the_run_with_that_outcome() -> None:
    result, events, executor = _refused("{end: {outcome: not_confirmed, reason: 'IC says: not ours'}}")
    assert (result.outcome, result.reason) == ("not_confirmed", "IC says: not ours")
    assert finished(events)["restart"].status == "refused"
    assert executor.calls == []


def test_on_refuse_steps_run_instead_of_the_refused_step() -> None:
    result, events, executor = _refused("[{id: drain_instead, run: echo drain}]")
    assert result.outcome == "resolved"
    assert [c.command for c in executor.calls] == ["echo drain", "echo after"]
    assert finished(events)["drain_instead"].block == "restart"


def test_without_on_refuse_a_refusal_still_ends_the_run_refused() -> None:
    text = runbook(REFUSE.replace(", on_refuse: {on_refuse}", "").replace("{{", "{").replace("}}", "}"))
    result, _ = _run_with_prompter(text, ScriptedExecutor({"echo *": "x"}), Refuser())
    assert result.outcome == "refused"


def test_the_plan_shows_cases_endings_and_refusals() -> None:
    from engine.language.builder import build_runbook
    from engine.language.loader import load_text
    from engine.run.plan import build_plan, render_plan

    text = render_plan(build_plan(build_runbook(load_text(runbook(CAUSE), "c.yaml")), {"team": "network"}))
    assert "switch on steps.cause.answers.cause" in text
    assert "case network:" in text and "ends the run escalated: Handed over to the network team" in text
    refuse = build_runbook(load_text(runbook(REFUSE.format(on_refuse="skip")), "r.yaml"))
    assert "if refused: the step is skipped" in render_plan(build_plan(refuse, {}))


def test_a_drill_asserts_the_branch_taken(tmp_path: Path) -> None:
    from engine.simulation.suite import run_case

    (tmp_path / "cause.yaml").write_text(runbook(CAUSE))
    (tmp_path / "drill.yaml").write_text("""\
kind: scenario
version: 1
id: dns-cause
title: The cause is DNS
runbook: cause.yaml
participants:
  cause: {answers: {cause: dns}, after: 1m, by: ana, role: responder}
responses:
  - {step: prepare, stdout: ok}
  - {step: flush, stdout: flushed}
  - {step: after, stdout: ok}
objectives:
  outcome: resolved
  must_run: [flush]
  must_not_run: [renew, hand_over]
""")
    case = run_case(str(tmp_path / "drill.yaml"))
    assert case.passed, case.summary()


def test_running_a_library_runbook_directly_warns(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from engine.cli.commands import cli

    path = tmp_path / "lib.yaml"
    path.write_text(runbook("library: true\nremediation:\n  - {id: fix, run: echo fix}\n"))
    result = CliRunner().invoke(cli, ["run", "--dry-run", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "is a library runbook (`library: true`), meant to be included by others" in result.stderr


def test_the_graph_draws_cases_endings_refusals_and_blocks(tmp_path: Path) -> None:
    from engine.language.builder import build_runbook
    from engine.language.loader import load_text
    from engine.reporting.graph import build_graph, render_dot, render_mermaid
    from engine.reporting.graph_svg import render_svg
    from tests.test_blocks import ETCD

    flow = build_graph(build_runbook(load_text(runbook(CAUSE), "c.yaml")), loader=lambda _: None)
    text = render_mermaid(flow)
    assert 'n_by_cause -->|"case tls"| n_renew' in text
    assert 'n_by_cause -->|"default"| n_unknown_cause' in text
    assert 'n_hand_over -->|"ends the run"| n_end_escalated' in text
    assert 'subgraph n_by_cause__case_dns["by_cause: case dns"]' in text
    assert "n_renew --> n_reload" in text and "n_reload --> n_after" in text
    assert "n_hand_over --> n_after" not in text  # an end leads nowhere else
    refuse = build_graph(build_runbook(load_text(runbook(REFUSE.format(on_refuse="[{id: drain, run: echo d}]")),
                                                 "r.yaml")), loader=lambda _: None)
    assert 'n_restart -->|"refused"| n_drain' in render_mermaid(refuse)
    block = build_graph(build_runbook(load_text(runbook(ETCD), "e.yaml")), loader=lambda _: None)
    assert '["defrag_members: for each item"]' in render_mermaid(block)
    assert "n_defrag_members --> n_defrag" in render_mermaid(block)
    for f in (flow, refuse, block):
        assert "<svg" in render_svg(f) and "digraph" in render_dot(f)


def test_the_shipped_disk_full_runbook_hands_data_growth_over_and_ends_escalated(tmp_path: Path) -> None:
    """The default branch of its switch: the owners are told, the run ends escalated at once
    (it used to go on to wait 15 minutes for a usage nobody was lowering)."""
    import yaml

    from engine.simulation.suite import run_case
    from tests.support import ROOT

    data = yaml.safe_load((ROOT / "scenarios" / "disk-full-log-storm.yaml").read_text())
    data["id"], data["runbook"] = "disk-full-data-growth", str(ROOT / "runbooks" / "disk-full.yaml")
    data["participants"]["assess"]["answers"]["cause"] = "data_growth"
    data["objectives"] = {"outcome": "escalated", "must_run": ["assess", "hand_over", "handed_over"],
                          "must_not_run": ["compress_logs", "vacuum_journal", "restart_holder", "verify_usage"]}
    (tmp_path / "growth.yaml").write_text(yaml.safe_dump(data))
    case = run_case(str(tmp_path / "growth.yaml"))
    assert case.passed, case.summary()
    assert case.drill is not None and "Handed over to the owners of /var on db-1 (data_growth)" in \
        case.drill.timings.reason


@pytest.mark.parametrize(("ending", "fires"), [("end: {outcome: failed, reason: broken beyond repair}", True),
                                               ("end: {outcome: escalated, reason: handed over}", False)])
def test_on_failure_escalation_sees_an_end_step_that_fails_the_run(ending: str, fires: bool) -> None:
    text = runbook(f"escalation:\n  - {{on_failure: true, notify: oncall}}\nremediation:\n  - {{id: stop, {ending}}}\n")
    result, events = run_text(text)
    fired = events.named("escalation.fired")
    assert bool(fired) is fires
    if fires:
        assert "step stop ends the run failed: broken beyond repair" in fired[0].reason  # type: ignore[attr-defined]
    assert finished(events)["stop"].reason == result.reason


def test_on_failure_escalation_stays_quiet_when_on_refuse_ends_the_run_another_way() -> None:
    text = runbook("escalation:\n  - {on_failure: true, notify: oncall}\n"
                   + REFUSE.format(on_refuse="{end: {outcome: escalated, reason: theirs now}}"))
    _, events = _run_with_prompter(text, ScriptedExecutor({"echo *": "x"}), Refuser())
    assert events.named("escalation.fired") == []
