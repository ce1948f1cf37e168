"""The Prometheus steps. `promql`: a PromQL query, instant or over a range, against a Prometheus
connection, through the run's HTTP executor (live) or the simulated world (drill).

What the step's checks read: `series` (one `{labels, value}` per series, `values` too for
a range), `value` (the one series' value; none for zero or several) and `empty`. Its
stdout is one line per series, as people read them; `body` and `json` are the API's
answer. An error Prometheus reports (a bad query, a timeout) fails the step with
Prometheus's own message. `scrape_targets`: the targets Prometheus scrapes, with their
health and last scrape error (`targets`, `down`, `empty`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from engine.executors.base import HttpRequest, Invocation, NullSink
from engine.executors.prometheus import Query, format_series, format_targets, read_answer, read_targets, targets_url
from engine.language.duration import format_duration
from engine.language.model import Step
from engine.language.monitoring import PromqlSpec, ScrapeTargetsSpec
from engine.templates import templating

from ._connections import Unusable, endpoint, find
from ._driver import Driver
from ._promql_text import render_query
from .attempt import Attempt


def _query_path(step: Step, spec: PromqlSpec) -> tuple[str, ...]:
    return ("promql",) if spec.short else ("promql", "query")


def started_query(d: Driver, step: Step, spec: PromqlSpec, extra: dict[str, Any]) -> str:
    """The query as it is shown as the step starts: `promql [prom]: up == 0`."""
    where = d.where(step, *_query_path(step, spec))
    query = render_query(spec.query, d.context(extra), where)
    try:
        name = find(d.r.runbook, "prometheus", spec.prometheus).name
    except Unusable:
        name = spec.prometheus or "prometheus"  # the step says why when it runs
    range_ = f" over {format_duration(spec.range)}" if spec.range else ""
    return f"promql [{name}{range_}]: {d.shown.render(spec.query, extra, query, where=where)}"


def promql(d: Driver, step: Step, sid: str, spec: PromqlSpec, number: int, extra: dict[str, Any],
           timeout: float | None) -> Attempt:
    """A `promql:` step's query, once."""
    r = d.r
    text = render_query(spec.query, d.context(extra), d.where(step, *_query_path(step, spec)))
    try:
        conn = find(r.runbook, "prometheus", spec.prometheus)
        point = endpoint(d, conn, extra)
    except Unusable as exc:
        return Attempt(False, str(exc))
    query = Query(text, r.clock.now(), spec.range, spec.step)
    request = HttpRequest(query.url(point.url), "GET", point.headers, tls=point.tls,
                          private_headers=frozenset(k.lower() for k in point.headers))
    limits = [t for t in (timeout, conn.timeout) if t]
    invocation = Invocation(sid, "promql", text, timeout=min(limits) if limits else None, http=request,
                            attempt=number)
    r.bus.barrier()
    # The raw answer is JSON for programs: people see one line per series instead.
    result = r.services.http.run(invocation, NullSink(), r.cancel)
    answer = read_answer(result)
    if answer.error is not None:
        error = answer.error if result.cancelled else f"Prometheus {conn.name} ({point.url}): {answer.error}"
        return Attempt(False, error, replace(result, ok=False, error=error), cancelled=result.cancelled)
    lines = format_series(answer.series)
    with d.sink(sid) as sink:
        sink.output("stdout", lines.encode(), None)
    return Attempt(True, None, replace(result, stdout=lines, extra=answer.results()))


def scrape_targets(d: Driver, step: Step, sid: str, spec: ScrapeTargetsSpec, number: int, extra: dict[str, Any],
                   timeout: float | None) -> Attempt:
    """A `scrape_targets:` step: the targets with its labels, their health and last error."""
    r = d.r
    ctx = d.context(extra)
    labels = {k: templating.render(v, ctx, where=d.where(step, "scrape_targets", "labels", k))
              for k, v in spec.labels.items()}
    try:
        conn = find(r.runbook, "prometheus", spec.prometheus)
        point = endpoint(d, conn, extra)
    except Unusable as exc:
        return Attempt(False, str(exc))
    request = HttpRequest(targets_url(point.url), "GET", point.headers, tls=point.tls,
                          private_headers=frozenset(k.lower() for k in point.headers))
    limits = [t for t in (timeout, conn.timeout) if t]
    shown = ", ".join(f"{k}={v}" for k, v in labels.items()) or "all"
    invocation = Invocation(sid, "scrape_targets", shown, timeout=min(limits) if limits else None, http=request,
                            attempt=number)
    r.bus.barrier()
    result = r.services.http.run(invocation, NullSink(), r.cancel)
    found, error = read_targets(result, labels)
    if error is not None:
        error = error if result.cancelled else f"Prometheus {conn.name} ({point.url}): {error}"
        return Attempt(False, error, replace(result, ok=False, error=error), cancelled=result.cancelled)
    lines = format_targets(found["targets"])
    with d.sink(sid) as sink:
        sink.output("stdout", lines.encode(), None)
    return Attempt(True, None, replace(result, stdout=lines, extra=found))


def started_targets(d: Driver, step: Step, spec: ScrapeTargetsSpec, extra: dict[str, Any]) -> str:
    """`scrape_targets [prom]: job=api` as the step starts."""
    try:
        name = find(d.r.runbook, "prometheus", spec.prometheus).name
    except Unusable:
        name = spec.prometheus or "prometheus"
    ctx = d.context(extra)
    shown = ", ".join(f"{k}={templating.render(v, ctx, where=d.where(step, 'scrape_targets', 'labels', k))}"
                      for k, v in spec.labels.items())
    return f"scrape_targets [{name}]: {shown or 'all'}"
