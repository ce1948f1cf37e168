"""`alert`, `silence` and `unsilence` steps against a real Alertmanager, fed by a real
Prometheus whose TargetDown rule fires while the api target is down and resolves once a
metrics server answers on its port (promkit.py): the run waits until the alert clears
for real, silences it meanwhile, and expires the silence at the end."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from livekit import (
    Workspace,
    assert_clean_failure_output,
    closed_port,
    collected,
    complete_journal,
    finished_step,
    runbook_text,
)
from promkit import TARGET_DOWN_RULE, Alertmanager, MetricsServer, Prometheus
from sshd import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def stack() -> Iterator[tuple[Prometheus, Alertmanager, MetricsServer]]:
    am = Alertmanager.create().start()
    api_port = free_port()
    prom = Prometheus.create(rules=TARGET_DOWN_RULE, alertmanager=am.address, api_target=f"127.0.0.1:{api_port}")
    metrics = MetricsServer(api_port)
    try:
        prom.start()
        yield prom, am, metrics
    finally:
        metrics.stop()
        prom.destroy()
        am.destroy()


def connection(url: str) -> str:
    return f"connections:\n  am: {{type: alertmanager, url: \"{url}\"}}\n"


RUNBOOK = """\
inputs: {job: {type: string, default: api}}
detection:
  - id: firing
    alert: {fingerprint: "{{ run.alert.fingerprint }}"}
    expect: firing and alerts[0].labels.job == inputs.job
    outputs: {name: "{{ alerts[0].name }}", state: "{{ alerts[0].state }}"}
remediation:
  - id: quiet
    silence:
      matchers: {alertname: TargetDown, job: "{{ inputs.job }}"}
      duration: 2h
      comment: restarting the api
      author: oncall-ana
    rollback: [{id: quiet_undo, unsilence: quiet}]
  - id: silenced
    alert: {name: TargetDown, labels: ['job="{{ inputs.job }}"', 'severity=~"page|ticket"']}
    expect: alerts[0].state == 'suppressed' and alerts[0].silenced_by == [steps.quiet.silence_id]
  - id: start_api
    run: touch {{ flag }}
recovery:
  - id: cleared
    alert: TargetDown
    until: cleared
    every: 1s
    timeout: 120s
  - id: loud
    unsilence: quiet
