"""`runbook coverage` (issue 17): which steps and branches of a runbook its journals
exercised, per mode, from journals the real runner wrote for a fixture runbook whose
coverage is known (tests/fixtures/coverage: every branch kind, and which scenario takes
which)."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from engine.language.validation import load_runbook
from engine.reporting.alert_rules import read_all
from engine.reporting.catalog import load_catalog as load_sources
from engine.reporting.coverage import Branch, branches_of, collect, with_alerts
from engine.reporting.coverage_formats import render_json, render_markdown, render_text, stale_lines
from engine.reporting.exercise import read_exercise
from engine.reporting.staleness import DAY, staleness
from engine.run.journal_writer import JournalWriter
from engine.simulation.drill import DrillSetup
from engine.simulation.suite import run_case
from tests.test_cli import assert_no_traceback, run

FIXTURES = Path(__file__).parent / "fixtures" / "coverage"
RUNBOOK = FIXTURES / "branches.yaml"
TLS, REFUSED = FIXTURES / "scenarios" / "tls.yaml", FIXTURES / "scenarios" / "refused.yaml"
# What each scenario takes (see the fixture's scenarios).
TAKEN_BY_TLS = {("prepare", "retried"), ("by_cause", "case tls"), ("fix", "when true"), ("each_host", "items"),
                ("restart", "approved")}
TAKEN_BY_REFUSED = {("prepare", "rolled back"), ("by_cause", "default"), ("fix", "when false"),
                    ("each_host", "no items"), ("restart", "refused")}
NEVER = {("by_cause", "case dns")}


def _journal(scenario: Path, run_dir: Path, mode: str = "test") -> Path:
    """A journal the runner writes playing `scenario` (its run.started says `mode`)."""
    writer = JournalWriter(run_dir, fsync=False)
    try:
        case = run_case(str(scenario), DrillSetup(observers=(writer,), mode=mode))
    finally:
        writer.close()
    assert case.passed, case.error or case
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    _journal(TLS, root / "tls")
    _journal(REFUSED, root / "refused")
    _journal(REFUSED, root / "drill", mode="drill")
    _journal(TLS, root / "live", mode="live")
    return root


def _taken(runs: Path, mode: str) -> set[tuple[str, str]]:
    cov = collect([load_runbook(RUNBOOK)], [runs])
    return {(b.step, b.label) for b in cov.runbooks[0].branches_taken(mode)}


def test_each_step_says_which_branches_it_can_take() -> None:
    rb = load_runbook(RUNBOOK)
    assert {s.id: branches_of(s) for s in rb.steps(rollbacks=True) if branches_of(s)} == {
        "prepare": ["retried", "rolled back"],
        "by_cause": ["case tls", "case dns", "default"],
        "fix": ["when true", "when false"],
        "each_host": ["items", "no items"],
        "restart": ["approved", "refused"],
    }


def test_scenarios_take_every_branch_kind_and_the_untaken_one_is_missing(runs: Path) -> None:
    assert _taken(runs, "test") == TAKEN_BY_TLS | TAKEN_BY_REFUSED
    cov = collect([load_runbook(RUNBOOK)], [runs])
    rb = cov.runbooks[0]
    assert set(rb.branches) - set(rb.branches_taken("test")) == {Branch(*b) for b in NEVER}
    assert rb.percent("test") == pytest.approx(100 * 10 / 11)
    assert [s for s in rb.steps if s not in rb.steps_ran("test")] == ["flush"]


def test_modes_are_counted_apart(runs: Path) -> None:
    assert _taken(runs, "drill") == TAKEN_BY_REFUSED
    assert _taken(runs, "live") == TAKEN_BY_TLS
    rb = collect([load_runbook(RUNBOOK)], [runs]).runbooks[0]
    assert [rb.tally(m).runs for m in ("test", "drill", "live")] == [2, 1, 1]
    assert rb.tally("test").ended[("restart", "skipped")] == 1  # refused, and skipped as on_refuse says
    assert rb.tally("test").ended[("verify", "failed")] == 1


def test_journals_of_other_runbooks_and_damaged_ones_are_counted_not_fatal(runs: Path, tmp_path: Path) -> None:
    (tmp_path / "torn").mkdir()
    lines = (runs / "tls" / "journal.jsonl").read_bytes().splitlines(keepends=True)
    (tmp_path / "torn" / "journal.jsonl").write_bytes(b"".join(lines[:6]) + lines[6][:20])
    other = (runs / "tls" / "journal.jsonl").read_text().replace('"runbook": "branches"', '"runbook": "elsewhere"', 1)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "journal.jsonl").write_text(other)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "journal.jsonl").write_text("")
    cov = collect([load_runbook(RUNBOOK)], [tmp_path])
    assert (cov.journals, dict(cov.unmatched), len(cov.skipped)) == (3, {"elsewhere": 1}, 1)
    assert cov.runbooks[0].tally("test").runs == 1  # the torn one still counts what it has


def test_scenarios_are_found_with_the_runbooks_they_play() -> None:
    sources = load_sources([FIXTURES])
    assert [r.id for r in sources.runbooks] == ["branches"]
    assert sources.runbooks[0].branches == collect([load_runbook(RUNBOOK)], []).runbooks[0].branches
    assert sorted(Path(s.file).name for s in sources.scenarios[str(RUNBOOK.resolve())]) == ["refused.yaml", "tls.yaml"]


def test_the_outputs_say_the_same_thing(runs: Path) -> None:
    cov = collect([load_runbook(RUNBOOK)], [runs])
    text, data, markdown = render_text(cov), json.loads(render_json(cov)), render_markdown(cov)
    assert "branches: branches no scenario takes: by_cause: case dns" in text
    assert "scenarios 91%" in text
    assert data["format"] == "runbook-coverage/1"
    test = data["runbooks"][0]["modes"]["test"]
    assert [b["branch"] for b in test["branches"] if not b["taken"]] == ["case dns"]
    assert test["steps"]["verify"] == {"failed": 1, "ok": 1}
    assert "| branches | 92%/91% (2) |" in markdown and "by\\_cause (case dns)" in markdown


def test_the_command_gates_on_branch_coverage_by_scenarios(runs: Path) -> None:
    ok = run("coverage", FIXTURES, "--journals", runs, "--fail-under", "90")
    assert ok.exit_code == 0, ok.output
    assert "scenarios 91%" in ok.output
    short = run("coverage", FIXTURES, "--journals", runs, "--fail-under", "95", "-f", "json")
    assert short.exit_code == 1
    assert_no_traceback(short)
    assert "branch coverage by scenarios is 90.9%, under 95%" in short.output
    assert json.loads(short.stdout)["branches_percent"]["test"] == pytest.approx(100 * 10 / 11)


def test_the_command_reads_the_runs_of_the_runbook_home(runs: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOK_HOME", str(tmp_path))
    _journal(REFUSED, tmp_path / "runs" / "one", mode="live")
    result = run("coverage", RUNBOOK)
    assert result.exit_code == 0, result.output
    assert "scenarios -, drills -, live 45%" in result.output  # 5 of 11 branches
    assert "1 journal(s)" in result.output


RULES = Path(__file__).parent / "fixtures" / "coverage-rules"


def test_alert_rules_are_read_from_rule_groups_and_prometheusrule_resources() -> None:
    rules, files = read_all([RULES])
    assert files == 2
    assert [(r.name, Path(r.file).name, r.line, r.runbook_name()) for r in rules] == [
        ("BranchesDown", "groups.yml", 8, None),
        ("BranchesSlow", "groups.yml", 11, "branches"),
        ("BranchesPodCrashLooping", "prometheusrule.yaml", 15, None),
    ]


def test_alerts_without_a_runbook_and_runbooks_whose_alerts_no_rule_defines(runs: Path) -> None:
    cov = with_alerts(collect([load_runbook(RUNBOOK)], [runs]), *read_all([RULES]))
    assert cov.alerts is not None
    assert [r.name for r in cov.alerts.unowned] == ["BranchesPodCrashLooping"]
    assert cov.alerts.undefined == {"branches": ["BranchesOrphan"]}
    assert cov.alerts.no_scenario == ["branches"]  # no scenarios were named here


def test_require_runbook_fails_the_build_on_an_alert_without_one(runs: Path, tmp_path: Path) -> None:
    failed = run("coverage", FIXTURES, "--journals", runs, "--rules", RULES, "--require-runbook")
    assert failed.exit_code == 1
    assert "prometheusrule.yaml:15: alert BranchesPodCrashLooping has no runbook" in failed.output
    assert "1 alert(s) have no runbook: BranchesPodCrashLooping" in failed.output
    assert "runbook branches: alert BranchesOrphan is in no rule file" in failed.output
    assert run("coverage", FIXTURES, "--journals", runs, "--rules", RULES / "groups.yml",
               "--require-runbook").exit_code == 0
    assert run("coverage", FIXTURES, "--journals", runs, "--require-runbook").exit_code == 2


def test_a_broken_rule_file_is_an_error_that_says_where(runs: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("groups:\n  - name: x\n    rules: [\n")
    result = run("coverage", FIXTURES, "--journals", runs, "--rules", bad)
    assert result.exit_code == 2
    assert_no_traceback(result)
    assert f"{bad}:4:1: not valid YAML" in result.output


def test_a_runbook_no_scenario_plays_is_named(runs: Path) -> None:
    result = run("coverage", RUNBOOK, "--journals", runs, "-f", "md")
    assert "runbook with no scenario: branches" in result.output
    assert json.loads(run("coverage", FIXTURES, "--journals", runs, "-f", "json").stdout)["without_scenario"] == []


LIVE_T = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()  # the virtual clock's start, in every run here


def test_staleness_says_when_each_mode_last_ran_and_which_commands_are_unproven_live(runs: Path) -> None:
    cov = collect([load_runbook(RUNBOOK)], [runs])
    stale = staleness(cov, {}, days=30, now=LIVE_T + 10 * DAY)
    assert stale.last["branches"]["live"] == LIVE_T
    assert stale.last["branches"]["drill"] == LIVE_T
    written = max(os.stat(runs / n / "journal.jsonl").st_mtime for n in ("tls", "refused"))
    assert stale.last["branches"]["test"] == written  # a test's clock is virtual: its journal says when
    assert stale.commands["branches"] == ["undo_prepare", "flush", "unknown", "tell"]  # the live run took tls
    later = staleness(cov, {}, days=5, now=LIVE_T + 10 * DAY)
    assert len(later.commands["branches"]) == 10  # every run and for_each step: the live run is too old


def _without_digest(journal: Path) -> None:
    """Make `journal` one written before runs recorded their runbook's digest."""
    lines = journal.read_text().split("\n")
    first = json.loads(lines[0])
    del first["digest"]
    journal.write_text("\n".join([json.dumps(first), *lines[1:]]))


