"""The channels config: which channels there are, of which type, and their settings.

A channel that authenticates (PagerDuty's routing key, Opsgenie's API key, a Slack bot
token, an SMTP password) names where its secret is kept, never the secret itself:
`{env: VAR}`, `{file: /run/secrets/x}` (relative to the config) or `{command: "vault
..."}`. The secret is read when the channel is first used (see notify.Notifier), so
`runbook validate` and a drill read none.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from engine.errors import UsageError
from engine.language.model import empty_map

from .channels_file import config_path
from .secrets import SecretSource

TYPES = ("stdout", "file", "webhook", "pagerduty", "opsgenie", "email", "slack")
NETWORK = frozenset({"webhook", "pagerduty", "opsgenie", "email", "slack"})  # retried, may take seconds
ATTEMPTS = 4  # attempts per message, unless a channel says `retries: N`
SEVERITIES = ("critical", "error", "warning", "info")
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
SECURITY = {"starttls": 587, "tls": 465, "none": 25}  # how an SMTP connection is protected: its usual port
DEFAULT_URLS = {"pagerduty": "https://events.pagerduty.com/v2/enqueue", "opsgenie": "https://api.opsgenie.com",
                "slack": "https://slack.com/api"}
SECRET_KEYS = {"pagerduty": "routing_key", "opsgenie": "api_key", "slack": "token", "email": "password"}


@dataclass(frozen=True)
class Email:
    """Where and how mail goes: the SMTP server, who from and to, and how to log in."""

    host: str
    port: int
    security: str  # starttls | tls | none
    sender: str
    to: tuple[str, ...]
    username: str | None = None
    ca_file: str | None = None  # trust this CA (a private one) instead of the system's


@dataclass(frozen=True)
class Channel:
    """One named channel. `secret` is where its key, token or password is kept; `severity`
    (PagerDuty) or `priority` (Opsgenie) is what its alerts carry; `target` is a Slack
    bot's channel; `email` the mail settings."""

    name: str
    type: str
    path: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=empty_map)
    timeout: float = 10.0
    attempts: int = ATTEMPTS
    secret: SecretSource | None = None
    severity: str = "critical"
    priority: str = "P3"
    target: str | None = None
    email: Email | None = None

    def describe(self) -> str:
        """What a delivery to this channel is, for a person (the drill records this)."""
        if self.type == "email" and self.email is not None:
            return f"email to {', '.join(self.email.to)} via {self.email.host}:{self.email.port}"
        names = {"pagerduty": "PagerDuty event", "opsgenie": "Opsgenie alert",
                 "slack": f"Slack message in {self.target}", "webhook": "webhook POST",
                 "file": f"line in {self.path}", "stdout": "console line"}
        return names[self.type]


@dataclass(frozen=True)
class Channels:
    """A channels config: the file it came from (None: there is none), its channels and
    the URL template of a run's page (`{run_id}`, `{runbook}`)."""

    file: str | None = None
    channels: Mapping[str, Channel] = field(default_factory=empty_map)
    run_url: str | None = None

    def __contains__(self, name: object) -> bool:
        return name in self.channels

    def link(self, meta: Mapping[str, Any]) -> str | None:
        if self.run_url is None:
            return None
        return self.run_url.format(run_id=meta.get("run_id", ""), runbook=meta.get("runbook", ""))


def load_channels(path: str | os.PathLike[str] | None = None) -> Channels:
    """The channels config in force (see config_path); an empty Channels when there is none."""
    chosen = config_path(path)
    if chosen is None:
        return Channels()
    from engine.language.datafile import load_mapping

    data = load_mapping(chosen, "channels config", empty_ok=True)
    raw = data.get("channels")
    if not isinstance(raw, dict):
        raise UsageError(f"channels config {chosen}: expected `channels:` mapping names to channels")
    return Channels(chosen, {str(name): _channel(chosen, str(name), spec) for name, spec in raw.items()},
                    _run_url(chosen, data.get("run_url")))


