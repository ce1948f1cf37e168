"""The serve config file (`runbook serve --config serve.yaml`): where runbooks are, the
store, the embedded workers, and the service's sources, routes, channels and people.

Loaded like a runbook (the YAML loader's limits and positions), validated by
schemas/serve.schema.json, then checked for what a schema cannot say (a runbook directory
that does not exist, two people of one name); every problem at once, each with its file,
line and column. What comes out is frozen records: nothing past here reads the YAML.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.language.duration import parse_duration
from engine.language.loader import Document, LoadError, load_file
from engine.language.schema import validate_as
from engine.language.serve_rules import check_serve
from engine.language.validation import ValidationFailed, load_runbook

DEFAULT_LISTEN = "127.0.0.1:8080"


@dataclass(frozen=True)
class WorkerSettings:
    """The workers `runbook serve` runs in-process (and `runbook worker`'s defaults)."""

    embedded: bool = True
    slots: int = 4
    labels: Mapping[str, str] = field(default_factory=dict)
    lease: float = 30.0
    drain_timeout: float = 30.0


@dataclass(frozen=True)
class Source:
    """Who may post to /hooks/<name>, in which format, proving it how."""

    name: str
    type: str  # alertmanager, grafana, pagerduty, generic
    auth: str | None = None  # bearer, basic, hmac
    secret_env: str | None = None  # the variable holding the token, password or key
    username: str | None = None
    header: str | None = None  # hmac: the header holding the signature (default: the type's)
    timestamp_header: str | None = None  # hmac: Grafana's timestamp header, when it sends one
    mapping: Mapping[str, Any] = field(default_factory=dict)  # generic: where the alert's fields are


@dataclass(frozen=True)
class Route:
    """Which alerts start which runbook, with what, where."""

    runbook: str
    name: str = ""
    source: str | None = None
    alertname: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    labels_match: Mapping[str, str] = field(default_factory=dict)
    inputs: Mapping[str, Any] = field(default_factory=dict)
    pool: Mapping[str, str] = field(default_factory=dict)
    once_within: float | None = None
    unattended: tuple[str, ...] = ()
    approvals: Mapping[str, str] = field(default_factory=dict)
    gate_role: str | None = None  # who lets a run leave its unattended phases


@dataclass(frozen=True)
class Person:
    name: str
    roles: tuple[str, ...] = ()
    slack: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class ConsoleSettings:
    """The web console: how long a sign-in lasts, and the header an authenticating proxy
    names people in (believed only from `proxies`, addresses or CIDR networks)."""

    session: float = 12 * 3600.0
    header: str | None = None
    proxies: tuple[str, ...] = ()
    audit_roles: tuple[str, ...] = ("auditor",)  # may read the audit page
    control_roles: tuple[str, ...] = ("incident_commander",)  # may abort and resume runs


@dataclass(frozen=True)
class ServeConfig:
    """A serve config, every path absolute."""

    file: str | None = None
    database: str | None = None
    listen: str = DEFAULT_LISTEN
    runbooks: tuple[Path, ...] = ()
    channels: Path | None = None
    workers: WorkerSettings = field(default_factory=WorkerSettings)
    sources: Mapping[str, Source] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    people: tuple[Person, ...] = ()
    slack_secret_env: str | None = None  # the variable holding the Slack app's signing secret
    slack_channel: str | None = None  # the channel of `channels` that questions are posted to
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    scenarios: tuple[Path, ...] = ()  # where a trainer picks a game day's scenario
    trainers: tuple[str, ...] = ("trainer",)  # the roles that may start and run game days

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return host or "127.0.0.1", int(port)


def load_config(path: str | os.PathLike[str] | None) -> ServeConfig:
    """The config in `path` (None: every default); UsageError for a missing file,
    ValidationFailed listing every problem, positioned, for a bad one."""
    if path is None:
        return ServeConfig()
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise UsageError(f"no such serve config: {name}")
    try:
        doc = load_file(name)
    except LoadError as exc:
        raise ValidationFailed(name, [exc.diagnostic], exc.text) from None
    problems = [*doc.problems, *validate_as(doc, "serve")]
    if not problems:
        problems = check_serve(doc, load_runbook)
    if any(d.is_error for d in problems):
        raise ValidationFailed(name, problems, _text(name))
    return _build(doc)


def _text(name: str) -> str | None:
    try:
        return Path(name).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _build(doc: Document) -> ServeConfig:
    data: dict[str, Any] = doc.data
    base = Path(doc.file).resolve().parent
    return ServeConfig(
        file=doc.file, database=data.get("database"), listen=data.get("listen", DEFAULT_LISTEN),
        runbooks=tuple(base / entry for entry in data.get("runbooks", [])),
        channels=base / data["channels"] if "channels" in data else None,
        workers=_workers(data.get("workers", {})),
        sources={name: _source(name, raw) for name, raw in data.get("sources", {}).items()},
        routes=tuple(_route(raw) for raw in data.get("routes", [])),
        people=tuple(Person(p["name"], tuple(p.get("roles", ())), p.get("slack"), p.get("email"))
                     for p in data.get("people", [])),
        slack_secret_env=data["slack"]["signing_secret"]["env"] if "slack" in data else None,
        slack_channel=data.get("slack", {}).get("channel"),
        console=_console(data.get("console", {})),
        scenarios=tuple(base / entry for entry in data.get("scenarios", [])),
        trainers=tuple(data.get("trainers", ("trainer",))),
    )


def _console(raw: Mapping[str, Any]) -> ConsoleSettings:
    header = raw.get("trusted_header", {})
    session = parse_duration(raw["session"]) if "session" in raw else ConsoleSettings.session
    roles = raw.get("roles", {})
    return ConsoleSettings(session, header.get("name"), tuple(header.get("proxies", ())),
                           tuple(roles.get("audit", ConsoleSettings.audit_roles)),
                           tuple(roles.get("control", ConsoleSettings.control_roles)))


def _workers(raw: Mapping[str, Any]) -> WorkerSettings:
    default = WorkerSettings()
    return WorkerSettings(
        embedded=raw.get("embedded", default.embedded), slots=raw.get("slots", default.slots),
        labels=dict(raw.get("labels", {})),
        lease=parse_duration(raw["lease"]) if "lease" in raw else default.lease,
        drain_timeout=parse_duration(raw["drain_timeout"]) if "drain_timeout" in raw else default.drain_timeout,
    )


def _source(name: str, raw: Mapping[str, Any]) -> Source:
    auth = raw.get("auth") or {}
    kind = next(iter(auth), None)
    detail = auth.get(kind, {}) if kind is not None else {}
    secret = detail.get("password", detail) if kind == "basic" else detail
    return Source(name, raw["type"], kind, secret.get("env"), detail.get("username"), detail.get("header"),
                  detail.get("timestamp_header"), dict(raw.get("map", {})))


def _route(raw: Mapping[str, Any]) -> Route:
    match = raw.get("match", {})
    return Route(
        runbook=raw["runbook"], name=raw.get("name", ""), source=match.get("source"),
        alertname=match.get("alertname"), labels=dict(match.get("labels", {})),
        labels_match=dict(match.get("labels_match", {})), inputs=dict(raw.get("inputs", {})),
        pool=dict(raw.get("pool", {})),
        once_within=parse_duration(raw["once_within"]) if "once_within" in raw else None,
        unattended=tuple(raw.get("unattended", ())), approvals=dict(raw.get("approvals", {})),
        gate_role=raw.get("gate_role"),
    )
