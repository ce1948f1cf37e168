"""A policy from outside the runbook, which the runner consults: which phases run with
nobody to ask, which steps need whose approval although the runbook asks none, and the
approval that lets a run leave its unattended phases. The service's routes give one to
each run they start (engine/service/execution.py passes it in with the run's services);
a run without a policy is as its runbook says.

- In an `unattended` phase nothing waits for a person: a question whose every field has
  a default is answered with the defaults, and any other question or approval fails its
  step (the serve config's check refuses such routes before a run can get there).
- `approvals` ({step: role}): the step waits for that role's approval before it runs,
  as if it had `confirm: {role: ...}`; a refusal ends the run `refused`, with rollbacks.
- With `unattended` given, the first phase after the last unattended one waits for the
  `gate_role`'s approval before it starts (`gate:PHASE` is the step people approve).

Each approval the policy asks for is journaled as an `approval` event naming the policy
(asked by engine/run/_manual.py: `approval` for a step, `gate` before a phase). This
module imports nothing of the run, so the services may name it.
"""

# Annotations are evaluated (no `from __future__ import annotations`): `dataclass` checks
# each one given as text against patterns (ClassVar, InitVar) at every start.
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.executors.prompts import Answer, Question, Unanswered
from engine.language.model import MISSING, Phase, Runbook

GATE = "gate:"  # the step name of the approval before a phase: gate:remediation


@dataclass
class RunPolicy:
    """The policy of one run (stateful: it follows the run's phases as a runner hook)."""

    name: str  # who asks, as the journal says it: "route disk"
    unattended: frozenset[str] = frozenset()
    approvals: Mapping[str, str] = field(default_factory=dict)  # step id -> role
    gate_role: str | None = None  # who lets the run leave its unattended phases (None: anyone)
    phase: str | None = None  # the phase the run is in

    def on_phase(self, phase: str) -> None:
        self.phase = phase

    @property
    def unattended_now(self) -> bool:
        return self.phase in self.unattended

    def gate_before(self, runbook: Runbook, phase: Phase) -> bool:
        """Whether `phase` is the first after the last unattended one (it waits for the gate)."""
        names = [p.name for p in runbook.phases]
        last = max((i for i, name in enumerate(names) if name in self.unattended), default=None)
        return last is not None and last + 1 < len(names) and names[last + 1] == phase.name

    def unattended_answer(self, question: Question) -> Answer:
        """The defaults, when every field has one; Unanswered naming the step otherwise."""
        missing = [f.name for f in question.fields if f.default is MISSING]
        if missing or not question.fields:
            raise Unanswered(self._nobody(question.step, "waits for a person's answer"
                                          + (f" ({', '.join(missing)} without a default)" if missing else "")))
        return Answer({f.name: f.default for f in question.fields}, by=self.name, waited=0.0)

    def unattended_approval(self, step: str) -> Unanswered:
        return Unanswered(self._nobody(step, "waits for an approval"))

    def _nobody(self, step: str, what: str) -> str:
        return f"step {step} {what}, but phase {self.phase} runs unattended ({self.name}): nobody is asked"


def policy_of(spec: Mapping[str, Any] | None, name: str) -> RunPolicy | None:
    """A RunPolicy from its plain form ({unattended, approvals, gate_role}); None when empty."""
    if not spec or not (spec.get("unattended") or spec.get("approvals")):
        return None
    return RunPolicy(name, frozenset(spec.get("unattended") or ()), dict(spec.get("approvals") or {}),
                     spec.get("gate_role"))
