"""Blocks (`block:`): steps that act as one, and `for_each` over a block (issue 12 item 1),
through the run loop on a virtual clock with the scripted executor, the dry-run plan,
and a drill."""

from __future__ import annotations

from pathlib import Path

from engine.fleet.fanout import FanOut
from engine.run.events import StepFinished, StepStarted
from engine.testing import FakeRemote, ScriptedExecutor, run_text
from tests.test_runner import finished, order, run_finished, runbook

ETCD = """\
inputs:
  members:
    type: list
    default:
      - {name: b, endpoint: "https://10.0.0.2:2379", leader: true}
      - {name: a, endpoint: "https://10.0.0.1:2379", leader: false}
remediation:
  - id: defrag_members
    title: Defragment each member, leader last
    for_each: "inputs.members | sort(attribute='leader')"
    role: responder
    block:
      - id: defrag
        run: etcdctl defrag --endpoints={{ item.endpoint }} --n={{ index }}
      - {id: settle, wait: 1m}
      - id: health
        run: etcdctl endpoint health --endpoints={{ item.endpoint }}
recovery:
  - id: verify
    run: >-
      echo {{ steps.defrag.items | map(attribute='item.name') | join(',') }}
      {{ steps.defrag_members.items | map(attribute='status') | join(',') }}
"""


def started(events: object) -> list[StepStarted]:
    return [e for e in events.named("step.started") if isinstance(e, StepStarted)]  # type: ignore[attr-defined]


def test_a_block_runs_its_steps_in_order_once_per_item_with_item_and_index() -> None:
    executor = ScriptedExecutor({"etcdctl *": "ok", "echo *": "x"})
    result, events = run_text(runbook(ETCD), executor=executor)
    assert result.outcome == "resolved", result.reason
    assert [c.command for c in executor.calls] == [
        "etcdctl defrag --endpoints=https://10.0.0.1:2379 --n=0",
        "etcdctl endpoint health --endpoints=https://10.0.0.1:2379",
        "etcdctl defrag --endpoints=https://10.0.0.2:2379 --n=1",
        "etcdctl endpoint health --endpoints=https://10.0.0.2:2379",
        "echo a,b ok,ok",
    ]
    assert order(events) == ["defrag_members", "defrag", "settle", "health"] * 2 + ["verify"]


def test_the_steps_of_a_block_are_journaled_with_their_block_and_item_index() -> None:
    _, events = run_text(runbook(ETCD), executor=ScriptedExecutor({"etcdctl *": "ok", "echo *": "x"}))
    inner = [(e.step, e.block, e.index) for e in started(events) if e.step != "verify"]
    assert inner == [("defrag_members", None, None), ("defrag", "defrag_members", 0), ("settle", "defrag_members", 0),
                     ("health", "defrag_members", 0), ("defrag_members", None, None),
                     ("defrag", "defrag_members", 1), ("settle", "defrag_members", 1),
                     ("health", "defrag_members", 1)]
    assert all(e.role == "responder" for e in started(events) if e.step != "verify")  # inherited
    block = finished(events)["defrag_members"]
    assert [(i["index"], i["status"]) for i in block.items] == [(0, "ok"), (1, "ok")]
    assert block.attempts == 1


def test_a_failure_inside_a_block_ends_the_items_and_names_the_step_that_failed() -> None:
    executor = ScriptedExecutor({"etcdctl defrag*": ["ok", {"exit_code": 1, "stderr": "deadline"}],
                                 "etcdctl *": "ok"})
    result, events = run_text(runbook(ETCD), executor=executor)
    assert result.outcome == "failed"
    assert result.failed_step == "defrag"  # the step inside, not only the block
    block = finished(events)["defrag_members"]
    assert block.status == "failed" and "step defrag" in (block.error or "")
    assert [i["status"] for i in block.items] == ["ok", "failed"]
    assert "verify" not in order(events)


