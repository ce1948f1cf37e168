"""Notification channels: stdout, a file, a webhook (Slack-compatible JSON), PagerDuty,
Opsgenie, email over SMTP, and Slack threads with a bot token.

Channels are named in a config file (`--channels FILE`, $RUNBOOK_CHANNELS, or
channels.yaml in the runbook home: $RUNBOOK_HOME, or ./.runbook):

    kind: channels
    run_url: "https://runbooks.example.com/runs/{run_id}"   # optional: messages link to the run
    channels:
      oncall: {type: webhook, url: "https://hooks.example.com/services/T000/B000/token", retries: 4}
      pager: {type: pagerduty, routing_key: {env: PD_ROUTING_KEY}, severity: critical}
      opsgenie: {type: opsgenie, api_key: {file: /run/secrets/opsgenie}, priority: P2}
      mail: {type: email, host: smtp.example.com, from: runbook@example.com, to: [sre@example.com],
             username: runbook, password: {command: "vault kv get -field=password secret/smtp"}}
      incidents: {type: slack, token: {env: SLACK_BOT_TOKEN}, channel: C0123456789}
      status: {type: file, path: /var/log/incident-status.log}
      console: {type: stdout}

With a config, every channel a runbook names must be in it: a name it does not know is
a mistake (a validate error, refused before a run starts, a failed step in an included
runbook), never a message quietly shown only on the console. Without any config, every
message is shown on the console only, and the console says so.

A delivery that fails is reported (journaled, shown, in reports) and the run goes on,
unless the notify step says `required: true`. Network channels are retried (see
_webhook); a channel's secret is read on its first use and masked in every error.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._channels import ATTEMPTS, NETWORK, TYPES, Channel, Channels, load_channels
from ._webhook import Cancellable, post_json, redact, retrying, slack_text
from .channels_file import CONFIG_NAME, NO_CONFIG, config_path, default_config
from .secrets import SecretError, read_secret
from .timestamps import iso

__all__ = ["ATTEMPTS", "CONFIG_NAME", "MESSAGE_BUDGET", "NO_CONFIG", "TYPES", "Channel", "Channels", "Delivery",
           "Notifier", "config_path", "default_config", "did_you_mean", "load_channels"]

MESSAGE_BUDGET = 5.0  # seconds an update or escalation may spend retrying (a step has its timeout)


@dataclass(frozen=True)
class Delivery:
    ok: bool
    error: str | None = None
    note: str | None = None
    attempts: int = 1
    unknown: bool = False  # the config does not name the channel: a mistake in the runbook


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
        # Channels whose last message failed every attempt: the next one is tried once, not
        # waited for again, until one gets through (an outage costs seconds once per run).
        self._down: set[str] = set()
        self._secrets: dict[str, str] = {}  # read once per channel, on its first message
        self._lock = threading.Lock()  # updates are delivered from the outbox's thread
        self._opened: set[tuple[str, str]] = set()  # (Opsgenie channel, run id) whose alert this created
        from ._slack import Threads

        self._threads = Threads()

    def slow(self, channel: str) -> bool:
        """Whether a delivery may take seconds (a network channel, retried): the run need not wait for it."""
        spec = self.channels.get(channel) if self.config.file is not None else None
        return spec is not None and spec.type in NETWORK

    def send(self, channel: str, message: str, *, title: str | None = None,
             meta: Mapping[str, Any] | None = None, budget: float | None = None,
             cancel: Cancellable | None = None, required: bool = False) -> Delivery:
        """Deliver (retrying network channels within `budget` seconds, until `cancel` is set).
        `meta` holds the run (`run_id`, `runbook`) and, for a pager, the `action`."""
        if self.config.file is None:
            return Delivery(True, note=NO_CONFIG)  # the console's notify line is all there is
        spec = self.channels.get(channel)
        if spec is None:
            return Delivery(False, f"channel '{channel}' is not in {self.config.file}"
                                   f"{did_you_mean(channel, self.channels)}", attempts=0, unknown=True)
        if spec.type == "stdout":
            return Delivery(True)  # the console's notify line is this channel's output
        text = f"{title}\n{message}" if title else message
        if spec.type == "file":
            return _append(spec, text, {**(meta or {}), "run_url": self.config.link(meta or {})})
        return self._deliver(spec, message, title, meta or {}, budget, cancel, required)

    def _deliver(self, spec: Channel, message: str, title: str | None, meta: Mapping[str, Any],
                 budget: float | None, cancel: Cancellable | None, required: bool) -> Delivery:
        try:
            secret = self._secret(spec)
        except SecretError as exc:
            return Delivery(False, f"channel '{spec.name}': {exc}", attempts=0)
        down = spec.name in self._down and not required
        outcome = retrying(self._attempt(spec, secret, message, title, meta), attempts=1 if down else spec.attempts,
                           budget=MESSAGE_BUDGET if budget is None else budget, cancel=cancel)
        if outcome.ok:
            self._down.discard(spec.name)
            return Delivery(True, attempts=outcome.attempts)
        self._down.add(spec.name)
        tries = f" after {outcome.attempts} attempts" if outcome.attempts > 1 else (
            " (still failing: tried once)" if down else "")
        error = f"channel '{spec.name}' ({_where(spec)}): {outcome.error}{tries}"
        return Delivery(False, error.replace(secret, "***") if secret else error, attempts=outcome.attempts)

    def _secret(self, spec: Channel) -> str:
        """The channel's key, token or password ("" when it has none), read on first use."""
        if spec.secret is None:
            return ""
        with self._lock:
            if spec.name not in self._secrets:
                self._secrets[spec.name] = read_secret(spec.secret)
            return self._secrets[spec.name]

    def _attempt(self, spec: Channel, secret: str, message: str, title: str | None,
                 meta: Mapping[str, Any]) -> Callable[[float], Any]:
        """One try at delivering, given the seconds left."""
        link = self.config.link(meta)
        if spec.type == "email":
            return self._mail(spec, secret, message, title, meta, link)
        if spec.type == "slack":
            return self._slack(spec, secret, f"{title}\n{message}" if title else message, meta, link)
        if spec.type in ("pagerduty", "opsgenie"):
            return self._page(spec, secret, message, title, meta, link)
        assert spec.url is not None
        text = f"{title}\n{message}" if title else message
        payload = {"text": slack_text(text, meta.get("run_id"), link), "username": "runbook", **meta,
                   **({"run_url": link} if link else {})}
        return _poster(spec.url, payload, spec.headers, spec.timeout)

    def _page(self, spec: Channel, secret: str, message: str, title: str | None, meta: Mapping[str, Any],
              link: str | None) -> Callable[[float], Any]:
        from . import _paging

        action, key = str(meta.get("action") or "trigger"), (spec.name, str(meta.get("run_id", "")))
        if spec.type == "pagerduty":
            request = _paging.pagerduty(spec, secret, action, message, title, meta, link)
            return _poster(request.url, request.payload, request.headers, spec.timeout)
        if not meta.get("action") and key in self._opened:
            action = "note"  # the run's alert is open: a plain message is a note on it, not a new page
        request = _paging.opsgenie(spec, secret, action, message, title, meta, link)
        post = _poster(request.url, request.payload, request.headers, spec.timeout)

        def attempt(left: float) -> Any:
            answer = post(left)
            if action == "trigger":
                self._opened.add(key)
            return answer

        return attempt

    def _slack(self, spec: Channel, secret: str, text: str, meta: Mapping[str, Any],
               link: str | None) -> Callable[[float], Any]:
        from . import _slack

        run_id = str(meta.get("run_id", ""))
        parent = self._threads.parent(spec.name, run_id)
        # The thread's first message links to the run; its replies need not repeat it.
        body = slack_text(text, run_id, link) if parent is None else slack_text(text, None, None)

        def attempt(left: float) -> Any:
            ts = _slack.post(spec, secret, body, parent, min(spec.timeout, left))
            if parent is None and ts:
                self._threads.opened(spec.name, run_id, ts)
            return ts

        return attempt

    def _mail(self, spec: Channel, secret: str, message: str, title: str | None, meta: Mapping[str, Any],
              link: str | None) -> Callable[[float], Any]:
        from . import _email

        assert spec.email is not None
        settings, run_id = spec.email, meta.get("run_id")
        first = (title or message).strip().splitlines()[0] if (title or message).strip() else "runbook"
        subject = ("Resolved: " if meta.get("action") == "resolve" else "") + first[:200]
        about = f"Run {run_id}" + (f": {link}" if link else "") if run_id else ""
        body = "\n\n".join(part for part in (message, about) if part)
        mail = _email.message(settings, subject, body, str(run_id) if run_id else None)
        return lambda left: _email.send(settings, secret or None, mail, min(spec.timeout, left))


def _poster(url: str, payload: Mapping[str, Any], headers: Mapping[str, str], timeout: float) -> Callable[[float], Any]:
    body = json.dumps(payload).encode()
    return lambda left: post_json(url, body, headers, min(timeout, left))


def _where(spec: Channel) -> str:
    """Where a channel delivers, safe to show: no URL path (a webhook's secret is in it)."""
    if spec.email is not None:
        return f"{spec.email.host}:{spec.email.port}"
    return redact(spec.url or "")


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
