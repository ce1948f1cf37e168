"""Prometheus's HTTP API: the request of a PromQL query (instant or range) and what its
answer means: one `{labels, value}` per series (a range adds `values`), or Prometheus's
own error message. The request goes through the HTTP executor like any other (live), or
is answered by the simulated world (drill), and is read here in both cases.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import urlencode

from .base import Result

DEFAULT_POINTS = 60  # a range query without `step` asks for about this many points


class Query(NamedTuple):
    """A rendered PromQL query: instant at `end`, or over [end - range, end] every `step`."""

    text: str
    end: float
    range: float | None = None
    step: float | None = None

    def url(self, base: str) -> str:
        """The API URL under the connection's base URL (which may carry a path prefix)."""
        root = base.rstrip("/")
        if self.range is None:
            return f"{root}/api/v1/query?" + urlencode({"query": self.text, "time": _stamp(self.end)})
        step = self.step or max(1.0, self.range / DEFAULT_POINTS)
        return f"{root}/api/v1/query_range?" + urlencode({
            "query": self.text, "start": _stamp(self.end - self.range), "end": _stamp(self.end),
            "step": f"{step:g}"})


def _stamp(t: float) -> str:
    return f"{t:.3f}"


class Answer(NamedTuple):
    """What a query came to: the series, or why there are none (error is Prometheus's)."""

    series: list[dict[str, Any]]
    error: str | None = None

    def results(self) -> dict[str, Any]:
        """The names a promql step's checks read: `series`, `value` (exactly one series:
        its value, else None) and `empty`."""
        only = self.series[0]["value"] if len(self.series) == 1 else None
        return {"series": self.series, "value": only, "empty": not self.series}


def read_answer(result: Result) -> Answer:
    """The series of an API response, or the error: Prometheus's own message when it
    sent one (a bad query, a timeout), else what went wrong with the request."""
    data = _json(result.body if result.body is not None else result.stdout)
    if isinstance(data, Mapping) and data.get("status") == "error":
        kind, message = data.get("errorType"), data.get("error")
        return Answer([], f"{kind}: {message}" if kind else str(message))
    if not result.ok:
        return Answer([], result.error or "the request failed")
    if not isinstance(data, Mapping) or not isinstance(data.get("data"), Mapping):
        return Answer([], "the answer is not Prometheus's API (no `data` in a JSON object): "
                          "is the URL a Prometheus?")
    return _series(data["data"])


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except (ValueError, RecursionError):
        return None


def _series(data: Mapping[str, Any]) -> Answer:
    kind, result = data.get("resultType"), data.get("result")
    if kind in ("scalar", "string") and isinstance(result, list) and len(result) == 2:
        return Answer([{"labels": {}, "value": _number(result[1]) if kind == "scalar" else result[1]}])
    if kind not in ("vector", "matrix") or not isinstance(result, list):
        return Answer([], f"unexpected result type {kind!r} from Prometheus")
    return Answer([_one(item, kind == "matrix") for item in result if isinstance(item, Mapping)])


def _one(item: Mapping[str, Any], matrix: bool) -> dict[str, Any]:
    labels = dict(item.get("metric") or {})
    if not matrix:
        point = item.get("value") or [None, "NaN"]
        return {"labels": labels, "value": _number(point[1])}
    values = [[float(t), _number(v)] for t, v in item.get("values") or []]
    return {"labels": labels, "value": values[-1][1] if values else math.nan, "values": values}