def test_max_failures_over_the_items_of_a_block() -> None:
    body = ETCD.replace("    role: responder\n", "    max_failures: 1\n")
    executor = ScriptedExecutor({"etcdctl defrag*": [{"exit_code": 1}, "ok"], "etcdctl *": "ok", "echo *": "x"})
    result, events = run_text(runbook(body), executor=executor)
    assert result.outcome == "resolved", result.reason  # one failed item is tolerated
    assert [i["status"] for i in finished(events)["defrag_members"].items] == ["failed", "ok"]
    assert executor.calls[-1].command == "echo a,b failed,ok"
    # two failures are one too many
    executor = ScriptedExecutor({"etcdctl defrag*": {"exit_code": 1}, "etcdctl *": "ok", "echo *": "x"})
    result, _ = run_text(runbook(body), executor=executor)
    assert result.outcome == "failed" and result.failed_step == "defrag"


SHARED = """\
inputs:
  go: {type: boolean, default: GO}
targets:
  etcd: {hosts: [e1]}
  other: {hosts: [o1]}
remediation:
  - id: maintenance
    when: inputs.go
    target: etcd
    continue_on_error: COE
    rollback:
      - {id: undo_maintenance, run: echo undo}
    block:
      - {id: one, run: echo one}
      - {id: two, run: echo two, target: other}
  - {id: after, run: echo after}
  - {id: last, run: echo last}
"""


def _shared(coe: str = "false", go: bool = True) -> str:
    return runbook(SHARED.replace("COE", coe).replace("GO", str(go).lower()))


def test_a_block_shares_when_and_target_with_its_steps() -> None:
    _, events = run_text(_shared(go=False), executor=ScriptedExecutor({"echo *": "x"}))
    assert order(events) == ["after", "last"]
    assert finished(events)["maintenance"].status == "skipped"


def test_a_block_is_undone_as_a_whole_by_its_rollback() -> None:
    executor = ScriptedExecutor({"echo last": 1, "echo *": "x"})
    remote = FanOut(FakeRemote({"echo *": "x"}))
    result, events = run_text(_shared(), executor=executor, remote=remote)
    assert result.outcome == "failed"
    hosts = {e.step: e.target for e in started(events)}
    assert hosts["one"] == "etcd" and hosts["two"] == "other"  # inherited unless set
    assert order(events)[-1] == "undo_maintenance"


def test_continue_on_error_lets_the_run_go_on_after_a_failure_inside_the_block() -> None:
    executor = ScriptedExecutor({"echo one": 1, "echo *": "x"})
    remote = FanOut(FakeRemote({"echo one": 1, "echo *": "x"}))
    result, events = run_text(_shared("true"), executor=executor, remote=remote)
    assert result.outcome == "resolved", result.reason
    assert finished(events)["maintenance"].status == "failed"
    assert "two" not in order(events) and order(events)[-2:] == ["after", "last"]


NESTED = """\
remediation:
  - id: outer
    for_each: [x, y]
    block:
      - id: inner
        block:
          - {id: leaf, run: "echo {{ item }}{{ index }}"}
"""


def test_blocks_nest_and_the_inner_steps_see_the_outer_item() -> None:
    executor = ScriptedExecutor({"echo *": "x"})
    result, events = run_text(runbook(NESTED), executor=executor)
    assert result.outcome == "resolved", result.reason
    assert [c.command for c in executor.calls] == ["echo x0", "echo y1"]
    leaf = [e for e in events.named("step.finished") if isinstance(e, StepFinished) and e.step == "leaf"]
    assert [(e.block, e.index) for e in leaf] == [("inner", None), ("inner", None)]


def test_the_timeout_of_a_block_bounds_the_whole_block() -> None:
    body = """\
    remediation:
      - id: slow
        timeout: 90s
        block:
          - {id: w1, wait: 1m}
          - {id: w2, wait: 1m}
          - {id: w3, wait: 1m}
    """
    result, events = run_text(runbook(body))
    assert result.outcome == "failed"
    assert order(events) == ["slow", "w1", "w2"]
    assert "timeout (1m30s) passed before step w3" in (finished(events)["slow"].error or "")
    assert run_finished(events).outcome == "failed"