def _changed_scenarios(tmp_path: Path) -> tuple[Path, float, Any]:
    """A copy of the fixture with its two scenarios' journals; the runbook, when the tls one
    was written, and a function giving the scenarios named changed as of then."""
    copy = tmp_path / "cov"
    shutil.copytree(FIXTURES, copy)
    _journal(copy / "scenarios" / "tls.yaml", tmp_path / "runs" / "tls")
    _journal(copy / "scenarios" / "refused.yaml", tmp_path / "runs" / "refused")
    passed = os.stat(tmp_path / "runs" / "tls" / "journal.jsonl").st_mtime

    def changed() -> list[Any]:
        sources = load_sources([copy])
        return staleness(collect(sources.runbooks, [tmp_path / "runs"]), sources.scenarios, 90, passed).changed

    return copy / "branches.yaml", passed, changed


def test_a_scenario_whose_runbook_text_changed_since_it_last_passed_is_named_by_digest(tmp_path: Path) -> None:
    runbook, passed, changed = _changed_scenarios(tmp_path)
    os.utime(runbook, (passed + 60, passed + 60))  # touched, not changed: the text that passed is the text now
    assert changed() == []
    runbook.write_text(runbook.read_text() + "# a comment is a new version\n")
    os.utime(runbook, (passed - 60, passed - 60))  # an older file time does not hide it (a checkout, a copy)
    found = changed()
    assert [(Path(c.scenario).name, c.exact) for c in found] == [("refused.yaml", True), ("tls.yaml", True)]
    assert found[1].passed == passed
    lines = stale_lines(staleness(collect(load_sources([runbook.parent]).runbooks, [tmp_path / "runs"]),
                                  load_sources([runbook.parent]).scenarios, 90, passed))
    assert any(line.endswith("tls.yaml: runbook branches changed since the scenario last passed "
                             f"({datetime.fromtimestamp(passed, tz=timezone.utc):%Y-%m-%d %H:%M}, "
                             "on another version of its text)") for line in lines), lines
    # A journal of the new text that meets its objectives settles it again.
    _journal(runbook.parent / "scenarios" / "tls.yaml", tmp_path / "runs" / "tls-again")
    assert [Path(c.scenario).name for c in changed()] == ["refused.yaml"]


