"""Seeded trials spread over the CPUs: a worker process per CPU (forked, see _workers),
each running chunks of consecutive trials. What each trial
keeps comes back in trial order, so whatever adds the trials up gets the same figures as
in one process.

A trial that fails in a worker (a runbook error at run time) comes back as nothing and
is run again here, where it raises as it would have in one process.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from engine.language.model import Runbook
from engine.language.scenario import Scenario
from engine.run.digest import remembered

from .drill import DrillRun, DrillSetup, run_scenario, scenario_inputs

PARALLEL_MIN_TRIALS = 64  # fewer trials take less time than starting the workers
MAX_JOBS = 8
CHUNK = 8  # consecutive trials a worker runs at a time: small, so no CPU waits long on the last
YOUNG_THRESHOLD = 7000  # allocations between collections of the youngest generation (Python's default: 700)
T = TypeVar("T")


@dataclass(frozen=True)
class TrialPlan:
    """The trials of an estimate: trial i has the seed base + i (and, with runs_dir, its
    journal in runs_dir/trial-<i+1>/)."""

    scenario: Scenario
    runbook: Runbook
    base: int
    trials: int
    runs_dir: Path | None = None

    @cached_property
    def inputs(self) -> dict[str, Any]:
        """The scenario's inputs for the runbook: the same for every trial, resolved once
        (in each worker, at its first trial)."""
        return scenario_inputs(self.scenario, self.runbook)

    def run(self, i: int) -> DrillRun:
        """Trial i, here."""
        # A trial keeps its timings and score, not its records (its journal, when asked
        # for, is written by its JournalWriter).
        setup = DrillSetup(seed=self.base + i, run_id=f"{self.scenario.id}-trial{i}", keep_records=False,
                           inputs=self.inputs)
        if self.runs_dir is None:
            return run_scenario(self.scenario, self.runbook, setup)
        from engine.run.journal_writer import JournalWriter

        from .suite import fresh

        with JournalWriter(fresh(self.runs_dir / f"trial-{i + 1:0{len(str(self.trials))}d}"),
                           fsync=False) as writer:
            setup.observers = (writer,)
            return run_scenario(self.scenario, self.runbook, setup)


def spread(plan: TrialPlan, keep: Callable[[DrillRun], T], jobs: int | None = None) -> Iterator[T]:
    """`keep(run)` of every trial of the plan, in trial order; over `jobs` processes (by
    default one per CPU when there are enough trials to pay for starting them)."""
    with _fewer_collections(), remembered():
        yield from _spread(plan, keep, _jobs(jobs, plan.trials))


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Trials allocate a great deal and keep little, and each collection of the oldest
    objects walked the whole engine (modules, the runbook's model, compiled templates):
    while trials run, what exists before them is frozen out of the collector's sight and
    the youngest generation is collected ten times less often (7% less CPU for trials of
    a 200-step scenario in four turns out of four, nothing measurable at 20 steps; forked
    workers inherit both). Restored afterwards."""
    thresholds, freeze = gc.get_threshold(), gc.get_freeze_count() == 0  # not what a caller froze
    if freeze:
        gc.freeze()
    gc.set_threshold(max(thresholds[0], YOUNG_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if freeze:
            gc.unfreeze()


def _spread(plan: TrialPlan, keep: Callable[[DrillRun], T], jobs: int) -> Iterator[T]:
    if jobs > 1 and hasattr(os, "fork"):  # no fork on this system: this process does it all
        yield from _in_workers(plan, keep, jobs)
        return
    for i in range(plan.trials):
        yield keep(plan.run(i))


def cpus() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _jobs(jobs: int | None, trials: int) -> int:
    if jobs is None:
        jobs = min(cpus(), MAX_JOBS) if trials >= PARALLEL_MIN_TRIALS else 1
    return max(1, min(jobs, -(-trials // CHUNK)))  # no more workers than chunks


def _in_workers(plan: TrialPlan, keep: Callable[[DrillRun], T], jobs: int) -> Iterator[T]:
    """The trials in chunks of consecutive ones over `jobs` forked workers (which inherit
    the plan and `keep`: nothing is pickled but what is kept); each chunk is handed on as
    soon as it and those before it are done, so what is kept of 10,000 trials is never
    all held at once."""
    from ._workers import in_order

    chunks = [range(start, min(start + CHUNK, plan.trials)) for start in range(0, plan.trials, CHUNK)]
    results = in_order(lambda n: _share(plan, keep, chunks[n]), len(chunks), jobs)
    try:
        for chunk, kept in zip(chunks, results, strict=True):
            yield from kept
            for i in chunk[len(kept):]:  # a trial that failed there: here it raises as in one process
                yield keep(plan.run(i))
    finally:
        results.close()  # the workers end now, not when the traceback of what was raised goes


def _share(plan: TrialPlan, keep: Callable[[DrillRun], T], trials: range) -> list[T]:
    kept: list[T] = []
    for i in trials:
        try:
            kept.append(keep(plan.run(i)))
        except Exception:  # the caller runs it again, where it raises as in one process
            break
    return kept
