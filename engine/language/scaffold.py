"""`runbook new`: a skeleton runbook that validates cleanly and shows every phase."""

from __future__ import annotations

import os
import re
from pathlib import Path

from engine.errors import UsageError

# The schema's runbook id: pattern ^[a-z][a-z0-9-]*$ and maxLength 64. fullmatch, since `$`
# alone would also accept a trailing newline.
_ID = re.compile(r"[a-z][a-z0-9-]{0,63}")

SKELETON = """\
# yaml-language-server: $schema={schema}
kind: runbook
version: 1
id: {id}
title: {title}
summary: Describe the situation this runbook handles, in one or two sentences.
owner: your-team
alerts: []
inputs:
  host: {{type: string, description: Host that alerted}}
targets:
  box: {{hosts: ["{{{{ inputs.host }}}}"]}}
defaults: {{timeout: 60s}}
roles: [incident_commander, responder]

detection:
  - id: confirm
    title: Confirm the alert is real
    target: box
    run: uptime
    expect: exit_code == 0

triage:
  - id: assess
    role: responder
    manual: Look at the output above. What do you see?
    ask:
      cause: {{choices: [known, unknown]}}

remediation:
  - id: fix
    title: Apply the fix
    when: steps.assess.answers.cause == 'known'
    target: box
    run: echo "replace with the remediation command"
    confirm: {{message: "Apply the fix on {{{{ inputs.host }}}}?", role: incident_commander}}

recovery:
  - id: verify
    title: Verify the service is healthy
    target: box
    run: echo ok
    until: stdout | trim == 'ok'
    every: 10s
    timeout: 5m
"""


def render_skeleton(name: str, schema_ref: str) -> str:
    if not _ID.fullmatch(name):
        raise UsageError(f"invalid runbook name {name!r}: use up to 64 lowercase letters, digits "
                         "and dashes, starting with a letter (e.g. disk-full)")
    title = name.replace("-", " ").capitalize()
    return SKELETON.format(id=name, title=title, schema=schema_ref)


def write_runbook(name: str, output: str | None, *, force: bool = False) -> Path:
    """Write the skeleton for `name`; UsageError if the file exists (without force)."""
    if output:
        path = Path(output)
    else:
        path = Path("runbooks", f"{name}.yaml") if Path("runbooks").is_dir() else Path(f"{name}.yaml")
    if path.exists() and not force:
        raise UsageError(f"{path} already exists (use --force to overwrite)")
    schemas = Path("schemas", "runbook.schema.json")
    ref = os.path.relpath(schemas, path.parent) if schemas.is_file() else (
        "https://runbook-engine.dev/schemas/runbook.schema.json")
    text = render_skeleton(name, ref)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path
