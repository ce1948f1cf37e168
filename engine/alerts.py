"""Alertmanager payloads: a webhook body with several alerts, or one alert."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from .errors import InputError


class AmbiguousAlert(InputError):
    """The payload holds several alerts and none was chosen."""

    def __init__(self, alerts: list[dict[str, Any]]) -> None:
        lines = [f"  [{i}] {describe(a)}" for i, a in enumerate(alerts)]
        super().__init__(
            f"the payload holds {len(alerts)} alerts; choose one with --alert-index N:\n" + "\n".join(lines)
        )
        self.alerts = alerts


def describe(alert: Mapping[str, Any]) -> str:
    labels = alert.get("labels") or {}
    name = labels.get("alertname", "alert")
    rest = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname")
    status = alert.get("status", "")
    return f"{name} {{{rest}}}" + (f" ({status})" if status else "")


def read_payload(path: str | os.PathLike[str]) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise InputError(f"cannot read alert file {os.fspath(path)}: {exc.strerror or exc}") from exc
    try:
        return json.loads(text)
    except ValueError:
        pass
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"alert file {os.fspath(path)} is neither JSON nor YAML: {exc}") from None


def alerts_in(payload: Any) -> list[dict[str, Any]]:
    """The alerts of a webhook payload (merging commonLabels), or the single alert given."""
    if not isinstance(payload, dict):
        raise InputError("an alert must be a JSON object (an Alertmanager webhook body or one alert)")
    if isinstance(payload.get("alerts"), list):
        common = payload.get("commonLabels") or {}
        common_ann = payload.get("commonAnnotations") or {}
        out = []
        for alert in payload["alerts"]:
            if isinstance(alert, dict):
                merged = dict(alert)
                merged["labels"] = {**common, **(alert.get("labels") or {})}
                merged["annotations"] = {**common_ann, **(alert.get("annotations") or {})}
                out.append(merged)
        if not out:
            raise InputError("the alert payload holds no alerts")
        return out
    if "labels" in payload or "annotations" in payload:
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


def lookup(alert: Mapping[str, Any], dotted: str) -> Any:
    """`labels.instance` -> the value, or None."""
    value: Any = alert
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value
