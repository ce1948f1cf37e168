"""engine.language.validation: discovery, every problem at once (schema and lint), suppression, processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support import FIXTURES, MINIMAL_RUNBOOK, WriteYaml

from engine.errors import UsageError
from engine.language.diagnostics import Diagnostic
from engine.language.validation import Options, ValidationFailed, check_file, discover, load_runbook, validate_paths

HEADER = "kind: runbook\nversion: 1\nid: demo\ntitle: Demo\ndefaults: {timeout: 1m}\n"

RUNBOOK_BIN = str(Path(sys.executable).with_name("runbook"))


def rules_at(diags: list[Diagnostic]) -> list[tuple[int, int, str]]:
    return sorted((d.line, d.column, d.rule) for d in diags)


def errors_at(path: Path) -> list[tuple[int, int, str]]:
    return rules_at([d for d in check_file(str(path)).diagnostics if d.is_error])


def runbook(steps: str) -> str:
    """HEADER followed by the (dedented) phases."""
    return HEADER + textwrap.dedent(steps)


def test_valid_runbook_has_no_diagnostics_and_a_model(minimal_runbook: Path) -> None:
    checked = check_file(str(minimal_runbook))
    assert checked.diagnostics == []
    assert checked.model is not None and checked.model.id == "minimal"


# -- best-effort lint of schema-invalid files ------------------------------------------------


def test_lint_still_runs_when_a_required_top_level_value_is_invalid(write_yaml: WriteYaml) -> None:
    """A bad `id:` is reported, and so is the undefined target further down."""
    path = write_yaml("""\
        kind: runbook
        version: 1
        id: Bad_Id
        title: t
        defaults: {timeout: 1m}
        detection:
          - {id: a, run: df, target: nowhere}
        """)
    assert errors_at(path) == [(3, 5, "RB013"), (7, 30, "RB104")]


def test_lint_still_runs_when_a_required_top_level_key_is_missing(write_yaml: WriteYaml) -> None:
    path = write_yaml("""\
        kind: runbook
        version: 1
        id: demo
        defaults: {timeout: 1m}
        detection:
          - {id: a, run: df, target: nowhere}
        """)
    assert [rule for _, _, rule in errors_at(path)] == ["RB011", "RB104"]


def test_scenario_without_a_runbook_is_reported_without_lint(write_yaml: WriteYaml) -> None:
    path = write_yaml("kind: scenario\nversion: 1\nid: s\ntitle: t\nhints: {a: 1}\n")
    assert sorted(d.rule for d in check_file(str(path)).diagnostics) == ["RB011", "RB012"]


def test_many_invalid_list_items_do_not_stop_lint(write_yaml: WriteYaml) -> None:
    """Cutting list items one round at a time must not run out of rounds."""
    alerts = ", ".join(str(i) for i in range(40))
    path = write_yaml(HEADER + f"alerts: [{alerts}]\ndetection:\n  - {{id: a, run: df, target: nowhere}}\n")
    rules = [d.rule for d in check_file(str(path)).diagnostics]
    assert rules.count("RB012") == 40
    assert "RB104" in rules


def test_invalid_steps_in_two_phases_are_not_duplicate_ids(write_yaml: WriteYaml) -> None:
    path = write_yaml(runbook("""\
        detection:
          - {id: A, run: df}
        triage:
          - {id: B, run: df}
        """))
    assert [rule for _, _, rule in errors_at(path)] == ["RB013", "RB013"]


def test_step_with_two_kinds_keeps_its_id_for_later_references(write_yaml: WriteYaml) -> None:
    path = write_yaml(runbook("""\
        detection:
          - {id: a, run: df, manual: look}
          - {id: b, run: "echo {{ steps.a.stdout }}"}
        """))
    assert [rule for _, _, rule in errors_at(path)] == ["RB014"]


def test_invalid_rollback_step_keeps_later_rollback_positions(write_yaml: WriteYaml) -> None:
    path = write_yaml(runbook("""\
        remediation:
          - id: c
            run: echo
            rollback:
              - {id: r1, run: echo, manual: two}
              - {id: r2, run: echo, target: nowhere}
        """))
    assert errors_at(path) == [(10, 9, "RB014"), (11, 37, "RB104")]


def test_ten_mistakes_are_all_reported_in_one_run() -> None:
    diags = check_file(str(FIXTURES / "ten-mistakes.yaml")).diagnostics
    assert len({(d.line, d.rule) for d in diags}) >= 10
    assert {"RB004", "RB010", "RB012", "RB013", "RB014", "RB015"} <= {d.rule for d in diags}
    assert {"RB101", "RB102", "RB104", "RB107", "RB108", "RB110", "RB115"} <= {d.rule for d in diags}


# -- suppression comments --------------------------------------------------------------------

UNTIMED = """\
kind: runbook
version: 1
id: demo
title: Demo
detection:
  - id: a
    run: df{comment_a}
    target: nowhere{comment_t}
  - id: b
    run: df
