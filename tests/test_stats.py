"""`runbook stats`: key times across many journals, read lazily; percentiles, outcome
mix, trends; 2,000 journals within a few seconds."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import ROOT

from engine.reporting.stats import (
    RunPoint,
    collect,
    lean_records,
    percentile,
    read_point,
    render_text,
    to_dict,
    trend,
)
from engine.reporting.synthetic import generate_journals
from engine.run.journal import read_journal
from engine.run.metrics import timings

MANY = 2000
BUDGET = 5.0  # seconds for `collect` over MANY journals ("a few seconds"); measured ~1 s here


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("many")
    generate_journals(root, MANY, seed=7)
    return root


def point(n: int, recovered: float | None, days: float = 0.0) -> RunPoint:
    return RunPoint(f"p{n}", f"run-{n:03d}", "rb", None, "live", 1_767_225_600.0 + days * 86400, "resolved",
                    recovered, recovered=recovered)


# -- arithmetic -------------------------------------------------------------------------------------


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 90) == pytest.approx(3.7)
    assert percentile([7.0], 90) == 7.0
    assert percentile([], 50) is None


def test_trend_compares_the_later_half_with_the_earlier() -> None:
    faster = trend([point(i, 600.0 - 50 * i, days=i) for i in range(8)], "recovered")
    assert faster.verdict == "faster" and faster.change is not None and faster.change < -0.1
    slower = trend([point(i, 100.0 + 50 * i, days=i) for i in range(8)], "recovered")
    assert slower.verdict == "slower"
    steady = trend([point(i, 300.0 + (i % 2), days=i) for i in range(8)], "recovered")
    assert steady.verdict == "steady"
    assert trend([point(i, 100.0) for i in range(3)], "recovered").verdict == "too few runs"


def test_trend_orders_runs_by_start_time_not_by_file() -> None:
    runs = [point(i, 600.0 - 50 * i, days=i) for i in range(8)]
    assert trend(list(reversed(runs)), "recovered").verdict == "faster"


def test_periods_are_calendar_buckets_with_medians() -> None:
    runs = [point(i, 100.0 * (i // 10 + 1), days=3 * i) for i in range(60)]  # 180 days
    periods = trend(runs, "recovered").periods
    assert 1 < len(periods) <= 12
    assert sum(p.runs for p in periods) == 60
    assert periods[0].label.startswith("2026-01")
    medians = [p.p50 for p in periods]
    assert medians == sorted(medians)  # later runs were slower here


def test_runs_without_a_value_do_not_count() -> None:
    runs = [point(i, None if i % 2 else 100.0, days=i) for i in range(10)]
    assert trend(runs, "recovered").verdict == "steady"


# -- reading journals lazily ------------------------------------------------------------------------


def test_lean_reading_gives_the_same_key_times_as_the_whole_journal(drills: dict[str, Path],
                                                                  live: dict[str, Path]) -> None:
    for run_dir in [*drills.values(), *live.values()]:
        whole = timings(read_journal(run_dir).records)
        lean = read_point(run_dir / "journal.jsonl")
        assert lean is not None
        assert (lean.acknowledged, lean.triaged, lean.mitigated, lean.recovered) == (
            whole.acknowledged, whole.triaged, whole.mitigated, whole.recovered), run_dir.name
        assert (lean.outcome, lean.duration, lean.runbook, lean.scenario) == (
            whole.outcome, whole.duration, whole.runbook, whole.scenario)


def test_step_results_and_outputs_are_never_decoded(drills: dict[str, Path], tmp_path: Path) -> None:
    """Lines of step.finished/step.attempt (which carry output tails) are skipped unparsed
    (of a remediation step's result only its head, up to its status, is read: did it act?):
    cutting them in half changes nothing."""
    source = drills["disk-full-log-storm"] / "journal.jsonl"
    cut = tmp_path / "journal.jsonl"
    lines = source.read_text().splitlines()
    mangled = [line[: len(line) // 2] if '"event": "step.finished"' in line or '"event": "step.attempt"' in line
               else line for line in lines]
    cut.write_text("\n".join(mangled) + "\n")
    whole = read_point(source)
    assert whole is not None and read_point(cut) == dataclasses.replace(whole, path=str(cut))
    events = [r["event"] for r in lean_records(cut)]
    heads = [r for r in lean_records(cut) if r["event"] == "step.finished"]
    assert heads and all(r["phase"] == "remediation" and "stdout" not in r for r in heads)
    assert events.count("step.started") == 1


def test_a_killed_run_counts_as_unfinished(crashed: dict[str, Path]) -> None:
    for run_dir in crashed.values():
        p = read_point(run_dir / "journal.jsonl")
        assert p is not None and p.outcome == "unfinished" and p.recovered is None


def test_collect_groups_by_runbook_and_scenario(drills: dict[str, Path], live: dict[str, Path],
                                                crashed: dict[str, Path], tmp_path: Path) -> None:
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "not-a-run" / "journal.jsonl").write_text('{"seq": 1, "event": "phase.started"}\n')
    roots = [next(iter(drills.values())).parent, next(iter(live.values())).parent,
             crashed["torn"].parent, tmp_path]
    stats = collect(roots)
    names = [g.name for g in stats.groups]
    assert "disk-full / disk-full-log-storm" in names and "live-ok (live)" in names
    assert stats.journals == len(drills) + len(live) + len(crashed) + 1
    assert [Path(s).parent.name for s in stats.skipped] == ["not-a-run"]
    crash = next(g for g in stats.groups if g.runbook == "crash-me")
    assert crash.outcomes == {"unfinished": 2}


def test_the_same_journal_given_twice_counts_once(drills: dict[str, Path]) -> None:
    run = drills["disk-full-log-storm"]
    stats = collect([run, run / "journal.jsonl", run.parent])
    assert stats.journals == len(drills)


# -- thousands of journals ----------------------------------------------------------------------------


def test_two_thousand_journals_within_a_few_seconds(many: Path) -> None:
    t0 = time.perf_counter()
    stats = collect([many])
    seconds = time.perf_counter() - t0
    print(f"\nrunbook stats over {MANY} journals: {seconds:.2f}s")
    assert seconds < BUDGET, f"{seconds:.2f}s for {MANY} journals"
    assert stats.journals == MANY and sum(len(g.runs) for g in stats.groups) == MANY
    assert len(stats.groups) == 5
    for group in stats.groups:
        assert group.headline.metric == "recovered" and group.headline.verdict == "faster"
        assert "unfinished" in group.outcomes and "resolved" in group.outcomes
        p50, p90 = group.p("recovered", 50), group.p("recovered", 90)
        assert p50 is not None and p90 is not None and p50 < p90


def test_stats_text_json_and_html_commands(many: Path, tmp_path: Path) -> None:
    sample = tmp_path / "sample"
    for run in sorted(many.iterdir())[:50]:
        shutil.copytree(run, sample / run.name)
    cmd = [sys.executable, "-m", "engine", "stats", str(sample)]
    text = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0].split()[:4] == ["runbook", "/", "scenario", "runs"]
    assert "50 journal(s), 50 run(s) in 5 group(s)" in text.stdout
    data = json.loads(subprocess.run([*cmd, "-f", "json"], capture_output=True, text=True, timeout=120).stdout)
    assert data["format"] == "runbook-stats/1" and sum(g["runs"] for g in data["groups"]) == 50
    assert set(data["groups"][0]["times"]) == {"acknowledged", "triaged", "mitigated", "recovered"}
    out = tmp_path / "stats.html"
    html = subprocess.run([*cmd, "-f", "html", "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert html.returncode == 0 and "Runbook statistics" in out.read_text()


def test_text_table_and_json_agree(drills: dict[str, Path]) -> None:
    stats = collect([next(iter(drills.values())).parent])
    text = render_text(stats)
    data = to_dict(stats)
    for group in data["groups"]:
        assert group["runbook"] in text and group["runs"] == 1
    assert text.splitlines()[-1].startswith(f"{len(drills)} journal(s)")
