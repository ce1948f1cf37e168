"""engine.simulation.trials and `runbook test --trials`: seeded Monte Carlo runs,
percentiles of each timing, and the steps that cost the most time to recovery."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from simkit import load_pair, write_pair

from engine.cli.commands import cli
from engine.simulation.trials import TrialStats, render_trials, run_trials

RUNBOOK = """\
defaults: {timeout: 1h}
detection:
  - {id: probe, run: probe, expect: exit_code == 0}
triage:
  - {id: assess, manual: What is it?, ask: {cause: {choices: [logs, data]}}}
remediation:
  - {id: fix, run: fix}
recovery:
  - {id: verify, run: verify, expect: exit_code == 0}
"""
# Fixed durations: acknowledged 70 (the answer), triaged 70, mitigated 100, recovered 105.
FIXED = """\
responses:
  - {step: probe, duration: 10s}
  - {step: fix, duration: 30s}
  - {step: verify, duration: 5s}
participants:
  assess: {answers: {cause: logs}, after: 1m}
objectives: {outcome: resolved, time_to_recover: 2m}
"""
RANDOM = """\
responses:
  - {step: probe, duration: 10s}
  - {step: fix, duration: {min: 1m, max: 5m}}
  - {step: verify, duration: 5s}
participants:
  assess: {answers: {cause: logs}, after: {median: 1m, p90: 4m}}