def _run_url(file: str, value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    try:
        sample = text.format(run_id="r", runbook="b")
    except (KeyError, IndexError, ValueError):
        raise UsageError(f"{file}: run_url may use {{run_id}} and {{runbook}} only: {text}") from None
    if urlsplit(sample).scheme not in ("http", "https"):
        raise UsageError(f"{file}: run_url must be an http(s) URL: {text}")
    return text


def _channel(file: str, name: str, spec: Any) -> Channel:
    if not isinstance(spec, dict) or spec.get("type") not in TYPES:
        raise UsageError(f"{file}: channel '{name}' needs `type:` one of {', '.join(TYPES)}")
    kind = spec["type"]
    where = f"{file}: {kind} channel '{name}'"
    if kind == "file" and not spec.get("path"):
        raise UsageError(f"{where} needs `path:`")
    url = spec.get("url", DEFAULT_URLS.get(kind))
    if kind in NETWORK - {"email"} and urlsplit(str(url or "")).scheme not in ("http", "https"):
        raise UsageError(f"{where} needs an http(s) `url:`")
    headers = spec.get("headers") or {}
    timeout, retries = spec.get("timeout", 10), spec.get("retries", ATTEMPTS)
    if not isinstance(headers, dict) or not _number(timeout, 0.1, 600) or not _number(retries, 1, 20):
        raise UsageError(f"{file}: channel '{name}': `headers` is a mapping, `timeout` seconds "
                         "(0.1 to 600), `retries` the number of attempts (1 to 20)")
    return Channel(name, kind, spec.get("path"), url, {str(k): str(v) for k, v in headers.items()},
                   float(timeout), int(retries), _secret(file, where, kind, spec),
                   _choice(where, spec, "severity", SEVERITIES), _choice(where, spec, "priority", PRIORITIES),
                   _slack_channel(where, kind, spec),
                   _email(where, spec, os.path.dirname(file)) if kind == "email" else None)


def _secret(file: str, where: str, kind: str, spec: Mapping[str, Any]) -> SecretSource | None:
    """Where the channel's secret is kept: one of env, file, command."""
    key = SECRET_KEYS.get(kind)
    if key is None or (kind == "email" and not spec.get("username")):
        return None
    ref = spec.get(key)
    if not isinstance(ref, dict) or len(ref) != 1 or next(iter(ref)) not in ("env", "file", "command") \
            or not isinstance(next(iter(ref.values())), str) or not next(iter(ref.values())):
        raise UsageError(f"{where} needs `{key}:` saying where the secret is kept: "
                         "{env: VAR}, {file: PATH} or {command: COMMAND} (never the secret itself)")
    source, value = next(iter(ref.items()))
    return SecretSource(source, value, os.path.dirname(os.path.abspath(file)))


def _choice(where: str, spec: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> str:
    value = spec.get(key, {"severity": "critical", "priority": "P3"}[key])
    if value not in allowed:
        raise UsageError(f"{where}: `{key}` is one of {', '.join(allowed)}, not {value!r}")
    return str(value)


def _slack_channel(where: str, kind: str, spec: Mapping[str, Any]) -> str | None:
    if kind != "slack":
        return None
    target = spec.get("channel")
    if not isinstance(target, str) or not target:
        raise UsageError(f"{where} needs `channel:` (a channel id like C0123456789, or #name)")
    return target


def _email(where: str, spec: Mapping[str, Any], base: str) -> Email:
    security = spec.get("security", "starttls")
    if security not in SECURITY:
        raise UsageError(f"{where}: `security` is one of {', '.join(SECURITY)}, not {security!r}")
    to = spec.get("to")
    to = [to] if isinstance(to, str) else to
    host, sender, port = spec.get("host"), spec.get("from"), spec.get("port", SECURITY[security])
    if not isinstance(host, str) or not host or not isinstance(sender, str) or "@" not in sender:
        raise UsageError(f"{where} needs `host:` (the SMTP server) and `from:` (an address)")
    if not isinstance(to, list) or not to or not all(isinstance(a, str) and "@" in a for a in to):
        raise UsageError(f"{where} needs `to:`, an address or a list of addresses")
    if not _number(port, 1, 65535) or not isinstance(port, int):
        raise UsageError(f"{where}: `port` is a port number, not {port!r}")
    if security == "none" and spec.get("username"):
        raise UsageError(f"{where}: a password is never sent in the clear: use `security: starttls` or `tls`")
    ca_file = spec.get("ca_file")
    ca_file = os.path.join(base, os.path.expanduser(str(ca_file))) if ca_file else None  # relative to the config
    return Email(host, port, security, sender, tuple(to), spec.get("username"), ca_file)


def _number(value: Any, low: float, high: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high
