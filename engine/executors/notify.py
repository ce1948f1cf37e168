"""Notification channels: stdout, a file, or a webhook (Slack-compatible JSON).

Channels are named in a config file (`--channels FILE`, $RUNBOOK_CHANNELS, or
channels.yaml in the runbook home: $RUNBOOK_HOME, or ./.runbook):

    kind: channels
    channels:
      oncall: {type: webhook, url: "https://hooks.example.com/services/T000/B000/token"}
      status: {type: file, path: /var/log/incident-status.log}
      console: {type: stdout}

A channel the config does not name is printed to the console, with a note saying so.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import UsageError
from ..home import home
from ..model import empty_map

CONFIG_NAME = "channels.yaml"


def default_config() -> Path:
    """channels.yaml beside the runs and locks: in $RUNBOOK_HOME, or ./.runbook."""
    return home() / CONFIG_NAME
TYPES = ("stdout", "file", "webhook")


@dataclass(frozen=True)
class Channel:
    name: str
    type: str
    path: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=empty_map)
    timeout: float = 10.0


@dataclass(frozen=True)
class Delivery:
    ok: bool
    error: str | None = None
    note: str | None = None


def load_channels(path: str | os.PathLike[str] | None = None) -> dict[str, Channel]:
    """Channels from a config file; {} when none is configured."""
    fallback = default_config()
    chosen = path or os.environ.get("RUNBOOK_CHANNELS") or (fallback if fallback.is_file() else None)
    if chosen is None:
        return {}
    import yaml

    try:
        with open(chosen, encoding="utf-8") as handle:
            data = yaml.safe_load(handle) or {}
    except OSError as exc:
        raise UsageError(f"cannot read channels config {chosen}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"channels config {chosen} is not valid YAML: {exc}") from None
    raw = data.get("channels") if isinstance(data, dict) else None
    if not isinstance(raw, dict):
        raise UsageError(f"channels config {chosen}: expected `channels:` mapping names to channels")
    return {name: _channel(str(chosen), name, spec) for name, spec in raw.items()}


def _channel(file: str, name: str, spec: Any) -> Channel:
    if not isinstance(spec, dict) or spec.get("type") not in TYPES:
        raise UsageError(f"{file}: channel '{name}' needs `type:` one of {', '.join(TYPES)}")
    kind = spec["type"]
    if kind == "file" and not spec.get("path"):
        raise UsageError(f"{file}: file channel '{name}' needs `path:`")
    if kind == "webhook" and urlsplit(str(spec.get("url", ""))).scheme not in ("http", "https"):
        raise UsageError(f"{file}: webhook channel '{name}' needs an http(s) `url:`")
    headers = spec.get("headers") or {}
    return Channel(name, kind, spec.get("path"), spec.get("url"),
                   {str(k): str(v) for k, v in headers.items()}, float(spec.get("timeout", 10)))


def _redact_url(url: str) -> str:
    # Webhook URLs carry their secret in the path (Slack, Teams): show only the host.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/..."


class Notifier:
    """Sends messages to channels. Never raises for a failed delivery: it reports it."""

    def __init__(self, channels: Mapping[str, Channel] | None = None,
                 console: Callable[[str], None] | None = None) -> None:
        self.channels = dict(channels or {})
        self.console = console or (lambda text: print(text, flush=True))

    def send(self, channel: str, message: str, *, title: str | None = None,
             meta: Mapping[str, Any] | None = None) -> Delivery:
        spec = self.channels.get(channel)
        text = f"{title}\n{message}" if title else message
        if spec is None:
            # The console's notify line shows the message; nothing else to do.
            return Delivery(True, note=f"channel '{channel}' is not configured: shown on the console")
        try:
            if spec.type == "stdout":
                pass  # the console's notify line is this channel's output
            elif spec.type == "file":
                _append(spec, text, meta)
            else:
                _post(spec, text, meta)
        except (OSError, ValueError) as exc:
            return Delivery(False, _describe(spec, exc))
        return Delivery(True)


def _append(spec: Channel, text: str, meta: Mapping[str, Any] | None) -> None:
    from ..journal import iso

    assert spec.path is not None
    line = json.dumps({"t": iso(time.time()), "channel": spec.name, "text": text, **(meta or {})})
    with open(spec.path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def _post(spec: Channel, text: str, meta: Mapping[str, Any] | None) -> None:
    import urllib.request  # only webhooks need it (~40 ms to import)

    assert spec.url is not None
    payload = {"text": text, "username": "runbook", **(meta or {})}
    request = urllib.request.Request(
        spec.url, data=json.dumps(payload).encode(), method="POST",
        headers={"Content-Type": "application/json", **spec.headers},
    )
    with urllib.request.urlopen(request, timeout=spec.timeout) as resp:
        if not 200 <= resp.status < 300:
            raise ValueError(f"HTTP status {resp.status}")


def _describe(spec: Channel, exc: Exception) -> str:
    import urllib.error

    where = _redact_url(spec.url) if spec.url else spec.path
    if isinstance(exc, urllib.error.HTTPError):
        return f"channel '{spec.name}' ({where}): HTTP status {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return f"channel '{spec.name}' ({where}): {exc.reason}"
    return f"channel '{spec.name}' ({where}): {exc}"