objectives: {outcome: resolved, time_to_recover: 5m}
"""


# -- statistics --------------------------------------------------------------------------------


def test_percentiles_interpolate_linearly_between_samples() -> None:
    stats = TrialStats("s", 4, samples={"recovered": [40.0, 10.0, 30.0, 20.0]})
    assert stats.percentile("recovered", 50) == 25.0
    assert stats.percentile("recovered", 90) == pytest.approx(37.0)
    assert stats.percentile("recovered", 99) == pytest.approx(39.7)
    assert stats.percentile("recovered", 0) == 10.0 and stats.percentile("recovered", 100) == 40.0


def test_a_timing_never_reached_has_no_percentile() -> None:
    assert TrialStats("s", 3).percentile("recovered", 50) is None


def test_contributors_rank_steps_by_mean_time_with_the_share_spent_waiting_on_people() -> None:
    stats = TrialStats("s", 1, step_time={"a": 10.0, "b": 60.0, "c": 30.0},
                       human_share={"b": 1.0})
    assert stats.contributors() == [("b", 60.0, 1.0), ("c", 30.0, 0.0), ("a", 10.0, 0.0)]
    assert stats.contributors(top=1) == [("b", 60.0, 1.0)]


# -- trials of a scenario ----------------------------------------------------------------------


def test_fixed_durations_give_the_same_timing_at_every_percentile(tmp_path: Path) -> None:
    scenario, runbook = load_pair(tmp_path, RUNBOOK, FIXED)
    stats = run_trials(scenario, runbook, 5)
    assert stats.trials == 5 and stats.passed == 5 and stats.outcomes == {"resolved": 5}
    for name, value in (("acknowledged", 70), ("triaged", 70), ("mitigated", 100), ("recovered", 105)):
        assert [stats.percentile(name, p) for p in (50, 90, 99)] == [value] * 3
    assert stats.contributors() == [("assess", 60.0, 1.0), ("fix", 30.0, 0.0), ("probe", 10.0, 0.0),
                                    ("verify", 5.0, 0.0)]


def test_distributions_spread_the_timings_and_the_same_seed_repeats_them(tmp_path: Path) -> None:
    scenario, runbook = load_pair(tmp_path, RUNBOOK, RANDOM)
    stats = run_trials(scenario, runbook, 40, seed=7)
    again = run_trials(scenario, runbook, 40, seed=7)
    other = run_trials(scenario, runbook, 40, seed=8)
    recovered = stats.samples["recovered"]
    assert len(recovered) == 40 and len(set(recovered)) > 30
    p50, p90, p99 = (stats.percentile("recovered", p) for p in (50, 90, 99))
    assert p50 is not None and p90 is not None and p99 is not None
    assert 10 + 60 + 5 < p50 < p90 < p99
    assert stats.samples == again.samples and stats.samples != other.samples
    assert 0 < stats.passed < 40  # some trials miss the 5-minute objective
    top = stats.contributors(top=2)
    assert {top[0][0], top[1][0]} == {"fix", "assess"}


def test_step_means_count_only_trials_that_recovered(tmp_path: Path) -> None:
    sc = FIXED.replace("{step: verify, duration: 5s}",
                       "{step: verify, duration: 5s, exit_code: 1}")
    scenario, runbook = load_pair(tmp_path, RUNBOOK, sc)
    stats = run_trials(scenario, runbook, 3)
    assert stats.outcomes == {"failed": 3} and stats.passed == 0
    assert "recovered" not in stats.samples
    assert stats.step_time == {} and stats.contributors() == []
    assert stats.percentile("mitigated", 50) == 100


def test_each_trial_uses_the_next_seed(tmp_path: Path) -> None:
    scenario, runbook = load_pair(tmp_path, RUNBOOK, RANDOM)
    two = run_trials(scenario, runbook, 2, seed=10)
    second_alone = run_trials(scenario, runbook, 1, seed=11)
    assert two.samples["recovered"][1] == second_alone.samples["recovered"][0]


def test_without_a_seed_trials_start_from_the_scenario_seed(tmp_path: Path) -> None:
    scenario, runbook = load_pair(tmp_path, RUNBOOK, "seed: 21\n" + RANDOM)
    assert run_trials(scenario, runbook, 3).samples == run_trials(scenario, runbook, 3, seed=21).samples
    _, sc = write_pair(tmp_path / "cli", RUNBOOK, "seed: 21\n" + RANDOM)
    by_file = CliRunner().invoke(cli, ["test", os.fspath(sc), "--trials", "3"])
    by_flag = CliRunner().invoke(cli, ["test", os.fspath(sc), "--trials", "3", "--seed", "21"])
    assert untimed(by_file.output) == untimed(by_flag.output)


def untimed(output: str) -> str:
    """The output without the wall-clock seconds of the total line."""
    return re.sub(r" in \d+\.\d+s\)$", ")", output.rstrip("\n"))


def test_render_trials_shows_outcomes_percentiles_and_what_to_automate(tmp_path: Path) -> None:
    scenario, runbook = load_pair(tmp_path, RUNBOOK, FIXED)
    text = render_trials(run_trials(scenario, runbook, 3))
    lines = text.splitlines()
    assert lines[0] == "sc: 3 trial(s), 3 met every objective; outcomes: resolved 3"
    assert lines[1].split() == ["time", "to", "p50", "p90", "p99"]
    assert lines[2].split() == ["acknowledge", "1m10s", "1m10s", "1m10s"]
    assert lines[5].split() == ["recover", "1m45s", "1m45s", "1m45s"]
    assert lines[6] == ("  (durations are fixed in this scenario: every trial takes the same time; "
                        "use {min, max} or {median, p90} durations to see a spread)")
    assert lines[7] == "  most time on the way to recovery (what to automate next):"
    assert lines[8].split() == ["assess", "1m", "mean,", "100%", "waiting", "on", "people"]
    assert lines[9].split() == ["fix", "30s", "mean"]


def test_random_durations_get_no_fixed_note(tmp_path: Path) -> None:
    scenario, runbook = load_pair(tmp_path, RUNBOOK, RANDOM)
    assert "durations are fixed" not in render_trials(run_trials(scenario, runbook, 3))


# -- the command -------------------------------------------------------------------------------


def test_runbook_test_trials_reports_percentiles_and_top_contributors(tmp_path: Path) -> None:
    _, sc = write_pair(tmp_path, RUNBOOK, RANDOM)
    result = CliRunner().invoke(cli, ["test", os.fspath(sc), "--trials", "25", "--seed", "3",
                                      "--min-pass-rate", "0"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith("sc: 25 trial(s), ")
    assert re.search(r"time to\s+p50\s+p90\s+p99", out)
    for label in ("acknowledge", "triage", "mitigate", "recover"):
        assert re.search(rf"^  {label}\s+\S+\s+\S+\s+\S+$", out, re.M), label
    assert "most time on the way to recovery (what to automate next):" in out
    assert re.search(r"^    (fix|assess)\s+\S+ mean", out, re.M)
    again = CliRunner().invoke(cli, ["test", os.fspath(sc), "--trials", "25", "--seed", "3", "--min-pass-rate", "0"])
    assert untimed(again.output) == untimed(out)


def test_trials_below_the_minimum_pass_rate_fail_the_command_and_its_junit_case(tmp_path: Path) -> None:
    """A CI job goes red: exit 1, and the JUnit case fails naming the pass rate and the misses."""
    from xml.etree import ElementTree as ET

    _, sc = write_pair(tmp_path, RUNBOOK, RANDOM)
    report = tmp_path / "trials.xml"
    result = CliRunner().invoke(cli, ["test", os.fspath(sc), "--trials", "20", "--seed", "3",
                                      "--junit", os.fspath(report)])
    assert result.exit_code == 1, result.output
    case = ET.parse(report).getroot().find("testsuite/testcase")
    assert case is not None and case.get("name") == "sc"
    failure = case.find("failure")
    assert failure is not None
    message = failure.get("message", "")
    assert re.match(r"pass rate \d+\.\d% \(\d+ of 20 trial\(s\) met every objective; minimum 100%\); "
                    r"missed: time_to_recover in \d+ trial\(s\)$", message), message
    assert "time to" in (failure.text or "")  # the percentiles table
    assert re.search(r"^FAIL  sc  pass rate ", result.output, re.M)


def test_trials_at_or_above_the_minimum_pass_rate_pass(tmp_path: Path) -> None:
    from xml.etree import ElementTree as ET

    _, sc = write_pair(tmp_path, RUNBOOK, FIXED)
    report = tmp_path / "trials.xml"
    result = CliRunner().invoke(cli, ["test", os.fspath(sc), "--trials", "4", "--junit", os.fspath(report)])
    assert result.exit_code == 0, result.output
    root = ET.parse(report).getroot()
    assert root.get("tests") == "1" and root.get("failures") == "0"
    assert "PASS  sc  pass rate 100.0% (4 of 4 trial(s) met every objective; minimum 100%)" in result.output


def test_trials_write_each_journal_under_the_runs_dir(tmp_path: Path) -> None:
    from engine.reporting.stats import collect

    _, sc = write_pair(tmp_path, RUNBOOK, RANDOM)
    runs = tmp_path / "runs"
    result = CliRunner().invoke(cli, ["test", os.fspath(sc), "--trials", "3", "--runs-dir", os.fspath(runs),
                                      "--min-pass-rate", "0"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (runs / "sc").iterdir()) == ["trial-1", "trial-2", "trial-3"]
    assert all((runs / "sc" / f"trial-{i}" / "journal.jsonl").is_file() for i in (1, 2, 3))
    assert collect([os.fspath(runs)]).journals == 3


def test_a_scenario_that_cannot_load_fails_its_trials_case_and_the_others_still_run(tmp_path: Path) -> None:
    _, good = write_pair(tmp_path, RUNBOOK, FIXED)
    bad = tmp_path / "broken.yaml"
    bad.write_text("kind: scenario\nversion: 1\nid: broken\ntitle: x\nrunbook: missing.yaml\n")
    result = CliRunner().invoke(cli, ["test", os.fspath(good), os.fspath(bad), "--trials", "2"])
    assert result.exit_code == 1
    assert "PASS  sc  pass rate 100.0%" in result.output and re.search(r"^FAIL  broken  ", result.output, re.M)


# -- trials over several processes -------------------------------------------------------------


def test_trials_spread_over_processes_give_exactly_the_figures_of_one_process(tmp_path: Path) -> None:
    scenario, runbook = load_pair(tmp_path, RUNBOOK, RANDOM)
    one = run_trials(scenario, runbook, 70, seed=5, jobs=1)  # three chunks of trials
    assert len(set(one.samples["recovered"])) > 50 and 0 < one.passed < 70
    assert run_trials(scenario, runbook, 70, seed=5, jobs=2) == one
    assert run_trials(scenario, runbook, 70, seed=5, jobs=3) == one


def test_trials_run_in_forked_workers_in_chunks_of_consecutive_trials(tmp_path: Path) -> None:
    from engine.simulation._spread import CHUNK, TrialPlan, spread

    scenario, runbook = load_pair(tmp_path, RUNBOOK, RANDOM)
    pids = list(spread(TrialPlan(scenario, runbook, 0, 3 * CHUNK), lambda run: os.getpid(), jobs=2))
    assert len(pids) == 3 * CHUNK and os.getpid() not in pids and 1 <= len(set(pids)) <= 2
    assert all(len(set(pids[i:i + CHUNK])) == 1 for i in range(0, 3 * CHUNK, CHUNK))
    assert list(spread(TrialPlan(scenario, runbook, 0, CHUNK), lambda run: os.getpid(), jobs=2)) == [
        os.getpid()] * CHUNK  # one chunk: no worker is worth starting


def test_a_trial_that_raises_in_a_worker_raises_here_as_in_one_process(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.simulation._spread as spread_module
    from engine.errors import EngineError

    real = spread_module.run_scenario

    def one_fails(scenario, runbook, setup):  # type: ignore[no-untyped-def]
        if setup.seed == 40:  # in the second chunk, in a worker
            raise EngineError("step fix: the world broke")
        return real(scenario, runbook, setup)

    monkeypatch.setattr(spread_module, "run_scenario", one_fails)
    scenario, runbook = load_pair(tmp_path, RUNBOOK, RANDOM)
    for jobs in (1, 2):
        with pytest.raises(EngineError, match="step fix: the world broke"):
            run_trials(scenario, runbook, 70, seed=0, jobs=jobs)


def test_runbook_test_jobs_gives_the_same_report_and_journal_bytes(tmp_path: Path) -> None:
    _, sc = write_pair(tmp_path, RUNBOOK, RANDOM)
    outputs = []
    for jobs in ("1", "2"):
        runs = tmp_path / f"runs-{jobs}"
        result = CliRunner().invoke(cli, ["test", os.fspath(sc), "--trials", "40", "--seed", "3", "--min-pass-rate",
                                          "0", "--jobs", jobs, "--runs-dir", os.fspath(runs)])
        assert result.exit_code == 0, result.output
        outputs.append(untimed(result.output))
    assert outputs[0] == outputs[1]
    for i in range(1, 41):
        one, two = (tmp_path / f"runs-{j}" / "sc" / f"trial-{i:02d}" / "journal.jsonl" for j in (1, 2))
        assert one.read_bytes() == two.read_bytes()


def test_trials_leave_no_descriptor_open(tmp_path: Path) -> None:
    """Each run made a Cancel whose pipe was never closed: under the usual limit of 1,024
    descriptors, `runbook test --trials 1000` died at about 500 trials."""
    from engine.executors.base import Cancel

    scenario, runbook = load_pair(tmp_path, RUNBOOK, RANDOM)
    run_trials(scenario, runbook, 2, jobs=1)  # whatever is opened once (imports, caches)
    before = len(os.listdir("/proc/self/fd"))
    run_trials(scenario, runbook, 60, jobs=1)
    assert len(os.listdir("/proc/self/fd")) <= before
    cancel = Cancel()
    cancel.close()
    cancel.close()
    cancel.set()  # a late Ctrl-C after the run: marked, written nowhere
    assert cancel.is_set() and cancel.fileno() == -1


def test_trials_give_the_collector_back_as_they_found_it(tmp_path: Path) -> None:
    import gc

    scenario, runbook = load_pair(tmp_path, RUNBOOK, RANDOM)
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    seen: list[tuple[int, ...]] = []
    from engine.simulation._spread import TrialPlan, spread

    list(spread(TrialPlan(scenario, runbook, 0, 2), lambda run: seen.append(gc.get_threshold()), jobs=1))
    assert seen[0][0] >= 7000 and gc.get_threshold() == thresholds and gc.get_freeze_count() == frozen


def test_trials_read_and_hash_the_runbook_once_and_journal_its_digest(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Every trial's run.started names the runbook's digest, as a lone drill's does; the
    files are read and hashed once per estimate, not once per trial. A live run (outside
    trials) still reads them at its start."""
    import engine.run.digest as digest
    from engine.run.journal import read_journal
    from engine.simulation.drill import run_scenario

    scenario, runbook = load_pair(tmp_path, RUNBOOK, RANDOM)
    reads: list[str] = []
    real = digest._digest_of_files
    monkeypatch.setattr(digest, "_digest_of_files", lambda book: reads.append(book.file) or real(book))
    lone = next(r for r in run_scenario(scenario, runbook).records if r["event"] == "run.started")["digest"]
    run_scenario(scenario, runbook)
    assert lone is not None and len(reads) == 2
    runs = tmp_path / "runs"
    run_trials(scenario, runbook, 4, runs_dir=runs, jobs=1)
    assert len(reads) == 3
    started = [read_journal(runs / f"trial-{i}").records[0] for i in range(1, 5)]
    assert [r["digest"] for r in started] == [lone] * 4


