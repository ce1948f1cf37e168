"""engine.run.incident and engine.run.state's priority: the impact x urgency matrix, priority
changes journaled with who and why, escalation rules (time, unanswered prompts,
conditions, failures, hand-off), stakeholder updates, and the incident objectives of a
scenario. Drills run on the virtual clock, so every time here is exact."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from simkit import drill, finished, path_of, records

from engine.executors.notify import Delivery, Notifier
from engine.executors.prompts import Participant
from engine.language.model import DEFAULT_MATRIX
from engine.run.console import Console
from engine.run.state import priority_of
from engine.testing import ScriptedExecutor, run_text

HEAD = "kind: runbook\nversion: 1\nid: ic\ntitle: Incident runbook\ndefaults: {timeout: 30m}\n"

# -- the matrix --------------------------------------------------------------------------------


@pytest.mark.parametrize(("impact", "urgency", "priority"), [
    ("high", "high", "P1"), ("high", "medium", "P2"), ("high", "low", "P3"),
    ("medium", "high", "P2"), ("medium", "medium", "P3"), ("medium", "low", "P4"),
    ("low", "high", "P3"), ("low", "medium", "P4"), ("low", "low", "P5"),
])
def test_the_default_matrix_is_the_itil_3x3(impact: str, urgency: str, priority: str) -> None:
    assert DEFAULT_MATRIX[impact][urgency] == priority


class _Book:
    """Just enough of a runbook for priority_of."""

    def __init__(self, matrix: Mapping[str, Mapping[str, str]] | None = None) -> None:
        from engine.language.model import Severity

        self.severity = Severity(matrix) if matrix is not None else None


def test_priority_of_uses_the_default_matrix_without_a_severity_section() -> None:
    assert priority_of(_Book(), "high", "medium") == "P2"  # type: ignore[arg-type]


def test_priority_is_unknown_until_both_impact_and_urgency_are_known() -> None:
    book = _Book()
    assert priority_of(book, None, "high") is None  # type: ignore[arg-type]
    assert priority_of(book, "high", None) is None  # type: ignore[arg-type]


def test_an_impact_or_urgency_outside_the_matrix_gives_no_priority() -> None:
    book = _Book()
    assert priority_of(book, "critical", "high") is None  # type: ignore[arg-type]
    assert priority_of(book, "high", "whenever") is None  # type: ignore[arg-type]


def test_an_explicit_matrix_replaces_the_default() -> None:
    book = _Book({"sev1": {"now": "P1", "later": "P2"}, "sev2": {"now": "P3"}})
    assert priority_of(book, "sev1", "later") == "P2"  # type: ignore[arg-type]
    assert priority_of(book, "high", "high") is None  # type: ignore[arg-type]


# -- priority during a run ---------------------------------------------------------------------

ASSESS = HEAD + """\
roles: [incident_commander, responder]
severity: {matrix: default}
triage:
  - id: assess
    role: responder
    manual: How bad is it?
    ask:
      impact: {choices: [high, medium, low], sets: incident.impact}
      urgency: {choices: [high, medium, low], sets: incident.urgency}
      note: {type: text, sets: vars.note}
recovery:
  - {id: verify, run: verify, expect: "exit_code == 0 and incident.priority == 'P2' and vars.note == 'db'"}