def _number(text: Any) -> float:
    """Prometheus sends sample values as strings ("1", "NaN", "+Inf"): as numbers."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def answer_body(series: Sequence[Mapping[str, Any]], matrix: bool, at: float) -> str:
    """A success body as Prometheus writes it, for `series` of `{labels, value}` (and
    `values` for a range): how a drill answers a query from its scenario's state."""
    result: list[dict[str, Any]] = []
    for s in series:
        labels = {str(k): str(v) for k, v in (s.get("labels") or {}).items()}
        if matrix:
            values: Any = s.get("values") or [[at, s.get("value")]]
            result.append({"metric": labels, "values": [[float(t), _text(v)] for t, v in values]})
        else:
            result.append({"metric": labels, "value": [at, _text(s.get("value"))]})
    kind = "matrix" if matrix else "vector"
    return json.dumps({"status": "success", "data": {"resultType": kind, "result": result}})


def _text(value: Any) -> str:
    number = _number(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


def format_series(series: Sequence[Mapping[str, Any]]) -> str:
    """One line per series as Prometheus's console shows it: `up{job="api"} 0`; a range's
    last value. "(no series)" for an empty result, which is a result, not a failure."""
    if not series:
        return "(no series)\n"
    lines = []
    for s in series:
        labels = dict(s.get("labels") or {})
        name = labels.pop("__name__", "")
        inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        lines.append(f"{name}{{{inner}}} {_text(s.get('value'))}")
    return "\n".join(lines) + "\n"


def targets_url(base: str) -> str:
    """The active scrape targets (the targets API)."""
    return f"{base.rstrip('/')}/api/v1/targets?state=active"


def read_targets(result: Result, labels: Mapping[str, str]) -> tuple[dict[str, Any], str | None]:
    """`targets` (those with `labels`), `down` and `empty`; or why there are none."""
    data = _json(result.body if result.body is not None else result.stdout)
    if isinstance(data, Mapping) and data.get("status") == "error":
        return {}, f"{data.get('errorType')}: {data.get('error')}"
    if not result.ok:
        return {}, result.error or "the request failed"
    active = data.get("data", {}).get("activeTargets") if isinstance(data, Mapping) else None
    if not isinstance(active, list):
        return {}, "the answer is not Prometheus's targets API: is the URL a Prometheus?"
    targets = [_target(t) for t in active if isinstance(t, Mapping)]
    targets = [t for t in targets if all(t["labels"].get(k) == v for k, v in labels.items())]
    targets.sort(key=lambda t: (t["scrape_pool"], t["scrape_url"]))
    return {"targets": targets, "down": [t for t in targets if t["health"] != "up"], "empty": not targets}, None


def _target(data: Mapping[str, Any]) -> dict[str, Any]:
    return {"labels": {str(k): str(v) for k, v in (data.get("labels") or {}).items()},
            "health": str(data.get("health") or "unknown"), "last_error": str(data.get("lastError") or ""),
            "last_scrape": data.get("lastScrape"), "scrape_url": str(data.get("scrapeUrl") or ""),
            "scrape_pool": str(data.get("scrapePool") or "")}


def targets_body(targets: Sequence[Mapping[str, Any]]) -> str:
    """A targets API answer for `targets` of `{labels, health, last_error}`: how a drill
    answers from its scenario's state."""
    active = [{"labels": {str(k): str(v) for k, v in (t.get("labels") or {}).items()},
               "health": str(t.get("health", "up")), "lastError": str(t.get("last_error") or ""),
               "scrapeUrl": str(t.get("scrape_url") or ""),
               "scrapePool": str(t.get("scrape_pool") or (t.get("labels") or {}).get("job") or ""),
               "lastScrape": t.get("last_scrape")} for t in targets]
    return json.dumps({"status": "success", "data": {"activeTargets": active, "droppedTargets": []}})


def format_targets(targets: Sequence[Mapping[str, Any]]) -> str:
    """One line per target: `down api 127.0.0.1:9 connection refused`."""
    if not targets:
        return "(no targets)\n"
    lines = []
    for t in targets:
        error = f"  {t['last_error']}" if t["last_error"] else ""
        lines.append(f"{t['health']:<7} {t['scrape_pool']} {t['labels'].get('instance', t['scrape_url'])}{error}")
    return "\n".join(lines) + "\n"
