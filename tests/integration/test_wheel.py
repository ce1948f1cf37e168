"""The built wheel works on its own: installed in a fresh venv, `runbook` validates and
prints schemas without the source checkout (the schemas ship inside it as engine/schemas/)."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Installed:
    wheel: Path
    python: Path
    runbook: Path
    workdir: Path  # outside the repository, so nothing is found there by accident

    def run(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.runbook, *map(str, args)], capture_output=True, text=True,
                              cwd=self.workdir, timeout=120)


def _check(cmd: list[str | Path]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("wheel")
    dist, env, work = base / "dist", base / "venv", base / "work"
    work.mkdir()
    _check([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", dist, ROOT])
    [wheel] = dist.glob("runbook_engine-*.whl")
    venv.EnvBuilder(with_pip=True).create(env)
    python = env / "bin" / "python"
    _check([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel])
    return Installed(wheel, python, env / "bin" / "runbook", work)


def test_wheel_contains_the_schemas(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    assert "engine/schemas/runbook.schema.json" in names
    assert "engine/schemas/scenario.schema.json" in names
    assert not any(name.startswith(("tests/", "schemas/")) for name in names)


def test_installed_engine_is_not_the_source_checkout(installed: Installed) -> None:
    done = subprocess.run([installed.python, "-c", "import engine; print(engine.__file__)"],
                          capture_output=True, text=True, cwd=installed.workdir, timeout=60)
    assert done.returncode == 0
    assert not Path(done.stdout.strip()).is_relative_to(ROOT)


def test_installed_runbook_validates_a_valid_file(installed: Installed) -> None:
    done = installed.run("validate", FIXTURES / "valid-runbook.yaml", FIXTURES / "valid-scenario.yaml")
    assert (done.returncode, done.stdout) == (0, "2 files checked: no problems\n"), done.stderr


def test_installed_runbook_reports_an_invalid_file(installed: Installed) -> None:
    done = installed.run("validate", "-f", "json", FIXTURES / "ten-mistakes.yaml")
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["errors"] >= 10


def test_installed_runbook_prints_the_shipped_schema(installed: Installed) -> None:
    done = installed.run("schema", "scenario")
    assert done.returncode == 0, done.stderr
    shipped = json.loads((ROOT / "schemas" / "scenario.schema.json").read_text(encoding="utf-8"))
    assert json.loads(done.stdout) == shipped
