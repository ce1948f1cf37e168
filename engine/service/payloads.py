"""What senders post to /hooks/<source>, read into one shape: a notification (its dedup
key) holding alerts, each as Alertmanager describes one (status, labels, annotations,
startsAt, endsAt, generatorURL, fingerprint), which is what routes match, the `alert:`
input mappings read and the journal records.

Formats: Alertmanager's webhook (version 4), Grafana alerting's (the same, plus orgId,
title, state, message and per-alert values and URLs), PagerDuty's v3 webhooks (one
`event`, of an incident) and generic JSON mapped by the source's `map:`.

The dedup key says which notification a body is, so that a repeat of it (Alertmanager HA
pairs each send it, and every repeat_interval re-sends a group) changes nothing: from
the groupKey, the status and each alert's fingerprint, status and startsAt; PagerDuty's
X-Webhook-Id (or the event's id); for generic JSON the mapped `dedup` value, else the
body itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.errors import EngineError
from engine.run.alerts import lookup

from .config import Source

ALERT_FIELDS = ("status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint")
GRAFANA_ALERT_EXTRAS = ("values", "valueString", "dashboardURL", "panelURL", "silenceURL", "imageURL")
RESOLVED_WORDS = ("resolved", "ok", "normal", "closed")
ZERO_TIME = "0001-01-01"  # Go's zero time: Alertmanager's endsAt of an alert still firing


class PayloadError(EngineError):
    """A body its source's format does not allow (answered 400, with this reason)."""


@dataclass(frozen=True)
class Notification:
    dedup_key: str
    alerts: tuple[dict[str, Any], ...]


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def parse(source: Source, body: bytes, headers: Mapping[str, str]) -> Notification:
    """The notification in `body`; PayloadError saying what is wrong with it."""
    data = _json(body)
    if not isinstance(data, dict):
        raise PayloadError(f"the body must be a JSON object, not {_kind(data)}")
    readers: dict[str, Callable[[Source, dict[str, Any], bytes, Mapping[str, str]], Notification]] = {
        "alertmanager": _alertmanager, "grafana": _grafana, "pagerduty": _pagerduty, "generic": _generic}
    return readers[source.type](source, data, body, headers)