"""


def test_a_run_follows_its_alert_silences_it_waits_until_it_clears_and_expires_the_silence(
        ws: Workspace, stack: tuple[Prometheus, Alertmanager, MetricsServer], tmp_path: Path) -> None:
    _, am, metrics = stack
    alert = am.wait_for_alert("TargetDown")  # Prometheus's rule fired and reached Alertmanager
    payload = tmp_path / "alert.json"
    payload.write_text(json.dumps({"status": "firing", "alerts": [
        {"status": "firing", "labels": alert["labels"], "fingerprint": alert["fingerprint"]}]}))
    flag = tmp_path / "api-started"
    ws.write("live.yaml", runbook_text(RUNBOOK.replace("{{ flag }}", str(flag)), head=connection(am.url)))
    proc = ws.start("run", "live.yaml", "--alert", str(payload))
    starter = threading.Thread(target=_start_when_flagged, args=(flag, metrics), daemon=True)
    starter.start()
    done = collected(proc, timeout=240)
    assert done.code == 0, done.text
    records = complete_journal(ws.only_run())
    assert finished_step(records, "firing")["outputs"] == {"name": "TargetDown", "state": "active"}
    assert finished_step(records, "cleared")["attempts"] == 1
    [made] = [s for s in am.silences() if s["createdBy"] == "oncall-ana"]
    run_id = records[0]["run_id"]
    assert made["comment"] == f"restarting the api (runbook live-test, run {run_id})"
    assert made["status"] == {"state": "expired"}  # the unsilence step expired it
    assert {(m["name"], m["value"]) for m in made["matchers"]} == {("alertname", "TargetDown"), ("job", "api")}
    assert f"expired silence {made['id']}" in done.out and "cleared: no alert matches" in done.out


def _start_when_flagged(flag: Path, metrics: MetricsServer) -> None:
    deadline = time.monotonic() + 200
    while not flag.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    metrics.start()


def test_alertmanager_down_and_its_own_errors_fail_the_step_with_the_reason(ws: Workspace,
                                                                            tmp_path: Path) -> None:
    am = Alertmanager.create().start()
    try:
        ws.write("bad.yaml", runbook_text("""\
            remediation:
              - id: quiet
                silence: {matchers: ['job=~"(unclosed"'], duration: 1h, comment: oops}
            """, id="bad", head=connection(am.url)))
        bad = ws.run("run", "bad.yaml")
    finally:
        am.destroy()
    down_url = f"http://127.0.0.1:{closed_port()}"
    ws.write("down.yaml", runbook_text("""\
        detection:
          - {id: q, alert: TargetDown}
        """, id="down", head=connection(down_url)))
    down = ws.run("run", "down.yaml")
    assert bad.code == 1 and down.code == 1, bad.text + down.text
    assert f"Alertmanager am ({am.url}): HTTP status 400: " in bad.out and "(unclosed" in bad.out
    assert f"Alertmanager am ({down_url}): connection refused" in down.out
    assert_clean_failure_output(down)


def test_an_unsilence_whose_silence_step_was_skipped_expires_nothing(ws: Workspace) -> None:
    ws.write("live.yaml", runbook_text("""\
        remediation:
          - id: quiet
            when: "false"
            silence: {matchers: {alertname: X}, duration: 1h, comment: never}
          - {id: loud, unsilence: quiet}
        """, head=connection(f"http://127.0.0.1:{closed_port()}")))
    done = ws.run("run", "live.yaml")
    assert done.code == 0, done.text
    assert "no silence to expire: step quiet created none" in done.out


def test_a_silence_made_before_a_failure_is_expired_by_the_resumed_run(ws: Workspace, tmp_path: Path) -> None:
    """The silence id is journaled with its step: `resume` gives it back to `unsilence`."""
    am = Alertmanager.create().start()
    flag = tmp_path / "fixed"
    try:
        ws.write("live.yaml", runbook_text(f"""\
            remediation:
              - id: quiet
                silence: {{matchers: {{alertname: TargetDown}}, duration: 1h, comment: resume test}}
              - {{id: check, run: "test -f {flag}"}}
            recovery:
              - {{id: loud, unsilence: quiet}}
            """, head=connection(am.url)))
        first = ws.run("run", "live.yaml")
        assert first.code == 1, first.text
        [made] = am.silences()
        assert made["status"] == {"state": "active"}
        flag.touch()
        resumed = ws.run("resume", ws.only_run(), "--rerun-failed")
        assert resumed.code == 0, resumed.text
        [after] = am.silences()
    finally:
        am.destroy()
    assert after["id"] == made["id"] and after["status"] == {"state": "expired"}
    assert f"expired silence {made['id']}" in resumed.out


def test_waiting_for_an_alert_to_clear_polls_through_a_down_alertmanager_and_says_so(ws: Workspace) -> None:
    """A poll that cannot reach Alertmanager has no `cleared` to judge: not yet, not a
    template error; the step's failure names the last error."""
    url = f"http://127.0.0.1:{closed_port()}"
    ws.write("live.yaml", runbook_text("""\
        recovery:
          - {id: cleared, alert: TargetDown, until: cleared, every: 1s, timeout: 3s}
        """, head=connection(url)))
    done = ws.run("run", "live.yaml")
    assert done.code == 1, done.text
    step = finished_step(complete_journal(ws.only_run()), "cleared")
    assert step["attempts"] >= 2 or "poll" in step["error"]
    assert step["error"].startswith("until `cleared` was still false after ")
    assert step["error"].endswith(f"the last poll failed: Alertmanager am ({url}): connection refused")


def test_a_resumed_run_still_knows_the_alert_that_started_it(ws: Workspace, tmp_path: Path) -> None:
    payload = tmp_path / "alert.json"
    payload.write_text(json.dumps({"labels": {"alertname": "TargetDown", "job": "api"}, "status": "firing",
                                   "fingerprint": "5e1f00d"}))
    flag = tmp_path / "fixed"
    ws.write("live.yaml", runbook_text(f"""\
        remediation:
          - {{id: check, run: "test -f {flag}"}}
          - {{id: show, run: "echo fingerprint={{{{ run.alert.fingerprint }}}}"}}
        """))
    assert ws.run("run", "live.yaml", "--alert", str(payload)).code == 1
    flag.touch()
    resumed = ws.run("resume", ws.only_run(), "--rerun-failed")
    assert resumed.code == 0, resumed.text
    assert "fingerprint=5e1f00d" in resumed.out
