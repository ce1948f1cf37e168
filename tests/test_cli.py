"""engine.cli.commands: `runbook validate`, `schema`, `new`, `rules`, `--version`, exit codes 0/1/2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema
import pytest
from click.testing import CliRunner, Result
from support import FIXTURES, MINIMAL_RUNBOOK, ROOT, WriteYaml

from engine import __version__
from engine.cli.commands import cli

RUNBOOK_BIN = Path(sys.executable).parent / "runbook"
# MINIMAL_RUNBOOK without its default timeout: the `check` step gets a no-timeout warning.
WARNINGS_ONLY = MINIMAL_RUNBOOK.replace("defaults: {timeout: 30s}\n", "")


def run(*args: str | os.PathLike[str], color: bool = False) -> Result:
    """Invoke the CLI; with color=True the runner keeps ANSI codes instead of stripping them."""
    return CliRunner().invoke(cli, [os.fspath(a) for a in args], catch_exceptions=False, color=color)


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert "internal error" not in result.output


# -- exit codes ------------------------------------------------------------------------------


def test_clean_file_exits_0(minimal_runbook: Path) -> None:
    result = run("validate", minimal_runbook)
    assert result.exit_code == 0
    assert result.stdout == "1 file checked: no problems\n"


def test_errors_exit_1_and_are_printed(write_yaml: WriteYaml) -> None:
    path = write_yaml(MINIMAL_RUNBOOK.replace("id: minimal", "id: Minimal"))
    result = run("validate", path)
    assert result.exit_code == 1
    assert f"{path}:3:5: error: 'Minimal' is not valid" in result.stdout
    assert result.stdout.endswith("1 file checked: 1 error(s), 0 warning(s)\n")


def test_warnings_exit_0_but_1_with_strict(write_yaml: WriteYaml) -> None:
    path = write_yaml(WARNINGS_ONLY)
    relaxed, strict = run("validate", path), run("validate", "--strict", path)
    assert "warning:" in relaxed.stdout and "[RB109]" in relaxed.stdout
    assert (relaxed.exit_code, strict.exit_code) == (0, 1)


CHANNELS = "kind: channels\nchannels:\n  oncall: {type: webhook, url: 'https://hooks.example.com/x'}\n"
PAGES_ONCAL = MINIMAL_RUNBOOK + "escalation:\n  - {on_failure: true, notify: oncal}\n"


def test_validate_checks_channel_names_against_the_channels_file_it_is_given(tmp_path: Path) -> None:
    book, config = tmp_path / "rb.yaml", tmp_path / "ch.yaml"
    book.write_text(PAGES_ONCAL, encoding="utf-8")
    config.write_text(CHANNELS, encoding="utf-8")
    assert run("validate", book).exit_code == 0  # no channels config: nothing to check against
    result = run("validate", "--channels", config, book)
    assert result.exit_code == 1
    assert f"{book}:17:32: error: channel 'oncal' is not in {config} (did you mean 'oncall'?) [RB121]" in result.stdout


def test_validate_finds_the_channels_file_in_the_runbook_home(tmp_path: Path) -> None:
    (tmp_path / "rb.yaml").write_text(PAGES_ONCAL, encoding="utf-8")
    (tmp_path / ".runbook").mkdir()
    (tmp_path / ".runbook" / "channels.yaml").write_text(CHANNELS, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}
    done = subprocess.run([RUNBOOK_BIN, "validate", "rb.yaml"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert "channel 'oncal' is not in .runbook/channels.yaml (did you mean 'oncall'?) [RB121]" in done.stdout


def test_missing_path_exits_2_with_a_message(tmp_path: Path) -> None:
    result = run("validate", tmp_path / "missing.yaml")
    assert result.exit_code == 2
    assert f"runbook: error: no such file or directory: {tmp_path / 'missing.yaml'}" in result.stderr
    assert result.stdout == ""


def test_broken_symlink_named_on_the_command_line_exits_2(tmp_path: Path) -> None:
    link = tmp_path / "dangling.yaml"
    link.symlink_to(tmp_path / "nowhere.yaml")
    result = run("validate", link)
    assert result.exit_code == 2
    assert "no such file or directory" in result.stderr


def test_unreadable_file_found_in_a_directory_exits_2_and_others_are_still_checked(
    tmp_path: Path, write_yaml: WriteYaml
) -> None:
    write_yaml(MINIMAL_RUNBOOK.replace("id: minimal", "id: Bad"), "rb/bad.yaml")
    (tmp_path / "rb" / "dangling.yaml").symlink_to(tmp_path / "nowhere.yaml")
    result = run("validate", tmp_path / "rb")
    assert result.exit_code == 2
    assert "dangling.yaml:1:1: error: cannot read file: No such file or directory [RB000]" in result.stdout
    assert "bad.yaml:3:5: error:" in result.stdout


def test_file_without_read_permission(write_yaml: WriteYaml) -> None:
    """Exit 2 (RB000) for an unreadable file; root reads any file, so there it is checked."""
    path = write_yaml(MINIMAL_RUNBOOK)
    path.chmod(0)
    try:
        result = run("validate", path)
    finally:
        path.chmod(0o644)
    if os.geteuid() == 0:
        assert (result.exit_code, result.stdout) == (0, "1 file checked: no problems\n")
    else:
        assert result.exit_code == 2
        assert "[RB000]" in result.stdout


def test_no_path_validates_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("a.yaml").write_text(MINIMAL_RUNBOOK, encoding="utf-8")
    Path("b.yml").write_text(MINIMAL_RUNBOOK.replace("id: minimal", "id: B"), encoding="utf-8")
    result = run("validate")
    assert result.exit_code == 1
    assert result.stdout.endswith("2 files checked: 1 error(s), 0 warning(s)\n")


def test_directory_recursion_skips_git_and_venv(tmp_path: Path, write_yaml: WriteYaml) -> None:
    broken = "kind: runbook\nid: [broken\n"
    write_yaml(MINIMAL_RUNBOOK, "repo/runbooks/ok.yaml")
    write_yaml(MINIMAL_RUNBOOK, "repo/deep/er/ok.yml")
    write_yaml(broken, "repo/.git/hooks/x.yaml")
    write_yaml(broken, "repo/.venv/lib/y.yaml")
    write_yaml(broken, "repo/notes.txt")
    result = run("validate", tmp_path / "repo")
    assert result.exit_code == 0
    assert result.stdout == "2 files checked: no problems\n"


def test_parallel_jobs_give_the_same_output(tmp_path: Path, write_yaml: WriteYaml) -> None:
    for i in range(5):
        write_yaml(MINIMAL_RUNBOOK.replace("id: minimal", f"id: M{i}"), f"many/r{i}.yaml")
    serial, parallel = run("validate", "--jobs", "1", tmp_path), run("validate", "--jobs", "2", tmp_path)
    assert (serial.exit_code, parallel.exit_code) == (1, 1)
    assert serial.stdout == parallel.stdout
    assert serial.stdout.count("error:") == 5


# -- formats ---------------------------------------------------------------------------------

TEN = FIXTURES / "ten-mistakes.yaml"


@pytest.mark.parametrize("fmt", ["text", "json", "github", "sarif", "junit"])
def test_every_format_reports_the_same_problems(fmt: str) -> None:
    result = run("validate", "--format", fmt, TEN)
    assert result.exit_code == 1
    expected = len(json.loads(run("validate", "-f", "json", TEN).stdout)["diagnostics"])
    out = result.stdout
    if fmt == "text":
        assert out.count(f"{TEN}:") == expected
    elif fmt == "json":
        assert json.loads(out)["errors"] == expected
    elif fmt == "github":
        assert len([line for line in out.splitlines() if line.startswith("::error file=")]) == expected
    elif fmt == "sarif":
        schema = json.loads((FIXTURES / "sarif-2.1.0.json").read_text(encoding="utf-8"))
        document = json.loads(out)
        jsonschema.validators.validator_for(schema)(schema).validate(document)
        assert len(document["runs"][0]["results"]) == expected
    else:
        failure = ET.fromstring(out.split("\n", 1)[1]).find("testsuite/testcase/failure")
        assert failure is not None
        assert (failure.text or "").count("error:") == expected


def test_output_file_gets_the_report_and_stderr_the_summary(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    result = run("validate", "-f", "json", "-o", target, TEN)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("1 file checked: ")
    assert json.loads(target.read_text(encoding="utf-8")) == json.loads(run("validate", "-f", "json", TEN).stdout)


def test_output_file_text_is_never_coloured(tmp_path: Path) -> None:
    target = tmp_path / "report.txt"
    run("validate", "--color", "-o", target, TEN, color=True)
    assert "\033[" not in target.read_text(encoding="utf-8")


def test_output_file_in_a_missing_directory_is_a_usage_error(tmp_path: Path, minimal_runbook: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", "-o", str(tmp_path / "no" / "dir.txt"), str(minimal_runbook)])
    assert result.exit_code == 2


def test_colour_only_when_asked(tmp_path: Path) -> None:
    assert "\033[1;31merror" in run("validate", "--color", TEN, color=True).stdout
    assert "\033[" not in run("validate", TEN, color=True).stdout  # not a terminal
    assert "\033[" not in run("validate", "--no-color", TEN, color=True).stdout


def test_unknown_format_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["validate", "-f", "xml", str(TEN)])
    assert result.exit_code == 2
    assert "Invalid value for '-f' / '--format'" in result.stderr


# -- every problem at once, suppression ------------------------------------------------------


def test_ten_mistakes_give_at_least_ten_positioned_diagnostics_in_one_run() -> None:
    result = run("validate", "-f", "json", TEN)
    diagnostics = json.loads(result.stdout)["diagnostics"]
    positions = {(d["line"], d["column"]) for d in diagnostics}
    assert len(positions) >= 10
    assert all(d["line"] > 4 or d["rule"] == "RB013" for d in diagnostics)  # none at a fallback 1:1
    rules = {d["rule"] for d in diagnostics}
    assert {"RB010", "RB012", "RB014", "RB015"} <= rules  # schema mistakes
    assert {"RB101", "RB102", "RB104", "RB108"} <= rules  # lint mistakes


def test_suppression_comment_silences_exactly_that_rule_on_that_line(write_yaml: WriteYaml) -> None:
    text = WARNINGS_ONLY.replace('    run: "true"\n', '    run: "true"  # runbook: ignore[RB109]\n')
    assert text != WARNINGS_ONLY
    loud, quiet = write_yaml(WARNINGS_ONLY, "loud.yaml"), write_yaml(text, "quiet.yaml")
    assert "[RB109]" in run("validate", loud).stdout
    assert run("validate", "--strict", quiet).stdout == "1 file checked: no problems\n"
    other = write_yaml(text.replace("ignore[RB109]", "ignore[RB104]"), "other.yaml")
    assert "[RB109]" in run("validate", other).stdout


# -- schema, new, rules, version -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["runbook", "scenario"])
def test_schema_prints_the_json_schema(kind: str) -> None:
    result = run("schema", kind)
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(document)
    assert document == json.loads((ROOT / "schemas" / f"{kind}.schema.json").read_text(encoding="utf-8"))


def test_schema_of_an_unknown_kind_is_a_usage_error() -> None:
    assert CliRunner().invoke(cli, ["schema", "playbook"]).exit_code == 2


def test_new_creates_a_runbook_that_validates_with_zero_diagnostics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("runbooks").mkdir()
    created = run("new", "disk-full")
    assert created.exit_code == 0
    assert created.stdout.startswith(f"created {Path('runbooks', 'disk-full.yaml')}\n")
    checked = run("validate", "--strict", "-f", "json", "runbooks/disk-full.yaml")
    assert Path("runbooks/disk-full.yaml").read_text(encoding="utf-8").count("id: disk-full") == 1
    assert checked.exit_code == 0
    assert json.loads(checked.stdout)["diagnostics"] == []


def test_new_writes_to_the_current_directory_without_runbooks_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("new", "db-down").exit_code == 0
    assert run("validate", "--strict", "db-down.yaml").exit_code == 0


def test_new_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    target = tmp_path / "mine.yaml"
    target.write_text("keep me\n", encoding="utf-8")
    refused = CliRunner().invoke(cli, ["new", "mine", "-o", str(target)])
    assert refused.exit_code == 2
    assert "already exists (use --force to overwrite)" in refused.stderr
    assert target.read_text(encoding="utf-8") == "keep me\n"
    assert run("new", "mine", "-o", target, "--force").exit_code == 0
    assert "id: mine" in target.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["Disk-Full", "disk_full", "1disk", "-x", "a b", "../escape", "", "abc\n",
                                  "a" * 65])
def test_new_rejects_bad_names(name: str, tmp_path: Path) -> None:
    """Names the schema's id would refuse (pattern, at most 64 characters) are refused up front."""
    result = CliRunner().invoke(cli, ["new", name, "-o", str(tmp_path / "x.yaml")])
    assert result.exit_code == 2
    assert not (tmp_path / "x.yaml").exists()