def test_journals_without_a_digest_tell_a_changed_runbook_by_file_times(tmp_path: Path) -> None:
    runbook, passed, changed = _changed_scenarios(tmp_path)
    for name in ("tls", "refused"):
        _without_digest(tmp_path / "runs" / name / "journal.jsonl")
    os.utime(tmp_path / "runs" / "tls" / "journal.jsonl", (passed, passed))
    os.utime(runbook, (passed - 60, passed - 60))
    assert changed() == []
    os.utime(runbook, (passed + 60, passed + 60))
    assert [(Path(c.scenario).name, c.passed, c.changed, c.exact) for c in changed()] == [
        ("refused.yaml", pytest.approx(passed, abs=5), passed + 60, False), ("tls.yaml", passed, passed + 60, False)]
    # A journal that misses its scenario's objectives is no pass.
    journal = tmp_path / "runs" / "tls" / "journal.jsonl"
    journal.write_text(journal.read_text().replace('"outcome": "resolved"', '"outcome": "failed"'))
    os.utime(journal, (passed, passed))
    os.utime(runbook, (passed - 60, passed - 60))
    assert [(Path(c.scenario).name, c.passed) for c in changed()] == [("tls.yaml", None)]


def test_a_journal_counts_only_for_the_runbook_version_it_ran(tmp_path: Path) -> None:
    copy = tmp_path / "cov"
    shutil.copytree(FIXTURES, copy)
    _journal(copy / "scenarios" / "tls.yaml", tmp_path / "runs" / "old-tls")
    book = copy / "branches.yaml"
    book.write_text(book.read_text() + "# reviewed\n")  # a new version: the tls run proved the old one
    _journal(copy / "scenarios" / "refused.yaml", tmp_path / "runs" / "refused")
    cov = collect(load_sources([copy]).runbooks, [tmp_path / "runs"])
    rb = cov.runbooks[0]
    assert {(b.step, b.label) for b in rb.branches_taken("test")} == TAKEN_BY_REFUSED
    assert rb.tally("test").runs == 1 and cov.outdated == {"branches": 1} and cov.undigested == 0
    assert "1 ran an older version of their runbook, not counted (branches)" in render_text(cov)
    assert json.loads(render_json(cov))["older_version"] == {"branches": 1}
    # A journal from before runs carried a digest counts by the runbook id, and the output says so.
    _without_digest(tmp_path / "runs" / "old-tls" / "journal.jsonl")
    cov = collect(load_sources([copy]).runbooks, [tmp_path / "runs"])
    assert {(b.step, b.label) for b in cov.runbooks[0].branches_taken("test")} == TAKEN_BY_TLS | TAKEN_BY_REFUSED
    assert cov.outdated == {} and cov.undigested == 1
    assert "1 carry no runbook digest (written before runs recorded one): counted by runbook id" in render_text(cov)
    assert json.loads(render_json(cov))["without_digest"] == 1


