"""Shared fixtures: a YAML writer, a file holding the minimal valid runbook (see support.py),
and the report tests' journals (made once per session by reportkit.py)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from reportkit import journals
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


# The report tests' journals. tests/integration/conftest.py has a `live` fixture of its own
# (live runs over SSH), which takes precedence there.


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return journals(tmp_path_factory, "live")


@pytest.fixture(scope="session")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return journals(tmp_path_factory, "crashed")


@pytest.fixture(scope="session")
def drills(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return journals(tmp_path_factory, "drills")


@pytest.fixture(scope="session")
def fanout(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return journals(tmp_path_factory, "fanout")


@pytest.fixture(autouse=True, scope="session")
def _private_lock_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Runs in these tests lock in a directory of their own, not the machine's /run/lock."""
    os.environ.setdefault("RUNBOOK_LOCK_DIR", str(tmp_path_factory.mktemp("locks")))
