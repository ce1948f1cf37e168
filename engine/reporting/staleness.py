"""Staleness: what coverage once proved and may no longer hold. Per runbook, when it last
ran live, as a drill and as a test; its commands (run and http steps) not seen succeeding
in a live run for N days; and its scenarios whose runbook changed since they last passed.

"Changed" is the runbook file's modification time against the time of the scenario's
last passing test journal: journals carry no digest of the runbook's text. "Passed" is
the scenario's objectives met by the journal, scored as `runbook test` scores them
(engine/simulation/drill.py); a step the scenario left unscripted is not seen in a journal.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import JournalError
from engine.language.scenario import Scenario
from engine.run.journal import read_journal
from engine.run.metrics import timings
from engine.simulation.drill import score

from .coverage import MODES, Coverage, RunbookCoverage

COMMAND_KINDS = ("run", "http")
DAY = 86400.0


@dataclass(frozen=True)
class ChangedScenario:
    """A scenario whose runbook changed after the scenario last passed (or never passed)."""

    runbook: str
    scenario: str  # its file
    passed: float | None  # epoch seconds of the last passing journal; None: never seen passing
    changed: float  # the runbook file's modification time


@dataclass
class Staleness:
    days: float
    now: float
    last: dict[str, dict[str, float | None]] = field(default_factory=dict)  # runbook -> mode -> last run
    commands: dict[str, list[str]] = field(default_factory=dict)  # runbook -> commands not seen succeeding live
    changed: list[ChangedScenario] = field(default_factory=list)


def staleness(cov: Coverage, scenarios: Mapping[str, Sequence[Scenario]], days: float, now: float) -> Staleness:
    """What has gone stale, as of `now`, with commands unproven for `days` days live."""
    out = Staleness(days, now)
    for rb in cov.runbooks:
        out.last[rb.id] = {mode: rb.tally(mode).last for mode in MODES}
        succeeded = rb.tally("live").succeeded
        out.commands[rb.id] = [s for s in rb.steps if rb.kinds[s] in COMMAND_KINDS
                               and succeeded.get(s, 0.0) < now - days * DAY]
        out.changed += _changed(rb, scenarios.get(str(Path(rb.file).resolve()), ()))
    return out


def _changed(rb: RunbookCoverage, scenarios: Sequence[Scenario]) -> list[ChangedScenario]:
    try:
        modified = os.stat(rb.file).st_mtime
    except OSError:
        return []
    out = []
    runs = rb.tally("test").scenario_runs
    for scenario in scenarios:
        passed = _last_passed(scenario, runs.get(scenario.id, []))
        if passed is None or passed < modified:
            out.append(ChangedScenario(rb.id, scenario.file, passed, modified))
    return out


def _last_passed(scenario: Scenario, runs: Sequence[tuple[float, str]]) -> float | None:
    """The time of the newest journal of `scenario` that meets its objectives."""
    for when, path in sorted(runs, reverse=True):
        if _passes(scenario, path):
            return when
    return None


def _passes(scenario: Scenario, path: str) -> bool:
    try:
        records: list[Any] = read_journal(path).records
    except (OSError, JournalError):
        return False
    return bool(score(scenario, timings(records)).passed)
