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

from typing import Any

from engine.executors.prometheus import Query, format_series, format_targets, read_answer, read_targets, targets_url
from engine.language.duration import format_duration
from engine.language.model import Step
from engine.language.monitoring import PromqlSpec, ScrapeTargetsSpec
from engine.templates import templating

from ._connections import Unusable, answered, endpoint, find, send
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
        point = endpoint(d, find(r.runbook, "prometheus", spec.prometheus), extra)
    except Unusable as exc:
        return Attempt(False, str(exc))
    query = Query(text, r.clock.now(), spec.range, spec.step)
    result = send(d, sid, "promql", point, ("GET", query.url(point.url), None), text, number, timeout)
    answer = read_answer(result)
    return answered(d, sid, point, result, answer.error, format_series(answer.series), answer.results())


def scrape_targets(d: Driver, step: Step, sid: str, spec: ScrapeTargetsSpec, number: int, extra: dict[str, Any],
                   timeout: float | None) -> Attempt:
    """A `scrape_targets:` step: the targets with its labels, their health and last error."""
    ctx = d.context(extra)
    labels = {k: templating.render(v, ctx, where=d.where(step, "scrape_targets", "labels", k))
              for k, v in spec.labels.items()}
    try:
        point = endpoint(d, find(d.r.runbook, "prometheus", spec.prometheus), extra)
    except Unusable as exc:
        return Attempt(False, str(exc))
    shown = ", ".join(f"{k}={v}" for k, v in labels.items()) or "all"
    result = send(d, sid, "scrape_targets", point, ("GET", targets_url(point.url), None), shown, number, timeout)
    found, error = read_targets(result, labels)
    return answered(d, sid, point, result, error, format_targets(found.get("targets", [])), found)


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
