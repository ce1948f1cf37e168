"""The CLI stays lean: `runbook validate` and `runbook run --dry-run` never import the
service or the packages of the `server` extra (a web server, database drivers, metrics)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import MINIMAL_RUNBOOK

SERVER_PACKAGES = ("sqlalchemy", "psycopg", "starlette", "uvicorn", "prometheus_client", "anyio", "h11",
                   "engine.service")


def _imported(*args: str, cwd: Path) -> set[str]:
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "engine", *args], cwd=cwd,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert len(lines) > 20, "python -X importtime lists what was imported"
    return set(lines)


def _server_modules(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in SERVER_PACKAGES or m.startswith(SERVER_PACKAGES))


def test_validate_imports_nothing_of_the_server_extra(tmp_path: Path) -> None:
    (tmp_path / "rb.yaml").write_text(MINIMAL_RUNBOOK, encoding="utf-8")
    assert _server_modules(_imported("validate", "rb.yaml", cwd=tmp_path)) == []


def test_a_dry_run_imports_nothing_of_the_server_extra(tmp_path: Path) -> None:
    (tmp_path / "rb.yaml").write_text(MINIMAL_RUNBOOK, encoding="utf-8")
    modules = _imported("run", "--dry-run", "rb.yaml", cwd=tmp_path)
    assert "engine.run.plan" in modules  # the dry-run did run
    assert _server_modules(modules) == []
