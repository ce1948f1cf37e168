"""Per-host values over real SSH (issue 12 item 5): each host runs the command rendered
for it, and the journal and console say which command each host ran."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sshd import Cluster, target_yaml

pytestmark = pytest.mark.integration


def test_each_host_runs_its_own_value_and_the_journal_says_so(cluster: Cluster, live: Callable) -> None:
    hosts = cluster.hosts[:3]
    values = ", ".join(f"'{h}': {n}" for n, h in enumerate(hosts, 1))
    run = live(f"""\
kind: runbook
version: 1
id: per-host
title: Per-host values
defaults: {{timeout: 30s}}
vars:
  pids: {{{values}}}
targets:
  web: {target_yaml(cluster, hosts)}
detection:
  - id: stop
    target: web
    run: "echo pid={{{{ vars.pids[host] }}}}"
""")
    assert run.result.outcome == "resolved", run.result.reason
    stdout = {h: r["stdout"] for h, r in run.step("stop")["hosts"].items()}
    assert stdout == {h: f"pid={n}\n" for n, h in enumerate(hosts, 1)}
    commands = {e["host"]: e["command"] for e in run.events("host.finished")}
    assert commands == {h: f"echo pid={n}" for n, h in enumerate(hosts, 1)}
    [started] = run.events("step.started")
    assert started["command"] == "echo pid={{ vars.pids[host] }}"
    for n, host in enumerate(hosts, 1):
        assert f"{host} ran: echo pid={n}" in run.console
