"""The steps that choose the way a run goes: a `switch:` runs the steps of the case its
expression picks (else those of `default:`), an `end:` step ends the run with an outcome
and a reason, and a refused approval's `on_refuse:` skips the step, ends the run, or runs
other steps instead. A run ends through `Driver.stop`, which the runner raises once the
step that decided it is recorded, so rollbacks and escalation rules follow as for any
run that ends with that outcome.
"""

from __future__ import annotations

from typing import Any

from engine.language.model import EndSpec, OnRefuse, Step, SwitchSpec
from engine.templates import templating

from ._block import run_steps
from ._driver import Driver
from .attempt import Attempt, StepStop
from .events import StepOutput


def switch(d: Driver, step: Step, sid: str, spec: SwitchSpec[Step], number: int, extra: dict[str, Any],
           timeout: float | None) -> Attempt:
    """The steps of the case the expression's value picks (`default:` when none does)."""
    value = templating.evaluate(spec.on, d.context(extra), where=d.where(step, "switch"))
    case = spec.pick(value)
    taken = "default" if case is None else str(case.value)
    steps = case.steps if case is not None else spec.default or ()
    ran = "" if steps else " (nothing to run)"
    d.r.bus.emit(StepOutput(sid, "info", f"{spec.on} is {value!r}: case {taken}{ran}", None))
    attempt = inside(d, sid, steps)
    attempt.outputs, attempt.extra = {"case": taken}, {"case": taken}
    return attempt


def inside(d: Driver, sid: str, steps: tuple[Step, ...]) -> Attempt:
    """Steps that run as part of step `sid` (its events name it as their block)."""
    saved = d.within
    d.within = (sid, saved[1] if saved is not None else None)
    try:
        return run_steps(d, steps)
    finally:
        d.within = saved


def end(d: Driver, step: Step, sid: str, spec: EndSpec, number: int, extra: dict[str, Any],
        timeout: float | None) -> Attempt:
    """An `end:` step: the run ends here with its outcome, for the reason it gives."""
    return ending(d, sid, spec, extra, d.where(step, "end", "reason"))


def ending(d: Driver, sid: str, spec: EndSpec, extra: dict[str, Any], where: Any) -> Attempt:
    """The run ends once step `sid` is recorded: the reason is what people read (secrets ***)."""
    reason = templating.render(spec.reason, d.seen(extra), where=where)
    d.r.bus.emit(StepOutput(sid, "info", f"the run ends {spec.outcome}: {reason}", None))
    d.stop = StepStop(spec.outcome, reason, sid)
    return Attempt(True, extra={"outcome": spec.outcome, "reason": reason})


def refused(d: Driver, step: Step, sid: str, refuse: OnRefuse[Step], why: str,
            extra: dict[str, Any]) -> Attempt:
    """A refused approval's `on_refuse:` (the step itself does not run)."""
    if refuse.end is not None:
        return ending(d, sid, refuse.end, extra, d.where(step, "confirm", "on_refuse", "end", "reason"))
    if refuse.steps:
        d.r.bus.emit(StepOutput(sid, "info", f"{why}: running its on_refuse steps instead", None))
        return inside(d, sid, refuse.steps)
    return Attempt(True)
