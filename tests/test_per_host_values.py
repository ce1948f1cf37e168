"""Per-host values in a fan-out (issue 12 item 5): a command that looks a value up by
`host` is rendered for each host, and each host's own command is journaled and shown."""

from __future__ import annotations

import io
import textwrap

from engine.fleet.fanout import FanOut
from engine.run.console import Console
from engine.run.events import HostFinished, StepStarted
from engine.testing import FakeRemote, run_text

PIDS = textwrap.dedent("""\
    kind: runbook
    version: 1
    id: pids
    title: Stop the stuck workers
    defaults: {timeout: 30s}
    targets:
      web: {hosts: [web-1, web-2]}
    vars:
      pids: {web-1: 101, web-2: 202}
    remediation:
      - id: stop
        target: web
        run: "sudo kill -TERM {{ vars.pids[host] }}"
      - id: named
        target: web
        run: "ssh-keyscan {{ host }} --port {{ 22 if host == 'web-1' else 2222 }}"
    """)


def test_a_lookup_by_host_runs_each_hosts_own_command() -> None:
    remote = FakeRemote()
    result, recorder = run_text(PIDS, remote=FanOut(remote))
    assert result.outcome == "resolved", result.reason
    assert sorted((c.host, c.command) for c in remote.calls if c.step == "stop") == [
        ("web-1", "sudo kill -TERM 101"), ("web-2", "sudo kill -TERM 202")]
    hosts = {(e.step, e.host): e.command for e in recorder.named("host.finished") if isinstance(e, HostFinished)}
    assert hosts[("stop", "web-1")] == "sudo kill -TERM 101" and hosts[("stop", "web-2")] == "sudo kill -TERM 202"
    started = {e.step: e.command for e in recorder.named("step.started") if isinstance(e, StepStarted)}
    assert started["stop"] == "sudo kill -TERM {{ vars.pids[host] }}"  # as written: no host's value
    assert started["named"] == "ssh-keyscan {{ host }} --port {{ 22 if host == 'web-1' else 2222 }}"
    assert hosts[("named", "web-2")] == "ssh-keyscan web-2 --port 2222"


def test_the_console_shows_each_hosts_command() -> None:
    out = io.StringIO()
    run_text(PIDS, remote=FanOut(FakeRemote()), observers=[Console(out, unicode=False)])
    text = out.getvalue()
    assert "$ sudo kill -TERM {{ vars.pids[host] }}" in text
    assert "web-1 ran: sudo kill -TERM 101" in text and "web-2 ran: sudo kill -TERM 202" in text


def test_a_host_without_a_value_fails_alone_naming_the_lookup() -> None:
    text = PIDS.replace("pids: {web-1: 101, web-2: 202}", "pids: {web-1: 101}")
    remote = FakeRemote()
    result, recorder = run_text(text, remote=FanOut(remote))
    assert result.outcome == "failed" and result.failed_step == "stop"
    assert [(c.host, c.command) for c in remote.calls if c.step == "stop"] == [("web-1", "sudo kill -TERM 101")]
    failed = [e for e in recorder.named("host.finished") if isinstance(e, HostFinished) and e.status != "ok"]
    assert [e.host for e in failed] == ["web-2"] and "web-2" in (failed[0].error or "")


def test_a_secret_in_a_hosts_command_is_shown_masked() -> None:
    text = PIDS.replace("vars:\n", "inputs:\n  token: {type: string, secret: true, default: hunter2-token}\nvars:\n")
    text = text.replace("sudo kill -TERM {{ vars.pids[host] }}", "curl -H {{ inputs.token }} -d {{ vars.pids[host] }}")
    remote = FakeRemote()
    _, recorder = run_text(text, remote=FanOut(remote))
    assert {c.command for c in remote.calls if c.step == "stop"} == {"curl -H hunter2-token -d 101",
                                                                      "curl -H hunter2-token -d 202"}
    shown = {e.command for e in recorder.named("host.finished") if isinstance(e, HostFinished) and e.step == "stop"}
    assert shown == {"curl -H *** -d 101", "curl -H *** -d 202"}  # as the $ line shows a secret
    assert "hunter2" not in repr([e.record() for e, _ in recorder.events])


# -- hosts from earlier steps, templated group and channel -------------------------------------

FOUND = textwrap.dedent("""\
    kind: runbook
    version: 1
    id: lbs
    title: Drain the load balancers that are down
    defaults: {timeout: 30s}
    inputs:
      tier: {type: string, default: edge}
      team: {type: string, default: network}
    targets:
      lbs: {hosts: ["{{ steps.find_lbs.outputs.hosts }}"]}
      pool: {group: "{{ inputs.tier }}-lbs"}
    detection:
      - id: find_lbs
        run: list-down-lbs
        outputs: {hosts: "{{ stdout.split() }}"}
    remediation:
      - {id: drain, target: lbs, run: "drain {{ host }}"}
      - {id: tell, notify: {channel: "{{ inputs.team }}-oncall", message: "drained {{ steps.drain.hosts | length }}"}}
    """)


def test_a_targets_hosts_may_come_from_an_earlier_steps_output() -> None:
    from engine.testing import ScriptedExecutor

    remote = FakeRemote()
    result, _ = run_text(FOUND.replace("  - {id: tell", "  - {id: tell, when: \"1 == 2\""),
                         executor=ScriptedExecutor({"find_lbs": "lb-2 lb-3\n"}), remote=FanOut(remote))
    assert result.outcome == "resolved", result.reason
    assert sorted((c.host, c.command) for c in remote.calls) == [("lb-2", "drain lb-2"), ("lb-3", "drain lb-3")]


