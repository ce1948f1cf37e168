"""Built models kept on disk (engine/language/model_cache.py): a file that has not changed
since it was last checked clean is not loaded and checked again, the model it gives is the
one a fresh load builds, and any change, or any trouble with the cache, means a fresh load."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from support import loaded_modules_script, probe_one_step_run

import engine.language.validation as validation
from engine.language import connections, includes, model_cache
from engine.language.model import Runbook
from engine.language.source_map import SourceMap
from engine.language.validation import ValidationFailed, load_runbook, load_scenario

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = """kind: runbook
version: 1
id: kept
title: Kept
defaults: {timeout: 5s}
inputs:
  service: {type: string, default: web}
remediation:
  - {id: a, run: "echo {{ inputs.service }}", expect: exit_code == 0}
  - id: b
    include: part.yaml
"""
PART = """kind: runbook
version: 1
id: part
title: Part
library: true
remediation:
  - {id: p, run: "true"}
"""


@pytest.fixture
def kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Models kept in a home of the test's own; the cache off again afterwards."""
    monkeypatch.setenv("RUNBOOK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RUNBOOK_NO_CACHE", raising=False)
    monkeypatch.delenv("RUNBOOK_CONNECTIONS", raising=False)
    monkeypatch.chdir(tmp_path)
    model_cache.enable()
    yield tmp_path / "home" / "cache" / "models"
    model_cache.disable()


@pytest.fixture
def book(tmp_path: Path) -> Path:
    (tmp_path / "part.yaml").write_text(PART)
    path = tmp_path / "book.yaml"
    path.write_text(RUNBOOK)
    return path


