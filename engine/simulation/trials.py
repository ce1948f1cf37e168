"""Monte Carlo estimates: N seeded trials of a scenario whose durations are
distributions, the percentiles of each timing, and the steps that cost the most time
to recovery ("what to automate next")."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..duration import format_duration
from ..model import Runbook
from ..reporting.metrics import MILESTONES, percentile
from .drill import DrillSetup, run_scenario
from .scenario import Scenario


@dataclass
class TrialStats:
    scenario: str
    trials: int
    outcomes: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    step_time: dict[str, float] = field(default_factory=dict)  # mean seconds in recovered runs
    human_share: dict[str, float] = field(default_factory=dict)
    passed: int = 0

    def percentile(self, timing: str, p: float) -> float | None:
        return percentile(self.samples.get(timing, []), p)

    def contributors(self, top: int = 5) -> list[tuple[str, float, float]]:
        """(step, mean seconds, share of people's time) by mean time in recovered runs."""
        ranked = sorted(self.step_time.items(), key=lambda kv: kv[1], reverse=True)[:top]
        return [(step, mean, self.human_share.get(step, 0.0)) for step, mean in ranked]


def run_trials(scenario: Scenario, runbook: Runbook, trials: int, seed: int | None = None) -> TrialStats:
    """Trial i runs with seed + i; without a seed, from the scenario's (as `runbook test` does), else 0."""
    stats = TrialStats(scenario.id, trials)
    totals: dict[str, float] = {}
    waits: dict[str, float] = {}
    recovered_runs = 0
    base = seed if seed is not None else (scenario.seed if scenario.seed is not None else 0)
    for i in range(trials):
        run = run_scenario(scenario, runbook, DrillSetup(seed=base + i, run_id=f"{scenario.id}-trial{i}"))
        t = run.timings
        stats.outcomes[str(t.outcome)] = stats.outcomes.get(str(t.outcome), 0) + 1
        stats.passed += run.scorecard.passed
        for m in MILESTONES:
            value = getattr(t, m.attr)
            if value is not None:
                stats.samples.setdefault(m.attr, []).append(value)
        if t.recovered is not None:
            recovered_runs += 1
            for timing in t.steps.values():
                totals[timing.step] = totals.get(timing.step, 0.0) + timing.duration
                waits[timing.step] = waits.get(timing.step, 0.0) + timing.waited
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
    lines.append("  most time on the way to recovery (what to automate next):")
    for step, mean, human in stats.contributors():
        who = f", {human:.0%} waiting on people" if human else ""
        lines.append(f"    {step:<24} {format_duration(mean):>8} mean{who}")
    return "\n".join(lines) + "\n"