def _json(body: bytes) -> Any:
    if not body.strip():
        raise PayloadError("the body is empty: expected a JSON object")
    try:
        return json.loads(body.decode("utf-8-sig"))  # json.loads(bytes) would guess UTF-16 or 32
    except UnicodeDecodeError:
        raise PayloadError("the body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise PayloadError(f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise PayloadError("the body is nested too deeply") from None


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


def _mapping(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{where} must be an object of names to values, not {_kind(value)}")
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise PayloadError(f"{where} must be a string, not {_kind(value)}")
    return str(value)


def _status(value: Any, where: str) -> str:
    word = _text(value, where).strip().lower()
    if not word:
        raise PayloadError(f"{where} is missing: expected firing or resolved")
    return "resolved" if word in RESOLVED_WORDS else "firing" if word in ("firing", "alerting") else word


# -- Alertmanager and Grafana ----------------------------------------------------------------


def _alertmanager(source: Source, data: dict[str, Any], body: bytes, headers: Mapping[str, str]) -> Notification:
    version = data.get("version")
    if version is not None and str(version) != "4":
        raise PayloadError(f"version {version!r}: this source reads Alertmanager's webhook version 4")
    return _group(data, ())


def _grafana(source: Source, data: dict[str, Any], body: bytes, headers: Mapping[str, str]) -> Notification:
    return _group(data, GRAFANA_ALERT_EXTRAS)


def _group(data: dict[str, Any], extras: tuple[str, ...]) -> Notification:
    raw = data.get("alerts")
    if not isinstance(raw, list) or not raw:
        raise PayloadError("`alerts` must be a non-empty array of alerts")
    common = _mapping(data.get("commonLabels"), "commonLabels")
    common_annotations = _mapping(data.get("commonAnnotations"), "commonAnnotations")
    group_status = _status(data.get("status"), "status")
    alerts = tuple(_group_alert(a, i, common, common_annotations, group_status, extras) for i, a in enumerate(raw))
    key = digest(_text(data.get("groupKey"), "groupKey"), group_status,
                 sorted((a["fingerprint"], a["status"], a.get("startsAt") or "") for a in alerts))
    return Notification(key, alerts)


def _group_alert(raw: Any, i: int, common: dict[str, str], common_annotations: dict[str, str], group_status: str,
                 extras: tuple[str, ...]) -> dict[str, Any]:
    where = f"alerts[{i}]"
    if not isinstance(raw, dict):
        raise PayloadError(f"{where} must be an object, not {_kind(raw)}")
    labels = {**common, **_mapping(raw.get("labels"), f"{where}.labels")}
    if not labels:
        raise PayloadError(f"{where} has no labels")
    alert: dict[str, Any] = {
        "status": _status(raw.get("status") or group_status, f"{where}.status"), "labels": labels,
        "annotations": {**common_annotations, **_mapping(raw.get("annotations"), f"{where}.annotations")},
        "fingerprint": _text(raw.get("fingerprint"), f"{where}.fingerprint") or digest(sorted(labels.items()))[:16],
    }
    for name in ("startsAt", "endsAt", "generatorURL", *extras):
        if raw.get(name) not in (None, "") and not str(raw[name]).startswith(ZERO_TIME):
            alert[name] = raw[name] if name == "values" else _text(raw[name], f"{where}.{name}")
    return alert


# -- PagerDuty v3 ------------------------------------------------------------------------------


def _pagerduty(source: Source, data: dict[str, Any], body: bytes, headers: Mapping[str, str]) -> Notification:
    event = data.get("event")
    if not isinstance(event, dict):
        raise PayloadError("`event` must be an object (a PagerDuty v3 webhook)")
    kind = _text(event.get("event_type"), "event.event_type")
    incident = event.get("data")
    if not kind or not isinstance(incident, dict):
        raise PayloadError("a PagerDuty v3 event needs `event_type` and `data`")
    service, priority = _object(incident.get("service")), _object(incident.get("priority"))
    labels = {"alertname": _text(incident.get("title"), "event.data.title") or kind, "event_type": kind,
              "resource_type": _text(event.get("resource_type"), "event.resource_type"),
              "incident": _text(incident.get("id"), "event.data.id"),
              "service": _text(service.get("summary"), "event.data.service.summary"),
              "urgency": _text(incident.get("urgency"), "event.data.urgency"),
              "priority": _text(priority.get("summary"), "event.data.priority.summary")}
    status = {"incident.triggered": "firing", "incident.resolved": "resolved"}.get(kind, kind.rpartition(".")[2])
    alert = {"status": status, "labels": {k: v for k, v in labels.items() if v},
             "annotations": {"summary": labels["alertname"], "url": _text(incident.get("html_url"), "html_url")},
             "fingerprint": labels["incident"] or digest(incident)[:16],
             "startsAt": _text(incident.get("created_at"), "event.data.created_at")}
    webhook_id = headers.get("x-webhook-id") or _text(event.get("id"), "event.id") or digest(data)
    return Notification(digest("pagerduty", webhook_id), (alert,))


# -- generic JSON, mapped by the source ----------------------------------------------------------


def _generic(source: Source, data: dict[str, Any], body: bytes, headers: Mapping[str, str]) -> Notification:
    m = source.mapping
    items: Any = [data]
    if m.get("alerts"):
        items = lookup(data, m["alerts"])
        if not isinstance(items, list) or not items:
            raise PayloadError(f"{m['alerts']} (map.alerts) must be a non-empty array")
    alerts = tuple(_generic_alert(m, item, i) for i, item in enumerate(items))
    dedup = lookup(data, m["dedup"]) if m.get("dedup") else None
    return Notification(digest("generic", dedup if dedup is not None else body.decode("utf-8", "replace")), alerts)


def _generic_alert(m: Mapping[str, Any], item: Any, i: int) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise PayloadError(f"alert {i} must be an object, not {_kind(item)}")
    name = _text(lookup(item, m.get("name", "name")), f"{m.get('name', 'name')} (map.name)")
    if not name:
        raise PayloadError(f"alert {i} has no {m.get('name', 'name')} (map.name): every alert needs a name")
    labels = {**_mapping(lookup(item, m["labels"]) if m.get("labels") else None, "map.labels"), "alertname": name}
    status_word = _text(lookup(item, m["status"]), "map.status") if m.get("status") else "firing"
    resolved = {str(w).lower() for w in m.get("resolved", RESOLVED_WORDS)}
    alert: dict[str, Any] = {
        "status": "resolved" if status_word.lower() in resolved else "firing", "labels": labels,
        "annotations": _mapping(lookup(item, m["annotations"]) if m.get("annotations") else None, "map.annotations"),
        "fingerprint": _text(lookup(item, m["fingerprint"]), "map.fingerprint") if m.get("fingerprint") else "",
    }
    alert["fingerprint"] = alert["fingerprint"] or digest(sorted(labels.items()))[:16]
    if m.get("starts_at"):
        alert["startsAt"] = _text(lookup(item, m["starts_at"]), "map.starts_at")
    return alert
