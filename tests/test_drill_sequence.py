"""Objectives on the sequence of a run: `order:` (these steps first started in this order)
and `items:` (a step's runs over the items of its block's for_each: the leader last)."""

from __future__ import annotations

from pathlib import Path

from simkit import drill

from engine.language.scenario import Objectives
from engine.run.metrics import StepTiming, Timings
from engine.simulation.checks import sequence_checks

RUNBOOK = """\
inputs: {leader_first: {type: boolean, default: false}}
detection:
  - id: members
    set:
      members: [{name: a, leader: true}, {name: b, leader: false}, {name: c, leader: false}]
remediation:
  - id: defrag_members
    for_each: "steps.members.outputs.members | sort(attribute='leader', reverse=inputs.leader_first)"
    serial: 1
    block:
      - {id: defrag, run: "etcdctl defrag {{ item.name }}"}
      - {id: health, run: "etcdctl health {{ item.name }}"}
recovery:
  - {id: verify, run: etcdctl status}
"""

SCENARIO = """\
responses:
  - {step: defrag}
  - {match: {command: "etcdctl health FAULTY"}, exit_code: 1}
  - {step: health}
  - {step: verify}
objectives:
  order: [members, defrag, health, verify]
  items:
    - {step: defrag, count: 3, first: {item.leader: false}, last: {item.leader: true, item.name: a}}
    - {step: health, each: {status: ok}}
"""


def checks(run: object) -> dict[str, tuple[str, bool, str]]:
    return {c.objective: (c.actual, c.met, c.note) for c in run.scorecard.checks}  # type: ignore[attr-defined]


def test_the_leader_last_and_the_order_are_met_and_a_failed_item_is_named(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, SCENARIO)
    got = checks(run)
    assert got["order"] == ("members → defrag → health → verify", True, "")
    assert got["items defrag count"][:2] == ("3", True)
    assert got["items defrag first"] == ("item.leader = false", True, "item 0")
    assert got["items defrag last"] == ("item.leader = true, item.name = a", True, "item 2")
    assert got["items health each"] == ("status = ok", True, "all 3 item(s)")


def test_the_leader_first_misses_the_objective_with_what_happened(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, "inputs: {leader_first: true}\n" + SCENARIO.replace("FAULTY", "c"))
    got = checks(run)
    assert got["items defrag last"] == ("item.leader = false, item.name = c", False, "item 2")
    assert got["items defrag first"][:2] == ("item.leader = true", False)
    assert got["items health each"] == ("status = failed", False, "item 2 differs")
    assert not run.scorecard.passed


def test_order_names_what_did_not_run() -> None:
    t = Timings()
    for name in ("b", "a"):
        t.steps[name] = StepTiming(name, status="ok")
    got = sequence_checks(Objectives(order=("a", "b", "c")), t)[0]
    assert (got.actual, got.met) == ("b → a (c did not run)", False)
