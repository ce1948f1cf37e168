"""engine.alerts: Alertmanager webhook payloads and single alerts as a source of inputs."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from engine.alerts import AmbiguousAlert, alerts_in, choose, lookup, read_payload
from engine.errors import InputError
from engine.inputs import resolve
from engine.loader import load_text
from engine.model import build_runbook

WEBHOOK: dict[str, Any] = {
    "version": "4",
    "status": "firing",
    "receiver": "runbook",
    "groupLabels": {"alertname": "DiskUsageHigh"},
    "commonLabels": {"alertname": "DiskUsageHigh", "severity": "page", "mountpoint": "/var"},
    "commonAnnotations": {"runbook": "disk-full"},
    "alerts": [
        {"status": "firing", "labels": {"instance": "db-1", "mountpoint": "/var"},
         "annotations": {"summary": "db-1 /var 96%"}},
        {"status": "firing", "labels": {"instance": "db-2", "mountpoint": "/srv"},
         "annotations": {"summary": "db-2 /srv 93%", "runbook": "other"}},
    ],
}
SINGLE = {"labels": {"alertname": "DiskUsageHigh", "instance": "db-9"}, "annotations": {}}


def test_each_alert_of_a_webhook_gets_the_common_labels_merged_in() -> None:
    first, second = alerts_in(WEBHOOK)
    assert first["labels"] == {"alertname": "DiskUsageHigh", "severity": "page", "mountpoint": "/var",
                               "instance": "db-1"}
    assert second["labels"]["mountpoint"] == "/srv"  # the alert's own label wins
    assert first["annotations"]["runbook"] == "disk-full"
    assert second["annotations"]["runbook"] == "other"


def test_several_alerts_need_an_index_and_the_error_lists_them() -> None:
    with pytest.raises(AmbiguousAlert) as info:
        choose(WEBHOOK, None)
    message = str(info.value)
    assert "holds 2 alerts; choose one with --alert-index N" in message
    assert "[0] DiskUsageHigh {instance=db-1, mountpoint=/var, severity=page} (firing)" in message
    assert "[1] DiskUsageHigh {instance=db-2" in message
    assert info.value.exit_code == 2


def test_alert_index_picks_one_alert() -> None:
    assert choose(WEBHOOK, 1)["labels"]["instance"] == "db-2"
    with pytest.raises(InputError, match="--alert-index 2 is out of range: the payload holds 2 alert"):
        choose(WEBHOOK, 2)


def test_a_single_alert_is_used_as_it_is() -> None:
    assert choose(SINGLE, None) == SINGLE
    assert choose({"alerts": [SINGLE]}, None)["labels"]["instance"] == "db-9"


@pytest.mark.parametrize(("payload", "reason"), [
    ([1, 2], "must be a JSON object"),
    ({"alerts": []}, "holds no alerts"),
    ({"foo": 1}, "not an alert"),
])
def test_a_payload_that_is_not_an_alert_is_an_input_error(payload: Any, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        choose(payload, None)


def test_lookup_follows_dotted_paths_and_gives_none_when_absent() -> None:
    assert lookup(SINGLE, "labels.instance") == "db-9"
    assert lookup(SINGLE, "labels.nope") is None
    assert lookup(SINGLE, "labels.instance.deeper") is None


def test_payloads_are_read_as_json_or_yaml(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(WEBHOOK))
    (tmp_path / "b.yaml").write_text("labels: {instance: db-3}\n")
    (tmp_path / "c.txt").write_text("a: [\n")
    assert read_payload(tmp_path / "a.json") == WEBHOOK
    assert read_payload(tmp_path / "b.yaml") == {"labels": {"instance": "db-3"}}
    with pytest.raises(InputError, match="neither JSON nor YAML"):
        read_payload(tmp_path / "c.txt")
    with pytest.raises(InputError, match="cannot read alert file"):
        read_payload(tmp_path / "missing.json")


def test_an_alert_fills_the_inputs_that_name_a_path_in_it() -> None:
    rb = build_runbook(load_text(textwrap.dedent("""\
        kind: runbook
        version: 1
        id: disk
        title: Disk
        inputs:
          host: {type: string, alert: labels.instance}
          mount: {type: string, alert: labels.mountpoint, default: /}
          summary: {type: string, alert: annotations.summary}
          severity: {type: string, alert: labels.severity}
        detection:
          - {id: check, run: "true"}
        """), "disk.yaml"))
    values = resolve(rb, alert=choose(WEBHOOK, 1), environ={}).values
    assert values == {"host": "db-2", "mount": "/srv", "summary": "db-2 /srv 93%", "severity": "page"}
