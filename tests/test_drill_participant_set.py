"""Participants' `set:` in a drill: once a person answers a step's question or gives (or
refuses) its approval, the world's state changes, so the world follows the path taken."""

from __future__ import annotations

from pathlib import Path

from simkit import drill, finished, records

RUNBOOK = """\
remediation:
  - id: choose
    manual: Which fix?
    ask: {fix: {choices: [restart, scale]}}
  - {id: apply, run: "fix {{ steps.choose.answers.fix }}"}
  - {id: restart, run: systemctl restart app, confirm: Restart the app?}
recovery:
  - {id: verify, run: status}
"""

RESPONSES = """\
responses:
  - {step: apply}
  - {step: restart}
  - {step: verify, stdout: "fix={{ state.fix }} restarted={{ state.restarted }}"}
"""


def test_an_answer_and_an_approval_change_the_world_that_later_steps_see(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, RESPONSES + """\
participants:
  choose: {answers: {fix: scale}, set: {fix: "{{ answers.fix }}"}}
  restart: {approve: true, set: {restarted: "{{ approved }}"}}
""")
    assert finished(run, "verify")["stdout"] == "fix=scale restarted=true"


def test_a_refused_approval_changes_the_world_too(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, RESPONSES + """\
state: {restarted: unknown, refusals: 0}
participants:
  choose: {answers: {fix: restart}}
  restart: {approve: false, set: {restarted: "{{ approved }}", refusals: "{{ state.refusals + 1 }}"}}
""")
    assert run.result.outcome == "refused"
    assert run.world.state["restarted"] is False and run.world.state["refusals"] == 1


def test_a_participants_set_can_mitigate(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, RESPONSES + """\
mitigated_when: state.fix == 'scale'
participants:
  choose: {answers: {fix: scale}, after: 2m, set: {fix: "{{ answers.fix }}"}}
  restart: {approve: true}
""")
    mitigated = records(run, "incident.mitigated")
    assert len(mitigated) == 1 and mitigated[0]["step"] == "choose"
    assert run.timings.mitigated == 120.0
