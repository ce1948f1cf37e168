"""One attempt at a step: its action once, or polled until `until` holds (every `every`,
within the step's timeout); then its `outputs` computed and its `expect` checked. The
retries between attempts are the driver's (_step.py); both announce the next try with
a step.attempt event.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

from engine.errors import TemplateError
from engine.executors.base import Result, parse_json
from engine.language.duration import format_duration
from engine.language.model import Step
from engine.language.monitoring import KIND_RESULTS
from engine.templates import templating

from ._commands import next_try
from ._driver import Driver
from ._kinds import act
from ._output import masked_tail
from ._shown import visible
from .attempt import Attempt
from .events import StepAttempt

DEFAULT_EVERY = 5.0
ATTEMPT_TAIL = 1024  # characters of output a step.attempt keeps


def one_attempt(d: Driver, step: Step, sid: str, number: int, extra: dict[str, Any], first: int = 1) -> Attempt:
    """Attempt `number` of the step: the action, polled while `until` is false. `first` is
    the try the action starts at (`attempt` in templates: every retry and poll counts);
    the Attempt's `tries` says how many tries it took."""
    r = d.r
    timeout = r.timeout_for(step)
    if step.until is None:
        now = {**extra, "attempt": first}
        tried = act(d, step, sid, first, now, timeout)
        # check()'s own test first: most steps have neither outputs nor expect (no call).
        return check(d, step, tried, now) if tried.ok and (step.outputs or step.expect is not None) else tried
    deadline = r.clock.monotonic() + timeout if timeout else None
    every = step.every or DEFAULT_EVERY
    poll = 0
    while True:
        poll += 1
        left = deadline - r.clock.monotonic() if deadline else None
        now = {**extra, "attempt": first + poll - 1}
        tried = act(d, step, sid, first + poll - 1, now, left)
        tried.tries = poll
        if tried.cancelled or (tried.error and tried.result is None and not tried.hosts):
            return tried  # template errors and the like: polling cannot fix them
        # A query or an Alertmanager that failed this time has no value to judge: not yet.
        done = False if _unanswered(step, tried) else _until(d, step, tried, now)
        if done is None:
            return replace(tried, ok=False)
        if done:
            tried.ok, tried.error = True, None
            return check(d, step, tried, now)
        left = deadline - r.clock.monotonic() if deadline else None
        if left is not None and left < every:
            last = f"; the last poll failed: {tried.error}" if _unanswered(step, tried) else ""
            return replace(tried, ok=False, error=f"until `{step.until}` was still false after "
                           f"{poll} poll(s) in {format_duration(timeout or 0)}{last}")
        next_command = next_try(d, step, {**extra, "attempt": first + poll})
        r.bus.emit(attempt_event(d, sid, poll, tried, every, polling=True, command=next_command))
        if not r.sleep(every):
            return Attempt(False, r.interruption(), cancelled=True, tries=poll)


def _unanswered(step: Step, tried: Attempt) -> bool:
    """A monitoring step's request failed (the server down, a 5xx): its `value`, `cleared`...
    do not exist this time."""
    return not tried.ok and step.kind in KIND_RESULTS and not (tried.result and tried.result.extra)


def _until(d: Driver, step: Step, tried: Attempt, extra: dict[str, Any]) -> bool | None:
    ctx = _current(d, step, tried, extra)
    try:
        tried.outputs = _outputs(d, step, ctx, tried, extra)
        ctx["outputs"] = tried.outputs
        return bool(templating.evaluate(step.until or "true", ctx, where=d.where(step, "until")))
    except TemplateError as exc:
        tried.error = str(exc) + _no_value(tried)
        return None


