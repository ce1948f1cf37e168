"""ARCHITECTURE.md stays true as the code moves: every path and module it names exists,
and it names every package of the engine."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "ARCHITECTURE.md"
# A path from the top of the repository, as the page writes it: `engine/run/runner.py`,
# `engine/reporting/templates/`, `schemas/runbook.schema.json`.
PATH = re.compile(r"(?<![\w/.])((?:engine|schemas|tests|bench)/[\w./-]*[\w/])")
# A module named by its file alone, in the paragraph of its package: `journal_writer.py`.
MODULE = re.compile(r"`(\w+\.py)`")


def named_paths() -> list[str]:
    return sorted(set(PATH.findall(DOC.read_text(encoding="utf-8"))))


def test_every_path_the_architecture_page_names_exists() -> None:
    paths = named_paths()
    assert len(paths) > 20, "the page names the files to start from"
    assert [p for p in paths if not (ROOT / p).exists()] == []


def test_every_module_the_architecture_page_names_by_its_file_exists() -> None:
    engine = {p.name for p in (ROOT / "engine").rglob("*.py")}
    assert [m for m in MODULE.findall(DOC.read_text(encoding="utf-8")) if m not in engine] == []


def test_the_architecture_page_names_every_package() -> None:
    packages = sorted(p.parent.name for p in (ROOT / "engine").glob("*/__init__.py"))
    text = DOC.read_text(encoding="utf-8")
    assert [p for p in packages if f"`engine/{p}/`" not in text] == []