recovery:
  - {{id: c, run: "true", expect: exit_code == 0, timeout: 1m}}
"""


def test_suppression_silences_exactly_the_named_rule_on_its_line(write_yaml: WriteYaml) -> None:
    plain = write_yaml(UNTIMED.format(comment_a="", comment_t=""), "plain.yaml")
    quiet = write_yaml(UNTIMED.format(comment_a="  # runbook: ignore[RB109]",
                                      comment_t="  # runbook: ignore[RB109]"), "quiet.yaml")
    before = rules_at(check_file(str(plain)).diagnostics)
    after = rules_at(check_file(str(quiet)).diagnostics)
    assert (7, 5, "RB109") in before and (7, 5, "RB109") not in after
    assert (10, 5, "RB109") in after  # the same rule on another line stays
    assert (8, 13, "RB104") in after  # another rule on a commented line stays
    assert len(after) == len(before) - 1


def test_suppression_of_several_rules_and_of_all_rules(write_yaml: WriteYaml) -> None:
    listed = write_yaml(UNTIMED.format(comment_a="", comment_t="  # runbook: ignore[RB109, RB104]"),
                        "listed.yaml")
    bare = write_yaml(UNTIMED.format(comment_a="  # runbook: ignore", comment_t=""), "bare.yaml")
    assert (8, 13, "RB104") not in rules_at(check_file(str(listed)).diagnostics)
    assert [r for r in rules_at(check_file(str(bare)).diagnostics) if r[0] == 7] == []


@pytest.mark.parametrize("comment", ["# runbook: ignored", "# runbook: ignore-all",
                                     "# runbook: ignore[RB109", "# runbook: ignore[]"])
def test_a_malformed_suppression_silences_nothing(write_yaml: WriteYaml, comment: str) -> None:
    path = write_yaml(UNTIMED.format(comment_a=f"  {comment}", comment_t=""))
    assert (7, 5, "RB109") in rules_at(check_file(str(path)).diagnostics)


def test_suppressed_rule_ids_are_case_insensitive(write_yaml: WriteYaml) -> None:
    path = write_yaml(UNTIMED.format(comment_a="  # runbook: ignore[rb109]", comment_t=""))
    assert (7, 5, "RB109") not in rules_at(check_file(str(path)).diagnostics)


# -- discovery and many files ----------------------------------------------------------------


def test_discover_recurses_sorted_and_skips_tool_directories(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yml", "sub/c.yaml", ".git/x.yaml", ".venv/y.yaml",
                 "node_modules/z.yaml", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("kind: runbook\n", encoding="utf-8")
    found = [os.path.relpath(p, tmp_path) for p in discover([tmp_path])]
    assert found == ["a.yml", "b.yaml", os.path.join("sub", "c.yaml")]


def test_discover_keeps_explicit_files_once(minimal_runbook: Path) -> None:
    assert discover([minimal_runbook, minimal_runbook]) == [str(minimal_runbook)]


def test_discover_rejects_a_missing_path(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file or directory"):
        discover([tmp_path / "missing.yaml"])


def test_parallel_validation_gives_the_same_report(tmp_path: Path) -> None:
    for i in range(6):
        text = MINIMAL_RUNBOOK if i % 2 else MINIMAL_RUNBOOK.replace("id: minimal", "id: Bad")
        (tmp_path / f"f{i}.yaml").write_text(text, encoding="utf-8")
    serial = validate_paths([tmp_path], Options(jobs=1))
    parallel = validate_paths([tmp_path], Options(jobs=3))
    assert parallel.files == serial.files
    assert parallel.sorted() == serial.sorted()
    assert serial.errors == 3


def test_load_runbook_raises_with_every_error(write_yaml: WriteYaml) -> None:
    path = write_yaml(HEADER + "detection:\n  - {id: a, run: df, target: x}\n  - {id: a, wait: 5}\n")
    with pytest.raises(ValidationFailed) as caught:
        load_runbook(path)
    assert [d.rule for d in caught.value.diagnostics if d.is_error] == ["RB104", "RB101", "RB012"]
    assert caught.value.diagnostics == sorted(caught.value.diagnostics, key=Diagnostic.sort_key)
    assert f"{path}:7:30: target 'x' is not defined" in str(caught.value)


def test_load_runbook_runs_no_warning_rule_and_composes_no_node_tree(
        write_yaml: WriteYaml, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run drops warnings: finding and positioning them (which composes the file's whole
    node tree) cost a 500-step runbook a fifth of its loading."""
    from engine.language import loader

    composed: list[str] = []
    real = loader._compose
    monkeypatch.setattr(loader, "_compose", lambda text, file: composed.append(file) or real(text, file))
    path = write_yaml(HEADER + "remediation:\n  - {id: a, run: df}\n")
    assert load_runbook(path).id == "demo"
    assert composed == []
    assert check_file(str(path), Options(warnings=False)).diagnostics == []
    assert {"RB111", "RB112"} <= {d.rule for d in check_file(str(path)).diagnostics}  # validate still warns


