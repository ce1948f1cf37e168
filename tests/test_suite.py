"""engine.simulation.suite and `runbook test`: scenarios found and run unattended,
output like a test runner, JUnit XML, exit codes, and journals that repeat byte for byte."""

from __future__ import annotations

import os
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from click.testing import CliRunner, Result
from simkit import ROOT, write_pair

from engine.cli.commands import cli
from engine.simulation.suite import junit, render_suite, run_case, run_suite, scenario_files

RUNBOOK = """\
defaults: {timeout: 1m}
detection:
  - {id: probe, run: probe, expect: exit_code == 0}
recovery:
  - {id: verify, run: verify, until: stdout == 'ok', every: 10s, timeout: 5m}
"""
PASSING = """\
responses:
  - {step: probe, duration: 5s}
  - {step: verify, stdout: ok, duration: {min: 1s, max: 9s}}
objectives: {outcome: resolved, time_to_recover: 1m}
"""
FAILING = """\
responses:
  - {step: probe, duration: 5s}
  - {step: verify, stdout: ok, duration: 2m}
objectives: {outcome: resolved, time_to_recover: 1m}
"""


def invoke(*args: str | os.PathLike[str]) -> Result:
    return CliRunner().invoke(cli, [os.fspath(a) for a in args], catch_exceptions=False)


@pytest.fixture
def suite_dir(tmp_path: Path) -> Path:
    """pass/ and fail/ each hold a runbook and a scenario."""
    write_pair(tmp_path / "pass", RUNBOOK, PASSING)
    write_pair(tmp_path / "fail", RUNBOOK, FAILING)
    return tmp_path


# -- finding and running scenarios --------------------------------------------------------------


def test_scenario_files_finds_scenarios_and_skips_runbooks(suite_dir: Path) -> None:
    found = scenario_files([str(suite_dir)])
    assert sorted(found) == sorted([str(suite_dir / "fail" / "sc.yaml"), str(suite_dir / "pass" / "sc.yaml")])


def test_a_file_named_like_a_scenario_that_does_not_parse_is_still_run_so_its_error_shows(tmp_path: Path) -> None:
    broken = tmp_path / "broken-scenario.yaml"
    broken.write_text("kind: scenario\nid: [unclosed\n", encoding="utf-8")
    assert scenario_files([str(tmp_path)]) == [str(broken)]
    case = run_case(str(broken))
    # Positioned where the fix goes (the unclosed bracket), as `runbook validate` says it.
    assert not case.passed and case.error is not None and "broken-scenario.yaml:2:5" in case.error
    assert "[RB001]" in case.error


def test_run_case_reports_an_invalid_scenario_with_its_position(tmp_path: Path) -> None:
    _, sc = write_pair(tmp_path, RUNBOOK, PASSING + "responses_typo: []\n")
    case = run_case(str(sc))
    assert not case.passed and case.drill is None
    assert case.error is not None and "sc.yaml:10:1" in case.error and "[RB010]" in case.error


def test_run_case_of_a_passing_and_a_failing_scenario(suite_dir: Path) -> None:
    good, bad = run_case(str(suite_dir / "pass" / "sc.yaml")), run_case(str(suite_dir / "fail" / "sc.yaml"))
    assert good.passed and good.summary() == "resolved in 12.8s simulated, 2 objective(s) met"
    assert not bad.passed
    assert bad.summary() == "resolved in 2m5s simulated; time_to_recover: 2m5s (objective <= 1m)"


def test_an_unscripted_step_is_named_in_the_summary(tmp_path: Path) -> None:
    _, sc = write_pair(tmp_path, RUNBOOK, "responses:\n  - {step: probe}\n")
    case = run_case(str(sc))
    assert not case.passed and case.summary().endswith("; unscripted step verify")


def test_render_suite_prints_pass_and_fail_lines_and_a_total(suite_dir: Path) -> None:
    suite = run_suite(sorted(scenario_files([str(suite_dir)])))
    lines = render_suite(suite).splitlines()
    assert lines[0].startswith("FAIL  sc  resolved in 2m5s simulated")
    assert lines[1].startswith("PASS  sc  resolved in 12.8s simulated")
    assert lines[2].startswith("1 passed, 1 failed (2 scenario(s) in ")
    assert (suite.passed, suite.failed) == (1, 1)
    coloured = render_suite(suite, color=True)
    assert "\033[32mPASS\033[0m" in coloured and "\033[31mFAIL\033[0m" in coloured


def test_junit_output_parses_with_a_testcase_per_scenario_and_failures_explained(suite_dir: Path) -> None:
    suite = run_suite(sorted(scenario_files([str(suite_dir)])))
    root = ET.fromstring(junit(suite))
    assert (root.tag, root.get("tests"), root.get("failures")) == ("testsuites", "2", "1")
    cases = root.findall("./testsuite/testcase")
    assert [c.get("file") for c in cases] == sorted(scenario_files([str(suite_dir)]))
    failed, passed = cases
    failure = failed.find("failure")
    assert failure is not None and failure.get("type") == "objective"
    assert "time_to_recover: 2m5s (objective <= 1m)" in (failure.get("message") or "")
    assert "MISSED time_to_recover" in (failure.text or "")
    assert passed.find("failure") is None
    assert "PASSED" in (passed.findtext("system-out") or "")


