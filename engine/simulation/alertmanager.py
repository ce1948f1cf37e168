"""The Alertmanager of a drill: alerts and silences are part of the world's state.

`state.alerts` lists the alerts that fire (each `{labels, annotations}`, its name the
`alertname` label or `name`; one whose `status` is `resolved` no longer fires). Until the
scenario or an event sets it, it holds the scenario's own `alert`. Events fire and
resolve alerts by setting it, so "wait until it clears" follows the world. A `silence`
step adds to `state.silences` (and the alerts it matches read as suppressed); `unsilence`
expires one. A scripted response for the step still wins over all of this.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from engine.executors.alertmanager import stamp
from engine.executors.base import Invocation, Result
from engine.language.monitoring import Matcher, parse_matcher

KINDS = ("alert", "silence", "unsilence")


def answer(state: dict[str, Any], scenario_alert: Mapping[str, Any] | None, inv: Invocation, now: float) -> Result:
    """The simulated Alertmanager's answer to an alert, silence or unsilence request."""
    assert inv.http is not None
    if inv.kind == "alert":
        wanted = [parse_matcher(v) for k, v in parse_qsl(urlsplit(inv.http.url).query) if k == "filter"]
        body: Any = [_gettable(a, state) for a in _alerts(state, scenario_alert) if _matches(wanted, a["labels"])]
    elif inv.kind == "silence":
        body = {"silenceID": _silence(state, json.loads(inv.http.body or b"{}"), now)}
    else:
        silence_id = unquote(urlsplit(inv.http.url).path.rsplit("/", 1)[-1])
        for entry in state.get("silences") or []:
            if isinstance(entry, dict) and entry.get("id") == silence_id:
                entry["active"] = False
        body = ""
    text = json.dumps(body) if body != "" else ""
    return Result(inv.command, None, text, "", None, now, 0.0, True, status=200, headers={}, body=text)


def _alerts(state: dict[str, Any], scenario_alert: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if "alerts" not in state:
        state["alerts"] = [json.loads(json.dumps(dict(scenario_alert), default=str))] if scenario_alert else []
    out = []
    for item in state.get("alerts") or []:
        if not isinstance(item, Mapping) or str(item.get("status", "")).lower() == "resolved":
            continue
        labels = {str(k): str(v) for k, v in (item.get("labels") or {}).items()}
        if item.get("name"):
            labels.setdefault("alertname", str(item["name"]))
        out.append({**item, "labels": labels})
    return out


def _gettable(alert: Mapping[str, Any], state: Mapping[str, Any]) -> dict[str, Any]:
    labels = alert["labels"]
    silenced = [s["id"] for s in state.get("silences") or [] if isinstance(s, Mapping) and s.get("active")
                and _matches([Matcher(**m) for m in s.get("matchers") or []], labels)]
    return {"labels": labels, "annotations": dict(alert.get("annotations") or {}),
            "fingerprint": str(alert.get("fingerprint") or _fingerprint(labels)),
            "startsAt": alert.get("startsAt"),
            "status": {"state": "suppressed" if silenced else "active", "silencedBy": silenced, "inhibitedBy": []}}


def _fingerprint(labels: Mapping[str, str]) -> str:
    text = "\xff".join(f"{k}\xff{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _matches(matchers: list[Matcher], labels: Mapping[str, str]) -> bool:
    for m in matchers:
        value = labels.get(m.name, "")
        hit = re.fullmatch(m.value, value) is not None if "~" in m.op else value == m.value
        if hit == m.op.startswith("!"):
            return False
    return True


def _silence(state: dict[str, Any], body: Mapping[str, Any], now: float) -> str:
    silences = state.setdefault("silences", [])
    silence_id = f"drill-silence-{len(silences) + 1}"
    matchers = [{"name": str(m.get("name")), "value": str(m.get("value")), "op": _op(m)}
                for m in body.get("matchers") or [] if isinstance(m, Mapping)]
    silences.append({"id": silence_id, "matchers": matchers, "active": True,
                     "created_by": body.get("createdBy"), "comment": body.get("comment"),
                     "starts_at": stamp(now), "ends_at": body.get("endsAt")})
    return silence_id


def _op(m: Mapping[str, Any]) -> str:
    """The operator of an API matcher as the language writes it (=, !=, =~, !~)."""
    equal, regex = m.get("isEqual", True) is not False, bool(m.get("isRegex"))
    return {(True, False): "=", (True, True): "=~", (False, False): "!=", (False, True): "!~"}[(equal, regex)]
