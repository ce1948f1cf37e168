"""Monte Carlo estimates: N seeded trials of a scenario whose durations are
distributions, the percentiles of each timing, and the steps that cost the most time
to recovery ("what to automate next").

In CI (`runbook test --trials N`) each scenario is one test case: it passes when the
share of trials that met every objective reaches the minimum pass rate (100% unless
`--min-pass-rate` says otherwise); the failure names the pass rate and what was missed.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import EngineError
from engine.language.duration import format_duration
from engine.language.model import Runbook
from engine.language.scenario import Scenario
from engine.run.metrics import MILESTONES, percentile

from ._spread import TrialPlan, spread
from .drill import DrillRun

FIXED_NOTE = ("durations are fixed in this scenario: every trial takes the same time; "
              "use {min, max} or {median, p90} durations to see a spread")


@dataclass
class TrialStats:
    scenario: str
    trials: int
    outcomes: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    step_time: dict[str, float] = field(default_factory=dict)  # mean seconds in recovered runs
    human_share: dict[str, float] = field(default_factory=dict)
    passed: int = 0
    misses: Counter[str] = field(default_factory=Counter)  # objective -> trials that missed it
    fixed: bool = False  # no random durations: every trial is the same run

    @property
    def pass_rate(self) -> float:
        """The share of trials that met every objective, in percent."""
        return 100.0 * self.passed / self.trials if self.trials else 0.0

    def percentile(self, timing: str, p: float) -> float | None:
        return percentile(self.samples.get(timing, []), p)

    def contributors(self, top: int = 5) -> list[tuple[str, float, float]]:
        """(step, mean seconds, share of people's time) by mean time in recovered runs."""
        ranked = sorted(self.step_time.items(), key=lambda kv: kv[1], reverse=True)[:top]
        return [(step, mean, self.human_share.get(step, 0.0)) for step, mean in ranked]


@dataclass(frozen=True)
class TrialResult:
    """What an estimate keeps of one trial: small, so it crosses from a worker process."""

    outcome: str
    passed: bool
    missed: tuple[str, ...]  # the objectives it missed
    unscripted: tuple[str, ...]
    milestones: tuple[tuple[str, float], ...]  # (timing, seconds) of those reached
    recovered: bool
    steps: tuple[tuple[str, float, float], ...]  # (step, seconds, seconds waiting on people)

    @classmethod
    def of(cls, run: DrillRun) -> TrialResult:
        t, card = run.timings, run.scorecard
        reached = tuple((m.attr, getattr(t, m.attr)) for m in MILESTONES if getattr(t, m.attr) is not None)
        return cls(str(t.outcome), card.passed, tuple(c.objective for c in card.missed), tuple(card.unscripted),
                   reached, t.recovered is not None,
                   tuple([(s.step, s.duration, s.waited) for s in t.steps.values()]))  # a list: no generator


def run_trials(scenario: Scenario, runbook: Runbook, trials: int, seed: int | None = None,
               runs_dir: Path | None = None, jobs: int | None = None) -> TrialStats:
    """Trial i runs with seed + i; without a seed, from the scenario's (as `runbook test` does), else 0.
    With `runs_dir`, trial i's journal goes to runs_dir/trial-<i+1>/. Many trials are spread
    over `jobs` processes (default: one per CPU); the figures are the same as in one."""
    stats = TrialStats(scenario.id, trials, fixed=not scenario.has_randomness())
    totals: dict[str, float] = {}
    waits: dict[str, float] = {}
    recovered_runs = 0
    base = seed if seed is not None else (scenario.seed if scenario.seed is not None else 0)
    # Every trial is added in its own order, wherever it ran: sums and lists come out the same.
    for result in spread(TrialPlan(scenario, runbook, base, trials, runs_dir), TrialResult.of, jobs):
        stats.outcomes[result.outcome] = stats.outcomes.get(result.outcome, 0) + 1
        stats.passed += result.passed
        if result.missed:  # most trials miss nothing: Counter.update costs an ABC check even so
            stats.misses.update(result.missed)
        if result.unscripted:
            stats.misses.update(f"unscripted step {s}" for s in result.unscripted)
        for name, value in result.milestones:
            stats.samples.setdefault(name, []).append(value)
        if result.recovered:
            recovered_runs += 1
            for step, duration, waited in result.steps:
                totals[step] = totals.get(step, 0.0) + duration
                waits[step] = waits.get(step, 0.0) + waited
    for name, total in totals.items():
        stats.step_time[name] = total / max(recovered_runs, 1)
        stats.human_share[name] = waits.get(name, 0.0) / total if total else 0.0
    return stats


def render_trials(stats: TrialStats) -> str:
    lines = [f"{stats.scenario}: {stats.trials} trial(s), {stats.passed} met every objective; outcomes: "
             + ", ".join(f"{k} {v}" for k, v in sorted(stats.outcomes.items()))]
    lines.append(f"  {'time to':<14}{'p50':>10}{'p90':>10}{'p99':>10}")
    for m in MILESTONES:
        cells = [stats.percentile(m.attr, p) for p in (50, 90, 99)]
        shown = "".join(f"{format_duration(c) if c is not None else '-':>10}" for c in cells)
        lines.append(f"  {m.verb:<14}{shown}")
    if stats.fixed:
        lines.append(f"  ({FIXED_NOTE})")
    lines.append("  most time on the way to recovery (what to automate next):")
    for step, mean, human in stats.contributors():
        who = f", {human:.0%} waiting on people" if human else ""
        lines.append(f"    {step:<24} {format_duration(mean):>8} mean{who}")
    return "\n".join(lines) + "\n"


# -- trials as a CI test suite --------------------------------------------------------------------


@dataclass
class TrialCase:
    """One scenario's trials as a test case: passed when the pass rate reaches the minimum."""

    file: str
    scenario: str
    min_pass_rate: float = 100.0  # percent
    stats: TrialStats | None = None
    error: str | None = None  # could not run at all (invalid file, missing runbook)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.stats is not None and self.stats.pass_rate >= self.min_pass_rate - 1e-9

    def summary(self) -> str:
        if self.error is not None or self.stats is None:
            return self.error or "did not run"
        s = self.stats
        text = (f"pass rate {s.pass_rate:.1f}% ({s.passed} of {s.trials} trial(s) met every objective; "
                f"minimum {self.min_pass_rate:g}%)")
        if s.misses:
            text += "; missed: " + ", ".join(f"{name} in {n} trial(s)" for name, n in s.misses.most_common())
        return text

    def details(self) -> str | None:
        return render_trials(self.stats) if self.stats is not None else None


@dataclass
class TrialSuite:
    cases: list[TrialCase] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> int:
        return sum(1 for c in self.cases if c.passed)

    @property
    def failed(self) -> int:
        return len(self.cases) - self.passed


def run_trial_suite(files: list[str], trials: int, *, seed: int | None = None, runs_dir: Path | None = None,
                    min_pass_rate: float = 100.0, jobs: int | None = None) -> TrialSuite:
    """N trials of every scenario (over `jobs` processes, see run_trials); with `runs_dir`,
    runs_dir/<scenario file stem>/trial-<i>/."""
    from engine.language.validation import ValidationFailed, load_runbook, load_scenario

    from .suite import first_errors, run_dir_names

    t0 = time.perf_counter()
    suite = TrialSuite()
    names = run_dir_names(files)
    for path in files:
        started = time.perf_counter()
        case = TrialCase(path, Path(path).stem, min_pass_rate)
        try:
            scenario = load_scenario(path)
            case.scenario = scenario.id
            runbook = load_runbook(scenario.runbook_path)
            case.stats = run_trials(scenario, runbook, trials, seed, runs_dir / names[path] if runs_dir else None, jobs)
        except ValidationFailed as exc:
            case.error = first_errors(exc.diagnostics)
        except EngineError as exc:
            case.error = str(exc)
        case.seconds = time.perf_counter() - started
        suite.cases.append(case)
    suite.seconds = time.perf_counter() - t0
    return suite


def render_trial_suite(suite: TrialSuite, *, color: bool = False) -> str:
    from .suite import paint

    out = []
    for case in suite.cases:
        if case.stats is not None:
            out.append(render_trials(case.stats))
        mark = paint("PASS", "32", color) if case.passed else paint("FAIL", "31", color)
        out.append(f"{mark}  {case.scenario}  {case.summary()}\n\n")
    total = f"{suite.passed} passed, {suite.failed} failed"
    out.append(paint(total, "1;32" if not suite.failed else "1;31", color)
               + f" ({len(suite.cases)} scenario(s) in {suite.seconds:.2f}s)\n")
    return "".join(out)
