"""Step kinds: the registry the driver dispatches a step's action through, and the kinds
small enough to need no module of their own (`wait`, `notify`, `include`). A kind is
`action(driver, step, sid, spec, attempt number, extra, timeout) -> Attempt`; a spec
with no kind here is an error, never a silent no-op. To add a kind: its spec in the
language's model, its action here (or in a module of its own), and its entry in KINDS,
or in ELSEWHERE when most runs have no step of it: its module is imported when such a
step first runs (a one-step run starts without the Prometheus, Alertmanager and block
code).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from engine.errors import EngineError, TemplateError
from engine.language.model import (
    BlockSpec,
    EndSpec,
    HttpSpec,
    IncludeSpec,
    ManualSpec,
    NotifySpec,
    RunSpec,
    SetSpec,
    Step,
    SwitchSpec,
    WaitSpec,
)
from engine.language.monitoring import AlertSpec, PromqlSpec, ScrapeTargetsSpec, SilenceSpec, UnsilenceSpec
from engine.templates import templating

from ._assignments import set_values
from ._commands import command, http
from ._driver import Driver
from ._manual import manual
from .attempt import Attempt

Action = Callable[[Driver, Step, str, Any, int, dict[str, Any], "float | None"], Attempt]


def wait(d: Driver, step: Step, sid: str, spec: WaitSpec, number: int, extra: dict[str, Any],
         timeout: float | None) -> Attempt:
    """A `wait:` step: time passes on the run's clock (a hand-off or Ctrl-C cuts it short)."""
    r = d.r
    return Attempt(True) if r.sleep(spec.seconds) else Attempt(False, r.interruption(), cancelled=True)


def notify(d: Driver, step: Step, sid: str, spec: NotifySpec, number: int, extra: dict[str, Any],
           timeout: float | None) -> Attempt:
    """A `notify:` step's message; a `handoff:` one ends the run as escalated once delivered."""
    r = d.r
    # A message leaves the run: it is rendered as shown, secrets as ***.
    ctx = d.seen(extra)
    channel = templating.render(spec.channel, ctx, where=d.where(step, "notify", "channel")).strip()
    message = templating.render(spec.message, ctx, where=d.where(step, "notify", "message"))
    title = templating.render(spec.title, ctx, where=d.where(step, "notify", "title")) if spec.title else None
    # A hand-off that reached nobody did not happen: it must be delivered, like `required`.
    attempt = r.notify(channel, message, title=title, step=sid, budget=r.timeout_for(step),
                       required=spec.required or spec.handoff, action=spec.action)
    if spec.handoff and attempt.ok:
        r.hand_off(f"handed off to {channel} by step {sid}")
    return attempt


def include(d: Driver, step: Step, sid: str, spec: IncludeSpec, number: int, extra: dict[str, Any],
            timeout: float | None) -> Attempt:
    """An `include:` step: the other runbook runs as this step (the run does it)."""
    return d.r.include(step, spec, sid, extra)


KINDS: dict[type, Action] = {
    RunSpec: command, HttpSpec: http, ManualSpec: manual, WaitSpec: wait,
    NotifySpec: notify, SetSpec: set_values, IncludeSpec: include,
}
# Kinds whose action is imported (and added to KINDS) when a step of them first runs.
ELSEWHERE: dict[type, tuple[str, str]] = {
    PromqlSpec: ("._promql", "promql"), ScrapeTargetsSpec: ("._promql", "scrape_targets"),
    AlertSpec: ("._alertmanager", "alert"), SilenceSpec: ("._alertmanager", "silence"),
    UnsilenceSpec: ("._alertmanager", "unsilence"),
    BlockSpec: ("._block", "block"), SwitchSpec: ("._branch", "switch"), EndSpec: ("._branch", "end"),
}


def action_of(kind: type) -> Action | None:
    """The action of a spec's type; None for a type that is no step kind."""
    action = KINDS.get(kind)
    if action is None and kind in ELSEWHERE:
        module, name = ELSEWHERE[kind]
        action = KINDS[kind] = getattr(importlib.import_module(module, __package__), name)
    return action


def act(d: Driver, step: Step, sid: str, number: int, extra: dict[str, Any], timeout: float | None) -> Attempt:
    """The step's action, once; a template that cannot be rendered fails the attempt."""
    kind = type(step.spec)
    action = KINDS[kind] if kind in KINDS else action_of(kind)  # a kind seen before: no call
    if action is None:
        raise EngineError(f"step {sid}: unknown step kind {step.kind!r}")
    try:
        return action(d, step, sid, step.spec, number, extra, timeout)
    except TemplateError as exc:
        return Attempt(False, str(exc))
