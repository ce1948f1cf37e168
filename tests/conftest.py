"""Shared fixtures: a YAML writer and a file holding the minimal valid runbook (see support.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from support import MINIMAL_RUNBOOK, WriteYaml


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
