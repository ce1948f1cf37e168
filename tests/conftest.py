"""Shared fixtures: paths to the fixture files, a minimal valid runbook, a YAML writer."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# The smallest runbook that validates with zero diagnostics (no warnings either).
MINIMAL_RUNBOOK = """\
kind: runbook
version: 1
id: minimal
title: Minimal runbook
defaults: {timeout: 30s}
detection:
  - id: check
    run: "true"
    expect: exit_code == 0
recovery:
  - id: verify
    run: echo ok
    until: stdout | trim == 'ok'
    every: 5s
    timeout: 1m
"""

WriteYaml = Callable[..., Path]


def shipped_documents() -> list[Path]:
    """Runbooks and scenarios shipped in the repository (may be empty while being written)."""
    found: list[Path] = []
    for folder in ("runbooks", "scenarios"):
        base = ROOT / folder
        if base.is_dir():
            found.extend(sorted(p for p in base.rglob("*") if p.suffix in (".yaml", ".yml")))
    return found


def fixture_documents() -> list[Path]:
    """The fixture runbooks and scenarios that are meant to be schema-valid."""
    return sorted(FIXTURES.glob("valid-*.yaml"))


@pytest.fixture
def write_yaml(tmp_path: Path) -> WriteYaml:
    """Write YAML text (dedented) to tmp_path/NAME and return the path."""

    def write(text: str, name: str = "doc.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def minimal_runbook(write_yaml: WriteYaml) -> Path:
    """A file holding MINIMAL_RUNBOOK."""
    return write_yaml(MINIMAL_RUNBOOK, "minimal.yaml")
