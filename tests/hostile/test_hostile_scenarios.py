"""Scenarios that load but are hostile inside: template bombs in the simulated world's
answers, a backtracking `command_regex`, absurd durations and event times, thousands of
events and attempts. `runbook test` (the virtual clock) and `validate` stay bounded."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hostile_harness import Case, Runner
from support import ROOT

BASE: dict[str, Any] = yaml.safe_load((ROOT / "scenarios" / "disk-full-log-storm.yaml").read_text(encoding="utf-8"))


def _with(change: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["runbook"] = "runbook.yaml"
    for key, value in change.items():
        data[key] = value(data[key]) if callable(value) else value
    return data


def _first_response(**fields: Any) -> Any:
    return lambda responses: [{**responses[0], **fields}, *responses[1:]]


CHANGES: dict[str, dict[str, Any]] = {
    "stdout-pow": {"responses": _first_response(stdout="{{ 9**9**9 }}")},
    "stdout-repeat": {"responses": _first_response(stdout="{{ 'x' * 10**10 }}")},
    "state-format-width": {"state": {"pct": "{{ '%999999999d' % 1 }}", "ipct": 11}},
    "regex-backtracking": {"responses": lambda r: [{"match": {"command_regex": "(a+)+$"}, "stdout": "x"}, *r]},
    "duration-huge": {"responses": _first_response(duration="29d")},
    "event-far-away": {"events": [{"at": "29d", "message": "much later"}]},
    "many-events": {"events": [{"at": f"{i}s", "message": f"event {i}"} for i in range(1, 3001)]},
    "many-attempts": {"responses": _first_response(attempts=[{"exit_code": 1, "duration": "1s"}] * 3000)},
    "mitigated-when-bomb": {"mitigated_when": "(9**9**9) > 0"},
    "seed-huge": {"seed": 10**30},
}


@pytest.mark.parametrize("name", CHANGES)
def test_hostile_scenario_content(hostile: Runner, name: str) -> None:
    hostile.write("runbook.yaml", (ROOT / "runbooks" / "disk-full.yaml").read_text(encoding="utf-8"))
    path: Path = hostile.write("scenario.yaml", yaml.safe_dump(_with(CHANGES[name]), sort_keys=False))
    kind = f"scenario-content:{name}"
    [_, done] = hostile.check(Case(kind, "validate", ["validate", str(path)]),
                              Case(kind, "test", ["test", str(path), "--runs-dir", "{runs}"]))
    for run in done.runs:
        hostile.check(Case(kind, "report", ["report", str(run), "-f", "html"]))
