"""What the drill room tests share: a small runbook with two roles (a question for the
responder, an approval for the incident commander), its scenario with trainer-only text
(notes, a red herring, a fault's description) easy to look for, and a serve config."""

from __future__ import annotations

from pathlib import Path

RUNBOOK = """\
kind: runbook
version: 1
id: queue-stuck
title: Queue stuck
roles: [responder, incident_commander]
triage:
  - id: depth
    run: "queue-depth orders"
  - id: cause
    manual: Look at the consumers. Why is the queue not draining?
    role: responder
    ask:
      cause: {prompt: Cause, choices: [consumers, producer]}
remediation:
  - id: restart
    run: "restart-consumers orders"
    confirm: {message: Restart the consumers?, role: incident_commander}
  - id: settle
    wait: 30s
recovery:
  - id: drained
    run: "queue-depth orders"
"""

# Trainer-only strings: none may reach a trainee's page or stream.
NOTES = "SECRET-NOTES the consumers deadlocked on a poisoned message"
HERRING = "red_herring"
FAULT = "SECRET-FAULT the first restart hangs"

SCENARIO = f"""\
kind: scenario
version: 1
id: queue-stuck-poison
title: Poisoned message deadlocks the consumers
description: "{NOTES}"
runbook: ../runbooks/queue-stuck.yaml
alert:
  labels: {{alertname: QueueBacklog, queue: orders}}
  annotations: {{summary: "orders queue depth 48000 and rising"}}
briefing: "09:40. The orders queue pages: depth 48000 and climbing."
state: {{stuck: true}}
mitigated_when: "not state.stuck"
responses:
  - step: depth
    duration: 1s
    stdout: "{{{{ 48000 if state.stuck else 12 }}}}\\n"
  - step: restart
    description: "{FAULT}"
    duration: 2s
    set: {{stuck: false}}
    stdout: "consumers restarted\\n"
  - step: drained
    duration: 1s
    stdout: "12\\n"
events:
  - at: 5m
    message: "Payments team asks whether orders are being lost."
    kind: {HERRING}
hints:
  cause: Look for one message the consumers keep retrying.
objectives:
  outcome: resolved
  time_to_mitigate: 30m
  must_run: [depth, cause, restart]
"""

CONFIG = """\
kind: serve
version: 1
runbooks: [runbooks]
scenarios: [scenarios]
trainers: [trainer]
workers: {{slots: 2, lease: 5s}}
people:
  - {{name: tess, roles: [trainer]}}
  - {{name: rita, roles: [oncall]}}
  - {{name: ivan, roles: [oncall]}}
  - {{name: olga, roles: [oncall]}}
{extra}"""


def write_drill_files(tmp: Path, extra: str = "") -> Path:
    """runbooks/, scenarios/ and serve.yaml under `tmp`; the config's path."""
    (tmp / "runbooks").mkdir(exist_ok=True)
    (tmp / "scenarios").mkdir(exist_ok=True)
    (tmp / "runbooks" / "queue-stuck.yaml").write_text(RUNBOOK, encoding="utf-8")
    (tmp / "scenarios" / "queue-stuck-poison.yaml").write_text(SCENARIO, encoding="utf-8")
    config = tmp / "serve.yaml"
    config.write_text(CONFIG.format(extra=extra), encoding="utf-8")
    return config