def test_the_dry_run_plan_lists_the_steps_of_a_block_under_it() -> None:
    from engine.language.builder import build_runbook
    from engine.language.loader import load_text
    from engine.run.plan import build_plan, render_plan

    rb = build_runbook(load_text(runbook(ETCD), "etcd.yaml"))
    text = render_plan(build_plan(rb, {"members": []}))
    assert "1. defrag_members - Defragment each member, leader last" in text
    assert "1.1. defrag" in text and "1.3. health" in text
    assert "$ etcdctl defrag --endpoints=<item.endpoint> --n=<index>" in text


def test_a_drill_answers_the_steps_inside_a_block_by_their_id(tmp_path: Path) -> None:
    from engine.simulation.suite import run_case

    (tmp_path / "etcd.yaml").write_text(runbook(ETCD))
    (tmp_path / "drill.yaml").write_text("""\
kind: scenario
version: 1
id: defrag-drill
title: One member needs a second defrag
runbook: etcd.yaml
state: {done: 0}
responses:
  - step: defrag
    attempts:
      - {exit_code: 0, set: {done: "{{ state.done + 1 }}"}}
  - step: health
    stdout: "healthy"
  - step: verify
    stdout: "{{ state.done }}"
objectives:
  outcome: resolved
  must_run: [defrag, settle, health]
""")
    case = run_case(str(tmp_path / "drill.yaml"))
    assert case.passed, case.summary()


def test_reports_fold_the_items_of_a_block_under_it() -> None:
    """One bar per step inside the block, one line per item, indented under the block."""
    from engine.reporting.timeline import build_timeline

    executor = ScriptedExecutor({"etcdctl defrag*": ["ok", {"exit_code": 1}], "etcdctl *": "ok"})
    _, events = run_text(runbook(ETCD), executor=executor)
    records = [{"seq": stamp.seq, "elapsed": stamp.elapsed, "t": stamp.t, "event": e.name, **e.record()}
               for e, stamp in events.events if e.journaled]
    bars = {b.step: b for b in build_timeline(records).bars}
    assert [b.step for b in build_timeline(records).bars] == ["defrag_members", "defrag", "settle", "health"]
    assert (bars["defrag_members"].depth, bars["defrag"].depth, bars["health"].depth) == (0, 1, 1)
    assert [(i.status, i.exit_code) for i in bars["defrag"].items] == [("ok", 0), ("failed", 1)]
    assert bars["defrag"].status == "failed" and [i.status for i in bars["health"].items] == ["ok"]
    assert [i.status for i in bars["defrag_members"].items] == ["ok", "failed"]


def test_resume_runs_every_step_of_a_block_item_again(tmp_path: Path) -> None:
    """A run that failed in item 1 of a block: on resume, each item runs all the block's
    steps (a step's record is its last item's: restoring it would skip later items)."""
    import json

    from click.testing import CliRunner

    from engine.cli.commands import cli

    fixed = tmp_path / "fixed"
    (tmp_path / "loop.yaml").write_text(runbook(f"""\
    remediation:
      - id: members
        for_each: [a, b]
        block:
          - {{id: defrag, run: "test {{{{ index }}}} = 0 || test -e {fixed}"}}
          - {{id: health, run: "echo healthy {{{{ item }}}}"}}
    """))
    runs = tmp_path / "runs"
    first = CliRunner().invoke(cli, ["run", "--yes", "--runs-dir", str(runs), str(tmp_path / "loop.yaml")])
    assert first.exit_code == 1, first.output
    fixed.touch()
    [run] = list(runs.iterdir())
    again = CliRunner().invoke(cli, ["resume", str(run), "--rerun-failed", "--reason", "fixed", "--yes"])
    assert again.exit_code == 0, again.output
    records = [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]
    resumed = records[max(i for i, r in enumerate(records) if r["event"] == "run.started"):]
    ran = [(r["step"], r.get("index")) for r in resumed if r["event"] == "step.finished" and r["step"] != "members"]
    assert ran == [("defrag", 0), ("health", 0), ("defrag", 1), ("health", 1)]