def check(d: Driver, step: Step, tried: Attempt, extra: dict[str, Any]) -> Attempt:
    """outputs, then expect, on a successful action."""
    if not step.outputs and step.expect is None:
        return tried  # nothing to compute: spare building the context
    ctx = _current(d, step, tried, extra)
    try:
        tried.outputs = _outputs(d, step, ctx, tried, extra) if not tried.outputs else tried.outputs
        ctx["outputs"] = tried.outputs
        if step.expect is not None and not templating.evaluate(step.expect, ctx, where=d.where(step, "expect")):
            return replace(tried, ok=False, expect_false=True, error=f"expect `{step.expect}` was false")
    except TemplateError as exc:
        return replace(tried, ok=False, error=str(exc) + _no_value(tried))
    return tried


def _no_value(tried: Attempt) -> str:
    """Why `value` is none, when it is: a check that failed on it was probably not
    written for an empty result (or for several series)."""
    extra = tried.result.extra if tried.result else {}
    if "series" not in extra or extra.get("value") is not None:
        return ""
    count = len(extra["series"])
    if not count:
        return " (the query returned no series, so `value` is none: test `empty` first)"
    return f" (the query returned {count} series, so `value` is none: read `series`)"


def _outputs(d: Driver, step: Step, ctx: dict[str, Any], tried: Attempt, extra: dict[str, Any]) -> dict[str, Any]:
    outputs = {name: templating.render_value(text, ctx, where=d.where(step, "outputs", name))
               for name, text in step.outputs.items()}
    if d.shown.active:
        seen = _current(d, step, replace(tried, outputs={}), extra, shown=True)
        tried.shown_outputs = {name: d.shown.value(outputs[name], partial(templating.render_value, text, seen))
                               for name, text in step.outputs.items()}
    return outputs


def _current(d: Driver, step: Step, tried: Attempt, extra: dict[str, Any], *, shown: bool = False,
             ) -> dict[str, Any]:
    """The context of the step's own checks: its stdout, exit code, status, json, outputs..."""
    res = tried.result
    if res is None:
        current = _without_result(tried)
    else:
        current = {
            "stdout": res.stdout, "stderr": res.stderr, "exit_code": res.exit_code,
            "status": res.status if res.status is not None else ("ok" if tried.ok else "failed"),
            "body": res.body, "headers": dict(res.headers) if res.headers else {},
            "json": _lazy_json(res) if d.r.uses_json else None,
            "outputs": tried.outputs, "answers": tried.answers, "hosts": tried.hosts, "duration": res.duration,
        }
        if res.extra:
            current.update(res.extra)  # what the step's kind adds: a promql step's `value`...
    if shown:
        return d.shown.context(extra, **d.shown.current(current, tried.shown_outputs))
    return d.r.state.context(**visible(extra), **current)


def _without_result(tried: Attempt) -> dict[str, Any]:
    """The names of a try that has no Result of its own: a fan-out's (with one host, the
    host's output is the step's), a person's answers, a `set:`."""
    only = next(iter(tried.hosts.values())) if len(tried.hosts) == 1 else {}
    return {"stdout": only.get("stdout", ""), "stderr": only.get("stderr", ""), "exit_code": only.get("exit_code"),
            "status": "ok" if tried.ok else "failed", "body": None, "headers": {}, "json": None,
            "outputs": tried.outputs, "answers": tried.answers, "hosts": tried.hosts, "duration": 0.0}


def attempt_event(d: Driver, sid: str, number: int, tried: Attempt, next_in: float, *,
                  polling: bool, command: str | None = None) -> StepAttempt:
    """step.attempt: an attempt (or a poll) that did not succeed, and when the next one is
    (with the command it will run, when that changes from try to try)."""
    res = tried.result
    masker = d.r.masker
    return StepAttempt(sid, number, False, res.exit_code if res else None, tried.error,
                       res.duration if res else 0.0, next_in, polling,
                       masked_tail(masker, res.stdout, ATTEMPT_TAIL) if res else "",
                       masked_tail(masker, res.stderr, ATTEMPT_TAIL) if res else "", res.status if res else None,
                       command)


def _lazy_json(res: Result | None) -> Any:
    if res is None:
        return None
    return parse_json(res.body if res.body is not None else res.stdout)