"""


def test_an_ask_that_sets_impact_and_urgency_gives_the_priority_journaled_with_who_and_why() -> None:
    result, rec = run_text(ASSESS, executor=ScriptedExecutor({"verify": ""}),
                           answers={"assess": {"impact": "high", "urgency": "medium", "note": "db"}},
                           participants=[Participant("sam", "responder")])
    assert result.outcome == "resolved"
    changes = rec.named("priority.changed")
    assert len(changes) == 1
    e = changes[0]
    assert (e.impact, e.urgency, e.priority, e.previous) == ("high", "medium", "P2", None)  # type: ignore[attr-defined]
    assert (e.by, e.role, e.step, e.reason) == ("sam", "responder", "assess", "set by step assess")  # type: ignore[attr-defined]


def test_a_set_step_gives_the_priority_too() -> None:
    result, rec = run_text(HEAD + """\
        triage:
          - id: classify
            set: {incident.impact: "{{ 'high' if inputs.users > 1000 else 'low' }}", incident.urgency: high}
        recovery:
          - {id: verify, run: verify, expect: "incident.priority == 'P1'"}
        inputs: {users: {type: integer, default: 5000}}
        """.replace("        ", ""), executor=ScriptedExecutor({"verify": ""}))
    assert result.outcome == "resolved"
    e = rec.named("priority.changed")[0]
    assert (e.impact, e.urgency, e.priority, e.step, e.by) == ("high", "high", "P1", "classify", None)  # type: ignore[attr-defined]


def test_the_starting_impact_and_urgency_give_a_priority_from_the_first_record() -> None:
    _, rec = run_text(HEAD + "severity: {impact: medium, urgency: low}\n"
                      "detection:\n  - {id: a, run: a}\n", executor=ScriptedExecutor({"a": ""}))
    started = rec.named("run.started")[0]
    assert started.incident == {"impact": "medium", "urgency": "low", "priority": "P4"}  # type: ignore[attr-defined]


def test_a_later_change_records_the_previous_priority() -> None:
    _, rec = run_text(HEAD + """\
        severity: {impact: low, urgency: low}
        triage:
          - {id: worse, set: {incident.impact: high}}
        """.replace("        ", ""))
    e = rec.named("priority.changed")[0]
    assert (e.previous, e.priority) == ("P5", "P3")  # type: ignore[attr-defined]


def test_an_explicit_matrix_in_the_runbook_decides_the_priority() -> None:
    _, rec = run_text(HEAD + """\
        severity:
          matrix:
            customer_facing: {now: P1, soon: P2}
            internal: {now: P3, soon: P4}
        triage:
          - {id: classify, set: {incident.impact: internal, incident.urgency: soon}}
        """.replace("        ", ""))
    assert rec.named("priority.changed")[0].priority == "P4"  # type: ignore[attr-defined]


def test_the_console_header_shows_the_priority() -> None:
    out = io.StringIO()
    run_text(HEAD + "severity: {impact: high, urgency: high}\ndetection:\n  - {id: a, run: a}\n",
             executor=ScriptedExecutor({"a": ""}), observers=[Console(out)])
    assert "   priority: P1\n" in out.getvalue()
    assert out.getvalue().index("priority: P1") < out.getvalue().index("detection")


def test_the_console_shows_a_priority_change_with_who() -> None:
    out = io.StringIO()
    run_text(ASSESS, executor=ScriptedExecutor({"verify": ""}), observers=[Console(out)],
             answers={"assess": {"impact": "high", "urgency": "medium", "note": "db"}},
             participants=[Participant("sam", "responder")])
    assert "priority P2: impact high, urgency medium by sam" in out.getvalue()


# -- escalation --------------------------------------------------------------------------------

ESCALATING = """\
roles: [incident_commander, responder]
severity: {matrix: default}
escalation:
  - {after: 5m, unacknowledged: true, notify: oncall-secondary}
  - {when: "incident.priority == 'P1'", notify: managers}
detection:
  - {id: probe, run: probe}
triage:
  - id: assess
    manual: How bad?
    ask:
      impact: {choices: [high, medium, low], sets: incident.impact}
      urgency: {choices: [high, medium, low], sets: incident.urgency}
  - id: reassess
    manual: Still as bad?
    ask:
      impact: {choices: [high, medium, low], sets: incident.impact}
remediation:
  - {id: fix, run: fix, confirm: {message: Fix it?, role: incident_commander}}
recovery:
  - {id: verify, run: verify, expect: exit_code == 0}
"""

# probe 0 -> 1m; assess answered after 2m (3m): P1; reassess after 1m (4m), still high;
# fix waits for the IC's approval from 4m; unanswered at 9m => escalation; approved at 12m;
# fix takes 1m (13m); verify 30s (13m30s).
PEOPLE = """\
roles: {incident_commander: dana, responder: sam}
responses:
  - {step: probe, duration: 1m}
  - {step: fix, duration: 1m}
  - {step: verify, duration: 30s}
participants:
  assess: {answers: {impact: high, urgency: high}, after: 2m, by: sam}
  reassess: {answers: {impact: high}, after: 1m, by: sam}
  fix: {approve: true, after: 8m, by: dana}
