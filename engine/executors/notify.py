"""Notification channels: stdout, a file, or a webhook (Slack-compatible JSON).

Channels are named in a config file (`--channels FILE`, $RUNBOOK_CHANNELS, or
channels.yaml in the runbook home: $RUNBOOK_HOME, or ./.runbook):

    kind: channels
    run_url: "https://runbooks.example.com/runs/{run_id}"   # optional: messages link to the run
    channels:
      oncall: {type: webhook, url: "https://hooks.example.com/services/T000/B000/token", retries: 4}
      status: {type: file, path: /var/log/incident-status.log}
      console: {type: stdout}

With a config, every channel a runbook names must be in it: a name it does not know is
a mistake (a validate error, refused before a run starts, a failed step in an included
runbook), never a message quietly shown only on the console. Without any config, every
message is shown on the console only, and the console says so.

A delivery that fails is reported (journaled, shown, in reports) and the run goes on,
unless the notify step says `required: true`. Webhooks are retried (see _webhook).
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

from engine.errors import UsageError
from engine.home import home
from engine.language.model import empty_map

from ._webhook import Cancellable, deliver, redact, slack_text
from .timestamps import iso

CONFIG_NAME = "channels.yaml"
TYPES = ("stdout", "file", "webhook")
ATTEMPTS = 4  # webhook attempts per message, unless a channel says `retries: N`
MESSAGE_BUDGET = 5.0  # seconds an update or escalation may spend retrying (a step has its timeout)
NO_CONFIG = "console only: no channels config"


def default_config() -> Path:
    """channels.yaml beside the runs and locks: in $RUNBOOK_HOME, or ./.runbook."""
    return home() / CONFIG_NAME


def config_path(path: str | os.PathLike[str] | None = None) -> str | None:
    """The channels config in force: the one given, $RUNBOOK_CHANNELS, or the runbook
    home's channels.yaml if it exists; None when there is none."""
    fallback = default_config()
    chosen = path or os.environ.get("RUNBOOK_CHANNELS") or (fallback if fallback.is_file() else None)
    return os.fspath(chosen) if chosen else None


@dataclass(frozen=True)
class Channel:
    name: str
    type: str
    path: str | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=empty_map)
    timeout: float = 10.0
    attempts: int = ATTEMPTS


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


@dataclass(frozen=True)
class Delivery:
    ok: bool
    error: str | None = None
    note: str | None = None
    attempts: int = 1
    unknown: bool = False  # the config does not name the channel: a mistake in the runbook


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
    if kind == "file" and not spec.get("path"):
        raise UsageError(f"{file}: file channel '{name}' needs `path:`")
    if kind == "webhook" and urlsplit(str(spec.get("url", ""))).scheme not in ("http", "https"):
        raise UsageError(f"{file}: webhook channel '{name}' needs an http(s) `url:`")
    headers = spec.get("headers") or {}
    timeout, retries = spec.get("timeout", 10), spec.get("retries", ATTEMPTS)
    if not isinstance(headers, dict) or not _number(timeout, 0.1, 600) or not _number(retries, 1, 20):
        raise UsageError(f"{file}: channel '{name}': `headers` is a mapping, `timeout` seconds "
                         "(0.1 to 600), `retries` the number of attempts (1 to 20)")
    return Channel(name, kind, spec.get("path"), spec.get("url"),
                   {str(k): str(v) for k, v in headers.items()}, float(timeout), int(retries))


def _number(value: Any, low: float, high: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high


def did_you_mean(name: str, known: Any) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Notifier:
    """Sends messages to channels. Never raises for a failed delivery: it reports it."""

    def __init__(self, channels: Channels | Mapping[str, Channel] | None = None,
                 console: Callable[[str], None] | None = None) -> None:
        if not isinstance(channels, Channels):
            channels = Channels("<channels>", dict(channels)) if channels else Channels()
        self.config = channels
        self.channels = dict(channels.channels)
        self.console = console or (lambda text: print(text, flush=True))
        # Webhooks whose last message failed every attempt: the next one is tried once, not
        # waited for again, until one gets through (a chat outage costs seconds once per run).
        self._down: set[str] = set()

    def slow(self, channel: str) -> bool:
        """Whether a delivery may take seconds (a webhook, retried): the run need not wait for it."""
        spec = self.channels.get(channel) if self.config.file is not None else None
        return spec is not None and spec.type == "webhook"

    def send(self, channel: str, message: str, *, title: str | None = None,
             meta: Mapping[str, Any] | None = None, budget: float | None = None,
             cancel: Cancellable | None = None, required: bool = False) -> Delivery:
        """Deliver (retrying webhooks within `budget` seconds, until `cancel` is set)."""
        text = f"{title}\n{message}" if title else message
        if self.config.file is None:
            return Delivery(True, note=NO_CONFIG)  # the console's notify line is all there is
        spec = self.channels.get(channel)
        if spec is None:
            return Delivery(False, f"channel '{channel}' is not in {self.config.file}"
                                   f"{did_you_mean(channel, self.channels)}", attempts=0, unknown=True)
        if spec.type == "stdout":
            return Delivery(True)  # the console's notify line is this channel's output
        if spec.type == "file":
            return _append(spec, text, {**(meta or {}), "run_url": self.config.link(meta or {})})
        return self._post(spec, text, meta or {}, budget, cancel, required)

    def _post(self, spec: Channel, text: str, meta: Mapping[str, Any], budget: float | None,
              cancel: Cancellable | None, required: bool) -> Delivery:
        assert spec.url is not None
        link = self.config.link(meta)
        payload = {"text": slack_text(text, meta.get("run_id"), link), "username": "runbook", **meta,
                   **({"run_url": link} if link else {})}
        down = spec.name in self._down and not required
        outcome = deliver(spec.url, payload, spec.headers, timeout=spec.timeout,
                          attempts=1 if down else spec.attempts,
                          budget=MESSAGE_BUDGET if budget is None else budget, cancel=cancel)
        if outcome.ok:
            self._down.discard(spec.name)
            return Delivery(True, attempts=outcome.attempts)
        self._down.add(spec.name)
        tries = f" after {outcome.attempts} attempts" if outcome.attempts > 1 else (
            " (still failing: tried once)" if down else "")
        return Delivery(False, f"channel '{spec.name}' ({redact(spec.url)}): {outcome.error}{tries}",
                        attempts=outcome.attempts)


def _append(spec: Channel, text: str, meta: Mapping[str, Any]) -> Delivery:
    assert spec.path is not None
    fields = {k: v for k, v in meta.items() if v is not None}
    line = json.dumps({"t": iso(time.time()), "channel": spec.name, "text": text, **fields})
    try:
        with open(spec.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    except OSError as exc:
        return Delivery(False, f"channel '{spec.name}' ({spec.path}): {exc.strerror or exc}")
    return Delivery(True)