def _checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Spy on the files really checked (not taken from the cache)."""
    seen: list[str] = []
    real = validation.check_file

    def spy(path: str, *args: Any) -> Any:
        seen.append(Path(path).name)
        return real(path, *args)

    monkeypatch.setattr(validation, "check_file", spy)
    return seen


def same(a: Any, b: Any, where: str = "model") -> None:
    """`a` and `b` are the same model, part by part (Runbook has no __eq__ of its own)."""
    assert type(a) is type(b), where
    if isinstance(a, Runbook):
        for name in Runbook.__slots__:
            if name != "derived":  # a cache of facts computed from the other fields
                same(getattr(a, name), getattr(b, name), f"{where}.{name}")
    elif isinstance(a, SourceMap):
        assert a.text == b.text, where
        assert a.position(("id",)) == b.position(("id",)), where
    elif isinstance(a, re.Pattern):
        assert (a.pattern, a.flags) == (b.pattern, b.flags), where
    elif dataclasses.is_dataclass(a):
        for field in dataclasses.fields(a):
            same(getattr(a, field.name), getattr(b, field.name), f"{where}.{field.name}")
    elif isinstance(a, Mapping):
        assert list(a) == list(b), where
        for key in a:
            same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def test_an_unchanged_runbook_is_not_loaded_or_checked_again(kept: Path, book: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_runbook(book)
    seen = _checks(monkeypatch)
    again = load_runbook(book)
    assert seen == []
    same(again, first)
    assert again is not first and len(list(kept.iterdir())) == 1


def test_without_enable_or_with_runbook_no_cache_every_load_checks(book: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOK_HOME", str(tmp_path / "home"))
    seen = _checks(monkeypatch)
    load_runbook(book)
    load_runbook(book)
    monkeypatch.setenv("RUNBOOK_NO_CACHE", "1")
    model_cache.enable()
    try:
        load_runbook(book)
        load_runbook(book)
    finally:
        model_cache.disable()
    assert seen == ["book.yaml"] * 4
    assert not (tmp_path / "home").exists()


def test_a_change_to_the_file_or_what_its_check_read_is_checked_again(
        kept: Path, book: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    load_runbook(book)
    seen = _checks(monkeypatch)
    book.write_text(RUNBOOK.replace("id: a,", "id: a2,"))
    assert load_runbook(book).steps()[0].id == "a2"
    (tmp_path / "part.yaml").write_text(PART + "  - {id: q, run: 'true'}\n")
    load_runbook(book)
    (tmp_path / "home" / "connections.yaml").write_text(
        "kind: connections\nversion: 1\nconnections:\n  prom: {type: prometheus, url: 'http://127.0.0.1:9'}\n")
    assert list(load_runbook(book).connections) == ["prom"]
    assert seen == ["book.yaml"] * 3


def _refusal(book: Path) -> str:
    with pytest.raises(ValidationFailed) as failed:
        load_runbook(book)
    return str(failed.value)


def test_a_runbook_broken_since_it_was_kept_is_refused_as_before(kept: Path, book: Path, tmp_path: Path) -> None:
    load_runbook(book)
    book.write_text(RUNBOOK.replace("run: \"echo", "runn: \"echo"))
    broken = _refusal(book)
    book.write_text(RUNBOOK)
    load_runbook(book)
    (tmp_path / "part.yaml").unlink()  # the include it names is gone: an error of the runbook
    gone = _refusal(book)
    model_cache.disable()
    assert gone == _refusal(book) and "part.yaml" in gone
    book.write_text(RUNBOOK.replace("run: \"echo", "runn: \"echo"))
    (tmp_path / "part.yaml").write_text(PART)
    assert broken == _refusal(book) and "RB014" in broken


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "shared", "directory"])
def test_a_damaged_or_foreign_entry_is_a_fresh_load(kept: Path, book: Path, damage: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_runbook(book)
    [entry] = kept.iterdir()
    data = entry.read_bytes()
    if damage == "truncated":
        entry.write_bytes(data[: len(data) * 2 // 3])
    elif damage == "garbage":
        entry.write_bytes(b"\x80\x05cos\nsystem\n" + data[20:])
    elif damage == "empty":
        entry.write_bytes(b"")
    elif damage == "shared":  # anyone may write it: what it holds is not trusted
        entry.chmod(0o666)
    else:
        entry.unlink()
        entry.mkdir()
    seen = _checks(monkeypatch)
    same(load_runbook(book), first)
    assert seen == ["book.yaml"]


def test_a_cache_that_cannot_be_written_only_costs_time(book: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "home").write_text("a file where the cache's directory would be")
    model_cache.enable(tmp_path / "home")
    try:
        seen = _checks(monkeypatch)
        same(load_runbook(book), load_runbook(book))
    finally:
        model_cache.disable()
    assert seen == ["book.yaml"] * 2


def _shipped() -> list[Path]:
    return sorted((ROOT / "runbooks").glob("*.yaml")) + sorted((ROOT / "scenarios").glob("*.yaml"))


def test_every_shipped_file_and_the_bench_corpus_is_rebuilt_the_same(kept: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    subprocess.run([sys.executable, str(ROOT / "bench" / "generate.py"), str(corpus), "--count", "60"],
                   check=True, capture_output=True)
    files = _shipped() + sorted(corpus.glob("*.yaml"))
    assert len(files) > 90
    for path in files:
        load = load_scenario if path.parent.name == "scenarios" else load_runbook
        model_cache.disable()
        fresh = load(path)
        model_cache.enable()
        load(path)  # kept
        same(load(path), fresh, os.fspath(path))
    assert len(list(kept.iterdir())) == len(files)


def _run(folder: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "engine", "run", "book.yaml", "--runs-dir", "runs", "--non-interactive"]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False,
                          env={**os.environ, "RUNBOOK_HOME": str(folder / "home"), "RUNBOOK_NO_CACHE": ""})


def _unstamped(output: str) -> str:
    return re.sub(r"\d{8}T\d{9}Z-kept-[0-9a-f]+", "RUN", re.sub(r"\d+(\.\d+)?(ms|s)\b", "T", output))


def test_the_run_command_keeps_the_model_and_refuses_a_runbook_broken_since(tmp_path: Path, book: Path) -> None:
    first = _run(tmp_path)
    assert first.returncode == 0, first.stderr
    entries = sorted((tmp_path / "home" / "cache" / "models").iterdir())  # the runbook, the one it includes
    kept = [entry.stat().st_mtime_ns for entry in entries]
    assert _unstamped(_run(tmp_path).stdout) == _unstamped(first.stdout)
    assert len(entries) == 2 and [entry.stat().st_mtime_ns for entry in entries] == kept
    book.write_text(RUNBOOK.replace("default: web", "default: api"))
    assert "api" in _run(tmp_path).stdout
    book.write_text(RUNBOOK.replace("run: \"echo", "runn: \"echo"))
    broken = _run(tmp_path)
    assert broken.returncode == 2 and "book.yaml is not valid" in broken.stderr and "RB014" in broken.stderr


_IMPORTED = loaded_modules_script(("yaml", "engine.language.loader", "engine.language.schema",
                                   "engine.language.builder", "engine.language.validation", "engine.language.lint"))


def test_a_run_of_a_kept_model_imports_no_yaml_reader_schema_builder_or_lint(tmp_path: Path) -> None:
    first = probe_one_step_run(_IMPORTED, tmp_path)
    assert "'yaml'" in first and "engine.language.validation" in first
    assert probe_one_step_run(_IMPORTED, tmp_path) == "[]"


def test_kept_gives_the_model_a_check_kept_and_only_of_the_kind_asked_for(kept: Path, book: Path) -> None:
    model = load_runbook(book)
    same(model_cache.kept(book, Runbook), model)
    assert model_cache.kept(book, dict) is None
    book.write_text(RUNBOOK + "\n")
    assert model_cache.kept(book, Runbook) is None
    model_cache.disable()
    assert model_cache.kept(book, Runbook) is None


def test_the_environment_a_kept_model_depends_on_is_the_one_the_check_reads() -> None:
    assert model_cache.ENVIRONMENT == (includes.ENV, connections.ENV)


def test_a_kept_model_positions_a_step_as_a_fresh_one_does(kept: Path, book: Path) -> None:
    fresh = load_runbook(book)
    again = load_runbook(book)
    assert again.source is not None and not again.source.composed
    for step in fresh.steps():
        assert again.where(step.path) == fresh.where(step.path)
        assert again.where((*step.path, "id"), key=True) == fresh.where((*step.path, "id"), key=True)


def test_the_code_stamps_change_with_any_source_or_schema_file(tmp_path: Path) -> None:
    def stamps() -> list[tuple[str, int, int]]:
        found: list[tuple[str, int, int]] = []
        model_cache._stamps(str(tmp_path), found, recurse=True)
        return sorted(found)

    (tmp_path / "rules.py").write_text("A = 1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "runbook.schema.json").write_text("{}")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "stale.py").write_text("")
    first = stamps()
    assert [Path(path).name for path, _, _ in first] == ["rules.py", "runbook.schema.json"]
    (tmp_path / "rules.py").write_text("A = 2\n")  # the same size: a new modification time
    os.utime(tmp_path / "rules.py", ns=(1, 1))
    second = stamps()
    (tmp_path / "sub" / "new.py").write_text("")
    assert first != second != stamps()
    files = [Path(part.rsplit(":", 2)[0]) for part in model_cache._code_stamps()[3:]]
    for wanted in ("language/model_cache.py", "templates/templating.py", "schemas/runbook.schema.json", "errors.py"):
        assert any(path.as_posix().endswith(wanted) for path in files), wanted
