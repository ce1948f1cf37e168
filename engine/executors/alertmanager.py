"""Alertmanager's API v2: the requests of the `alert`, `silence` and `unsilence` steps and
what their answers mean. The requests go through the HTTP executor (live) or are answered
by the simulated world (drill), and are read here in both cases.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple
from urllib.parse import quote, urlencode

from engine.language.monitoring import Matcher

from .base import Result


def stamp(t: float) -> str:
    """A time as Alertmanager writes it (RFC 3339, UTC)."""
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alerts_url(base: str, matchers: Sequence[Matcher]) -> str:
    """Every alert matching `matchers`, silenced and inhibited ones included (they still fire)."""
    query = [("filter", str(m)) for m in matchers]
    query += [("active", "true"), ("silenced", "true"), ("inhibited", "true"), ("unprocessed", "true")]
    return f"{base.rstrip('/')}/api/v2/alerts?" + urlencode(query)


def silences_url(base: str) -> str:
    return f"{base.rstrip('/')}/api/v2/silences"


def silence_url(base: str, silence_id: str) -> str:
    return f"{base.rstrip('/')}/api/v2/silence/{quote(silence_id, safe='')}"


def silence_body(matchers: Sequence[Matcher], starts: float, ends: float, author: str, comment: str) -> bytes:
    """A new silence, as POST /api/v2/silences wants it."""
    return json.dumps({
        "matchers": [{"name": m.name, "value": m.value, "isRegex": "~" in m.op, "isEqual": not m.op.startswith("!")}
                     for m in matchers],
        "startsAt": stamp(starts), "endsAt": stamp(ends), "createdBy": author, "comment": comment,
    }).encode()


class Answer(NamedTuple):
    """What a request came to: the names the step's checks read, or why it failed."""

    results: dict[str, Any]
    error: str | None = None


def _json(result: Result) -> Any:
    text = result.body if result.body is not None else result.stdout
    try:
        return json.loads(text) if text else None
    except (ValueError, RecursionError):
        return None


def failure(result: Result) -> str | None:
    """Why a request failed, with Alertmanager's own message when it sent one."""
    if result.ok:
        return None
    body = (result.body or "").strip()
    said = _json(result)
    message = said if isinstance(said, str) else (said.get("message") if isinstance(said, Mapping) else None)
    message = message or (body[:300] if result.status is not None else None)
    return f"{result.error}: {message}" if message else (result.error or "the request failed")


def read_alerts(result: Result, fingerprint: str | None) -> Answer:
    """`alerts` (each with name, labels, annotations, fingerprint, state, starts_at,
    silenced_by), `firing` and `cleared`; only the one with `fingerprint` if given."""
    error = failure(result)
    if error is not None:
        return Answer({}, error)
    data = _json(result)
    if not isinstance(data, list):
        return Answer({}, "the answer is not Alertmanager's alert list: is the URL an Alertmanager?")
    alerts = [_alert(a) for a in data if isinstance(a, Mapping)]
    if fingerprint:
        alerts = [a for a in alerts if a["fingerprint"] == fingerprint]
    alerts.sort(key=lambda a: (a["name"], a["fingerprint"]))
    return Answer({"alerts": alerts, "firing": bool(alerts), "cleared": not alerts})


def _alert(data: Mapping[str, Any]) -> dict[str, Any]:
    labels = {str(k): str(v) for k, v in (data.get("labels") or {}).items()}
    status: Mapping[str, Any] = data["status"] if isinstance(data.get("status"), Mapping) else {}
    return {"name": labels.get("alertname", ""), "labels": labels,
            "annotations": dict(data.get("annotations") or {}), "fingerprint": str(data.get("fingerprint", "")),
            "state": status.get("state", "active"), "starts_at": data.get("startsAt"),
            "silenced_by": list(status.get("silencedBy") or [])}


def read_silence(result: Result, ends: float) -> Answer:
    error = failure(result)
    if error is not None:
        return Answer({}, error)
    data = _json(result)
    if not isinstance(data, Mapping) or not data.get("silenceID"):
        return Answer({}, "Alertmanager did not answer with a silence id")
    return Answer({"silence_id": str(data["silenceID"]), "ends_at": stamp(ends)})


def read_expiry(result: Result, silence_id: str) -> Answer:
    """An expired silence; one that was already expired (or is gone) is no failure:
    expiring it again, as a rollback may, changes nothing."""
    error = failure(result)
    if error is not None and not _already(result):
        return Answer({}, error)
    return Answer({"silence_id": silence_id})


def _already(result: Result) -> bool:
    text = (result.body or "").lower()
    return result.status == 404 or "already expired" in text
