"""Coverage: how much of each runbook its journals have exercised. Per runbook, which of
its steps ran (and how they ended) and which of its branches were taken, counted apart
for scenarios (`runbook test`, mode `test`), drills and live runs.

The branches a step can take come from the model (`branches_of`); what runs took comes
from their journals (`exercise.py`). A journal belongs to the runbook whose id it names
(`run.started`'s `runbook`) and, when it carries the digest of the runbook's text
(engine/run/digest.py), only while that digest is the runbook's as it is now: a run of
an older version is not counted (it proved a text that is gone). Journals written
before runs carried a digest are counted by the runbook id alone, and the output says
how many.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from engine.errors import JournalError
from engine.language.model import Runbook, Step, SwitchSpec
from engine.language.scenario import Scenario
from engine.run.digest import runbook_digest

from .alert_rules import AlertRule
from .exercise import Exercise, read_exercise
from .journals import journal_files
from .unreachable import declared

MODES = ("test", "drill", "live")  # scenarios, drills and live runs, in the order shown


@dataclass(frozen=True)
class Branch:
    """One way a step can go: `when true`, `case tls`, `refused`, `no items`, ..."""

    step: str
    label: str


def branches_of(step: Step) -> list[str]:
    """The branch labels a step can take (see exercise.py for what each means)."""
    out = ["when true", "when false"] if step.when is not None else []
    if isinstance(step.spec, SwitchSpec):
        out += [f"case {c.value}" for c in step.spec.cases] + ["default"]
    if step.confirm is not None and step.confirm.on_refuse is not None:
        out += ["approved", "refused"]
    if step.retries is not None and step.retries.attempts > 1:
        out.append("retried")
    if step.rollback:
        out.append("rolled back")
    if isinstance(step.for_each, str):  # a template: any number of items, none included
        out += ["items", "no items"]
    elif step.for_each is not None:  # a literal list goes one way only
        out.append("items" if step.for_each else "no items")
    return out


class ScenarioRun(NamedTuple):
    """One journal of a scenario: when it started, where it is, the runbook digest it ran."""

    started: float
    path: str
    digest: str | None


@dataclass
class Tally:
    """What the runs of one mode exercised of one runbook."""

    runs: int = 0
    last: float | None = None  # epoch seconds of the latest run's start
    last_passed: float | None = None  # the latest run that ended resolved
    ended: Counter[tuple[str, str]] = field(default_factory=Counter)
    taken: Counter[tuple[str, str]] = field(default_factory=Counter)
    succeeded: dict[str, float] = field(default_factory=dict)  # step -> latest start of a run it succeeded in
    scenario_runs: dict[str, list[ScenarioRun]] = field(default_factory=dict)  # scenario -> its runs

    def add(self, run: Exercise) -> None:
        self.runs += 1
        self.ended.update(run.ended)
        self.taken.update(run.taken)
        when = run.started or 0.0
        self.last = max(self.last or when, when)
        if run.outcome == "resolved":
            self.last_passed = max(self.last_passed or when, when)
        if run.scenario:
            self.scenario_runs.setdefault(run.scenario, []).append(ScenarioRun(when, run.path, run.digest))
        for step in run.succeeded:
            self.succeeded[step] = max(self.succeeded.get(step, when), when)


@dataclass
class RunbookCoverage:
    """One runbook: its steps, its branches, and per mode what its runs exercised."""

    id: str
    title: str
    file: str
    steps: list[str]
    kinds: dict[str, str]  # step -> its kind (run, http, block, switch, ...)
    branches: list[Branch]
    alerts: tuple[str, ...] = ()
    tallies: dict[str, Tally] = field(default_factory=dict)
    scenarios: list[str] = field(default_factory=list)  # scenario files that play it
    digest: str | None = None  # of its text and its includes' as they are now (None: unreadable)
    older: dict[str, list[ScenarioRun]] = field(default_factory=dict)  # scenario -> runs of other versions
    unreachable: dict[Branch, str] = field(default_factory=dict)  # declared in the runbook (not in `branches`): why

    def tally(self, mode: str) -> Tally:
        return self.tallies.get(mode) or Tally()

    def steps_ran(self, mode: str) -> list[str]:
        ended = self.tally(mode).ended
        ran = {s for (s, status), n in ended.items() if n and status != "skipped"}
        return [s for s in self.steps if s in ran]

    def branches_taken(self, mode: str) -> list[Branch]:
        taken = self.tally(mode).taken
        return [b for b in self.branches if taken[(b.step, b.label)]]

    def taken_unreachable(self) -> list[tuple[Branch, str]]:
        """Branches declared unreachable that a run took anyway, with the mode of the run."""
        return [(b, mode) for b in self.unreachable for mode in MODES if self.tally(mode).taken[(b.step, b.label)]]

    def exercised(self) -> dict[str, str]:
        """Each step's strongest proof: `live` if it ran in a live run, else `drill`, else
        `test` (a scenario), else `none`."""
        ran = {mode: set(self.steps_ran(mode)) for mode in MODES}
        return {s: next((m for m in ("live", "drill", "test") if s in ran[m]), "none") for s in self.steps}

    def percent(self, mode: str, what: str = "branches") -> float | None:
        """Covered / total, in percent; None when there is nothing to cover."""
        total = len(self.branches if what == "branches" else self.steps)
        done = len(self.branches_taken(mode) if what == "branches" else self.steps_ran(mode))
        return 100.0 * done / total if total else None


def runbook_coverage(runbook: Runbook) -> RunbookCoverage:
    """A runbook's steps and branches, with nothing exercised yet; the branches its text
    declares unreachable (unreachable.py) are set apart with their reasons."""
    steps = runbook.steps(rollbacks=True)
    labels = {s.id: branches_of(s) for s in steps}
    unreachable = {Branch(*key): why for key, why in declared(runbook, labels).items()}
    branches = [Branch(s.id, label) for s in steps for label in labels[s.id]]
    return RunbookCoverage(runbook.id, runbook.title, runbook.file, [s.id for s in steps],
                           {s.id: s.kind for s in steps}, [b for b in branches if b not in unreachable],
                           runbook.alerts, digest=runbook_digest(runbook), unreachable=unreachable)


@dataclass
class Alerts:
    """Alert coverage: alert rules no runbook answers, runbooks whose alerts no rule file
    defines, and runbooks that no scenario plays."""

    rule_files: int = 0
    rules: int = 0
    unowned: list[AlertRule] = field(default_factory=list)
    undefined: dict[str, list[str]] = field(default_factory=dict)  # runbook id -> its alerts no rule defines
    no_scenario: list[str] = field(default_factory=list)  # runbook ids


@dataclass
class Coverage:
    """Every runbook's coverage, and what could not be counted."""

    runbooks: list[RunbookCoverage]
    alerts: Alerts | None = None  # with rule files only
    journals: int = 0
    unmatched: Counter[str] = field(default_factory=Counter)  # runbook ids journals named, not given
    outdated: Counter[str] = field(default_factory=Counter)  # runbook id -> journals of another version of it
    undigested: int = 0  # journals counted by runbook id alone (written before runs carried a digest)
    skipped: list[str] = field(default_factory=list)  # not a run, or unreadable
    seconds: float = 0.0

    def total(self, mode: str, what: str = "branches") -> tuple[int, int]:
        """(covered, total) over every runbook."""
        done = total = 0
        for rb in self.runbooks:
            total += len(rb.branches if what == "branches" else rb.steps)
            done += len(rb.branches_taken(mode) if what == "branches" else rb.steps_ran(mode))
        return done, total

    def percent(self, mode: str, what: str = "branches") -> float | None:
        done, total = self.total(mode, what)
        return 100.0 * done / total if total else None


