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
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from engine.errors import JournalError
from engine.language.model import Runbook, Step, SwitchSpec
from engine.language.scenario import Scenario
from engine.run.digest import runbook_digest

from ._exercise_cache import ExerciseCache, entry, identity
from .alert_rules import AlertRule
from .exercise import Exercise, read_exercise
from .journals import journal_paths
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

    def merge(self, other: Tally) -> None:
        """Add the runs `other` counted (another share of the journals) to these."""
        self.runs += other.runs
        self.ended.update(other.ended)
        self.taken.update(other.taken)
        self.last = _latest(self.last, other.last)
        self.last_passed = _latest(self.last_passed, other.last_passed)
        for step, when in other.succeeded.items():
            self.succeeded[step] = max(self.succeeded.get(step, when), when)
        for scenario, runs in other.scenario_runs.items():
            self.scenario_runs.setdefault(scenario, []).extend(runs)


def _latest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


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


def collect(runbooks: Sequence[Runbook | RunbookCoverage], journals: Iterable[str | os.PathLike[str]]) -> Coverage:
    """The coverage of `runbooks` (models, or their outlines) by every journal under `journals`."""
    t0 = time.perf_counter()
    by_id: dict[str, RunbookCoverage] = {}
    for runbook in runbooks:
        by_id.setdefault(runbook.id, runbook_coverage(runbook) if isinstance(runbook, Runbook) else runbook)
    out = Coverage(sorted(by_id.values(), key=lambda r: r.id))
    paths = list(journal_paths(journals))
    for part in _count_all(paths, {ident: rb.digest for ident, rb in by_id.items()}):
        part.merge_into(out, by_id)
    out.skipped.sort()  # journals from the cache are counted before those read: one order either way
    out.seconds = time.perf_counter() - t0
    return out


@dataclass
class _Counted:
    """What a share of the journals adds up to: a worker counts its share, and only these
    sums cross back to the parent (an Exercise per journal would cost more to send than
    to read)."""

    journals: int = 0
    skipped: list[str] = field(default_factory=list)
    unmatched: Counter[str] = field(default_factory=Counter)
    outdated: Counter[str] = field(default_factory=Counter)
    undigested: int = 0
    tallies: dict[tuple[str, str], Tally] = field(default_factory=dict)  # (runbook, mode) -> its runs
    older: dict[str, dict[str, list[ScenarioRun]]] = field(default_factory=dict)  # runbook -> scenario -> runs
    fresh: dict[str, list[Any]] = field(default_factory=dict)  # journals read whole, for the cache

    def count(self, path: str, run: Exercise | None, digests: dict[str, str | None]) -> None:
        """Count `run` for its runbook if it ran the runbook's text as it is now (or says
        nothing of which text it ran); keep a scenario's run of another version for staleness."""
        self.journals += 1
        if run is None:
            self.skipped.append(path)
            return
        if run.runbook not in digests:
            self.unmatched[run.runbook] += 1
            return
        current = digests[run.runbook]
        if run.digest is not None and current is not None and run.digest != current:
            self.outdated[run.runbook] += 1
            if run.scenario and run.mode == "test":
                mine = self.older.setdefault(run.runbook, {}).setdefault(run.scenario, [])
                mine.append(ScenarioRun(run.started or 0.0, run.path, run.digest))
            return
        self.undigested += run.digest is None
        self.tallies.setdefault((run.runbook, run.mode), Tally()).add(run)

    def merge_into(self, out: Coverage, by_id: dict[str, RunbookCoverage]) -> None:
        out.journals += self.journals
        out.skipped += self.skipped
        out.unmatched.update(self.unmatched)
        out.outdated.update(self.outdated)
        out.undigested += self.undigested
        for (ident, mode), tally in self.tallies.items():
            by_id[ident].tallies.setdefault(mode, Tally()).merge(tally)
        for ident, scenarios in self.older.items():
            for scenario, runs in scenarios.items():
                by_id[ident].older.setdefault(scenario, []).extend(runs)


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


def _count_all(paths: list[str], digests: dict[str, str | None]) -> list[_Counted]:
    """The journals counted in shares: those the cache knows unchanged first, then the
    others read over the machine's CPUs (at most 4) when there are many (reading is
    CPU-bound: JSON decoding); what was read is saved to the cache."""
    store = ExerciseCache.open(len(paths))
    if store is None:
        return _read_shares(paths, digests, keep=False)
    known, unread = _Counted(), []
    for path in paths:
        found, run = store.lookup(path, identity(path), digests)
        if found:
            known.count(path, run, digests)
        else:
            unread.append(path)
    parts = [known, *_read_shares(unread, digests, keep=True)]
    for part in parts:
        store.fresh.update(part.fresh)
    store.save(paths)
    return parts


def _read_shares(paths: list[str], digests: dict[str, str | None], *, keep: bool) -> list[_Counted]:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    jobs = min(cpus, 4)
    if jobs <= 1 or len(paths) < _PARALLEL_MIN:
        return [_count_chunk((paths, digests, keep))]
    import multiprocessing

    try:
        context = multiprocessing.get_context("fork")
    except ValueError:
        return [_count_chunk((paths, digests, keep))]
    size = -(-len(paths) // jobs)  # contiguous shares: merged in order, the journals keep theirs
    chunks = [paths[i:i + size] for i in range(0, len(paths), size)]
    with context.Pool(len(chunks) - 1) as pool:
        pending = pool.map_async(_count_chunk, [(c, digests, keep) for c in chunks[1:]])
        return [_count_chunk((chunks[0], digests, keep)), *pending.get()]


def _count_chunk(args: tuple[list[str], dict[str, str | None], bool]) -> _Counted:
    paths, digests, keep = args
    part = _Counted()
    for path in paths:
        ident = identity(path) if keep else None  # before reading: a journal written meanwhile is read again
        run = _read(path, digests)
        part.count(path, run, digests)
        if ident is not None:
            part.fresh[path] = [ident, entry(run, digests)]
    return part


def _read(path: Any, wanted: Container[str]) -> Exercise | None:
    try:
        return read_exercise(path, wanted)
    except (OSError, JournalError):  # unreadable, or a FIFO or device named journal.jsonl
        return None
