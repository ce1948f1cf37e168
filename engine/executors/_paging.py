"""Paging requests: PagerDuty's Events API v2 and Opsgenie's Alert API.

One run is one alert. The run id is PagerDuty's `dedup_key` and Opsgenie's `alias`, so a
later message of the same run adds to, acknowledges or resolves the alert the run opened
instead of paging again, and a resumed run (same id) finds its alert. A message says
what to do with `action`: trigger (the default), acknowledge or resolve.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import quote

from ._channels import Channel

ACTIONS = ("trigger", "acknowledge", "resolve")
SUMMARY_MAX = {"pagerduty": 1024, "opsgenie": 130}  # each API refuses (PagerDuty) or cuts longer ones
OPSGENIE_PATHS = {"acknowledge": "acknowledge", "resolve": "close", "note": "notes"}


class Request(NamedTuple):
    """One POST to make: where, the JSON body, the headers."""

    url: str
    payload: Mapping[str, Any]
    headers: Mapping[str, str]


def summary(kind: str, text: str, title: str | None) -> str:
    """The alert's one-line summary: the title, else the message's first line, cut to fit."""
    line = (title or text).strip().splitlines()[0] if (title or text).strip() else "runbook"
    limit = SUMMARY_MAX[kind]
    return line if len(line) <= limit else line[:limit - 1] + "…"


def pagerduty(channel: Channel, key: str, action: str, text: str, title: str | None,
              meta: Mapping[str, Any], link: str | None) -> Request:
    """An Events API v2 event: a trigger carries the summary, source, severity and the
    whole message; acknowledge and resolve name only the alert (its dedup key)."""
    assert channel.url is not None
    event: dict[str, Any] = {"routing_key": key, "event_action": action, "dedup_key": str(meta.get("run_id", ""))}
    if action == "trigger":
        details = {"message": text, "runbook": meta.get("runbook"), "run_id": meta.get("run_id")}
        event["payload"] = {"summary": summary("pagerduty", text, title),
                            "source": str(meta.get("runbook") or "runbook"), "severity": channel.severity,
                            "component": meta.get("runbook"),
                            "custom_details": {k: v for k, v in details.items() if v is not None}}
        event["client"] = "runbook"
        if link:
            event["client_url"] = link
            event["links"] = [{"href": link, "text": f"run {meta.get('run_id', '')}"}]
    return Request(channel.url, event, dict(channel.headers))


def opsgenie(channel: Channel, key: str, action: str, text: str, title: str | None,
             meta: Mapping[str, Any], link: str | None) -> Request:
    """An Alert API request: create the run's alert (trigger), add a note to it (`note`),
    acknowledge or close it; each names the alert by its alias, the run id."""
    assert channel.url is not None
    base, alias = channel.url.rstrip("/"), str(meta.get("run_id", ""))
    headers = {**channel.headers, "Authorization": f"GenieKey {key}"}
    if action == "trigger":
        details = {"runbook": meta.get("runbook"), "run_id": alias, "run_url": link}
        body = {"message": summary("opsgenie", text, title), "alias": alias, "description": text[:15000],
                "priority": channel.priority, "source": "runbook", "entity": meta.get("runbook"),
                "details": {k: str(v) for k, v in details.items() if v}}
        return Request(f"{base}/v2/alerts", {k: v for k, v in body.items() if v is not None}, headers)
    path = OPSGENIE_PATHS[action]
    return Request(f"{base}/v2/alerts/{quote(alias, safe='')}/{path}?identifierType=alias",
                   {"note": text[:25000], "source": "runbook", "user": "runbook"}, headers)
