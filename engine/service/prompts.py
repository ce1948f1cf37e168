"""The stored prompter, and people's decisions on what it asks.

A service run that reaches a question (a `manual:` step's `ask`, a step's `confirm:`)
does not wait on a thread: the question is stored and the run parks (status `waiting`,
no lease, its journal flushed up to the step). A person answers from anywhere (the API,
`runbook answer` / `runbook approve`, Slack): `decide` checks the role the question needs
against the person proven by a token or a Slack signature, never a name they give, and
stores the answer; the run goes back to the queue, and the next worker continues it from
its journal. The step that asked starts again (nothing of it ran) and finds its answer
here, so the journal gets the same `prompt.answered` / `approval` events, with who and
when, that a terminal answer writes, and how it came (`via`: cli, api, slack, console).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from engine.errors import EngineError, UsageError
from engine.executors.prompts import Answer, ApprovalReply, ApprovalRequest, Question, ScriptedPrompter, coerce
from engine.language.model import MISSING, AskField

from .config import ServeConfig
from .store import NewQuestion, PersonRow, QuestionRow, Store
from .store.records import loads

ASK, APPROVAL = "ask", "approval"
APPROVAL_FIELDS: tuple[dict[str, Any], ...] = (
    {"name": "approved", "type": "confirm", "prompt": "Approve?"},
    {"name": "reason", "type": "text", "prompt": "Why (a refusal's reason)?"},
)


class Forbidden(EngineError):
    """The person may not answer this question: it needs a role they do not have."""

    exit_code = 77


def people_of(config: ServeConfig) -> list[PersonRow]:
    """The serve config's people, as the store keeps them."""
    return [PersonRow(p.name, p.roles, p.slack, p.email) for p in config.people]


class NoSuchRun(UsageError):
    """The store has no run of that id."""


class NotWaiting(UsageError):
    """The run waits on no question at that step (answered already, or never asked)."""


class Unauthorized(EngineError):
    """No proof of who is answering: a missing, unknown or revoked token."""

    exit_code = 77


def person_of(store: Store, token: str | None) -> PersonRow:
    """Who `token` proves to be; Unauthorized saying what is wrong with it."""
    if not token:
        raise Unauthorized("no API token: pass --token (or set $RUNBOOK_TOKEN); "
                           "`runbook token create NAME -c serve.yaml` makes one")
    person = store.token_person(token)
    if person is None:
        raise Unauthorized("the API token is not known to this service (revoked, or made for another store)")
    return person


def answer_as(store: Store, token: str | None, run_id: str, step: str, values: Mapping[str, Any],
              via: str) -> tuple[QuestionRow, PersonRow]:
    """The open question of `run_id` at `step` answered by the person `token` proves."""
    person = person_of(store, token)
    question = open_question(store, run_id, step)
    return decide(store, question, person, values, via), person