def test_the_console_names_the_block_and_item_a_step_runs_for() -> None:
    import io

    from engine.run.console import Console

    out = io.StringIO()
    run_text(runbook(ETCD), executor=ScriptedExecutor({"etcdctl *": "ok", "echo *": "x"}),
             observers=[Console(out, unicode=True)])
    lines = [line for line in out.getvalue().splitlines() if "▶ health" in line]
    assert len(lines) == 2 and "(in defrag_members, item 1: {'name': 'b'" in lines[1]


def test_the_timeout_of_a_block_stops_a_command_inside_it_when_it_is_up() -> None:
    body = """\
    remediation:
      - id: slow
        timeout: 90s
        block:
          - {id: w1, wait: 1m}
          - {id: hangs, run: sleep 600, timeout: 10m}
    """
    executor = ScriptedExecutor({"sleep *": {"duration": 600}})
    result, events = run_text(runbook(body), executor=executor)
    assert result.outcome == "failed" and result.failed_step == "hangs"
    assert executor.calls[0].timeout == 30  # what was left of the block's 90s, not the step's 10m
    assert "timed out after 30s" in (finished(events)["hangs"].error or "")


def test_a_replayed_run_answers_each_item_of_a_block_with_what_that_item_printed(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from engine.cli.commands import cli
    from engine.simulation.replay import scenario_from_run

    (tmp_path / "loop.yaml").write_text(runbook("""\
    remediation:
      - id: members
        for_each: [a, b]
        block:
          - {id: show, run: "echo member {{ item }}"}
    """))
    runs = tmp_path / "runs"
    done = CliRunner().invoke(cli, ["run", "--yes", "--runs-dir", str(runs), str(tmp_path / "loop.yaml")])
    assert done.exit_code == 0, done.output
    [run] = list(runs.iterdir())
    data = scenario_from_run(run)
    assert [(r["match"]["command"], r["stdout"]) for r in data["responses"]] == [
        ("echo member a", "member a\n"), ("echo member b", "member b\n")]


def test_key_times_count_a_block_once_and_each_item_of_its_steps() -> None:
    """Machine time and time per role: the block's time is its steps', and a step inside a
    block with for_each lasts all its items (not only the last one)."""
    from engine.run.metrics import timings

    executor = ScriptedExecutor({"etcdctl *": {"stdout": "ok", "duration": 5}, "echo *": "x"})
    _, events = run_text(runbook(ETCD), executor=executor)
    records = [{"seq": stamp.seq, "elapsed": stamp.elapsed, "t": stamp.t, "event": e.name, **e.record()}
               for e, stamp in events.events if e.journaled]
    t = timings(records)
    assert t.steps["defrag"].duration == 10 and t.steps["settle"].duration == 120
    assert t.machine_time == 2 * (5 + 60 + 5)  # the block's own 140 s are not counted again
    assert t.per_role()["responder"]["steps"] == 3


def test_a_stop_inside_a_block_names_its_step_once() -> None:
    """A manual step in a run nobody can answer: the block's error read 'step ask: step ask
    waits for a person …' (walking the shipped stale-lock runbook without a terminal)."""
    text = runbook("""\
triage:
  - id: group
    block:
      - {id: ask, manual: Check the holder.}
""")
    result, events = run_text(text, yes=False)
    block = finished(events)["group"]
    assert result.outcome == "failed" and block.status == "failed"
    assert (block.error or "").startswith("step ask waits for a person"), block.error
    assert "step ask: step ask" not in (block.error or "")