def test_hosts_from_a_step_and_a_templated_group_resolve_through_the_inventory(tmp_path: object) -> None:
    """The live resolver: a list from a step's output is one host per item, and `group:` is
    rendered before it is looked up in the inventory."""
    from pathlib import Path

    from engine.fleet.hosts import Resolver
    from engine.language.model import Target

    inventory = Path(str(tmp_path)) / "hosts.ini"
    inventory.write_text("[edge-lbs]\nlb-1\nlb-2\n")
    resolver = Resolver(inventory)
    ctx = {"steps": {"find_lbs": {"outputs": {"hosts": ["lb-2", "deploy@lb-3:2222"]}}}, "inputs": {"tier": "edge"}}
    assert resolver("lbs", Target("lbs", hosts=("{{ steps.find_lbs.outputs.hosts }}",)), ctx) == ["lb-2", "lb-3"]
    assert resolver.host("lbs", "lb-3").user == "deploy" and resolver.host("lbs", "lb-3").port == 2222
    assert resolver("pool", Target("pool", group="{{ inputs.tier }}-lbs"), ctx) == ["lb-1", "lb-2"]


def test_a_notify_channel_may_be_a_template(tmp_path: object) -> None:
    from pathlib import Path

    from engine.executors.notify import Channel, Notifier
    from engine.testing import ScriptedExecutor

    log = Path(str(tmp_path)) / "network.log"
    notifier = Notifier({"network-oncall": Channel("network-oncall", "file", path=str(log))}, console=lambda _: None)
    text = FOUND.replace("  - {id: drain, target: lbs, run: \"drain {{ host }}\"}\n", "")
    text = text.replace("drained {{ steps.drain.hosts | length }}", "drained")
    result, recorder = run_text(text, executor=ScriptedExecutor({"find_lbs": "lb-2\n"}), notifier=notifier)
    assert result.outcome == "resolved", result.reason
    [sent] = recorder.named("notify.sent")
    assert sent.channel == "network-oncall"  # type: ignore[attr-defined]
    assert "drained" in log.read_text()


def test_the_plan_says_hosts_from_a_step_are_decided_at_run_time() -> None:
    from engine.language.builder import build_runbook
    from engine.language.loader import load_text
    from engine.run.plan import build_plan, render_plan

    book = build_runbook(load_text(FOUND, "lbs.yaml"))
    text = render_plan(build_plan(book, {"tier": "edge", "team": "network"}))
    assert "target lbs: decided at run time ({{ steps.find_lbs.outputs.hosts }})" in text
    assert "target pool: <group edge-lbs>" in text
    assert "notify [network-oncall]: drained {{ steps.drain.hosts | length }}  (computed at run time)" in text


def test_a_drill_journals_each_hosts_own_command_and_fails_a_host_alone(tmp_path: object) -> None:
    """In the simulated world too: host.finished per host with its command, and a host
    with no value for it fails alone, as over SSH."""
    from pathlib import Path

    from simkit import drill, records

    run = drill(Path(str(tmp_path)), """\
        defaults: {timeout: 30s}
        targets:
          web: {hosts: [web-1, web-2, web-3]}
        vars:
          pids: {web-1: 101, web-2: 202}
        detection:
          - id: stop
            target: web
            run: "sudo kill -TERM {{ vars.pids[host] }}"
            continue_on_error: true
        """, """\
        responses:
          - {step: stop, stdout: stopped}
        """)
    hosts = {r["host"]: r for r in records(run, "host.finished", step="stop")}
    assert {h: r.get("command") for h, r in hosts.items()} == {
        "web-1": "sudo kill -TERM 101", "web-2": "sudo kill -TERM 202", "web-3": None}
    assert hosts["web-3"]["status"] == "failed" and "web-3" in hosts["web-3"]["error"]
    assert [r["done"] for r in records(run, "host.finished", step="stop")] == [1, 2, 3]


def test_the_review_lists_the_command_each_host_ran(tmp_path: object) -> None:
    """The post-incident review (built from the journal alone) says what ran where."""
    import json
    from pathlib import Path

    from reportkit import fanout_records

    from engine.reporting.markdown import render_markdown
    from engine.reporting.report import build_report

    records = fanout_records(host_events=True)
    for r in records:
        if r["event"] == "host.finished":
            r["command"] = f"sudo kill -TERM {100 + int(r['host'][-1])}"
        if r["event"] == "step.started":
            r["command"] = "sudo kill -TERM {{ vars.pids[host] }}"
    run = Path(str(tmp_path)) / "run"
    run.mkdir()
    (run / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    report = build_report(run)
    ran = sorted((a.where, a.detail, a.status) for a in report.review.actions if a.what == "command")
    assert ran == [("web-1", "sudo kill -TERM 101", "ok"), ("web-2", "sudo kill -TERM 102", "ok"),
                   ("web-3", "sudo kill -TERM 103", "failed")]
    assert "sudo kill -TERM 103" in render_markdown(report)


def test_the_host_table_lines_up_when_host_names_are_shorter_than_its_heading() -> None:
    out = io.StringIO()
    text = PIDS.replace("hosts: [web-1, web-2]", "hosts: [w1, w2]")
    text = text.replace("{web-1: 101, web-2: 202}", "{w1: 1, w2: 2}")
    run_text(text, remote=FanOut(FakeRemote()), observers=[Console(out, unicode=False)])
    lines = out.getvalue().splitlines()
    heading = next(line for line in lines if line.strip().startswith("host "))
    row = next(line for line in lines if line.strip().startswith("w1 ") and "ran:" not in line)
    assert row.index("ok") == heading.index("status")
