"""engine.run.alerts: Alertmanager webhook payloads and single alerts as a source of inputs."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from engine.cli.commands import cli
from engine.errors import InputError
from engine.language.builder import build_runbook
from engine.language.loader import load_text
from engine.run.alerts import AmbiguousAlert, alerts_in, choose, lookup, read_payload, record
from engine.run.inputs import resolve

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
    with pytest.raises(InputError, match=r"cannot use the alert file .*c\.txt:2:1: YAML syntax error"):
        read_payload(tmp_path / "c.txt")
    with pytest.raises(InputError, match=r"cannot use the alert file .*missing\.json: cannot read file"):
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


# -- B11: the alert is journaled, a resolved one starts nothing unasked ----------------------

RUNBOOK = """\
kind: runbook
version: 1
id: disk
title: Disk
inputs:
  host: {type: string, alert: labels.instance}
detection:
  - {id: check, run: "echo {{ inputs.host }}", timeout: 5s}
"""
FIRING = {"status": "firing", "commonLabels": {"alertname": "DiskUsageHigh"},
          "alerts": [{"status": "firing", "labels": {"instance": "db-1"},
                      "annotations": {"summary": "/var on db-1 is 96% full"},
                      "startsAt": "2020-03-01T03:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                      "fingerprint": "9f1c2e7a", "generatorURL": "http://prometheus/graph"}]}
RESOLVED = {"status": "resolved", "alerts": [{"labels": {"alertname": "DiskUsageHigh", "instance": "db-1"},
                                              "startsAt": "2020-03-01T03:00:00Z",
                                              "endsAt": "2026-03-01T03:20:00Z", "fingerprint": "9f1c2e7a"}]}


def run_alert(tmp_path: Path, payload: Any, *extra: str) -> Result:
    (tmp_path / "rb.yaml").write_text(RUNBOOK, encoding="utf-8")
    (tmp_path / "alert.json").write_text(json.dumps(payload), encoding="utf-8")
    args = ["run", str(tmp_path / "rb.yaml"), "--alert", str(tmp_path / "alert.json"), "--non-interactive",
            "--runs-dir", str(tmp_path / "runs"), *extra]
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def run_started(tmp_path: Path) -> dict[str, Any]:
    [journal] = (tmp_path / "runs").glob("*/journal.jsonl")
    first: dict[str, Any] = json.loads(journal.read_text(encoding="utf-8").splitlines()[0])
    assert first["event"] == "run.started"
    return first


def test_a_resolved_alert_is_refused_naming_the_alert_and_the_flag(tmp_path: Path) -> None:
    result = run_alert(tmp_path, RESOLVED)
    assert result.exit_code == 2
    assert "the alert DiskUsageHigh {instance=db-1} is resolved (ended 2026-03-01T03:20:00Z)" in result.output
    assert "--allow-resolved" in result.output
    assert not (tmp_path / "runs").exists()  # nothing started, no journal


def test_allow_resolved_runs_and_the_journal_says_so(tmp_path: Path) -> None:
    result = run_alert(tmp_path, RESOLVED, "--allow-resolved")
    assert result.exit_code == 0, result.output
    alert = run_started(tmp_path)["alert"]
    assert alert["status"] == "resolved" and alert["allowed_resolved"] is True


def test_a_dry_run_of_a_resolved_alert_only_notes_it(tmp_path: Path) -> None:
    result = run_alert(tmp_path, RESOLVED, "--dry-run")
    assert result.exit_code == 0
    assert "is resolved" in result.output and "a live run would be refused" in result.output


def test_the_alert_that_started_a_run_is_journaled(tmp_path: Path) -> None:
    assert run_alert(tmp_path, FIRING).exit_code == 0
    assert run_started(tmp_path)["alert"] == {
        "name": "DiskUsageHigh", "status": "firing", "startsAt": "2020-03-01T03:00:00Z",
        "fingerprint": "9f1c2e7a", "generatorURL": "http://prometheus/graph",
        "labels": {"alertname": "DiskUsageHigh", "instance": "db-1"}, "summary": "/var on db-1 is 96% full",
    }  # Alertmanager's zero endsAt ("not ended") is left out


def test_the_review_says_when_the_alert_began(tmp_path: Path) -> None:
    from engine.reporting.markdown import render_markdown
    from engine.reporting.report import build_report

    assert run_alert(tmp_path, FIRING).exit_code == 0
    [run_dir] = (tmp_path / "runs").iterdir()
    report = build_report(str(run_dir))
    assert report.review.impact[0][0] == "Alert DiskUsageHigh fired (startsAt)"
    assert report.review.impact[0][1].startswith("2020-03-01 03:00:00 UTC (")
    assert report.review.impact[-1][1].startswith("from 2020-03-01 03:00:00 UTC (the alert's startsAt)")
    assert "before the run started: did the impact begin then" in report.review.questions[0]
    assert "cannot say" not in render_markdown(report)


def test_the_payload_status_stands_for_alerts_without_their_own() -> None:
    assert choose(RESOLVED, None)["status"] == "resolved"


def test_long_label_values_are_cut_in_the_record() -> None:
    kept = record({"labels": {"alertname": "X", "big": "y" * 5000}})["labels"]["big"]
    assert len(kept) == 500 and kept.endswith("...")


# -- E7: hostile alert and inputs files are refused, positioned, exit 2 ----------------------

BOMB = "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
HOSTILE = [
    ("alias bomb", "a: &a [x, x, x, x, x, x, x, x, x]\n" + BOMB + "labels: {instance: x}\n", "1:4", "RB002"),
    ("deep JSON", "[" * 100_000 + "]" * 100_000, "1:65", "RB002"),
    # libyaml (PyYAML 6.0.4) may refuse first, as a syntax error at its own limit: either is clean
    ("deep YAML", "labels: " + "[" * 100_000 + "]" * 100_000, r"1:\d+", "RB00[12]"),
    ("huge integer in JSON", '{"labels": {"instance": ' + "9" * 5000 + "}}", "1:25", "RB001"),
    ("huge integer in YAML", "labels: {instance: " + "9" * 5000 + "}\n", "1:20", "RB001"),
    ("a string repeated by aliases", f"x: &s {'z' * 100_000}\nlabels: {{instance: [{', '.join(['*s'] * 20)}]}}\n",
     "1:4", "RB002"),
]


@pytest.mark.parametrize(("text", "where", "rule"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
@pytest.mark.parametrize("flag", ["--alert", "--inputs-file"])
def test_hostile_alert_and_inputs_files_are_refused_with_their_position(
        tmp_path: Path, text: str, where: str, rule: str, flag: str) -> None:
    (tmp_path / "rb.yaml").write_text(RUNBOOK, encoding="utf-8")
    (tmp_path / "bad.json").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "rb.yaml"), flag, str(tmp_path / "bad.json"),
                                      "-i", "host=h", "--dry-run"], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert re.search(rf"bad\.json:{where}: .* \[{rule}\]$", result.output.strip()), result.output
    assert "internal error" not in result.output


def test_labels_that_are_not_a_mapping_are_an_input_error() -> None:
    with pytest.raises(InputError, match="labels must be a mapping"):
        choose({"alerts": [{"labels": ["instance", "db-1"]}]}, None)


def test_json_numbers_and_escapes_read_as_json_does(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"labels": {"n": 1e5, "s": "\\ud83d\\ude00"}}', encoding="utf-8")
    assert read_payload(tmp_path / "a.json") == {"labels": {"n": 100000.0, "s": "\U0001f600"}}