def test_load_runbook_failure_lists_warnings_too(write_yaml: WriteYaml) -> None:
    path = write_yaml(HEADER + "remediation:\n  - {id: a, run: df, target: x}\n")
    with pytest.raises(ValidationFailed) as caught:
        load_runbook(path)
    assert caught.value.diagnostics == sorted(check_file(str(path)).diagnostics, key=Diagnostic.sort_key)
    assert {"RB104", "RB111", "RB112"} <= {d.rule for d in caught.value.diagnostics}


def test_deeply_nested_template_is_a_diagnostic_not_a_crash(write_yaml: WriteYaml) -> None:
    nested = "(" * 100 + "inputs.x" + ")" * 100
    path = write_yaml(runbook(f'detection:\n  - {{id: a, run: "echo {{{{ {nested} }}}}"}}\n'))
    rules = [d.rule for d in check_file(str(path)).diagnostics]
    assert "RB105" in rules or "RB106" in rules


def test_validate_skips_a_fifo_in_a_directory_with_a_warning(tmp_path: Path) -> None:
    """E13: `validate DIR` hung forever on a FIFO named x.yaml."""
    (tmp_path / "ok.yaml").write_text(MINIMAL_RUNBOOK, encoding="utf-8")
    os.mkfifo(tmp_path / "x.yaml")
    done = subprocess.run([RUNBOOK_BIN, "validate", "--no-cache", str(tmp_path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{tmp_path / 'x.yaml'}:1:1: warning: not a regular file (a FIFO): skipped" in done.stdout
    assert "1 file checked: 0 error(s), 1 warning(s)" in done.stdout


def test_a_fifo_named_explicitly_is_skipped_with_a_warning_not_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "x.yaml"
    os.mkfifo(fifo)
    report = validate_paths([fifo])
    assert report.files == []
    assert [(d.rule, d.severity.value) for d in report.diagnostics] == [("RB005", "warning")]
    done = subprocess.run([RUNBOOK_BIN, "run", str(fifo)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "not a regular file (a FIFO)" in done.stderr


def test_a_symlink_loop_in_a_directory_is_an_unreadable_file_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(MINIMAL_RUNBOOK, encoding="utf-8")
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    report = validate_paths([tmp_path], Options(cache=False))
    assert sorted((Path(d.file).name, d.rule) for d in report.diagnostics if d.is_error) == [
        ("a.yaml", "RB000"), ("b.yaml", "RB000")]
    assert all("symbolic links" in d.message for d in report.diagnostics if d.rule == "RB000")
