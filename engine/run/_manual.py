"""Steps that need a person: a `manual:` step's instructions and the answers it `ask`s
for, a step's `confirm:` approval (who approved or refused it, and why), and the
approvals a run's policy adds (a step's, and the gate out of its unattended phases).
"""

from __future__ import annotations

from typing import Any

from engine.errors import TemplateError
from engine.executors.prompts import ApprovalReply, ApprovalRequest, Question, Unanswered
from engine.language.model import ManualSpec, Phase, Step
from engine.templates import templating

from ._assignments import apply_set
from ._driver import Driver, RunView
from .attempt import Attempt, StepStop
from .events import Approval, PromptAnswered
from .policy import GATE, RunPolicy


def instructions(d: Driver, step: Step, spec: ManualSpec, extra: dict[str, Any]) -> str:
    """A manual step's text, as the person reads it."""
    return templating.render(spec.text, d.seen(extra), where=d.where(step, "manual")).strip()


def manual(d: Driver, step: Step, sid: str, spec: ManualSpec, number: int, extra: dict[str, Any],
           timeout: float | None) -> Attempt:
    """Show the instructions and ask for the answers; the answers may set vars."""
    r = d.r
    ctx = d.seen(extra)
    text = d.started.instructions
    if text is None:
        text = instructions(d, step, spec, extra)
    fields = tuple(f._replace(prompt=templating.render(f.prompt, ctx, where=d.where(step, "ask", f.name)))
                   for f in spec.ask)
    question = Question(sid, step.label, text, fields, step.role or r.runbook.defaults.role,
                        r.services.hints.get(step.id))
    policy = r.services.policy
    try:
        if policy is not None and policy.unattended_now:  # nobody is asked: the defaults, or the step fails
            answer = policy.unattended_answer(question)
        else:
            with r.asking(sid):
                answer = r.services.prompter.ask(question)
    except Unanswered as exc:
        return Attempt(False, str(exc))
    except KeyboardInterrupt:
        r.interrupt()
        return Attempt(False, "interrupted", cancelled=True)
    r.bus.emit(PromptAnswered(sid, dict(answer.values), answer.by, answer.role, answer.waited, answer.via))
    values = dict(answer.values)
    changes = {f.sets: values[f.name] for f in spec.ask if f.sets and f.name in values}
    if changes:
        apply_set(r, step, changes, by=answer.by, role=answer.role)
    return Attempt(True, answers=dict(answer.values))


def approval(d: Driver, step: Step, sid: str, extra: dict[str, Any]) -> ApprovalReply | None:
    """Ask for the approval a step needs (its `confirm:`, or the run's policy's); None when
    it needs none; StepStop when no one can answer, or on Ctrl-C."""
    r = d.r
    confirm, policy = step.confirm, r.services.policy
    role = policy.approvals.get(sid) if policy is not None else None
    if confirm is None and role is None:
        return None
    if policy is not None and policy.unattended_now:
        why = policy.unattended_approval(sid)
        r.bus.emit(Approval(sid, False, required_role=role or (confirm.role if confirm else None), message=str(why),
                            policy=policy.name))
        raise StepStop("failed", str(why), sid)
    text = (confirm.message if confirm is not None else None) or f"Run step '{step.label}'?"
    try:
        message = templating.render(text, d.seen(extra), where=d.where(step, "confirm"))
    except TemplateError:
        message = r.masker.text(text)
    if role is None:
        return ask_approval(r, sid, message, confirm.role if confirm is not None else None, None)
    # The route's policy names who approves this step (asked once, even where the runbook
    # has its own confirm: the route's role decides).
    return ask_approval(r, sid, message, role, policy.name if policy is not None else None)


def refusal(reply: ApprovalReply) -> str:
    """Why a step did not run: who refused its approval, and the reason they gave."""
    who = f" by {reply.by}" + (f" ({reply.role})" if reply.role else "") if reply.by else ""
    why = f": {reply.reason}" if reply.reason and reply.reason != "refused" else ""
    return f"approval refused{who}{why}"


def ask_approval(r: RunView, sid: str, message: str, role: str | None, policy: str | None) -> ApprovalReply:
    """Ask the run's prompter for an approval and journal it (`policy`: who asked, when not
    the runbook); StepStop when no one can answer, or on Ctrl-C."""
    try:
        with r.asking(sid):
            reply = r.services.prompter.approve(ApprovalRequest(sid, message, role, ask_why=True))
    except Unanswered as exc:
        r.bus.emit(Approval(sid, False, required_role=role, message=str(exc), policy=policy))
        raise StepStop("failed", str(exc), sid) from None
    except KeyboardInterrupt:
        r.interrupt()
        raise StepStop("aborted", "interrupted while waiting for approval", sid) from None
    r.bus.emit(Approval(sid, reply.approved, reply.by, reply.role, role, reply.waited,
                        message if reply.approved else (reply.reason or message), reply.via, policy))
    return reply


def gate(r: RunView, policy: RunPolicy, phase: Phase, *, entered: bool) -> StepStop | None:
    """Before `phase`: the approval to leave the unattended phases, if this is where it is
    asked (`entered`: an earlier attempt entered the phase, so it was given then)."""
    if entered or not policy.gate_before(r.runbook, phase):
        return None
    done = ", ".join(p.name for p in r.runbook.phases if p.name in policy.unattended)
    sid = f"{GATE}{phase.name}"
    message = f"{done} ran unattended: go on into {phase.name}?"
    try:
        reply = ask_approval(r, sid, message, policy.gate_role, policy.name)
    except StepStop as stop:
        return stop
    if reply.approved:
        return None
    return StepStop("refused", refusal(reply).replace("approval", f"approval to go on into {phase.name}", 1), sid)
