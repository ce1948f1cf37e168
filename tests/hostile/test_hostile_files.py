"""Hostile documents in every kind of file the engine reads: runbooks, scenarios,
inventories, inputs files and alert payloads (alias bombs, deep nesting, huge numbers,
NUL bytes, invalid UTF-8, huge lines, YAML tags, ...), through the commands that read
them: `validate`, `run` (live, unattended), `run --dry-run`, `test`, `graph`. Where two
commands would only run the same loader on the same bytes, one of them is tried."""

from __future__ import annotations

import json

import pytest
from hostile_corpus import BASES, alert_payloads, documents, in_kind
from hostile_harness import Case, Runner

DOCS = documents()
ALERTS = alert_payloads()
LOADABLE = ("bom-crlf", "control-chars", "python-tag", "huge-int")

GROUP_RUNBOOK = """\
kind: runbook
version: 1
id: fleet
title: Fleet
inputs:
  host: {type: string, default: db-1, alert: labels.instance}
targets:
  web: {group: webservers}
  box: {hosts: ["{{ inputs.host }}"]}
defaults: {timeout: 30s}
detection:
  - id: probe
    run: echo {{ inputs.host }}
    expect: exit_code == 0
remediation:
  - id: on_web
    target: web
    run: "true"
"""

LOCAL_RUNBOOK = """\
kind: runbook
version: 1
id: local
title: Local
inputs:
  host: {type: string, default: db-1, alert: labels.instance}
defaults: {timeout: 30s}
detection:
  - id: probe
    run: echo {{ inputs.host }}
    expect: exit_code == 0
"""


@pytest.mark.parametrize("name", DOCS)
def test_hostile_runbook_file(hostile: Runner, name: str) -> None:
    path = hostile.write("runbook.yaml", in_kind("runbook", name, DOCS[name]))
    kind = f"runbook:{name}"
    cases = [Case(kind, "validate", ["validate", str(path)]), Case(kind, "run", hostile.run_args(path))]
    if name in LOADABLE:  # the others fail in the loader, the same for every command
        cases += [Case(kind, "dry-run", ["run", "--dry-run", str(path)]),
                  Case(kind, "graph", ["graph", str(path), "-f", "svg"])]
    hostile.check(*cases)


@pytest.mark.parametrize("name", DOCS)
def test_hostile_scenario_file(hostile: Runner, name: str) -> None:
    hostile.write("target.yaml", BASES["runbook"])
    path = hostile.write("scenario.yaml", in_kind("scenario", name, DOCS[name]))
    kind = f"scenario:{name}"
    hostile.check(Case(kind, "validate", ["validate", str(path)]),
                  Case(kind, "test", ["test", str(path), "--runs-dir", "{runs}"]))


@pytest.mark.parametrize("name", DOCS)
def test_hostile_inventory_file(hostile: Runner, name: str) -> None:
    runbook = hostile.write("fleet.yaml", GROUP_RUNBOOK)
    path = hostile.write("inventory.yaml", in_kind("inventory", name, DOCS[name]))
    kind = f"inventory:{name}"
    hostile.check(Case(kind, "validate", ["validate", str(path)]),
                  Case(kind, "dry-run", ["run", "--dry-run", str(runbook), "--inventory", str(path)]))


@pytest.mark.parametrize("name", DOCS)
def test_hostile_inputs_file(hostile: Runner, name: str) -> None:
    runbook = hostile.write("local.yaml", LOCAL_RUNBOOK)
    path = hostile.write("inputs.yaml", in_kind("inputs", name, DOCS[name]))
    kind = f"inputs:{name}"
    hostile.check(Case(kind, "run", hostile.run_args(runbook, "--inputs-file", str(path)),
                       canary=hostile.work / "PWNED"))


@pytest.mark.parametrize("name", [*DOCS, *ALERTS])
def test_hostile_alert_payload(hostile: Runner, name: str) -> None:
    runbook = hostile.write("local.yaml", LOCAL_RUNBOOK)
    payload = DOCS[name] if name in DOCS else ALERTS[name].encode()
    path = hostile.write("alert.json", payload)
    kind = f"alert:{name}"
    hostile.check(Case(kind, "run", hostile.run_args(runbook, "--alert", str(path)), canary=hostile.work / "PWNED"))


def test_inventory_host_range_of_ten_million_hosts(hostile: Runner) -> None:
    """An Ansible range that would expand to 10**7 hosts."""
    runbook = hostile.write("fleet.yaml", GROUP_RUNBOOK)
    inventory = hostile.write("hosts.ini", "[webservers]\nweb[00000001:10000000].example.org\n")
    yaml_inventory = hostile.write("inventory.yaml", "kind: inventory\nversion: 1\ngroups:\n  webservers:\n"
                                   "    hosts: " + json.dumps([f"web-{i}" for i in range(50_000)]) + "\n")
    hostile.check(*(Case("inventory:host-range", command, argv) for command, argv in (
        ("validate", ["validate", str(runbook), "--inventory", str(inventory)]),
        ("dry-run", ["run", "--dry-run", str(runbook), "--inventory", str(inventory)]),
        ("dry-run", ["run", "--dry-run", str(runbook), "--inventory", str(yaml_inventory)]))))


LIST_RUNBOOK = """\
kind: runbook
version: 1
id: lists
title: Lists
inputs:
  names: {type: list, default: [a]}
  labels: {type: map, default: {a: b}}
defaults: {timeout: 30s}
detection:
  - id: probe
    run: echo {{ inputs.names | length }} {{ inputs.labels | length }}
"""


@pytest.mark.parametrize("name", ["alias-bomb", "alias-size", "deep-flow", "huge-int", "python-tag"])
def test_hostile_list_and_map_values_given_with_i(hostile: Runner, name: str) -> None:
    """`-i NAME=VALUE` for list and map inputs parses the value: the same limits apply."""
    runbook = hostile.write("lists.yaml", LIST_RUNBOOK)
    value = DOCS[name].decode("utf-8", "replace")
    kind = f"assignment:{name}"
    hostile.check(Case(kind, "dry-run", ["run", "--dry-run", str(runbook), "-i", f"names={value}"]),
                  Case(kind, "run", hostile.run_args(runbook, "-i", f"labels={value}"), canary=hostile.work / "PWNED"))