"""


def test_an_unanswered_approval_escalates_on_the_virtual_clock(tmp_path: Path) -> None:
    run = drill(tmp_path, ESCALATING, PEOPLE)
    fired = records(run, "escalation.fired", channel="oncall-secondary")
    assert [(f["elapsed"], f["reason"], f["step"], f["rule"]) for f in fired] == [
        (540.0, "step fix has waited 5m without an answer", "fix", 0)]
    sent = records(run, "notify.sent", channel="oncall-secondary")
    assert [(s["elapsed"], s["purpose"], s["ok"]) for s in sent] == [(540.0, "escalation", True)]
    assert sent[0]["message"] == "Escalation for Drill runbook (P1): step fix has waited 5m without an answer"
    assert run.result.outcome == "resolved" and run.timings.recovered == 810


def test_a_page_nobody_takes_escalates_like_an_unanswered_prompt(tmp_path: Path) -> None:
    run = drill(tmp_path, ESCALATING, PEOPLE + "  acknowledge: {after: 12m, by: sam}\n")
    fired = records(run, "escalation.fired", channel="oncall-secondary")
    assert [(f["elapsed"], f["reason"], f["step"]) for f in fired] == [
        # the rule fires once: not again at fix
        (300.0, "step acknowledge has waited 5m without an answer", "acknowledge")]
    assert records(run, "incident.acknowledged")[0]["elapsed"] == 720


def test_an_approval_answered_in_time_does_not_escalate(tmp_path: Path) -> None:
    run = drill(tmp_path, ESCALATING, PEOPLE.replace("after: 8m, by: dana", "after: 4m59s, by: dana"))
    assert records(run, "escalation.fired", channel="oncall-secondary") == []


def test_an_unanswered_question_escalates_too(tmp_path: Path) -> None:
    run = drill(tmp_path, ESCALATING, PEOPLE.replace("after: 2m, by: sam", "after: 6m, by: sam"))
    fired = records(run, "escalation.fired", channel="oncall-secondary")
    assert [(f["elapsed"], f["step"]) for f in fired] == [(360.0, "assess")]  # 1m + 5m


def test_a_condition_rule_fires_once_when_it_becomes_true(tmp_path: Path) -> None:
    """P1 after assess (3m); reassess keeps it P1; the rule does not fire again."""
    run = drill(tmp_path, ESCALATING, PEOPLE)
    fired = records(run, "escalation.fired", channel="managers")
    assert [(f["elapsed"], f["reason"], f["step"]) for f in fired] == [
        (180.0, "the priority is P1", "assess")]
    assert len(records(run, "priority.changed")) == 2


def test_a_condition_that_never_becomes_true_never_fires(tmp_path: Path) -> None:
    run = drill(tmp_path, ESCALATING, PEOPLE.replace("{impact: high, urgency: high}", "{impact: low, urgency: high}")
                .replace("{impact: high}, after: 1m", "{impact: low}, after: 1m"))
    assert records(run, "escalation.fired", channel="managers") == []
    assert run.timings.priority == "P3"


def test_a_rule_after_a_time_fires_once_when_the_run_is_open_that_long(tmp_path: Path) -> None:
    run = drill(tmp_path, """\
        defaults: {timeout: 1h}
        escalation:
          - {after: 10m, notify: managers, message: "{{ runbook.title }} open for {{ escalation.reason }}"}
        detection:
          - {id: slow, run: slow}
          - {id: slower, run: slower}
        """, """\
        responses:
          - {step: slow, duration: 8m}
          - {step: slower, duration: 8m}
        """)
    fired = records(run, "escalation.fired")
    assert [(f["elapsed"], f["reason"]) for f in fired] == [(600.0, "the run has been open for 10m")]
    assert records(run, "notify.sent")[0]["message"] == "Drill runbook open for the run has been open for 10m"


def test_a_rule_after_a_time_does_not_fire_when_the_run_ends_sooner(tmp_path: Path) -> None:
    run = drill(tmp_path, """\
        defaults: {timeout: 1h}
        escalation:
          - {after: 10m, notify: managers}
        detection:
          - {id: quick, run: quick}
        """, "responses:\n  - {step: quick, duration: 9m}\n")
    assert records(run, "escalation.fired") == []


def test_a_rule_with_after_and_when_fires_once_the_run_is_open_that_long_and_the_condition_holds(
        tmp_path: Path) -> None:
    """`{after: 10m, when: P1}`: a P1 still open after 10 minutes."""
    run = drill(tmp_path, """\
        defaults: {timeout: 1h}
        severity: {matrix: default}
        escalation:
          - {after: 10m, when: "incident.priority == 'P1'", notify: directors}
        triage:
          - {id: classify, set: {incident.impact: high, incident.urgency: high}}
        remediation:
          - {id: fix, run: fix}
        """, "responses:\n  - {step: fix, duration: 15m}\n")
    fired = records(run, "escalation.fired")
    assert [(f["elapsed"], f["channel"]) for f in fired] == [(600.0, "directors")]


def test_a_rule_with_after_and_when_waits_for_the_condition_after_the_time(tmp_path: Path) -> None:
    run = drill(tmp_path, """\
        defaults: {timeout: 1h}
        severity: {matrix: default}
        escalation:
          - {after: 10m, when: "incident.priority == 'P1'", notify: directors}
        triage:
          - {id: slow, run: slow}
          - {id: classify, set: {incident.impact: high, incident.urgency: high}}
          - {id: fix, run: fix}
        """, "responses:\n  - {step: slow, duration: 12m}\n  - {step: fix, duration: 1m}\n")
    fired = records(run, "escalation.fired")
    assert [(f["elapsed"], f["channel"], f["step"]) for f in fired] == [(720.0, "directors", "classify")]


def test_a_rule_with_after_and_when_does_not_fire_while_the_condition_is_false(tmp_path: Path) -> None:
    run = drill(tmp_path, """\
        defaults: {timeout: 1h}
        severity: {matrix: default}
        escalation:
          - {after: 10m, when: "incident.priority == 'P1'", notify: directors}
        triage:
          - {id: classify, set: {incident.impact: low, incident.urgency: high}}
          - {id: slow, run: slow}
        """, "responses:\n  - {step: slow, duration: 15m}\n")
    assert records(run, "escalation.fired") == []


def test_a_condition_true_from_the_start_fires_at_declaration(tmp_path: Path) -> None:
    run = drill(tmp_path, """\
        defaults: {timeout: 1h}
        severity: {impact: high, urgency: high}
        escalation:
          - {when: "incident.priority == 'P1'", notify: managers}
        detection:
          - {id: slow, run: slow}
        """, "responses:\n  - {step: slow, duration: 5m}\n")
    fired = records(run, "escalation.fired")
    assert [(f["elapsed"], f["step"]) for f in fired] == [(0.0, None)]


@pytest.mark.parametrize(("impact", "fires"), [("high", True), ("low", False)])
def test_an_unanswered_prompt_rule_with_a_condition_fires_only_when_it_holds(
        tmp_path: Path, impact: str, fires: bool) -> None:
    run = drill(tmp_path, ESCALATING.replace(
        "notify: oncall-secondary}", "when: \"incident.priority == 'P1'\", notify: oncall-secondary}"),
        PEOPLE.replace("{impact: high, urgency: high}", f"{{impact: {impact}, urgency: high}}")
        .replace("{impact: high}, after: 1m", f"{{impact: {impact}}}, after: 1m"))
    fired = records(run, "escalation.fired", channel="oncall-secondary")
    assert [(f["elapsed"], f["step"]) for f in fired] == ([(540.0, "fix")] if fires else [])


def test_a_step_failure_fires_an_on_failure_rule_and_the_run_goes_on(tmp_path: Path) -> None:
    run = drill(tmp_path, """\
        escalation:
          - {on_failure: true, notify: owners}
        defaults: {timeout: 1m}
        detection:
          - {id: flaky, run: flaky, continue_on_error: true}
          - {id: next, run: next}
        """, """\
        responses:
          - {step: flaky, exit_code: 2, duration: 4s}
          - {step: next}
        """)
    fired = records(run, "escalation.fired")
    assert [(f["elapsed"], f["reason"], f["channel"], f["step"]) for f in fired] == [
        (4.0, "step flaky failed: exit code 2", "owners", "flaky")]
    assert path_of(run.records) == [("flaky", "failed"), ("next", "ok")]
    assert run.result.outcome == "resolved"


def test_a_refused_approval_fires_an_on_failure_rule_naming_who_refused(tmp_path: Path) -> None:
    """A refusal used to end the run `aborted`, like Ctrl-C, so nobody was told."""
    run = drill(tmp_path, """\
        escalation:
          - {on_failure: true, notify: owners}
        defaults: {timeout: 1m}
        remediation:
          - {id: fix, run: fix, confirm: Fix it?}
          - {id: next, run: next}
        """, """\
        responses:
          - {step: fix}
          - {step: next}
        participants:
          fix: {approve: false, by: dana, after: 20s}
        """)
    assert run.result.outcome == "refused"
    fired = records(run, "escalation.fired")
    assert [(f["elapsed"], f["reason"], f["channel"]) for f in fired] == [
        (20.0, "step fix: approval refused by dana", "owners")]
    assert path_of(run.records) == [("fix", "refused")]


def test_a_handoff_rule_ends_the_run_as_escalated_after_the_current_step(tmp_path: Path) -> None:
    run = drill(tmp_path, ESCALATING.replace("notify: oncall-secondary}", "notify: oncall-secondary, handoff: true}"),
                PEOPLE)
    assert run.result.outcome == "escalated"
    assert run.result.reason == "handed off to oncall-secondary: step fix has waited 5m without an answer"
    assert path_of(run.records)[-1] == ("fix", "ok")  # the approved step finishes; nothing after it runs
    assert "verify" not in run.result.steps
    fired = records(run, "escalation.fired", channel="oncall-secondary")[0]
    assert fired["handoff"] is True
    assert records(run, "run.finished")[0]["outcome"] == "escalated"


def test_a_handoff_on_failure_escalates_instead_of_failing(tmp_path: Path) -> None:
    run = drill(tmp_path, """\
        escalation:
          - {on_failure: true, notify: owners, handoff: true}
        defaults: {timeout: 1m}
        detection:
          - {id: broken, run: broken}
          - {id: never, run: never}
        """, "responses:\n  - {step: broken, exit_code: 1}\n  - {step: never}\n")
    assert run.result.outcome == "escalated"
    assert path_of(run.records) == [("broken", "failed")]


# -- updates -----------------------------------------------------------------------------------

UPDATING = """\
defaults: {timeout: 1h}
severity: {matrix: default}
updates:
  channel: status
  every: 10m
  message: "{{ update.status }}|{{ update.phase }}|{{ incident.priority }}|{{ update.elapsed }}|{{ update.last }}"