def test_the_command_shows_staleness(runs: Path) -> None:
    result = run("coverage", FIXTURES, "--journals", runs, "--stale-days", "1")
    assert "branches: last run scenarios 20" in result.output
    assert "branches: 4 command(s) not seen succeeding live in 1 days" not in result.output
    assert "branches: 10 command(s) not seen succeeding live in 1 days: prepare, undo_prepare" in result.output
    data = json.loads(run("coverage", FIXTURES, "--journals", runs, "-f", "json").stdout)
    assert data["staleness"]["last_run"]["branches"]["live"] == LIVE_T


def test_outlines_are_cached_by_content_and_a_changed_runbook_is_parsed_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.reporting.catalog as catalog

    monkeypatch.setenv("RUNBOOK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RUNBOOK_NO_CACHE", raising=False)
    text = RUNBOOK.read_text()
    for n in range(catalog._MIN_FILES):
        (tmp_path / f"rb{n}.yaml").write_text(text.replace("id: branches", f"id: branches-{n}"))
    first = catalog.load_catalog([tmp_path])
    assert (tmp_path / "home" / "cache" / catalog.CACHE_FILE).is_file()
    parsed: list[str] = []
    real = catalog.check_file
    monkeypatch.setattr(catalog, "check_file", lambda name, *a: parsed.append(name) or real(name, *a))
    second = catalog.load_catalog([tmp_path])
    assert parsed == []
    assert [(r.id, r.steps, r.branches, r.alerts) for r in second.runbooks] == \
        [(r.id, r.steps, r.branches, r.alerts) for r in first.runbooks]
    (tmp_path / "rb3.yaml").write_text(text.replace("id: branches", "id: changed"))
    third = catalog.load_catalog([tmp_path])
    assert parsed == [str(tmp_path / "rb3.yaml")]
    assert "changed" in {r.id for r in third.runbooks}


