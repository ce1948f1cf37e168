"""Scenarios script the steps of included runbooks as `include_step/inner_step`: each
inclusion answered on its own, validated against the included runbook (RB202, RB203)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from simkit import drill, finished, write_pair

from engine.language.validation import check_file

CHILD = """\
kind: runbook
version: 1
id: child
title: Restart a service
library: true
inputs: {svc: {type: string}}
defaults: {timeout: 1m}
remediation:
  - {id: restart, run: "systemctl restart {{ inputs.svc }}"}
  - {id: check, manual: Is it up?, confirm: Sure?}
"""

RUNBOOK = """\
defaults: {timeout: 1m}
remediation:
  - {id: fix_api, include: {runbook: child.yaml, inputs: {svc: api}}}
  - {id: fix_db, include: {runbook: child.yaml, inputs: {svc: db}}}
"""

SCENARIO = """\
responses:
  - {step: fix_api/restart, stdout: api restarted}
  - {step: fix_db/restart, exit_code: 1, stderr: db refused}
participants:
  fix_api/check: {approve: true}
  fix_db/check: {approve: true}
objectives:
  outcome: failed
  must_run: [fix_api/restart, fix_api/check]
  must_not_run: [fix_db/check]
"""


def _child(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "child.yaml").write_text(CHILD, encoding="utf-8")


def test_each_inclusion_of_a_runbook_is_answered_by_its_own_responses(tmp_path: Path) -> None:
    _child(tmp_path)
    run = drill(tmp_path, RUNBOOK, SCENARIO)
    assert finished(run, "fix_api/restart")["stdout"] == "api restarted"
    assert finished(run, "fix_db/restart")["stderr"] == "db refused"
    assert run.scorecard.passed, run.scorecard.missed


def test_validate_checks_included_step_ids_and_names_the_qualified_one(tmp_path: Path) -> None:
    _child(tmp_path)
    wrong = SCENARIO.replace("{step: fix_api/restart,", "{step: restart,").replace("fix_db/check:", "fix_db/chek:")
    _, sc = write_pair(tmp_path, RUNBOOK, textwrap.dedent(wrong))
    found = {(d.rule, d.message) for d in check_file(str(sc)).diagnostics if d.is_error}
    assert found == {
        ("RB202", "response names step 'restart', which the runbook lacks as its own; it is a step of an "
                  "included runbook: name it 'fix_api/restart' or 'fix_db/restart'"),
        ("RB203", "participants names step 'fix_db/chek', which the runbook lacks (did you mean 'fix_db/check'?)"),
    }


def test_answers_to_an_included_step_are_checked_against_its_questions(tmp_path: Path) -> None:
    _child(tmp_path)
    _, sc = write_pair(tmp_path, RUNBOOK, SCENARIO.replace("fix_db/check: {approve: true}",
                                                           "fix_db/check: {approve: true, answers: {why: x}}"))
    found = [d for d in check_file(str(sc)).diagnostics if d.rule == "RB207"]
    assert [d.message for d in found] == ["step 'check' asks no question 'why'"]
    assert found[0].line == 11  # at the answer under fix_db/check
