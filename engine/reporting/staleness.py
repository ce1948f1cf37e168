"""Staleness: what coverage once proved and may no longer hold. Per runbook, when it last
ran live, as a drill and as a test; its commands (run and http steps) not seen succeeding
in a live run for N days; and its scenarios whose runbook changed since they last passed.

"Changed" is exact when journals carry the runbook's digest (engine/run/digest.py): a
scenario is out of date unless a journal of the runbook's current text meets its
objectives. A journal written before runs carried a digest falls back to the runbook
file's modification time against the journal's time. "Passed" is the scenario's
objectives met by the journal, scored as `runbook test` scores them
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
    exact: bool = False  # the passing journal ran another text (digest); False: told by file times


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
    found = (_scenario_changed(rb, s, modified) for s in scenarios)
    return [c for c in found if c is not None]


def _scenario_changed(rb: RunbookCoverage, scenario: Scenario, modified: float) -> ChangedScenario | None:
    """Whether `scenario` last passed on another text of its runbook: a journal of the
    current text (same digest) that passes settles it; else the newest passing journal
    says when, and its digest (or, without one, its time against the file's) whether."""
    runs = sorted([*rb.tally("test").scenario_runs.get(scenario.id, []), *rb.older.get(scenario.id, [])],
                  reverse=True)
    current = [r for r in runs if rb.digest is not None and r.digest == rb.digest]
    if any(_passes(scenario, r.path) for r in current):
        return None
    last = next((r for r in runs if r not in current and _passes(scenario, r.path)), None)
    if last is None:
        return ChangedScenario(rb.id, scenario.file, None, modified)
    if last.digest is None or rb.digest is None:  # an older journal: the file's time is all there is
        return None if last.started >= modified else ChangedScenario(rb.id, scenario.file, last.started, modified)
    return ChangedScenario(rb.id, scenario.file, last.started, modified, exact=True)


def _passes(scenario: Scenario, path: str) -> bool:
    try:
        records: list[Any] = read_journal(path).records
    except (OSError, JournalError):
        return False
    return bool(score(scenario, timings(records)).passed)