def test_an_output_named_items_or_case_does_not_hide_a_branch(tmp_path: Path) -> None:
    record = {"event": "step.finished", "step": "each_host", "phase": "remediation", "kind": "run", "status": "ok",
              "duration": 0.0, "attempts": 1, "exit_code": 0, "error": None, "reason": None, "stdout": "x",
              "outputs": {"items": [], "case": None}, "items": [{"index": 0, "status": "ok", "attempts": 2}],
              "case": None}
    started = {"event": "run.started", "runbook": "branches", "mode": "live", "t": "2026-01-01T00:00:00Z"}
    (tmp_path / "journal.jsonl").write_text(json.dumps(started) + "\n" + json.dumps(record) + "\n")
    run_ = read_exercise(tmp_path / "journal.jsonl")
    assert run_ is not None
    assert {("each_host", "items"), ("each_host", "retried")} <= run_.taken


def _declaring(tmp_path: Path, comment: str) -> tuple[Path, Path]:
    """A copy of the fixture whose by_cause step carries `comment` in the line above it,
    and the journals of its two scenarios (of this text: the digest must match)."""
    copy = tmp_path / "declared"
    shutil.copytree(FIXTURES, copy)
    book = copy / "branches.yaml"
    text = book.read_text()
    assert text.count("  - id: by_cause\n") == 1
    book.write_text(text.replace("  - id: by_cause\n", f"  {comment}\n  - id: by_cause\n"))
    for name in ("tls", "refused"):
        _journal(copy / "scenarios" / f"{name}.yaml", tmp_path / "runs" / name)
    return copy, tmp_path / "runs"


