"""engine.run.answers: `--answer` and `--as` checked against the runbook before anything runs."""

from __future__ import annotations

from pathlib import Path

from engine.executors.prompts import Participant
from engine.language.builder import build_runbook
from engine.language.loader import load_text
from engine.language.model import Runbook
from engine.run.answers import check_answers, parse_answers, parse_participants

TEXT = """\
kind: runbook
version: 1
id: answers
title: Answers
roles: [incident_commander, responder]
triage:
  - id: assess
    manual: What fills the disk?
    ask:
      cause: {choices: [logs, data, unknown]}
      size: {type: number, minimum: 0}
      sure: {type: confirm}
  - {id: look, manual: Look at the dashboard}
remediation:
  - {id: restart, run: systemctl restart app}
"""


def book(text: str = TEXT, file: str = "runbook.yaml") -> Runbook:
    return build_runbook(load_text(text, file))


def problems(*pairs: str, runbook: Runbook | None = None) -> list[str]:
    answers, bad = parse_answers(pairs)
    return bad + check_answers(runbook or book(), answers)


def test_good_answers_have_no_problem() -> None:
    assert problems("assess.cause=logs", "assess.size=12.5", "assess.sure=yes") == []


def test_an_unknown_step_is_named_with_a_suggestion() -> None:
    assert problems("asess.cause=logs") == [
        "--answer asess.cause=logs: runbook 'answers' has no step 'asess' (did you mean 'assess'?)"]


def test_an_unknown_field_lists_what_the_step_asks() -> None:
    assert problems("assess.cuase=logs") == [
        "--answer assess.cuase=logs: step 'assess' asks no question 'cuase' (did you mean 'cause'?) "
        "(it asks: cause, size, sure)"]


def test_a_value_outside_the_choices_is_caught_with_a_suggestion() -> None:
    assert problems("assess.cause=log") == [
        "--answer assess.cause=log: answer one of: logs, data, unknown (did you mean 'logs'?)"]


def test_values_of_the_wrong_type_or_range_are_caught() -> None:
    assert problems("assess.size=big", "assess.sure=perhaps") == [
        "--answer assess.size=big: answer a number", "--answer assess.sure=perhaps: answer yes or no"]
    assert problems("assess.size=-1") == ["--answer assess.size=-1: answer at least 0"]


def test_steps_that_ask_nothing_say_what_to_do_instead() -> None:
    assert problems("look.done=yes", "restart.ok=yes") == [
        "--answer look.done=yes: step 'look' asks no question (pass --yes to acknowledge it)",
        "--answer restart.ok=yes: step 'restart' is a run step; only manual steps ask questions"]


def test_every_problem_is_reported_at_once_including_malformed_flags() -> None:
    found = problems("nonsense", "asess.cause=x", "assess.cause=x", "assess.nope=1")
    assert len(found) == 4
    assert found[0] == "--answer expects STEP.FIELD=VALUE, got 'nonsense'"


def test_a_step_of_an_included_runbook_is_checked_in_that_runbook(tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text(TEXT.replace("id: answers", "id: child"))
    parent = book("kind: runbook\nversion: 1\nid: parent\ntitle: P\n"
                  "triage:\n  - {id: inner, include: child.yaml}\n", str(tmp_path / "parent.yaml"))

    def load(path: Path) -> Runbook:
        return book(path.read_text(), str(path))

    answers, _ = parse_answers(["inner/assess.cause=logs", "inner/assess.cause2=x", "inner/nope.a=b"])
    assert check_answers(parent, answers, load) == [
        "--answer inner/assess.cause2=x: step 'inner/assess' asks no question 'cause2' (did you mean 'cause'?) "
        "(it asks: cause, size, sure)",
        "--answer inner/nope.a=b: runbook 'child' has no step 'nope'"]


def test_participants_with_undeclared_roles_are_all_reported() -> None:
    people, found = parse_participants(["alice:incident_commander", "bob:responer", ":x", "carol"],
                                       ("incident_commander", "responder"))
    assert people == (Participant("alice", "incident_commander"), Participant("carol"))
    assert found == ["--as bob:responer: the runbook declares no role 'responer' (did you mean 'responder'?) "
                     "(roles: incident_commander, responder)", "--as expects NAME or NAME:ROLE, got ':x'"]
