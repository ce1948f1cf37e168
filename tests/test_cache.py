"""The validation cache reuses a file's result only while nothing that decided it changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.language import cache
from engine.language.validation import Options, validate_paths

RUNBOOK = """kind: runbook
version: 1
id: r{n}
title: Runbook {n}
defaults: {{timeout: 5s}}
detection:
  - {{id: a, run: "true", expect: exit_code == 0}}
recovery:
  - {{id: b, run: "true", until: exit_code == 0, every: 1s, timeout: 5s}}
"""


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RUNBOOK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RUNBOOK_NO_CACHE", raising=False)
    root = tmp_path / "books"
    root.mkdir()
    for n in range(20):
        (root / f"r{n}.yaml").write_text(RUNBOOK.format(n=n))
    return root


def _checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Spy on which files are really checked (not taken from the cache)."""
    import engine.language.validation as validation

    seen: list[str] = []
    real = validation.check_file

    def spy(path: str, options: Options | None = None) -> object:
        seen.append(Path(path).name)
        return real(path, options or Options())

    monkeypatch.setattr(validation, "check_file", spy)
    return seen


def test_unchanged_files_are_not_checked_again(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = validate_paths([tree], Options(jobs=1))
    seen = _checked(monkeypatch)
    second = validate_paths([tree], Options(jobs=1))
    assert seen == []
    assert second.diagnostics == first.diagnostics


def test_a_changed_file_is_checked_again_and_its_new_problems_reported(
        tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    validate_paths([tree], Options(jobs=1))
    (tree / "r3.yaml").write_text(RUNBOOK.format(n=3).replace("defaults: {timeout", "defaults: {timout"))
    seen = _checked(monkeypatch)
    report = validate_paths([tree], Options(jobs=1))
    assert seen == ["r3.yaml"]
    assert [d.rule for d in report.diagnostics if d.is_error] == ["RB010"]
    assert "r3.yaml" in next(iter(report.sources))


def test_cached_problems_come_back_with_their_source_lines(tree: Path) -> None:
    (tree / "r5.yaml").write_text(RUNBOOK.format(n=5) + "bogus: 1\n")
    first = validate_paths([tree], Options(jobs=1))
    second = validate_paths([tree], Options(jobs=1))
    assert second.diagnostics == first.diagnostics and second.diagnostics
    assert second.sources == first.sources


def test_a_change_in_a_file_the_check_read_invalidates_the_result(tree: Path) -> None:
    (tree / "sub.yaml").write_text(RUNBOOK.format(n=99))
    (tree / "r0.yaml").write_text(RUNBOOK.format(n=0) + "remediation:\n  - {id: inc, include: sub.yaml}\n")
    assert validate_paths([tree], Options(jobs=1)).errors == 0
    (tree / "sub.yaml").unlink()
    report = validate_paths([tree], Options(jobs=1))
    assert [d.rule for d in report.diagnostics if d.is_error] == ["RB119"]


def test_no_cache_and_the_environment_switch_turn_it_off(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    validate_paths([tree], Options(jobs=1))
    seen = _checked(monkeypatch)
    validate_paths([tree], Options(jobs=1, cache=False))
    assert len(seen) == 20
    monkeypatch.setenv("RUNBOOK_NO_CACHE", "1")
    validate_paths([tree], Options(jobs=1))
    assert len(seen) == 40


def test_different_options_or_engine_code_use_a_different_salt() -> None:
    assert cache.salt(["groups ['web']"]) != cache.salt(["groups ['db']"])
    assert cache.salt(["x"]) == cache.salt(["x"])


def test_a_corrupt_cache_file_is_ignored(tree: Path) -> None:
    validate_paths([tree], Options(jobs=1))
    store = cache.default_directory() / "validate.json"
    store.write_text("{not json")
    assert validate_paths([tree], Options(jobs=1)).errors == 0
