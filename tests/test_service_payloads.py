"""Reading what senders post (Alertmanager v4, Grafana, PagerDuty v3, generic JSON mapped
by config) and checking how they sign it, without a server: the shapes, the dedup keys,
every refusal's reason."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "integration"))
from hookkit import (
    alertmanager,
    am_alert,
    basic,
    grafana,
    grafana_signed,
    pagerduty,
    pagerduty_signed,
)

from engine.service.authentication import Guard
from engine.service.config import Source
from engine.service.payloads import PayloadError, parse

AM, GRAFANA, PD = Source("am", "alertmanager"), Source("g", "grafana"), Source("pd", "pagerduty")
GENERIC = Source("ci", "generic", mapping={"alerts": "checks", "name": "check", "status": "state",
                                            "labels": "tags", "fingerprint": "id", "dedup": "delivery"})


def _body(value: object) -> bytes:
    return json.dumps(value).encode()


def test_an_alertmanager_group_is_its_alerts_with_the_common_labels() -> None:
    body = alertmanager(am_alert("db-1"), am_alert("db-2", status="resolved"))
    found = parse(AM, _body(body), {})
    first, second = found.alerts
    assert first["labels"] == {"alertname": "DiskFull", "instance": "db-1", "severity": "page"}
    assert (first["status"], second["status"]) == ("firing", "resolved")
    assert first["startsAt"] == "2026-12-04T21:00:00Z" and first["annotations"]["summary"] == "db-1: disk 97% full"
    assert "endsAt" not in first and second["endsAt"] == "2026-12-04T21:30:00Z"  # Go's zero time is no end


def test_the_dedup_key_is_the_notification_not_the_bytes() -> None:
    """An HA pair's second copy (keys in another order) is the same notification; another
    status, fingerprint or startsAt is another."""
    body = alertmanager(am_alert("db-1"))
    key = parse(AM, _body(body), {}).dedup_key
    reordered = json.dumps(dict(reversed(list(body.items())))).encode()
    assert parse(AM, reordered, {}).dedup_key == key
    assert parse(AM, _body(alertmanager(am_alert("db-1", status="resolved"), status="resolved")), {}).dedup_key != key
    assert parse(AM, _body(alertmanager(am_alert("db-1", starts="2026-12-04T22:00:00Z"))), {}).dedup_key != key
    assert parse(AM, _body(alertmanager(am_alert("db-9"))), {}).dedup_key != key


def test_grafana_keeps_its_values_and_urls() -> None:
    [alert] = parse(GRAFANA, _body(grafana("db-1")), {}).alerts
    assert alert["values"] == {"B": 97.2} and alert["dashboardURL"] == "http://grafana/d/abc"


def test_pagerduty_incidents_become_alerts_and_x_webhook_id_is_the_key() -> None:
    body = _body(pagerduty())
    [alert] = parse(PD, body, {"x-webhook-id": "w-1"}).alerts
    assert alert["status"] == "firing" and alert["fingerprint"] == "Q1ABC"
    assert alert["labels"]["service"] == "checkout" and alert["labels"]["urgency"] == "high"
    first = parse(PD, body, {"x-webhook-id": "w-1"}).dedup_key
    assert parse(PD, b" " + body, {"x-webhook-id": "w-1"}).dedup_key == first
    assert parse(PD, body, {"x-webhook-id": "w-2"}).dedup_key != parse(PD, body, {"x-webhook-id": "w-1"}).dedup_key
    [resolved] = parse(PD, _body(pagerduty("incident.resolved")), {}).alerts
    assert resolved["status"] == "resolved" and resolved["startsAt"] == alert["startsAt"]


def test_generic_json_is_read_where_the_source_maps_it() -> None:
    body = {"delivery": "d-7", "checks": [{"check": "BackupMissing", "state": "OK", "id": "b1", "tags": {"db": "x"}}]}
    found = parse(GENERIC, _body(body), {})
    [alert] = found.alerts
    assert alert == {"status": "resolved", "labels": {"db": "x", "alertname": "BackupMissing"}, "annotations": {},
                     "fingerprint": "b1"}
    assert found.dedup_key == parse(GENERIC, _body({**body, "extra": 1}), {}).dedup_key


@pytest.mark.parametrize(("source", "body", "reason"), [
    (AM, b"", "the body is empty"),
    (AM, b"{not json", "the body is not JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    (AM, b"\xff\xfe", "the body is not UTF-8 text"),
    (AM, b"[1, 2]", "the body must be a JSON object, not an array"),
    (AM, b"[" * 100_000, "the body is nested too deeply"),
    (AM, _body({"version": "3", "alerts": []}), "version '3': this source reads Alertmanager's webhook version 4"),
    (AM, _body({"version": "4", "status": "firing", "alerts": []}), "`alerts` must be a non-empty array of alerts"),
    (AM, _body({"status": "firing", "alerts": [{"labels": "x"}]}), "alerts[0].labels must be an object"),
    (AM, _body({"status": "firing", "alerts": [{"status": "firing"}]}), "alerts[0] has no labels"),
    (PD, _body({"messages": []}), "`event` must be an object (a PagerDuty v3 webhook)"),
    (GENERIC, _body({"checks": [{"state": "x"}]}), "alert 0 has no check (map.name): every alert needs a name"),
])
def test_a_body_its_format_does_not_allow_says_why(source: Source, body: bytes, reason: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse(source, body, {})
    assert str(caught.value).startswith(reason)


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def test_grafana_signatures_with_a_timestamp() -> None:
    guard = Guard.of(Source("g", "grafana", "hmac", "K", timestamp_header="X-Grafana-Alerting-Timestamp"), {"K": "key"})
    body = b'{"alerts": []}'
    assert guard.check(_lower(grafana_signed(body, "key")), body) is None
    assert "matches the body" in str(guard.check(_lower(grafana_signed(body, "other")), body))
    assert "matches the body" in str(guard.check(_lower(grafana_signed(body, "key")), body + b" "))
    assert "a replay?" in str(guard.check(_lower(grafana_signed(body, "key", stamp=1000)), body))
    missing = "missing X-Grafana-Alerting-Signature header: deliveries to this source must be signed"
    assert guard.check({}, body) == missing


def test_pagerduty_signatures_during_a_rotation() -> None:
    guard = Guard.of(Source("pd", "pagerduty", "hmac", "K"), {"K": "new"})
    body = b'{"event": {}}'
    assert guard.check(_lower(pagerduty_signed(body, "old", "new")), body) is None
    assert guard.check(_lower(pagerduty_signed(body, "old", "older")), body) is not None
    v0 = _lower(pagerduty_signed(body, "new"))
    v0["x-pagerduty-signature"] = v0["x-pagerduty-signature"].replace("v1=", "v0=")
    assert guard.check(v0, body) is not None  # only v1 signatures are PagerDuty's


def test_bearer_and_basic() -> None:
    token = Guard.of(Source("am", "alertmanager", "bearer", "T"), {"T": "tok"})
    assert token.check({"authorization": "Bearer tok"}, b"") is None
    assert token.check({"authorization": "Bearer nope"}, b"") == "the bearer token is not this source's"
    login = Guard.of(Source("ci", "generic", "basic", "P", "ci"), {"P": "pw"})
    assert login.check(_lower(basic("ci", "pw")), b"") is None
    assert login.check(_lower(basic("ci", "no")), b"") == "wrong username or password"
    assert login.check({"authorization": "Basic !!!"}, b"") is not None


def test_a_source_whose_secret_is_not_set_is_refused_at_start() -> None:
    from engine.errors import UsageError

    with pytest.raises(UsageError, match="the environment variable T holding its bearer secret is not set"):
        Guard.of(Source("am", "alertmanager", "bearer", "T"), {})
