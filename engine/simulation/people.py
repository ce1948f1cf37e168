"""Scripted people for unattended drills: answers, approvals and how long they take."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from engine.errors import TemplateError
from engine.executors.prompts import Answer, ApprovalReply, ApprovalRequest, Question, Unanswered, coerce
from engine.language.model import MISSING
from engine.language.scenario import ACKNOWLEDGE, Participant, Scenario
from engine.run.events import HintShown

from .world import World


class ScenarioPrompter:
    """Answers prompts from the scenario's `participants`, on the run's clock."""

    interactive = False

    def __init__(self, scenario: Scenario, clock: Any, emit: Callable[[Any], Any],
                 rng: random.Random | None = None) -> None:
        self.scenario, self.clock, self.emit, self.rng = scenario, clock, emit, rng

    def _entry(self, step: str) -> Participant:
        entry = self.scenario.participant(step)
        if entry is None:
            raise Unanswered(f"unscripted step {step}: it waits for a person and the scenario's "
                             "participants has no entry for it")
        return entry

    def _take_time(self, entry: Participant) -> float:
        if entry.hint and entry.step in self.scenario.hints:
            self.emit(HintShown(entry.step, self.scenario.hints[entry.step], self._who(entry, None)[0]))
        waited = entry.after.sample(self.rng) if entry.after is not None else 0.0
        if waited > 0:
            self.clock.sleep(waited)
        return waited

    def _who(self, entry: Participant, wanted_role: str | None) -> tuple[str | None, str | None]:
        role = entry.role or wanted_role
        name = entry.by or (self.scenario.roles.get(role) if role else None)
        if entry.by and not entry.role:
            role = next((r for r, n in self.scenario.roles.items() if n == entry.by), wanted_role)
        return name, role

    def ask(self, question: Question) -> Answer:
        entry = self._entry(question.step)
        waited = self._take_time(entry)
        values: dict[str, Any] = {}
        for f in question.fields:
            if f.name in entry.answers:
                try:
                    values[f.name] = coerce(f, entry.answers[f.name])
                except ValueError as exc:  # lint (RB207) says so ahead of time; here the step fails
                    raise Unanswered(f"step {question.step}: the scenario's answer for '{f.name}' "
                                     f"is not valid: {exc}") from None
            elif f.default is not MISSING:
                values[f.name] = f.default
            else:
                raise Unanswered(f"step {question.step}: the scenario gives no answer for '{f.name}'")
        by, role = self._who(entry, question.role)
        return Answer(values, by, role, waited)

    def approve(self, request: ApprovalRequest) -> ApprovalReply:
        entry = self._entry(request.step)
        waited = self._take_time(entry)
        by, role = self._who(entry, request.role)
        approved = entry.approve if entry.approve is not None else True
        if approved and request.role is not None and role != request.role:
            return ApprovalReply(False, by, role, waited, f"approval requires the role {request.role}; "
                                 f"{by or 'the participant'} answered as {role or 'no role'}")
        return ApprovalReply(approved, by, role, waited, "" if approved else "refused")

    def confirm_rollback(self, steps: int) -> bool:
        return True

    def acknowledge(self) -> tuple[str | None, str | None, float] | None:
        """Who takes the page and after how long; None: the first answer acknowledges."""
        entry = self.scenario.participants.get(ACKNOWLEDGE)
        if entry is None:
            return None
        waited = self._take_time(entry)
        by, role = self._who(entry, None)
        return by, role, waited


class WorldReacts:
    """A prompter (scripted or people at a terminal) whose answers change the simulated
    world: once a step's question is answered or its approval given or refused, the `set:`
    of the step's `participants` entry is applied to the state, its templates seeing the
    `answers` given and whether the step was `approved`, so the world follows the path the
    people took. Everything else is the wrapped prompter's."""

    def __init__(self, inner: Any, world: World) -> None:
        self.inner, self.world = inner, world

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def ask(self, question: Question) -> Answer:
        answer: Answer = self.inner.ask(question)
        self._react(question.step, {"answers": dict(answer.values), "approved": None})
        return answer

    def approve(self, request: ApprovalRequest) -> ApprovalReply:
        reply: ApprovalReply = self.inner.approve(request)
        self._react(request.step, {"answers": {}, "approved": reply.approved})
        return reply

    def _react(self, step: str, given: dict[str, Any]) -> None:
        entry = self.world.scenario.participant(step)
        if entry is None or not entry.set:
            return
        try:
            self.world.apply(entry.set, extra=given)
        except TemplateError as exc:
            raise Unanswered(f"step {step}: the scenario's participants.{entry.step}.set failed: {exc}") from None
        self.world.check_mitigated(step, None)