def collect(runbooks: Sequence[Runbook | RunbookCoverage], journal_paths: Iterable[str | os.PathLike[str]]) -> Coverage:
    """The coverage of `runbooks` (models, or their outlines) by every journal under `journal_paths`."""
    t0 = time.perf_counter()
    by_id: dict[str, RunbookCoverage] = {}
    for runbook in runbooks:
        by_id.setdefault(runbook.id, runbook_coverage(runbook) if isinstance(runbook, Runbook) else runbook)
    out = Coverage(sorted(by_id.values(), key=lambda r: r.id))
    paths = [str(p) for p in journal_files(journal_paths)]
    wanted = frozenset(by_id)
    for path, run in zip(paths, _read_all(paths, wanted), strict=True):
        out.journals += 1
        if run is None:
            out.skipped.append(path)
        elif run.runbook in by_id:
            _count(out, by_id[run.runbook], run)
        else:
            out.unmatched[run.runbook] += 1
    out.seconds = time.perf_counter() - t0
    return out


def _count(out: Coverage, rb: RunbookCoverage, run: Exercise) -> None:
    """Count `run` for `rb` if it ran the runbook's text as it is now (or says nothing of
    which text it ran); keep a scenario's run of another version for staleness."""
    if run.digest is not None and rb.digest is not None and run.digest != rb.digest:
        out.outdated[rb.id] += 1
        if run.scenario and run.mode == "test":
            rb.older.setdefault(run.scenario, []).append(ScenarioRun(run.started or 0.0, run.path, run.digest))
        return
    if run.digest is None:
        out.undigested += 1
    rb.tallies.setdefault(run.mode, Tally()).add(run)