def test_a_branch_the_runbook_declares_unreachable_is_left_out_of_the_totals_and_said_why(tmp_path: Path) -> None:
    copy, runs = _declaring(tmp_path,
                            "# runbook: unreachable[case dns] the resolver check runs before and ends the run")
    cov = collect(load_sources([copy]).runbooks, [runs])
    rb = cov.runbooks[0]
    assert Branch("by_cause", "case dns") not in rb.branches
    assert rb.unreachable == {Branch("by_cause", "case dns"): "the resolver check runs before and ends the run"}
    assert rb.percent("test") == 100.0 and cov.percent("test") == 100.0
    line = ("branches: by_cause: case dns cannot be taken by any run "
            "(the runbook says: the resolver check runs before and ends the run)")
    assert line in render_text(cov) and "case dns" in render_markdown(cov)
    assert json.loads(render_json(cov))["runbooks"][0]["unreachable"] == [
        {"step": "by_cause", "branch": "case dns", "why": "the resolver check runs before and ends the run",
         "taken": False}]
    gate = run("coverage", copy, "--journals", runs, "--fail-under", "100")
    assert gate.exit_code == 0, gate.output
    from engine.reporting.html import render_coverage_html

    page = render_coverage_html(cov, [load_runbook(copy / "branches.yaml")])
    assert ('<tr class="unreachable"><td><code>by_cause</code></td><td>case dns: no run can take it '
            "(the resolver check runs before and ends the run)</td>") in page


def test_a_run_that_takes_a_branch_declared_unreachable_is_named(tmp_path: Path) -> None:
    copy, runs = _declaring(tmp_path, "# runbook: unreachable[default] every cause has its case")
    cov = collect(load_sources([copy]).runbooks, [runs])
    assert "branches: by_cause: default is declared unreachable, but a run (scenarios) took it" in render_text(cov)
    assert json.loads(render_json(cov))["runbooks"][0]["unreachable"][0]["taken"] is True


def test_declaring_a_branch_the_step_does_not_have_is_an_error_that_says_where(runs: Path, tmp_path: Path) -> None:
    copy = tmp_path / "declared"
    shutil.copytree(FIXTURES, copy)
    book = copy / "branches.yaml"
    declared = "  - id: by_cause  # runbook: unreachable[case ntp]\n"
    book.write_text(book.read_text().replace("  - id: by_cause\n", declared))
    result = run("coverage", copy, "--journals", runs)
    assert result.exit_code == 2
    assert_no_traceback(result)
    assert f"{copy / 'branches.yaml'}:22:19: step by_cause" in result.output  # the comment's column
    assert "step by_cause has no branch 'case ntp' to declare unreachable (its branches: case tls, case dns, default)" \
        in result.output