detection:
  - {id: probe, run: probe}
triage:
  - {id: classify, set: {incident.impact: medium, incident.urgency: high}}
remediation:
  - {id: fix, run: fix}
recovery:
  - {id: verify, run: verify, expect: exit_code == 0}
"""


def updates_of(run: Any) -> list[tuple[float, str]]:
    return [(u["elapsed"], u["message"]) for u in records(run, "notify.sent", purpose="update")]


def test_updates_go_out_at_declaration_each_phase_change_every_interval_and_at_the_end(tmp_path: Path) -> None:
    run = drill(tmp_path, UPDATING, """\
        responses:
          - {step: probe, duration: 4m}
          - {step: fix, duration: 25m}
          - {step: verify, duration: 1m}
        """)
    assert updates_of(run) == [
        (0.0, "declared|detection|None|0ms|"),  # run.phase and update.phase are set at the start
        (240.0, "now in triage|triage|None|4m|probe ok"),
        (240.0, "now in remediation|remediation|P2|4m|probe ok, classify ok"),
        (600.0, "still open|remediation|P2|10m|probe ok, classify ok"),
        (1200.0, "still open|remediation|P2|20m|probe ok, classify ok"),
        (1740.0, "now in recovery|recovery|P2|29m|probe ok, classify ok, fix ok"),
        (1800.0, "still open|recovery|P2|30m|probe ok, classify ok, fix ok"),
        (1800.0, "resolved|None|P2|30m|classify ok, fix ok, verify ok"),
    ]
    assert {u["channel"] for u in records(run, "notify.sent", purpose="update")} == {"status"}


def test_no_periodic_update_after_the_run_has_ended(tmp_path: Path) -> None:
    run = drill(tmp_path, UPDATING, """\
        responses:
          - {step: probe, duration: 1m}
          - {step: fix}
          - {step: verify}
        """)
    assert [m.split("|")[0] for _, m in updates_of(run)] == [
        "declared", "now in triage", "now in remediation", "now in recovery", "resolved"]


def test_the_default_update_message_names_the_runbook_priority_phase_and_time_open(tmp_path: Path) -> None:
    run = drill(tmp_path, UPDATING.replace(
        '  message: "{{ update.status }}|{{ update.phase }}|{{ incident.priority }}|{{ update.elapsed }}|'
        '{{ update.last }}"\n', ""), "responses:\n  - {step: probe, duration: 2m}\n  - {step: fix}\n"
                                     "  - {step: verify}\n")
    messages = [m for _, m in updates_of(run)]
    assert messages[0] == ("Drill runbook: priority not set, declared, phase detection, open 0ms. "
                           "Next update within 10m.")
    assert messages[1] == ("Drill runbook: priority not set, now in triage, open 2m; last: probe ok. "
                           "Next update within 10m.")
    assert messages[-1] == ("Drill runbook: resolved after 2m (P2); last: classify ok, fix ok, verify ok. "
                            "No more updates from this run.")


def test_every_shipped_runbook_names_the_phase_from_the_first_update_and_says_how_the_run_ended(
        tmp_path: Path) -> None:
    """B8: `phase None` at the opening update, and a final update promising a next one."""
    from support import ROOT

    from engine.run.incident import ENDED
    from engine.simulation.suite import run_suite, scenario_files

    run_suite(scenario_files([str(ROOT / "scenarios")]), runs_dir=tmp_path)
    journals = sorted(tmp_path.glob("*/journal.jsonl"))
    assert len(journals) == len(list((ROOT / "scenarios").glob("*.yaml")))  # every shipped scenario ran
    for journal in journals:
        rows = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
        updates = [r["message"] for r in rows if r["event"] == "notify.sent" and r["purpose"] == "update"]
        *open_, last = updates
        assert open_ and all("None" not in m and "detection" in open_[0] for m in open_), (journal, updates)
        assert all("Next update within 30m." in m for m in open_), updates
        outcome = next(r["outcome"] for r in rows if r["event"] == "run.finished")
        said = f"{ENDED[outcome]} after"  # as people read it: "handed over (escalated) after 3m"
        assert "Next update" not in last and said in last and "last update" in last, (outcome, last)


def test_a_final_update_says_the_run_ended_and_how_without_promising_another(tmp_path: Path) -> None:
    run = drill(tmp_path, UPDATING.replace("{{ update.status }}|{{ update.phase }}|",
                                           "{{ update.final }}|{{ update.outcome }}|{{ update.ended }}|"
                                           "{{ update.next }}|{{ run.phase }}|"),
                "responses:\n  - {step: probe}\n  - {step: fix, exit_code: 1}\n")
    messages = [m for _, m in updates_of(run)]
    assert messages[0].startswith("false|None|None|10m|detection|")
    assert messages[-1].startswith("true|failed|not resolved: the runbook stopped at a failed step|None|remediation|")


def test_an_update_with_a_broken_template_still_goes_out_with_a_plain_text(tmp_path: Path) -> None:
    run = drill(tmp_path, UPDATING.replace("{{ update.status }}|", "{{ update.nonexistent.deeper }}|"),
                "responses:\n  - {step: probe}\n  - {step: fix}\n  - {step: verify}\n")
    first = updates_of(run)[0][1]
    assert first.startswith("Drill runbook: declared (message template failed:")
    assert run.result.outcome == "resolved"


def test_a_failed_update_delivery_never_stops_the_run_and_is_journaled() -> None:
    class Down(Notifier):
        def send(self, channel: str, message: str, *, title: str | None = None,
                 meta: Mapping[str, Any] | None = None, **_: Any) -> Delivery:
            return Delivery(False, f"channel '{channel}': HTTP status 500")

    result, rec = run_text(HEAD + "updates: {channel: status}\n"
                           "escalation:\n  - {on_failure: true, notify: owners}\n"
                           "detection:\n  - {id: a, run: a, continue_on_error: true}\n  - {id: b, run: b}\n",
                           executor=ScriptedExecutor({"a": 1, "b": ""}), notifier=Down())
    assert result.outcome == "resolved"
    sent = rec.named("notify.sent")
    assert [(s.purpose, s.ok, s.error) for s in sent] == [  # type: ignore[attr-defined]
        ("update", False, "channel 'status': HTTP status 500"),
        ("escalation", False, "channel 'owners': HTTP status 500"),
        ("update", False, "channel 'status': HTTP status 500"),
    ]


def test_hostile_values_in_an_update_are_delivered_as_plain_text_with_secrets_masked() -> None:
    delivered: list[str] = []

    class Keep(Notifier):
        def send(self, channel: str, message: str, *, title: str | None = None,
                 meta: Mapping[str, Any] | None = None, **_: Any) -> Delivery:
            delivered.append(message)
            return Delivery(True)

    hostile = "$(touch /tmp/pwned) `id` && rm -rf / | cat > x; 'q\" <b>{{ 7*7 }}</b>"
    run_text(HEAD + """\
        inputs:
          note: {type: string}
          token: {type: string, secret: true}
        updates:
          channel: status
          message: "note={{ inputs.note }}"
        detection:
          - {id: a, run: "use {{ inputs.token }}"}
        """.replace("        ", ""), inputs={"note": hostile + " key=tok-SECRET-123", "token": "tok-SECRET-123"},
             executor=ScriptedExecutor({"a": ""}), notifier=Keep())
    assert delivered[0] == "note=" + hostile + " key=***"
    assert all("tok-SECRET-123" not in m for m in delivered)


# -- approvals restricted to a role --------------------------------------------------------------


def test_a_scripted_participant_in_the_wrong_role_cannot_approve(tmp_path: Path) -> None:
    run = drill(tmp_path, ESCALATING, PEOPLE.replace("fix: {approve: true, after: 8m, by: dana}",
                                                     "fix: {approve: true, after: 1m, by: sam}")
                + "objectives: {approved_by_role: {fix: incident_commander}, outcome: resolved}\n")
    approval = records(run, "approval")[0]
    assert (approval["approved"], approval["by"], approval["role"], approval["required_role"]) == (
        False, "sam", "responder", "incident_commander")
    assert approval["message"] == "approval requires the role incident_commander; sam answered as responder"
    assert finished(run, "fix")["status"] == "refused" and run.result.outcome == "refused"
    checks = {c.objective: (c.actual, c.met) for c in run.scorecard.checks}
    assert checks["approved_by_role fix"] == ("no approval", False)


def test_a_live_approval_needs_a_participant_in_the_required_role() -> None:
    book = HEAD + "roles: [incident_commander, responder]\n" \
                  "remediation:\n  - {id: fix, run: fix, confirm: {message: Fix?, role: incident_commander}}\n"
    refused, rec = run_text(book, executor=ScriptedExecutor({"fix": ""}), yes=True,
                            participants=[Participant("sam", "responder")])
    approval = rec.named("approval")[0]
    assert refused.outcome == "refused"
    assert (approval.approved, approval.required_role) == (False, "incident_commander")  # type: ignore[attr-defined]
    assert approval.message == "approval requires the role incident_commander: pass --as NAME:incident_commander"  # type: ignore[attr-defined]
    approved, rec = run_text(book, executor=ScriptedExecutor({"fix": ""}), yes=True,
                             participants=[Participant("sam", "responder"), Participant("dana", "incident_commander")])
    approval = rec.named("approval")[0]
    assert approved.outcome == "resolved"
    assert (approval.approved, approval.by, approval.role) == (True, "dana", "incident_commander")  # type: ignore[attr-defined]


# -- incident objectives in the scorecard --------------------------------------------------------


def test_the_scorecard_checks_first_update_escalation_priority_and_approver_role(tmp_path: Path) -> None:
    book = ESCALATING + "updates: {channel: status, every: 30m}\n"
    met = drill(tmp_path / "met", book, PEOPLE + """\
        objectives:
          first_update_within: 1s
          escalated: true
          priority: P1
          approved_by_role: {fix: incident_commander}
        """.replace("        ", ""))
    assert {c.objective: (c.actual, c.met) for c in met.scorecard.checks} == {
        "first_update_within": ("0ms", True),
        "escalated": ("true", True),
        "priority": ("P1", True),
        "approved_by_role fix": ("incident_commander", True),
    }
    missed = drill(tmp_path / "missed", ESCALATING, PEOPLE.replace("after: 8m, by: dana", "after: 1m, by: dana")
                   .replace("{impact: high}, after", "{impact: medium}, after") + """\
        objectives:
          first_update_within: 1m
          escalated: false
          priority: P1
          approved_by_role: {fix: responder}
        """.replace("        ", ""))
    assert {c.objective: (c.actual, c.met) for c in missed.scorecard.checks} == {
        "first_update_within": ("never", False),
        "escalated": ("true", False),  # the P1 rule fired before the reassessment lowered it
        "priority": ("P2", False),
        "approved_by_role fix": ("incident_commander", False),
    }


# -- hand-off stops the run promptly (F3) ---------------------------------------------------------


def test_the_shipped_service_down_runbook_stops_once_it_has_handed_the_incident_to_the_owners(
        tmp_path: Path) -> None:
    """A config error is handed to the owners (page_owner): nothing is restarted or polled after."""
    from support import ROOT

    from engine.language.validation import load_runbook, load_scenario
    from engine.simulation.drill import DrillSetup, run_scenario

    text = (ROOT / "scenarios" / "service-down-oom-start-limit.yaml").read_text(encoding="utf-8")
    text = text.replace("runbook: ../runbooks/service-down.yaml", f"runbook: {ROOT / 'runbooks' / 'service-down.yaml'}")
    text = text.replace("answers: {cause: oom_killed,", "answers: {cause: config_error,")
    (tmp_path / "sc.yaml").write_text(text, encoding="utf-8")
    scenario = load_scenario(tmp_path / "sc.yaml")
    run = run_scenario(scenario, load_runbook(scenario.runbook_path), DrillSetup())
    assert run.result.outcome == "escalated"
    assert run.result.reason == "handed off to oncall by step page_owner"
    assert path_of(run.records)[-2:] == [("decide_restart", "ok"), ("page_owner", "ok")]
    started = {r["step"] for r in records(run, "step.started")}
    assert not started & {"reset_failed", "restart_service", "settle", "verify_active", "verify_health", "all_clear"}
    assert records(run, "run.finished")[0]["duration"] < 300  # the triage took 2m; no polling after the hand-off


def test_a_hand_off_while_a_step_polls_stops_the_poll_at_once(tmp_path: Path) -> None:
    run = drill(tmp_path, """\
        escalation:
          - {after: 1m, notify: owners, handoff: true}
        defaults: {timeout: 1h}
        recovery:
          - {id: verify, run: check, until: "stdout == 'ok'", every: 10s, timeout: 10m}
          - {id: never, run: never}
        """, "responses:\n  - {step: verify, stdout: 'not yet'}\n  - {step: never}\n")
    assert run.result.outcome == "escalated"
    step = finished(run, "verify")
    assert step["status"] == "aborted" and step["error"] == (
        "stopped waiting: handed off to owners: the run has been open for 1m")
    assert step["elapsed"] == 60.0 and records(run, "run.finished")[0]["elapsed"] == 60.0
    assert "never" not in {r["step"] for r in records(run, "step.started")}


def test_an_included_runbook_that_hands_off_ends_the_whole_run_escalated(tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text(
        "kind: runbook\nversion: 1\nid: child\ntitle: Child\ndefaults: {timeout: 1m}\n"
        "remediation:\n  - {id: page, notify: {channel: owners, message: yours, handoff: true}}\n"
        "  - {id: after_page, run: more}\n", encoding="utf-8")
    run = drill(tmp_path, """\
        escalation:
          - {on_failure: true, notify: oncall}
        defaults: {timeout: 1m}
        remediation:
          - {id: sub, include: child.yaml}
          - {id: later, run: later}
        """, "responses:\n  - {match: {command: '*'}}\n")
    assert run.result.outcome == "escalated" and run.result.reason == "handed off to owners by step sub/page"
    started = [r["step"] for r in records(run, "step.started")]
    assert "sub/after_page" not in started and "later" not in started
    assert records(run, "escalation.fired") == []  # a hand-off is not a failure