def test_digests_remembered_for_an_estimate_are_its_thread_s_alone(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A run another thread starts while an estimate runs (a service's) reads its files."""
    import threading

    import engine.run.digest as digest

    _, runbook = load_pair(tmp_path, RUNBOOK, RANDOM)
    reads: list[str] = []
    real = digest._digest_of_files
    monkeypatch.setattr(digest, "_digest_of_files", lambda book: reads.append(book.file) or real(book))
    with digest.remembered():
        first = digest.runbook_digest(runbook)
        assert digest.runbook_digest(runbook) == first and len(reads) == 1
        other = threading.Thread(target=digest.runbook_digest, args=(runbook,))
        other.start()
        other.join()
        assert len(reads) == 2
    digest.runbook_digest(runbook)
    assert len(reads) == 3


def test_trials_resolve_the_scenario_s_inputs_once_and_run_with_them(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The inputs are the same for every trial: an estimate resolves them once (each
    trial's run.started still holds them), a lone drill at its start."""
    import engine.simulation.drill as drill
    from engine.run.journal import read_journal

    scenario, runbook = load_pair(tmp_path, "inputs:\n  region: {type: string, default: eu}\n" + RUNBOOK,
                                  "inputs: {region: us}\n" + RANDOM)
    resolved: list[int] = []
    real = drill.resolve
    monkeypatch.setattr(drill, "resolve", lambda *a, **k: resolved.append(1) or real(*a, **k))
    runs = tmp_path / "runs"
    stats = run_trials(scenario, runbook, 5, runs_dir=runs, jobs=1)
    assert len(resolved) == 1 and stats.outcomes == {"resolved": 5}
    started = [read_journal(runs / f"trial-{i}").records[0] for i in range(1, 6)]
    assert [r["inputs"] for r in started] == [{"region": "us"}] * 5
    drill.run_scenario(scenario, runbook)
    assert len(resolved) == 2
