"""A block's background helpers (a port-forward, a tunnel): started before its first step
(per item with `for_each`, so a helper may forward to the item's pod), ready-checked,
watched after each step, and stopped when the block ends however it ends (success,
failure, Ctrl-C, its timeout); each start and stop journaled. `Services.background`
starts them: processes on this machine in a live run, simulated ones in a drill.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.errors import TemplateError
from engine.executors.background import LocalHelpers, Ready
from engine.language.flow import Background
from engine.language.model import Step
from engine.templates import templating

from ._driver import Driver
from ._shown import visible
from .attempt import Attempt
from .events import BackgroundStarted, BackgroundStopped, StepOutput

OUTPUT_TAIL = 2000  # characters of a helper's output journaled and quoted when it fails

Alive = Callable[[], "str | None"]  # None while every helper runs; else why the block must fail


@dataclass
class _Running:
    spec: Background
    helper: Any
    died: bool = False


def with_helpers(d: Driver, sid: str, step: Step, specs: tuple[Background, ...], extra: dict[str, Any],
                 body: Callable[[Alive], Attempt]) -> Attempt:
    """Run `body` with the block's helpers running; they are stopped whatever happens."""
    running: list[_Running] = []
    try:
        for number, spec in enumerate(specs):
            error = _start(d, sid, step, number, spec, extra, running)
            if error is not None:
                return Attempt(False, error)
        return body(lambda: _dead(d, sid, running))
    finally:
        for one in reversed(running):
            _stop(d, sid, one)


def _start(d: Driver, sid: str, step: Step, number: int, spec: Background, extra: dict[str, Any],
           running: list[_Running]) -> str | None:
    ctx = d.r.state.context(**visible(extra))
    try:
        command = templating.render(spec.run, ctx, shell=True, where=d.where(step, "background", number, "run"))
        # The runbook's `defaults.env` (a KUBECONFIG, a proxy) reaches its helpers as its commands.
        env = {k: templating.render(v, ctx, where=f"defaults.env.{k}") for k, v in d.r.runbook.defaults.env.items()}
    except TemplateError as exc:
        return f"background helper {spec.id}: {exc}"
    starter = d.r.services.background or LocalHelpers()
    try:
        helper = starter.start(command, spec.id, env)
    except (OSError, ValueError) as exc:
        d.r.bus.emit(BackgroundStarted(sid, spec.id, command, error=f"cannot start: {exc}"))
        return f"background helper {spec.id} cannot start: {exc}"
    running.append(_Running(spec, helper))
    ready = Ready(spec.port, spec.output)
    why = helper.wait_ready(ready, spec.timeout)
    d.r.bus.emit(BackgroundStarted(sid, spec.id, command, helper.pid, ready.describe(), why))
    if why is not None:
        return f"background helper {spec.id} {why}{_quoted(helper.output)}"
    d.r.bus.emit(StepOutput(sid, "info", f"[background] {spec.id} running ({ready.describe()}): {command}"))
    return None


def _dead(d: Driver, sid: str, running: list[_Running]) -> str | None:
    for one in running:
        code = one.helper.exit_code()
        if code is not None and not one.died:
            one.died = True
            return (f"background helper {one.spec.id} exited with code {code} while the block ran"
                    f"{_quoted(one.helper.output)}")
    return None


def _stop(d: Driver, sid: str, one: _Running) -> None:
    died = one.died or one.helper.exit_code() is not None
    code = one.helper.stop()
    output = one.helper.output[-OUTPUT_TAIL:]
    d.r.bus.emit(BackgroundStopped(sid, one.spec.id, code, died, output))
    if not died:
        d.r.bus.emit(StepOutput(sid, "info", f"[background] {one.spec.id} stopped"))


def _quoted(output: str) -> str:
    tail = output.strip()[-OUTPUT_TAIL:]
    return f": {tail}" if tail else " (it printed nothing)"
