"""What the service tests share: a runbook whose steps count their runs in files (so a
test sees which ran twice), and queueing it in a store."""

from __future__ import annotations

from pathlib import Path

from engine.service.store import NewRun, Store

RUNBOOK = """\
kind: runbook
version: 1
id: takeover
title: Takeover
defaults: {{timeout: 2m}}
inputs:
  dir: {{type: string}}
  token: {{type: string, secret: true, default: s3cr3t-value}}
remediation:
  - id: first
    run: "echo 'first ran é' >> {{{{ inputs.dir }}}}/first.count; printf 'out\\\\0put'"
  - id: slow
    idempotent: {idempotent}
    run: "echo ran >> {{{{ inputs.dir }}}}/slow.count; sleep {sleep}; echo {{{{ inputs.token }}}}"
  - id: last
    run: "echo ran >> {{{{ inputs.dir }}}}/last.count"
"""


def takeover_runbook(tmp_path: Path, *, idempotent: bool = False, sleep: float = 0.1) -> Path:
    path = tmp_path / "takeover.yaml"
    path.write_text(RUNBOOK.format(idempotent=str(idempotent).lower(), sleep=sleep), encoding="utf-8")
    return path


def queue_run(store: Store, runbook: Path, work: Path) -> str:
    work.mkdir(exist_ok=True)
    inputs = {"dir": str(work), "token": "s3cr3t-value"}
    return store.enqueue(NewRun("takeover", str(runbook), inputs, secrets=("token",))).id
