"""engine.run.continuation: the operator's choices and the journal turned into a Resume; nothing
is run again, or skipped, without their word."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from engine.errors import UsageError
from engine.executors.prompts import Answer, ApprovalReply, ApprovalRequest, Question, ScriptedPrompter
from engine.language.builder import build_runbook
from engine.language.loader import load_text
from engine.language.model import Runbook
from engine.run.continuation import Choices, plan
from engine.run.recovery import Recovered
from engine.run.state import StepRecord

TEXT = """\
kind: runbook
version: 1
id: plan
title: Plan
detection:
  - {id: probe, run: probe}
remediation:
  - {id: prepare, run: prepare}
  - {id: second, run: second}
  - {id: third, run: third}
  - {id: fourth, run: fourth, idempotent: true}
"""


def book() -> Runbook:
    return build_runbook(load_text(TEXT, "plan.yaml"))


def failed_at_second(**extra: object) -> Recovered:
    steps = {"probe": StepRecord("probe", "ok"), "prepare": StepRecord("prepare", "ok"),
             "second": StepRecord("second", "failed", error="exit code 1")}
    return Recovered("r-1", "plan.yaml", "live", {}, [], [], 0.0, 9, 5.0, "failed", "second", "exit code 1",
                     steps, **extra)  # type: ignore[arg-type]


@dataclass
class Person:
    """A terminal prompter that answers from a list and remembers what it was asked."""

    replies: list[bool]
    reason: str = "because"
    asked: list[str] = field(default_factory=list)
    interactive: bool = True

    def approve(self, request: ApprovalRequest) -> ApprovalReply:
        self.asked.append(request.message)
        return ApprovalReply(self.replies.pop(0))

    def ask(self, question: Question) -> Answer:
        self.asked.append(question.fields[0].prompt)
        return Answer({"reason": self.reason})

    def confirm_rollback(self, steps: int) -> bool:
        return True


def test_completed_steps_are_restored_and_the_failed_step_runs_again_when_told() -> None:
    resume = plan(book(), failed_at_second(), Choices(rerun_failed=True, reason="fixed"), ScriptedPrompter())
    assert sorted(resume.finished) == ["prepare", "probe"]
    assert resume.skip == {}
    assert resume.note is not None and (resume.note.rerun, resume.note.reason) == (["second"], "fixed")


def test_without_a_terminal_every_problem_is_in_one_usage_error() -> None:
    with pytest.raises(UsageError) as caught:
        plan(book(), failed_at_second(), Choices(skip=("prepare",)), ScriptedPrompter())
    assert str(caught.value).splitlines()[1:] == [
        "  --skip prepare: step prepare already completed; it does not run again anyway",
        "  step second failed (exit code 1): pass --rerun-failed to run it again, or --skip second to go on "
        "without it (or --from STEP to continue elsewhere)"]


def test_from_runs_that_step_and_every_later_one_and_skips_earlier_ones_that_never_ran() -> None:
    recovered = failed_at_second()
    recovered.steps.pop("prepare")
    resume = plan(book(), recovered, Choices(from_step="third"), ScriptedPrompter())
    assert sorted(resume.finished) == ["probe"]
    assert resume.skip == {"prepare": "before --from third", "second": "before --from third"}
    resume = plan(book(), failed_at_second(), Choices(from_step="probe"), ScriptedPrompter())
    assert resume.finished == {} and resume.skip == {}


def test_skipping_a_step_that_completed_is_refused() -> None:
    with pytest.raises(UsageError, match="--skip prepare: step prepare already completed"):
        plan(book(), failed_at_second(), Choices(skip=("prepare", "second")), ScriptedPrompter())


def test_steps_undone_by_rollbacks_need_from_and_are_never_rolled_back_again() -> None:
    with pytest.raises(UsageError, match=r"its rollbacks undid prepare.*--from prepare"):
        plan(book(), failed_at_second(undone=["prepare"]), Choices(rerun_failed=True), ScriptedPrompter())
    resume = plan(book(), failed_at_second(undone=["prepare"]), Choices(from_step="second"), ScriptedPrompter())
    assert resume.undone == {"prepare"} and "prepare" in resume.finished


def test_on_a_terminal_the_reason_comes_first_then_each_decision() -> None:
    person = Person([False, True])
    resume = plan(book(), failed_at_second(), Choices(), person)
    assert person.asked == ["Why resume this run? (recorded in the journal; Enter for no reason)",
                            "Step second failed (exit code 1). Run it again?", "Skip second and go on after it?"]
    assert resume.skip == {"second": "skipped on resume: because"}


def test_on_a_terminal_rollbacks_that_undid_steps_offer_to_run_them_again() -> None:
    person = Person([True])
    resume = plan(book(), failed_at_second(undone=["prepare"]), Choices(reason=""), person)
    assert person.asked[0].startswith("The earlier attempt ended failed and its rollbacks undid prepare")
    assert sorted(resume.finished) == ["probe"] and resume.note is not None and resume.note.from_step == "prepare"


def test_an_interrupted_idempotent_step_runs_again_without_asking() -> None:
    recovered = failed_at_second(interrupted=["fourth"])
    recovered.outcome, recovered.stop_step = None, None
    recovered.steps.update(second=StepRecord("second", "ok"), third=StepRecord("third", "ok"))
    resume = plan(book(), recovered, Choices(), ScriptedPrompter())
    assert resume.note is not None and (resume.note.previous, resume.note.rerun) == ("crashed", ["fourth"])
