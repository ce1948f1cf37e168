"""What one try at a step's action came to, and the stop that ends a run after a step.

An `Attempt` is the outcome of one action (one attempt, or one poll of `until`): a
command's Result, the hosts of a fan-out, a person's answers, the values a `set:`
assigned or an included runbook's outcome all arrive as one, and the step's record is
filled from the last. `StepStop` is raised when the run must end after a step.
"""

# Annotations are evaluated (no `from __future__ import annotations`): `dataclass` checks
# each one given as text against patterns (ClassVar, InitVar) at every start.
from dataclasses import dataclass, field
from typing import Any

from engine.executors.base import Result


class StepStop(Exception):
    """The run must stop after this step: outcome and why."""

    def __init__(self, outcome: str, reason: str, step: str | None = None) -> None:
        super().__init__(reason)
        self.outcome, self.reason, self.step = outcome, reason, step


@dataclass
class Attempt:
    """The outcome of one action (one attempt or one poll)."""

    ok: bool
    error: str | None = None
    result: Result | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    shown_outputs: dict[str, Any] | None = None  # the outputs as shown, when secrets went into them
    cancelled: bool = False
    refused: bool = False  # an approval was refused (here, or inside an included runbook)
    expect_false: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    tries: int = 1  # actions run (polls of `until` count one each): `attempt` counts them