@dataclass
class StoredPrompter:
    """A worker's prompter: an answer stored for the step, or the run parks (`park`
    stores the question, stops the run and does not return)."""

    store: Store
    run_id: str
    park: Callable[[NewQuestion], NoReturn]
    scripted: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # the run's own answers
    interactive: bool = False

    def ask(self, question: Question) -> Answer:
        if question.step in self.scripted:
            return ScriptedPrompter(self.scripted).ask(question)
        found = self._answered(question.step, ASK)
        if found is None:
            fields = tuple(_field_dict(f) for f in question.fields)
            self.park(NewQuestion(question.step, ASK, question.text or question.title, fields, question.role))
        values = dict(found.answer or {})
        return Answer(values, found.answered_by, self._role(found), _waited(found), via=self._via(found))

    def approve(self, request: ApprovalRequest) -> ApprovalReply:
        found = self._answered(request.step, APPROVAL)
        if found is None:
            self.park(NewQuestion(request.step, APPROVAL, request.message, APPROVAL_FIELDS, request.role))
        values = found.answer or {}
        return ApprovalReply(bool(values.get("approved")), found.answered_by, self._role(found), _waited(found),
                             str(values.get("reason") or ""), self._via(found))

    def confirm_rollback(self, steps: int) -> bool:
        return True  # never asked: a non-interactive run rolls back after an abort

    def _answered(self, step: str, kind: str) -> QuestionRow | None:
        """The answer waiting for this step, used once (closed: a later ask asks again)."""
        answered = [q for q in self.store.questions(run_id=self.run_id, status="answered")
                    if q.step == step and q.kind == kind]
        if not answered:
            return None
        self.store.close_questions([answered[-1].id])
        return answered[-1]

    def _via(self, question: QuestionRow) -> str | None:
        """How the answer came (cli, api, slack, console), as the audit trail recorded it."""
        for entry in reversed(self.store.audit_trail(self.run_id)):
            detail = loads(entry.get("detail"), {})
            if entry.get("what") == "question.answered" and detail.get("question") == question.id:
                return str(detail["via"]) if detail.get("via") else None
        return None

    def _role(self, question: QuestionRow) -> str | None:
        if question.role is not None:
            return question.role  # decide() made sure they hold it
        person = self.store.person(question.answered_by or "")
        return person.roles[0] if person is not None and person.roles else None


def _waited(question: QuestionRow) -> float:
    return max((question.answered_at or question.asked_at) - question.asked_at, 0.0)


def _field_dict(f: AskField) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f.name, "type": f.type, "prompt": f.prompt}
    if f.choices is not None:
        out["choices"] = list(f.choices)
    if f.default is not MISSING:
        out["default"] = f.default
    for key in ("minimum", "maximum"):
        if getattr(f, key) is not None:
            out[key] = getattr(f, key)
    return out


def open_question(store: Store, run_id: str, step: str) -> QuestionRow:
    """The question run `run_id` waits on at `step`; UsageError saying what it waits on."""
    if store.run(run_id) is None:
        raise NoSuchRun(f"no run {run_id} in the store {store}")
    waiting = store.questions(run_id=run_id)
    for question in waiting:
        if question.step == step:
            return question
    steps = ", ".join(f"{q.step} ({q.kind})" for q in waiting) or "nothing"
    raise NotWaiting(f"run {run_id} has no open question at step {step}: it waits on {steps}")


def decide(store: Store, question: QuestionRow, person: PersonRow, values: Mapping[str, Any],
           via: str) -> QuestionRow:
    """Answer `question` as `person` (proven, not declared): Forbidden without the role it
    needs, UsageError for a value its fields refuse."""
    if question.role is not None and question.role not in person.roles:
        held = ", ".join(person.roles) or "none"
        raise Forbidden(f"{person.name} may not answer step {question.step} of run {question.run_id}: it needs "
                        f"the role {question.role} (their roles: {held})")
    return store.answer(question.id, _checked(question, values), person.name, via)


def _checked(question: QuestionRow, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values coerced to the question's fields; every field answered or defaulted."""
    known = {f["name"]: f for f in question.fields}
    unknown = sorted(set(values) - set(known))
    if unknown:
        asks = ", ".join(known) or "nothing"
        raise UsageError(f"step {question.step} asks no {', '.join(unknown)} (it asks: {asks})")
    out: dict[str, Any] = {}
    for name, spec in known.items():
        ask = AskField(name, spec.get("type", "text"), spec.get("prompt", ""),
                          tuple(spec["choices"]) if "choices" in spec else None, spec.get("default", MISSING),
                          spec.get("minimum"), spec.get("maximum"))
        if name in values:
            try:
                out[name] = coerce(ask, values[name])
            except ValueError as exc:
                raise UsageError(f"step {question.step}, {name}: {exc}") from None
        elif ask.default is not MISSING:
            out[name] = ask.default
        elif question.kind == APPROVAL and name == "reason":
            out[name] = ""
        else:
            raise UsageError(f"step {question.step} needs an answer for {name}")
    return out
