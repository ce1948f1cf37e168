"""Pods and nodes of a Kubernetes target in a drill: simulated like SSH hosts, listed
from the scenario's `pods:` (a template follows the world's state); no cluster is asked."""

from __future__ import annotations

import textwrap
from pathlib import Path

from simkit import drill, finished

RUNBOOK = """\
inputs: {pod: {default: web-7d9f-b}}
targets:
  web: {pods: {context: prod, namespace: shop, selector: app=web}}
  one: {pods: {context: prod, namespace: shop, name: "{{ inputs.pod }}"}}
detection:
  - {id: load, target: web, run: "uptime # {{ host }}", continue_on_error: true}
  - {id: wait, run: sleep 60, timeout: 5m}
  - {id: again, target: web, run: uptime}
  - {id: single, target: one, run: "echo {{ host }}"}
"""


def test_the_pods_of_a_target_come_from_the_scenario_and_answer_like_ssh_hosts(tmp_path: Path) -> None:
    """Each pod answers separately (a `host` match is a pod), `{{ host }}` is the pod, and
    an event that changes the state changes the pods the next step lists."""
    run = drill(tmp_path, RUNBOOK, textwrap.dedent("""\
        state: {web_pods: [web-7d9f-a, web-7d9f-b, web-7d9f-c]}
        pods:
          web: "{{ state.web_pods | join(' ') }}"
        events:
          - {at: 30s, set: {web_pods: [web-7d9f-a, web-7d9f-c]}, message: web-7d9f-b evicted}
        responses:
          - {match: {host: web-7d9f-b}, exit_code: 1, stderr: OOMKilled}
          - {match: {host: "web-*"}, stdout: "{{ command }}"}
          - {step: wait, duration: 1m}
        """))
    load = finished(run, "load")["hosts"]
    assert list(load) == ["web-7d9f-a", "web-7d9f-b", "web-7d9f-c"]
    assert load["web-7d9f-a"]["stdout"] == "uptime # web-7d9f-a"
    assert load["web-7d9f-b"]["status"] == "failed" and load["web-7d9f-b"]["stderr"] == "OOMKilled"
    assert list(finished(run, "again")["hosts"]) == ["web-7d9f-a", "web-7d9f-c"]
    assert list(finished(run, "single")["hosts"]) == ["web-7d9f-b"]


def test_without_pods_in_the_scenario_a_target_stands_for_its_name_or_itself(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, "responses:\n  - {match: {host: '*'}, stdout: '{{ host }}'}\n"
                                   "  - {step: wait, duration: 1m}\n")
    assert list(finished(run, "load")["hosts"]) == ["web"]
    assert list(finished(run, "single")["hosts"]) == ["web-7d9f-b"]


def test_a_scenario_with_no_pods_left_fails_the_step_as_a_live_run_would(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, textwrap.dedent("""\
        pods: {web: []}
        responses:
          - {match: {host: '*'}}
          - {step: wait, duration: 1m}
        """))
    error = finished(run, "load")["error"]
    assert ("no running pods match pods app=web in namespace shop (context prod): "
            "the scenario's pods.web lists none now") in error
