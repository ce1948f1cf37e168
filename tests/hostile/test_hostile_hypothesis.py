"""Hypothesis drives the commands with generated hostile input: values in every place a
template sits, secrets made to break encodings, alert payloads, runbooks and scenarios
mutated from the shipped ones, and journals of arbitrary records. Bounded and
derandomized, so CI tries the same examples every time, in seconds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from hostile_corpus import CONTEXTS
from hostile_harness import Case, Runner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import hostile_text, journal_record, mutated, secrets, values
from support import ROOT

FAST = settings(max_examples=12, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.filter_too_much])

# Where the engine's own quoting must keep a value one argument (the quoted contexts of
# E4 are in test_injection.py, with every injection of the corpus).
PLAIN = ("bare", "assignment", "backticks", "dollar-paren")


def _runbook(hostile: Runner, name: str, data: Any) -> Path:
    return hostile.write(name, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _steps(contexts: tuple[str, ...]) -> list[dict[str, Any]]:
    steps = [{"id": f"s_{c.replace('-', '_')}", "run": CONTEXTS[c].replace("V", "inputs.v"),
              "continue_on_error": True} for c in contexts]
    steps.append({"id": "s_env", "run": 'echo "$V"', "env": {"V": "{{ inputs.v }}"}})
    steps.append({"id": "s_stdin", "run": "cat", "stdin": "{{ inputs.v }}"})
    return steps


@FAST
@given(value=hostile_text)
def test_any_value_stays_one_argument(hostile: Runner, value: str) -> None:
    runbook = _runbook(hostile, "v.yaml", {"kind": "runbook", "version": 1, "id": "prop", "title": "Prop",
                                           "defaults": {"timeout": "10s"}, "inputs": {"v": {"type": "string"}},
                                           "detection": _steps(PLAIN)})
    inputs = hostile.write("inputs.json", json.dumps({"v": value}))
    hostile.check(Case("property:value", "run", hostile.run_args(runbook, "--inputs-file", str(inputs)),
                       canary=hostile.work / "PWNED"))


@FAST
@given(secret=secrets)
def test_any_secret_never_shows(hostile: Runner, secret: str) -> None:
    runbook = _runbook(hostile, "s.yaml", {
        "kind": "runbook", "version": 1, "id": "prop", "title": "Prop", "defaults": {"timeout": "10s"},
        "inputs": {"t": {"type": "string", "secret": True, "env": "OPS_TOKEN"}},
        "detection": [{"id": "arg", "run": "echo {{ inputs.t }}"},
                      {"id": "env", "run": 'printf "%s" "$T"', "env": {"T": "{{ inputs.t }}"}},
                      {"id": "fails", "run": "echo {{ inputs.t }} >&2; exit 2", "continue_on_error": True}]})
    [run] = hostile.check(Case("property:secret", "run", hostile.run_args(runbook), secrets=(secret,),
                               env={"OPS_TOKEN": secret}))
    hostile.check(*(Case("property:secret", "report", ["report", str(d), "-f", "json"], secrets=(secret,))
                    for d in run.runs))


@FAST
@given(payload=values)
def test_any_alert_payload(hostile: Runner, payload: Any) -> None:
    runbook = hostile.write("local.yaml", (ROOT / "runbooks" / "disk-full.yaml").read_text(encoding="utf-8"))
    alert = hostile.write("alert.json", json.dumps({"alerts": [payload]} if isinstance(payload, dict) else payload))
    hostile.check(Case("property:alert", "dry-run", ["run", "--dry-run", str(runbook), "--alert", str(alert),
                                                     "-i", "host=db-1"]))


SHIPPED_RUNBOOK = yaml.safe_load((ROOT / "runbooks" / "disk-full.yaml").read_text(encoding="utf-8"))
SHIPPED_SCENARIO = yaml.safe_load((ROOT / "scenarios" / "disk-full-log-storm.yaml").read_text(encoding="utf-8"))


@FAST
@given(data=mutated(SHIPPED_RUNBOOK))
def test_mutated_runbook(hostile: Runner, data: dict[str, Any]) -> None:
    runbook = _runbook(hostile, "mutant.yaml", data)
    hostile.check(Case("property:runbook", "validate", ["validate", str(runbook)]),
                  Case("property:runbook", "dry-run", ["run", "--dry-run", str(runbook), "-i", "host=db-1"]),
                  Case("property:runbook", "graph", ["graph", str(runbook), "-f", "svg"]))


@FAST
@given(data=mutated(SHIPPED_SCENARIO))
def test_mutated_scenario(hostile: Runner, data: dict[str, Any]) -> None:
    hostile.write("runbook.yaml", (ROOT / "runbooks" / "disk-full.yaml").read_text(encoding="utf-8"))
    scenario = _runbook(hostile, "scenario.yaml", {**data, "runbook": "runbook.yaml"} if isinstance(data, dict)
                        else data)
    hostile.check(Case("property:scenario", "validate", ["validate", str(scenario)]),
                  Case("property:scenario", "test", ["test", str(scenario), "--runs-dir", "{runs}"]))


@FAST
@given(records=st.lists(journal_record, min_size=1, max_size=12))
def test_any_journal(hostile: Runner, records: list[dict[str, Any]]) -> None:
    run = hostile.work / "journals" / f"run-{hostile.count}"
    run.mkdir(parents=True)
    (run / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    hostile.check(*(Case("property:journal", "report", ["report", str(run), "-f", fmt]) for fmt in ("md", "html",
                                                                                                    "json")),
                  Case("property:journal", "from-run", ["scenario", "from-run", str(run)]))