def test_new_accepts_the_longest_valid_name(tmp_path: Path) -> None:
    target = tmp_path / "long.yaml"
    assert run("new", "a" * 64, "-o", target).exit_code == 0
    assert run("validate", "--strict", target).exit_code == 0


def test_rules_lists_every_rule_with_its_rationale() -> None:
    result = run("rules")
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "duplicate-step-id" in lines["RB101"]
    assert {"RB000", "RB004", "RB010", "RB015", "RB101"} <= set(lines)
    catalog = json.loads(run("rules", "-f", "json").stdout)
    assert catalog["RB109"]["severity"] == "warning"
    assert set(catalog) == set(lines)


def test_version() -> None:
    result = run("--version")
    assert (result.exit_code, result.stdout) == (0, f"runbook, version {__version__}\n")


# -- real processes --------------------------------------------------------------------------


def test_python_dash_m_engine_is_the_runbook_command() -> None:
    done = subprocess.run([sys.executable, "-m", "engine", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0
    assert "validate" in done.stdout and "Usage:" in done.stdout


def test_installed_console_script_exit_codes(minimal_runbook: Path) -> None:
    ok = subprocess.run([RUNBOOK_BIN, "validate", minimal_runbook], capture_output=True, text=True, timeout=60)
    bad = subprocess.run([RUNBOOK_BIN, "validate", "-f", "github", TEN], capture_output=True, text=True,
                         timeout=60)
    missing = subprocess.run([RUNBOOK_BIN, "validate", "/nonexistent.yaml"], capture_output=True, text=True,
                             timeout=60)
    assert (ok.returncode, bad.returncode, missing.returncode) == (0, 1, 2)
    assert bad.stdout.startswith("::error file=")
    assert "Traceback" not in ok.stderr + bad.stderr + missing.stderr