def test_the_suite_seed_overrides_the_scenario_seed(tmp_path: Path) -> None:
    _, sc = write_pair(tmp_path, RUNBOOK, PASSING.replace("{min: 1s, max: 9s}", "{min: 1s, max: 4m}"))
    one, two = run_suite([str(sc)], seed=1), run_suite([str(sc)], seed=2)
    again = run_suite([str(sc)], seed=1)

    def took(suite: object) -> float:
        return suite.cases[0].drill.timings.duration  # type: ignore[attr-defined,no-any-return]

    assert took(one) == took(again) != took(two)


# -- the command -------------------------------------------------------------------------------


def test_runbook_test_exits_0_when_every_scenario_passes(suite_dir: Path) -> None:
    result = invoke("test", suite_dir / "pass")
    assert result.exit_code == 0
    assert result.output.startswith("PASS  sc  resolved in 12.8s simulated, 2 objective(s) met\n")


def test_runbook_test_exits_1_when_any_scenario_fails(suite_dir: Path) -> None:
    result = invoke("test", suite_dir)
    assert result.exit_code == 1
    assert "1 passed, 1 failed" in result.output


def test_runbook_test_exits_1_for_an_invalid_scenario(tmp_path: Path) -> None:
    write_pair(tmp_path, RUNBOOK, PASSING + "nonsense: true\n")
    result = invoke("test", tmp_path)
    assert result.exit_code == 1 and "FAIL" in result.output and "[RB010]" in result.output


def test_runbook_test_exits_2_when_no_scenario_is_found(tmp_path: Path) -> None:
    (tmp_path / "rb.yaml").write_text("kind: runbook\nversion: 1\nid: x\ntitle: X\n", encoding="utf-8")
    result = invoke("test", tmp_path)
    assert result.exit_code == 2
    assert f"runbook: error: no scenario files found in {tmp_path}" in result.output


def test_runbook_test_junit_file_parses(suite_dir: Path, tmp_path: Path) -> None:
    report = tmp_path / "junit.xml"
    result = invoke("test", suite_dir, "--junit", report)
    assert result.exit_code == 1
    root = ET.parse(report).getroot()
    assert root.get("tests") == "2" and root.get("failures") == "1"


def test_runbook_test_writes_the_same_journal_bytes_twice(suite_dir: Path, tmp_path: Path) -> None:
    """Same seed, same journal: the drill's journals are byte-for-byte reproducible."""
    for name in ("one", "two"):
        assert invoke("test", suite_dir / "pass", "--runs-dir", tmp_path / name).exit_code == 0
    one = (tmp_path / "one" / "sc" / "journal.jsonl").read_bytes()
    assert one == (tmp_path / "two" / "sc" / "journal.jsonl").read_bytes()
    assert b'"mode": "test"' in one and b'"event": "run.finished"' in one


def test_runbook_test_with_another_seed_writes_another_journal(suite_dir: Path, tmp_path: Path) -> None:
    invoke("test", suite_dir / "pass", "--seed", "1", "--runs-dir", tmp_path / "one")
    invoke("test", suite_dir / "pass", "--seed", "2", "--runs-dir", tmp_path / "two")
    assert (tmp_path / "one" / "sc" / "journal.jsonl").read_bytes() != (
        tmp_path / "two" / "sc" / "journal.jsonl").read_bytes()


def test_every_shipped_scenario_passes() -> None:
    result = invoke("test", ROOT / "scenarios")
    assert result.exit_code == 0, result.output
    assert " 0 failed " in result.output


def test_running_again_into_the_same_runs_dir_replaces_each_journal(suite_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for _ in range(2):
        invoke("test", suite_dir / "pass", "--runs-dir", runs)
    text = (runs / "sc" / "journal.jsonl").read_text(encoding="utf-8")
    assert text.count('"event": "run.started"') == 1


def test_a_scenario_that_cannot_be_loaded_leaves_no_empty_journal_in_the_runs_dir(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("kind: scenario\nversion: 1\nid: broken\nrunbook: missing.yaml\n", encoding="utf-8")
    result = invoke("test", bad, "--runs-dir", tmp_path / "runs")
    assert result.exit_code == 1
    assert not (tmp_path / "runs" / "broken").exists()


def test_scenario_files_with_the_same_name_get_journals_of_their_own(suite_dir: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    files = sorted(scenario_files([str(suite_dir)]))  # fail/sc.yaml and pass/sc.yaml
    run_suite(files, runs_dir=runs)
    assert sorted(p.name for p in runs.iterdir()) == ["sc", "sc-2"]
    for name in ("sc", "sc-2"):
        text = (runs / name / "journal.jsonl").read_text(encoding="utf-8")
        assert text.count('"event": "run.started"') == 1
