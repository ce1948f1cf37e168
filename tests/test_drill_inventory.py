"""A scenario's `inventory:` in a drill: a `group:` target fans out to the group's hosts,
as a live run with --inventory does ("2 of 3 load balancers down" is drillable)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from simkit import drill, finished

RUNBOOK = """\
targets:
  lbs: {group: lbs, max_failures: 2}
detection:
  - {id: probe, target: lbs, run: "curl -fsS http://{{ host }}/health", continue_on_error: true}
  - id: down
    set: {count: "{{ steps.probe.hosts.values() | selectattr('status', 'eq', 'failed') | list | length }}"}
"""

RESPONSES = """\
responses:
  - {match: {host: lb-1}, exit_code: 0, stdout: ok}
  - {match: {host: "lb-*"}, exit_code: 7, stderr: "{{ host }} refused"}
"""


def test_a_group_target_fans_out_to_the_hosts_of_the_scenarios_inline_inventory(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, textwrap.dedent("""\
        inventory:
          groups:
            lbs: {hosts: [lb-1, lb-2], children: [spare]}
            spare: {hosts: [lb-3]}
        """) + RESPONSES)
    hosts = finished(run, "probe")["hosts"]
    assert sorted(hosts) == ["lb-1", "lb-2", "lb-3"]
    assert hosts["lb-1"]["status"] == "ok"
    assert hosts["lb-3"]["status"] == "failed" and hosts["lb-3"]["stderr"] == "lb-3 refused"
    assert finished(run, "down")["outputs"] == {"count": 2}


def test_an_inventory_file_beside_the_scenario_is_read_as_live_reads_it(tmp_path: Path) -> None:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "hosts.ini").write_text("[lbs]\nlb-[1:3]\n", encoding="utf-8")
    run = drill(tmp_path, RUNBOOK, "inventory: hosts.ini\n" + RESPONSES)
    assert sorted(finished(run, "probe")["hosts"]) == ["lb-1", "lb-2", "lb-3"]


def test_without_an_inventory_the_group_stands_for_one_host(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, "responses:\n  - {match: {host: '*'}, stdout: '{{ host }}'}\n")
    assert list(finished(run, "probe")["hosts"]) == ["lbs"]


def test_a_group_the_inventory_lacks_fails_the_step_naming_it(tmp_path: Path) -> None:
    """Validation refuses it (RB216); a drill run anyway fails the step as live would."""
    run = drill(tmp_path, RUNBOOK, "inventory: {groups: {web: {hosts: [w-1]}}}\n" + RESPONSES, validate=False)
    error = finished(run, "probe")["error"]
    assert "group 'lbs' is not in the inventory" in error and "(groups: web)" in error
