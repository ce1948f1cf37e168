"""Steps that need a person: a `manual:` step's instructions and the answers it `ask`s
for, and a step's `confirm:` approval (who approved or refused it, and why).
"""

from __future__ import annotations

from typing import Any

from engine.errors import TemplateError
from engine.executors.prompts import ApprovalReply, ApprovalRequest, Question, Unanswered
from engine.language.model import ManualSpec, Step
from engine.templates import templating

from ._assignments import apply_set
from ._driver import Driver
from .attempt import Attempt, StepStop
from .events import Approval, PromptAnswered


def instructions(d: Driver, step: Step, spec: ManualSpec, extra: dict[str, Any]) -> str:
    """A manual step's text, as the person reads it."""
    return templating.render(spec.text, d.seen(extra), where=d.where(step, "manual")).strip()


def manual(d: Driver, step: Step, sid: str, spec: ManualSpec, number: int, extra: dict[str, Any],
           timeout: float | None) -> Attempt:
    """Show the instructions and ask for the answers; the answers may set vars."""
    r = d.r
    ctx = d.seen(extra)
    text = extra.get("_instructions")
    if text is None:
        text = instructions(d, step, spec, extra)
    fields = tuple(f._replace(prompt=templating.render(f.prompt, ctx, where=d.where(step, "ask", f.name)))
                   for f in spec.ask)
    question = Question(sid, step.label, text, fields, step.role or r.runbook.defaults.role,
                        r.services.hints.get(step.id))
    try:
        with r.asking(sid):
            answer = r.services.prompter.ask(question)
    except Unanswered as exc:
        return Attempt(False, str(exc))
    except KeyboardInterrupt:
        r.interrupt()
        return Attempt(False, "interrupted", cancelled=True)
    r.bus.emit(PromptAnswered(sid, dict(answer.values), answer.by, answer.role, answer.waited))
    values = dict(answer.values)
    changes = {f.sets: values[f.name] for f in spec.ask if f.sets and f.name in values}
    if changes:
        apply_set(r, step, changes, by=answer.by, role=answer.role)
    return Attempt(True, answers=dict(answer.values))


def approval(d: Driver, step: Step, sid: str, extra: dict[str, Any]) -> ApprovalReply:
    """Ask for a step's `confirm:`; StepStop when no one can answer, or on Ctrl-C."""
    r = d.r
    confirm = step.confirm
    assert confirm is not None
    text = confirm.message or f"Run step '{step.label}'?"
    try:
        message = templating.render(text, d.seen(extra), where=d.where(step, "confirm"))
    except TemplateError:
        message = r.masker.text(text)
    try:
        with r.asking(sid):
            reply = r.services.prompter.approve(ApprovalRequest(sid, message, confirm.role, ask_why=True))
    except Unanswered as exc:
        r.bus.emit(Approval(sid, False, required_role=confirm.role, message=str(exc)))
        raise StepStop("failed", str(exc), sid) from None
    except KeyboardInterrupt:
        r.interrupt()
        raise StepStop("aborted", "interrupted while waiting for approval", sid) from None
    r.bus.emit(Approval(sid, reply.approved, reply.by, reply.role, confirm.role, reply.waited,
                        message if reply.approved else (reply.reason or message)))
    return reply


def refusal(reply: ApprovalReply) -> str:
    """Why a step did not run: who refused its approval, and the reason they gave."""
    who = f" by {reply.by}" + (f" ({reply.role})" if reply.role else "") if reply.by else ""
    why = f": {reply.reason}" if reply.reason and reply.reason != "refused" else ""
    return f"approval refused{who}{why}"
