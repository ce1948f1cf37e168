"""Helpers for the drill and incident tests: a runbook and a scenario written as files,
validated as `runbook test` validates them, then run in the simulated world on the
virtual clock. Tests write their small scenarios inline, so the timings they assert
can be computed by hand from the text."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from engine.language.loader import load_file
from engine.language.model import Runbook
from engine.language.scenario import Scenario, build_scenario
from engine.language.validation import load_runbook, load_scenario
from engine.simulation.drill import DrillRun, DrillSetup, run_scenario

ROOT = Path(__file__).resolve().parent.parent  # the checkout
RUNBOOK_HEAD = "kind: runbook\nversion: 1\nid: rb\ntitle: Drill runbook\n"
SCENARIO_HEAD = "kind: scenario\nversion: 1\nid: sc\ntitle: Drill scenario\nrunbook: rb.yaml\n"


def write_pair(folder: Path, runbook: str, scenario: str) -> tuple[Path, Path]:
    """Write rb.yaml and sc.yaml (the standard heads are added) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rb = folder / "rb.yaml"
    sc = folder / "sc.yaml"
    rb.write_text(RUNBOOK_HEAD + textwrap.dedent(runbook), encoding="utf-8")
    sc.write_text(SCENARIO_HEAD + textwrap.dedent(scenario), encoding="utf-8")
    return rb, sc


def load_pair(folder: Path, runbook: str, scenario: str, *, validate: bool = True) -> tuple[Scenario, Runbook]:
    """Both models; validate=False builds the scenario without its lint rules (to see what
    a run does with a mistake that validation would have caught first)."""
    _, sc = write_pair(folder, runbook, scenario)
    model = load_scenario(sc) if validate else build_scenario(load_file(sc))
    return model, load_runbook(model.runbook_path)


def drill(folder: Path, runbook: str, scenario: str, *, validate: bool = True, **setup: Any) -> DrillRun:
    """Validate both files and run the scenario unattended on the virtual clock."""
    model, book = load_pair(folder, runbook, scenario, validate=validate)
    return run_scenario(model, book, DrillSetup(**setup))


def records(run: DrillRun, event: str, **where: Any) -> list[dict[str, Any]]:
    """The run's journal records of one event kind, optionally filtered by field values."""
    return [r for r in run.records if r["event"] == event
            and all(r.get(k) == v for k, v in where.items())]


def finished(run: DrillRun, step: str) -> dict[str, Any]:
    """The step.finished record of a step (exactly one)."""
    found = records(run, "step.finished", step=step)
    assert len(found) == 1, f"{step}: {len(found)} step.finished records"
    return found[0]


def path_of(recs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(step, status) of every finished step, in journal order."""
    return [(r["step"], r["status"]) for r in recs if r["event"] == "step.finished"]