def with_scenarios(cov: Coverage, scenarios: dict[str, list[Scenario]]) -> Coverage:
    """Name on each runbook the scenario files that play it."""
    for rb in cov.runbooks:
        rb.scenarios = sorted(s.file for s in scenarios.get(str(Path(rb.file).resolve()), []))
    return cov


def with_alerts(cov: Coverage, rules: Sequence[AlertRule], files: int) -> Coverage:
    """Match alert rules and runbooks: a rule is answered by a runbook that lists its
    name in `alerts:`, or that its `runbook_url` names (by the runbook's id or file name)."""
    listed = {alert for rb in cov.runbooks for alert in rb.alerts}
    names = {rb.id for rb in cov.runbooks} | {Path(rb.file).stem for rb in cov.runbooks}
    defined = {rule.name for rule in rules}
    cov.alerts = Alerts(files, len(rules),
                        [r for r in rules if r.name not in listed and r.runbook_name() not in names],
                        {rb.id: gone for rb in cov.runbooks if (gone := [a for a in rb.alerts if a not in defined])},
                        [rb.id for rb in cov.runbooks if not rb.scenarios])
    return cov


_PARALLEL_MIN = 500  # journals: below this, starting a second process costs more than it saves


def _read_all(paths: list[str], wanted: frozenset[str]) -> list[Exercise | None]:
    """Every journal's Exercise, in order: over the machine's CPUs (at most 4) when there
    are many (reading thousands of journals is CPU-bound: JSON decoding)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    jobs = min(cpus, 4)
    if jobs <= 1 or len(paths) < _PARALLEL_MIN:
        return _read_chunk((paths, wanted))
    import multiprocessing

    try:
        context = multiprocessing.get_context("fork")
    except ValueError:
        return _read_chunk((paths, wanted))
    chunks = [paths[i::jobs] for i in range(jobs)]
    with context.Pool(jobs - 1) as pool:
        pending = pool.map_async(_read_chunk, [(c, wanted) for c in chunks[1:]])
        parts = [_read_chunk((chunks[0], wanted)), *pending.get()]
    merged: list[Exercise | None] = [None] * len(paths)
    for i, part in enumerate(parts):
        merged[i::jobs] = part
    return merged


def _read_chunk(args: tuple[list[str], frozenset[str]]) -> list[Exercise | None]:
    paths, wanted = args
    return [_read(p, wanted) for p in paths]


def _read(path: Any, wanted: frozenset[str]) -> Exercise | None:
    try:
        return read_exercise(path, wanted)
    except (OSError, JournalError):  # unreadable, or a FIFO or device named journal.jsonl
        return None
