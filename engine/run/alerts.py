"""Alertmanager payloads: a webhook body with several alerts, or one alert.

The alert that starts a run is journaled (`run.started` holds its name, status, times,
fingerprint and labels), so a review can say when the impact began. A resolved alert
does not start a remediation unless the operator says so (`--allow-resolved`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from engine.errors import InputError

# Alertmanager writes Go's zero time for "no end yet" on a firing alert.
_ZERO_TIME = "0001-01-01"
_RECORDED = ("status", "startsAt", "endsAt", "fingerprint", "generatorURL")
_LONGEST = 500  # characters of one recorded value: the journal holds a summary, not a dump


class AmbiguousAlert(InputError):
    """The payload holds several alerts and none was chosen."""

    def __init__(self, alerts: list[dict[str, Any]]) -> None:
        lines = [f"  [{i}] {describe(a)}" for i, a in enumerate(alerts)]
        super().__init__(
            f"the payload holds {len(alerts)} alerts; choose one with --alert-index N:\n" + "\n".join(lines)
        )
        self.alerts = alerts


class ResolvedAlert(InputError):
    """The chosen alert is resolved: a remediation needs the operator's explicit word."""


def describe(alert: Mapping[str, Any], *, status: bool = True) -> str:
    """`DiskUsageHigh {instance=db-1, mountpoint=/var} (firing)`."""
    labels = alert.get("labels") or {}
    name = labels.get("alertname", "alert")
    rest = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname")
    state = alert.get("status", "") if status else ""
    return f"{name} {{{rest}}}" + (f" ({state})" if state else "")


def read_payload(path: str | os.PathLike[str]) -> dict[str, Any]:
    """An alert file (JSON or YAML) read under the runbook loader's limits; InputError otherwise."""
    from engine.language.datafile import load_mapping

    return load_mapping(path, "alert file")


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"the alert's {what} must be a mapping of names to values")
    return dict(value)


def alerts_in(payload: Any) -> list[dict[str, Any]]:
    """The alerts of a webhook payload (merging commonLabels), or the single alert given."""
    if not isinstance(payload, dict):
        raise InputError("an alert must be a JSON object (an Alertmanager webhook body or one alert)")
    if isinstance(payload.get("alerts"), list):
        common = _mapping(payload.get("commonLabels"), "commonLabels")
        common_ann = _mapping(payload.get("commonAnnotations"), "commonAnnotations")
        out = []
        for alert in payload["alerts"]:
            if isinstance(alert, dict):
                merged = dict(alert)
                merged["labels"] = {**common, **_mapping(alert.get("labels"), "labels")}
                merged["annotations"] = {**common_ann, **_mapping(alert.get("annotations"), "annotations")}
                if "status" not in merged and payload.get("status") is not None:
                    merged["status"] = payload["status"]  # the group's status stands for each alert's
                out.append(merged)
        if not out:
            raise InputError("the alert payload holds no alerts")
        return out
    if "labels" in payload or "annotations" in payload:
        _mapping(payload.get("labels"), "labels")
        _mapping(payload.get("annotations"), "annotations")
        return [payload]
    raise InputError("not an alert: expected `alerts: [...]` or `labels:` at the top level")


def choose(payload: Any, index: int | None) -> dict[str, Any]:
    alerts = alerts_in(payload)
    if index is not None:
        if not 0 <= index < len(alerts):
            raise InputError(f"--alert-index {index} is out of range: the payload holds {len(alerts)} alert(s)")
        return alerts[index]
    if len(alerts) > 1:
        raise AmbiguousAlert(alerts)
    return alerts[0]


def is_resolved(alert: Mapping[str, Any]) -> bool:
    return str(alert.get("status") or "").strip().lower() == "resolved"


def refuse_resolved(alert: Mapping[str, Any], *, allowed: bool) -> None:
    """ResolvedAlert (exit 2) for a resolved alert, unless the operator allowed it."""
    if allowed or not is_resolved(alert):
        return
    ended = _time(alert.get("endsAt"))
    when = f" (ended {ended})" if ended else ""
    raise ResolvedAlert(
        f"the alert {describe(alert, status=False)} is resolved{when}: a resolved alert does not start "
        "a remediation. If the problem is still there, run again with --allow-resolved"
    )


def record(alert: Mapping[str, Any], *, allowed_resolved: bool = False) -> dict[str, Any]:
    """What the journal keeps of the alert that started a run (run.started `alert`)."""
    labels = _mapping(alert.get("labels"), "labels")
    out: dict[str, Any] = {"name": _short(labels.get("alertname", "alert"))}
    for key in _RECORDED:
        value = _time(alert.get(key)) if key in ("startsAt", "endsAt") else alert.get(key)
        if value not in (None, ""):
            out[key] = _short(value)
    out["labels"] = {str(k): _short(v) for k, v in labels.items()}
    summary = _mapping(alert.get("annotations"), "annotations").get("summary")
    if summary:
        out["summary"] = _short(summary)
    if allowed_resolved and is_resolved(alert):
        out["allowed_resolved"] = True
    return out


def _time(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip() or value.startswith(_ZERO_TIME):
        return None
    return value.strip()


def _short(value: Any) -> Any:
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    text = str(value)
    return text if len(text) <= _LONGEST else text[: _LONGEST - 3] + "..."


def lookup(alert: Mapping[str, Any], dotted: str) -> Any:
    """`labels.instance` -> the value, or None."""
    value: Any = alert
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value
