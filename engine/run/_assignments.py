"""Assignments: a `set:` step's values, and what a person's answers `sets`. Vars change
in the run's state; `incident.impact` and `incident.urgency` change the priority, which
is journaled with who changed it and why.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from engine.language.model import SetSpec, Step
from engine.templates import templating

from ._driver import Driver, RunView
from .attempt import Attempt
from .events import PriorityChanged
from .state import priority_of


def set_values(d: Driver, step: Step, sid: str, spec: SetSpec, number: int, extra: dict[str, Any],
               timeout: float | None) -> Attempt:
    """A `set:` step: its values rendered, then assigned (`outputs` holds them)."""
    ctx = d.context(extra)
    values = {k: templating.render_value(v, ctx, where=d.where(step, "set", k))
              for k, v in spec.values.items()}
    shown = _shown_values(d, spec, values, extra)
    changes = {(k if k.startswith("incident.") else f"vars.{k}"): v for k, v in values.items()}
    apply_set(d.r, step, changes, by=None, role=None)
    return Attempt(True, outputs=values, shown_outputs=shown)


def _shown_values(d: Driver, spec: SetSpec, values: dict[str, Any], extra: dict[str, Any],
                  ) -> dict[str, Any] | None:
    """How the values of a `set:` are shown; a var a secret went into is *** from now on."""
    if not d.shown.active:
        return None
    ctx = d.shown.context(extra)
    shown = {k: d.shown.value(values[k], partial(templating.render_value, v, ctx))
             for k, v in spec.values.items()}
    for k, v in shown.items():
        if not k.startswith("incident."):
            d.r.state.shown_vars[k] = v
    return shown


def apply_set(r: RunView, step: Step, changes: Mapping[str, Any], *, by: str | None, role: str | None) -> None:
    """Assign vars and incident fields; a priority change is journaled with who and why."""
    state = r.state
    incident = state.incident
    before = incident.priority
    for key, value in changes.items():
        if key.startswith("vars."):
            state.vars[key[5:]] = value
        elif key == "incident.impact":
            incident.impact = str(value)
        elif key == "incident.urgency":
            incident.urgency = str(value)
    if any(k.startswith("incident.") for k in changes):
        incident.priority = priority_of(r.runbook, incident.impact, incident.urgency)
        r.bus.emit(PriorityChanged(incident.impact, incident.urgency, incident.priority, before,
                                   by, role, f"{r.prefix}{step.id}", f"set by step {step.id}"))
