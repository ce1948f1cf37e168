"""The console script's fast path for `runbook validate` must behave exactly like the
click command, and hand anything unusual to click."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.entry import plain_validate

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("args", "expected"), [
    (["a.yaml"], {"paths": ("a.yaml",)}),
    (["--strict", "-f", "json", "a", "b"], {"paths": ("a", "b"), "strict": True, "fmt": "json"}),
    (["--format=sarif", "-o", "out.sarif", "."], {"paths": (".",), "fmt": "sarif", "output": "out.sarif"}),
    (["--jobs", "2", "--no-color", "x"], {"paths": ("x",), "jobs": 2, "color": False}),
    (["--", "-odd-name.yaml"], {"paths": ("-odd-name.yaml",)}),
])
def test_plain_arguments_are_parsed_without_click(args: list[str], expected: dict[str, object]) -> None:
    found = plain_validate(args)
    assert found is not None
    for key, value in expected.items():
        assert found[key] == value


@pytest.mark.parametrize("args", [
    ["--help"], ["-h"], ["--bogus", "x"], ["-f", "xml", "x"], ["--jobs", "0", "x"], ["--jobs", "many"],
    ["-o"], ["-fjson", "x"],
])
def test_anything_unusual_is_left_to_click(args: list[str]) -> None:
    assert plain_validate(args) is None


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("fmt", ["text", "json", "github", "junit"])
def test_fast_path_and_click_give_the_same_output_and_exit_code(fmt: str) -> None:
    target = str(ROOT / "tests" / "fixtures" / "ten-mistakes.yaml")
    fast = _run("validate", "-f", fmt, "--no-color", target)
    # `--debug` is a group option: it forces the click path for the same command.
    slow = _run("--debug", "validate", "-f", fmt, "--no-color", target)
    assert fast.returncode == slow.returncode == 1
    assert fast.stdout == slow.stdout
    assert fast.stderr == slow.stderr


def test_fast_path_reports_usage_errors_like_click(tmp_path: Path) -> None:
    fast = _run("validate", str(tmp_path / "missing.yaml"))
    slow = _run("--debug", "validate", str(tmp_path / "missing.yaml"))
    assert fast.returncode == slow.returncode == 2
    # (--debug adds a traceback on the click side; the message itself is the same)
    assert fast.stderr.splitlines()[-1] == slow.stderr.splitlines()[-1]
    assert "no such file or directory" in fast.stderr
