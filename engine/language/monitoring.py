"""Prometheus and Alertmanager in the runbook: the servers a runbook talks to
(`connections:`) and the step kinds that use them (`promql`; `alert`, `silence`,
`unsilence`), as frozen records built from schema-valid data.

The model (model.py) lists these specs among its step kinds; this module imports none of
it, so both can be read alone.
"""

# Annotations are evaluated (no `from __future__ import annotations`): typing.NamedTuple
# makes a ForwardRef of each one given as text, compiled and compared at every start
# (2.5M instructions of a run's start-up for these three modules). Only a name defined
# further down is written as text.

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from engine.templates.patterns import deferred

from .duration import format_duration, parse_duration

CONNECTION_TYPES = ("prometheus", "alertmanager")
# Which connection type each step kind talks to (its spec names one in the same key).
KIND_CONNECTION: Mapping[str, str] = MappingProxyType({
    "promql": "prometheus", "scrape_targets": "prometheus",
    "alert": "alertmanager", "silence": "alertmanager", "unsilence": "alertmanager",
})
# What each kind's own checks (outputs, expect, until) read beside stdout, json, status...;
# later steps read the same under `steps.<id>`.
KIND_RESULTS: Mapping[str, frozenset[str]] = MappingProxyType({
    "promql": frozenset({"series", "value", "empty"}),
    "scrape_targets": frozenset({"targets", "down", "empty"}),
    "alert": frozenset({"alerts", "firing", "cleared"}),
    "silence": frozenset({"silence_id", "ends_at"}),
    "unsilence": frozenset({"silence_id"}),
})
STEP_ID = deferred(r"^[a-z][a-z0-9_]*$")
_MATCHER = deferred(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|([^"\s]*))\s*$', re.DOTALL)
_NONE: Mapping[str, Any] = MappingProxyType({})


class Tls(NamedTuple):
    """TLS settings of a connection (the keys of Prometheus's own `tls_config`)."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None
    insecure_skip_verify: bool = False


class BasicAuth(NamedTuple):
    username: str  # a template
    password: str | None = None  # a template
    password_file: str | None = None
    password_env: str | None = None


class Connection(NamedTuple):
    """A Prometheus server. `url`, `bearer_token`, the basic-auth user and password, and
    header values are templates, rendered when a step uses them."""

    name: str
    type: str
    url: str
    bearer_token: str | None = None
    bearer_token_file: str | None = None
    bearer_token_env: str | None = None
    basic_auth: BasicAuth | None = None
    tls: Tls | None = None
    headers: Mapping[str, str] = _NONE
    timeout: float | None = None
    file: str | None = None  # the connections file that defined it; None: the runbook


class PromqlSpec(NamedTuple):
    """A PromQL query: instant, or over `range` seconds ending now, every `step` seconds."""

    query: str
    prometheus: str | None = None
    range: float | None = None
    step: float | None = None
    short: bool = True  # written as `promql: QUERY` (the query's path is then the step key)

    def summary(self) -> str:
        how = f"range {format_duration(self.range)}" if self.range else "instant"
        return f"{how} on {self.prometheus or 'prometheus'}: {self.query}"


class ScrapeTargetsSpec(NamedTuple):
    """Prometheus's scrape targets (the targets API), those with `labels` only."""

    labels: Mapping[str, str] = _NONE
    prometheus: str | None = None


class Matcher(NamedTuple):
    """`name op "value"`: op is =, !=, =~ or !~; the value may hold templates."""

    name: str
    op: str
    value: str
    at: str | int = ""  # where it was written: the label's key, or the list index

    def __str__(self) -> str:
        quoted = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{quoted}"'


class AlertSpec(NamedTuple):
    """The alerts Alertmanager holds that match a name, labels or a fingerprint."""

    name: str | None = None
    matchers: tuple[Matcher, ...] = ()
    fingerprint: str | None = None
    alertmanager: str | None = None
    short: bool = False  # written as `alert: NAME`


class SilenceSpec(NamedTuple):
    matchers: tuple[Matcher, ...]
    duration: float
    comment: str
    author: str | None = None
    alertmanager: str | None = None


class UnsilenceSpec(NamedTuple):
    silence: str  # a silence step's id, or a template giving a silence id
    alertmanager: str | None = None
    short: bool = True

    @property
    def step(self) -> str | None:
        """The silence step it expires, when it names one."""
        return self.silence if STEP_ID.match(self.silence) else None


MonitoringSpec = PromqlSpec | ScrapeTargetsSpec | AlertSpec | SilenceSpec | UnsilenceSpec


def parse_matcher(text: str, at: str | int = "") -> Matcher:
    """`instance=~"10\\.0\\..*"` as a Matcher (a quoted value unescaped as PromQL does);
    the schema has checked the syntax."""
    found = _MATCHER.match(text)
    if found is None:
        return Matcher("", "=", text, at)
    name, op, quoted, bare = found.groups()
    if quoted is None:
        return Matcher(name, op, bare, at)
    return Matcher(name, op, re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), quoted), at)


def matchers(value: Any) -> tuple[Matcher, ...]:
    """A mapping (equality on each label) or a list of matcher strings."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        return tuple(Matcher(str(k), "=", _text(v), str(k)) for k, v in value.items())
    return tuple(parse_matcher(str(v), i) for i, v in enumerate(value))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _tls(data: Mapping[str, Any] | None) -> Tls | None:
    if data is None:
        return None
    return Tls(data.get("ca_file"), data.get("cert_file"), data.get("key_file"), data.get("server_name"),
               bool(data.get("insecure_skip_verify", False)))


def _basic_auth(data: Mapping[str, Any] | None) -> BasicAuth | None:
    if data is None:
        return None
    return BasicAuth(str(data["username"]), data.get("password"), data.get("password_file"),
                     data.get("password_env"))


def build_connection(name: str, data: Mapping[str, Any], file: str | None = None) -> Connection:
    """A connection from schema-valid data (`connections.NAME`)."""
    timeout = data.get("timeout")
    return Connection(
        name=name, type=data["type"], url=data["url"], bearer_token=data.get("bearer_token"),
        bearer_token_file=data.get("bearer_token_file"), bearer_token_env=data.get("bearer_token_env"),
        basic_auth=_basic_auth(data.get("basic_auth")), tls=_tls(data.get("tls")),
        headers=MappingProxyType({str(k): _text(v) for k, v in (data.get("headers") or {}).items()}),
        timeout=parse_duration(timeout) if timeout is not None else None, file=file,
    )


def build_connections(data: Mapping[str, Any] | None) -> Mapping[str, Connection]:
    """Every connection of a `connections:` mapping, by name."""
    return MappingProxyType({str(k): build_connection(str(k), v) for k, v in (data or {}).items()})


def _promql(value: Any) -> PromqlSpec:
    if isinstance(value, str):
        return PromqlSpec(value)
    range_, step = value.get("range"), value.get("step")
    return PromqlSpec(value["query"], value.get("prometheus"),
                      parse_duration(range_) if range_ is not None else None,
                      parse_duration(step) if step is not None else None, short=False)


def _alert(value: Any) -> AlertSpec:
    if isinstance(value, str):
        return AlertSpec(name=value, short=True)
    return AlertSpec(value.get("name"), matchers(value.get("labels")), value.get("fingerprint"),
                     value.get("alertmanager"))


def build_spec(data: Mapping[str, Any]) -> tuple[str, MonitoringSpec] | None:
    """The monitoring step kind of a step's data, or None when it is another kind."""
    if "promql" in data:
        return "promql", _promql(data["promql"])
    if "scrape_targets" in data:
        v = data["scrape_targets"] or {}
        labels = MappingProxyType({str(k): _text(x) for k, x in (v.get("labels") or {}).items()})
        return "scrape_targets", ScrapeTargetsSpec(labels, v.get("prometheus"))
    if "alert" in data:
        return "alert", _alert(data["alert"])
    if "silence" in data:
        v = data["silence"]
        return "silence", SilenceSpec(matchers(v["matchers"]), parse_duration(v["duration"]), v["comment"],
                                      v.get("author"), v.get("alertmanager"))
    if "unsilence" in data:
        v = data["unsilence"]
        if isinstance(v, str):
            return "unsilence", UnsilenceSpec(v)
        return "unsilence", UnsilenceSpec(v["silence"], v.get("alertmanager"), short=False)
    return None


def connection_of(spec: MonitoringSpec) -> tuple[str, str | None]:
    """The connection type a monitoring step talks to, and the name it gives (None: the
    only connection of that type)."""
    if isinstance(spec, (PromqlSpec, ScrapeTargetsSpec)):
        return "prometheus", spec.prometheus
    return "alertmanager", spec.alertmanager


def connection_problem(kind: str, name: str | None, of_kind: list[str]) -> str | None:
    """Why a step cannot find its connection (`name`, or the only one of `kind` among
    the names `of_kind`), or None when it can."""
    if name is not None:
        return None if name in of_kind else \
            f"no {kind} connection named '{name}' in `connections:` or the connections file"
    if not of_kind:
        return f"no {kind} connection: add one under `connections:` or to the connections file ($RUNBOOK_CONNECTIONS)"
    if len(of_kind) > 1:
        return f"{len(of_kind)} {kind} connections ({', '.join(of_kind)}): name one with `{kind}:`"
    return None


def template_strings(kind: str, spec: MonitoringSpec) -> list[tuple[tuple[str | int, ...], str]]:
    """Every string of a monitoring step that may hold templates, with its path under the step."""
    if isinstance(spec, PromqlSpec):
        return [((kind,) if spec.short else (kind, "query"), spec.query)]
    if isinstance(spec, ScrapeTargetsSpec):
        return [((kind, "labels", k), v) for k, v in spec.labels.items()]
    if isinstance(spec, AlertSpec):
        if spec.short:
            return [((kind,), spec.name or "")]
        out: list[tuple[tuple[str | int, ...], str]] = [((kind, "labels", m.at), m.value) for m in spec.matchers]
        return out + [((kind, key), text) for key in ("name", "fingerprint") if (text := getattr(spec, key))]
    if isinstance(spec, SilenceSpec):
        found: list[tuple[tuple[str | int, ...], str]] = [((kind, "matchers", m.at), m.value) for m in spec.matchers]
        found.append(((kind, "comment"), spec.comment))
        return found + ([((kind, "author"), spec.author)] if spec.author else [])
    if spec.step is None:
        return [((kind,) if spec.short else (kind, "silence"), spec.silence)]
    return []


def connection_strings(conn: Connection) -> list[tuple[tuple[str | int, ...], str]]:
    """Every string of a connection that may hold templates, with its path under it."""
    out: list[tuple[tuple[str | int, ...], str]] = [(("url",), conn.url)]
    if conn.bearer_token:
        out.append((("bearer_token",), conn.bearer_token))
    if conn.basic_auth is not None:
        out.append((("basic_auth", "username"), conn.basic_auth.username))
        if conn.basic_auth.password:
            out.append((("basic_auth", "password"), conn.basic_auth.password))
    out += [(("headers", k), v) for k, v in conn.headers.items()]
    return out