def test_the_shipped_scenarios_take_every_branch_the_shipped_runbooks_can_take(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    sources = load_sources([root / "runbooks", root / "scenarios"])
    for scenarios in sources.scenarios.values():
        for scenario in scenarios:
            _journal(Path(scenario.file), tmp_path / Path(scenario.file).stem)
    cov = collect(sources.runbooks, [tmp_path])
    missing = {rb.id: [f"{b.step}: {b.label}" for b in rb.branches if b not in set(rb.branches_taken("test"))]
               for rb in cov.runbooks}
    assert {rb: m for rb, m in missing.items() if m} == {}
    assert cov.percent("test") == 100.0 and cov.outdated == {} and cov.undigested == 0
    # The few no run can take are declared, each with its reason, and none was taken.
    assert {(rb.id, b.step, b.label) for rb in cov.runbooks for b in rb.unreachable} == {
        ("pod-memory-near-limit", "restart_leaking", "no items"), ("queue-backlog", "restart_stuck", "when false"),
        ("service-down", "restart", "when false")}
    assert not any(rb.taken_unreachable() for rb in cov.runbooks)


def test_what_each_journal_exercised_is_cached_until_the_journal_changes(
        runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.reporting.coverage as coverage_module
    from engine.reporting._exercise_cache import CACHE_FILE, MIN_JOURNALS

    monkeypatch.setenv("RUNBOOK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RUNBOOK_NO_CACHE", raising=False)
    for n in range(MIN_JOURNALS):
        shutil.copytree(runs / ("tls" if n % 2 else "refused"), tmp_path / "runs" / f"r{n:02d}")
    book = load_runbook(RUNBOOK)
    first = render_json(collect([book], [tmp_path / "runs"]))
    assert (tmp_path / "home" / "cache" / CACHE_FILE).is_file()
    read: list[str] = []
    real = coverage_module.read_exercise
    monkeypatch.setattr(coverage_module, "read_exercise", lambda path, *a: read.append(str(path)) or real(path, *a))
    again = collect([book], [tmp_path / "runs"])
    assert read == []  # every journal from the cache
    assert _without_seconds(render_json(again)) == _without_seconds(first)
    journal = tmp_path / "runs" / "r03" / "journal.jsonl"
    journal.write_text(journal.read_text().replace('"outcome": "resolved"', '"outcome": "failed"'))
    collect([book], [tmp_path / "runs"])
    assert read == [str(journal)]  # a journal written since is read again
    # The cache keeps what a journal ran; which version counts is decided afresh.
    copy = tmp_path / "edited"
    shutil.copytree(FIXTURES, copy)
    (copy / "branches.yaml").write_text((copy / "branches.yaml").read_text() + "# edited\n")
    edited = collect(load_sources([copy]).runbooks, [tmp_path / "runs"])
    assert edited.outdated == {"branches": MIN_JOURNALS} and edited.runbooks[0].tally("test").runs == 0



def test_a_journal_of_a_runbook_not_asked_about_is_read_once_until_it_is_asked_about(
        runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.reporting.coverage as coverage_module
    from engine.reporting._exercise_cache import MIN_JOURNALS

    monkeypatch.setenv("RUNBOOK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RUNBOOK_NO_CACHE", raising=False)
    for n in range(MIN_JOURNALS):
        shutil.copytree(runs / "tls", tmp_path / "runs" / f"r{n:02d}")
    other = tmp_path / "runs" / "r00" / "journal.jsonl"
    other.write_text(other.read_text().replace('"runbook": "branches"', '"runbook": "elsewhere"', 1))
    book = load_runbook(RUNBOOK)
    assert collect([book], [tmp_path / "runs"]).unmatched == {"elsewhere": 1}
    read: list[str] = []
    real = coverage_module.read_exercise
    monkeypatch.setattr(coverage_module, "read_exercise", lambda path, *a: read.append(str(path)) or real(path, *a))
    assert collect([book], [tmp_path / "runs"]).unmatched == {"elsewhere": 1}
    assert read == []  # known as a run of another runbook: not opened again
    copy = tmp_path / "elsewhere"
    shutil.copytree(FIXTURES, copy)
    (copy / "branches.yaml").write_text((copy / "branches.yaml").read_text().replace("id: branches", "id: elsewhere"))
    asked = collect(load_sources([copy]).runbooks, [tmp_path / "runs"])
    assert read == [str(other)]  # now asked about: read whole
    assert asked.outdated == {"elsewhere": 1}  # (it ran the text of branches.yaml, not this one)


def _without_seconds(text: str) -> dict[str, Any]:
    data = json.loads(text)
    data.pop("seconds")
    return dict(data)


def test_a_step_finished_head_as_the_engine_writes_it_is_read_without_json_and_reads_the_same(runs: Path) -> None:
    """The fast path follows the journal's encoding: if the writer's field order or
    separators change, this fails (instead of coverage silently decoding every line)."""
    from engine.reporting.exercise import _HEAD, _step_head

    lines = [line for name in ("tls", "refused") for line in (runs / name / "journal.jsonl").read_bytes().split(b"\n")
             if b'"event": "step.finished"' in line]
    assert lines and all(_HEAD.search(line) for line in lines)
    for line in lines:
        full = json.loads(line)
        if full["items"] or full.get("case") is not None:
            continue
        head = _step_head(line)
        assert head is not None
        assert {k: head[k] for k in ("step", "kind", "status", "attempts", "reason")} == \
            {k: full[k] for k in ("step", "kind", "status", "attempts", "reason")}
    escaped = lines[0].replace(b'"reason": null', b'"reason": "when was \\"false\\" \\u00e9"', 1)
    assert _step_head(escaped)["reason"] == 'when was "false" \u00e9'  # type: ignore[index]
