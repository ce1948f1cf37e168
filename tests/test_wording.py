"""engine.run.wording: escalation reasons read as words, not as template code (F2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from simkit import drill, records

from engine.run.wording import describe


@pytest.mark.parametrize(("expression", "words"), [
    ("incident.priority == 'P1'", "the priority is P1"),
    ("incident.priority in ['P1', 'P2']", "the priority is P1 or P2"),
    ("incident.impact != 'low' and incident.urgency == 'high'", "the impact is not low and the urgency is high"),
    ("steps.diagnose.answers.cause == 'dependency_down'", "the answer cause of step diagnose is dependency_down"),
    ("steps.usage.outputs.pct | int >= 95", "the output pct of step usage is at least 95"),
    ("steps.restart.status == 'failed' or not vars.restart",
     "the status of step restart is failed or not (the value restart)"),
    ("steps.probe.exit_code > 0", "the exit code of step probe is above 0"),
])
def test_common_conditions_are_said_in_words(expression: str, words: str) -> None:
    assert describe(expression) == words


def test_a_condition_with_no_wording_is_quoted_whole_on_one_line() -> None:
    assert describe("steps.x.stdout is search('OOM')\n  and inputs.host") == (
        "`steps.x.stdout is search('OOM') and inputs.host` holds")


def test_a_multi_line_when_is_the_whole_reason_of_its_escalation(tmp_path: Path) -> None:
    """Not only its first line: the journal, the console and the message have all of it."""
    run = drill(tmp_path, """\
        severity: {matrix: default}
        escalation:
          - when: >-
              incident.priority == 'P1'
              and steps.assess.answers.cause == 'oom'
            notify: managers
        defaults: {timeout: 1h}
        triage:
          - id: assess
            manual: What happened?
            ask:
              cause: {choices: [oom, other]}
              impact: {choices: [high, low], sets: incident.impact}
              urgency: {choices: [high, low], sets: incident.urgency}
        """, """\
        responses: []
        participants:
          assess: {answers: {cause: oom, impact: high, urgency: high}, after: 1m}
        """)
    [fired] = records(run, "escalation.fired")
    assert fired["reason"] == "the priority is P1 and the answer cause of step assess is oom"
    [sent] = records(run, "notify.sent", purpose="escalation")
    assert sent["message"] == ("Escalation for Drill runbook (P1): the priority is P1 and the answer cause "
                               "of step assess is oom")
