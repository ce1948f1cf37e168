"""The Alertmanager steps: `alert` (the alerts matching a name, labels or a fingerprint:
`until: cleared` waits for one to clear), `silence` (a silence with author, comment and
duration; the run's id goes into the comment) and `unsilence` (expire it: a rollback,
or once the alert has cleared). Requests go through the run's HTTP executor (live) or the
simulated world (drill); executors/alertmanager.py reads the answers.
"""

from __future__ import annotations

import getpass
from typing import Any

from engine.executors import alertmanager as api
from engine.language.duration import format_duration
from engine.language.model import Step
from engine.language.monitoring import AlertSpec, Matcher, SilenceSpec, UnsilenceSpec
from engine.templates import templating

from ._connections import Unusable, answered, endpoint, find, send
from ._driver import Driver
from .attempt import Attempt


def _matchers(d: Driver, step: Step, kind: str, key: str, found: tuple[Matcher, ...],
              extra: dict[str, Any]) -> tuple[Matcher, ...]:
    ctx = d.context(extra)
    return tuple(m._replace(value=templating.render(m.value, ctx, where=d.where(step, kind, key, m.at)))
                 for m in found)


def _alert_matchers(d: Driver, step: Step, spec: AlertSpec, extra: dict[str, Any]) -> tuple[Matcher, ...]:
    out = _matchers(d, step, "alert", "labels", spec.matchers, extra)
    if spec.name:
        where = d.where(step, "alert") if spec.short else d.where(step, "alert", "name")
        out = (Matcher("alertname", "=", templating.render(spec.name, d.context(extra), where=where)), *out)
    return out


def alert(d: Driver, step: Step, sid: str, spec: AlertSpec, number: int, extra: dict[str, Any],
          timeout: float | None) -> Attempt:
    """An `alert:` step: which alerts match, once (`until: cleared` polls it)."""
    found = _alert_matchers(d, step, spec, extra)
    fingerprint = templating.render(spec.fingerprint, d.context(extra), where=d.where(step, "alert", "fingerprint")) \
        if spec.fingerprint else None
    try:
        point = endpoint(d, find(d.r.runbook, "alertmanager", spec.alertmanager), extra)
    except Unusable as exc:
        return Attempt(False, str(exc))
    shown = " ".join([*(str(m) for m in found), *([f"fingerprint={fingerprint}"] if fingerprint else [])])
    result = send(d, sid, "alert", point, ("GET", api.alerts_url(point.url, found), None), shown, number, timeout)
    answer = api.read_alerts(result, fingerprint)
    return answered(d, sid, point, result, answer.error, _alert_lines(answer.results.get("alerts", [])),
                    answer.results)


def _alert_lines(alerts: list[dict[str, Any]]) -> str:
    """One line per alert: `active TargetDown 4f1c... instance=..., job=api`."""
    if not alerts:
        return "cleared: no alert matches\n"
    return "".join(f"{a['state']} {a['name']} {a['fingerprint']} "
                   + ", ".join(f"{k}={v}" for k, v in sorted(a["labels"].items()) if k != "alertname") + "\n"
                   for a in alerts)


def silence(d: Driver, step: Step, sid: str, spec: SilenceSpec, number: int, extra: dict[str, Any],
            timeout: float | None) -> Attempt:
    """A `silence:` step: a new silence from now for its duration."""
    r = d.r
    found = _matchers(d, step, "silence", "matchers", spec.matchers, extra)
    ctx = d.context(extra)
    comment = templating.render(spec.comment, ctx, where=d.where(step, "silence", "comment"))
    author = templating.render(spec.author, ctx, where=d.where(step, "silence", "author")) if spec.author \
        else _operator(r.state.mode)
    try:
        point = endpoint(d, find(r.runbook, "alertmanager", spec.alertmanager), extra)
    except Unusable as exc:
        return Attempt(False, str(exc))
    starts = r.clock.now()
    body = api.silence_body(found, starts, starts + spec.duration, author,
                            f"{comment} (runbook {r.runbook.id}, run {r.state.run_id})")
    shown = ", ".join(map(str, found))
    result = send(d, sid, "silence", point, ("POST", api.silences_url(point.url), body), shown, number, timeout)
    answer = api.read_silence(result, starts + spec.duration)
    line = f"silence {answer.results.get('silence_id')} for {format_duration(spec.duration)}: {shown}\n"
    return answered(d, sid, point, result, answer.error, line, answer.results)


def _operator(mode: str) -> str:
    if mode != "live":
        return "drill"
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return "runbook"


def unsilence(d: Driver, step: Step, sid: str, spec: UnsilenceSpec, number: int, extra: dict[str, Any],
              timeout: float | None) -> Attempt:
    """An `unsilence:` step: expire the silence a step created (or a silence id)."""
    r = d.r
    silence_id, name = _target(d, step, spec, extra)
    if not silence_id:
        with d.sink(sid) as sink:
            sink.output("stdout", f"no silence to expire: step {spec.step} created none\n".encode(), None)
        return Attempt(True, None)
    try:
        point = endpoint(d, find(r.runbook, "alertmanager", name), extra)
    except Unusable as exc:
        return Attempt(False, str(exc))
    result = send(d, sid, "unsilence", point, ("DELETE", api.silence_url(point.url, silence_id), None),
                  silence_id, number, timeout)
    answer = api.read_expiry(result, silence_id)
    return answered(d, sid, point, result, answer.error, f"expired silence {silence_id}\n", answer.results)


def _target(d: Driver, step: Step, spec: UnsilenceSpec, extra: dict[str, Any]) -> tuple[str | None, str | None]:
    """The silence id to expire, and the connection to expire it on."""
    if spec.step is None:
        where = d.where(step, "unsilence") if spec.short else d.where(step, "unsilence", "silence")
        return templating.render(spec.silence, d.context(extra), where=where).strip(), spec.alertmanager
    record = d.r.state.steps.get(spec.step)
    made = record.results.get("silence_id") if record is not None else None
    origin = next((s.spec for s in d.r.runbook.steps(rollbacks=True) if s.id == spec.step), None)
    name = spec.alertmanager or (origin.alertmanager if isinstance(origin, SilenceSpec) else None)
    return made, name


def started(d: Driver, step: Step, spec: AlertSpec | SilenceSpec | UnsilenceSpec, extra: dict[str, Any]) -> str:
    """The step's line as it starts: `alert [am]: alertname="TargetDown" job="api"`."""
    name = spec.alertmanager
    try:
        name = find(d.r.runbook, "alertmanager", name).name
    except Unusable:
        pass  # the step says why when it runs
    if isinstance(spec, AlertSpec):
        what = " ".join(str(m) for m in _alert_matchers(d, step, spec, extra)) or "fingerprint"
    elif isinstance(spec, SilenceSpec):
        what = ", ".join(map(str, _matchers(d, step, "silence", "matchers", spec.matchers, extra))) + \
            f" for {format_duration(spec.duration)}"
    else:
        what = f"the silence of step {spec.step}" if spec.step else "a silence id"
    return f"{step.kind} [{name or 'alertmanager'}]: {what}"  # the bus masks secrets in it
