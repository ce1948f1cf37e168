"""Shared test data and helpers: repository paths, a minimal valid runbook, document lists.

Test modules import these from here, not from conftest.py: tests/integration has its own
conftest, and `import conftest` would find whichever was imported first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from engine.language.diagnostics import Diagnostic

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# A runbook of one step, for what a one-step run does at start-up (imports, compiling).
ONE_STEP_RUNBOOK = "kind: runbook\nversion: 1\nid: one\ntitle: One\ndetection:\n  - {id: a, run: 'true'}\n"


def python_calls(fn: Callable[[], object]) -> list[str]:
    """The Python functions a call of `fn` enters, in order, as `file.py:name` (the file's
    base name; generated code's file is `<string>`): what a test of a hot path's cost
    pins, since a call the interpreter enters is the expensive part."""
    entered: list[str] = []

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            entered.append(f"{Path(frame.f_code.co_filename).name}:{frame.f_code.co_name}")

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return entered


def one_step_runbook(folder: Path) -> Path:
    """ONE_STEP_RUNBOOK written to folder/one.yaml."""
    book = folder / "one.yaml"
    book.write_text(ONE_STEP_RUNBOOK, encoding="utf-8")
    return book


# What a probe_one_step_run script starts with: the `runbook` command run in the script's
# own process, as its console script runs it; the script then prints what the run left.
RUN_COMMAND = """\
import sys
sys.argv = ["runbook", *sys.argv[1:]]
from engine.cli.entry import main
try:
    main()
except SystemExit:
    pass
"""


def loaded_modules_script(names: Iterable[str]) -> str:
    """A probe_one_step_run script that prints which of `names` the run loaded, sorted (a
    module the command deferred and never used counts as not loaded)."""
    return RUN_COMMAND + (f"names = {tuple(names)!r}\n"
                          "print(sorted(n for n in names if n in sys.modules\n"
                          "             and type(sys.modules[n]).__name__ != '_Deferred'))\n")


def probe_one_step_run(script: str, folder: Path) -> str:
    """The last line `python -c script run one.yaml ...` prints: the script wraps the
    command (spies on it) and ends by printing what it saw."""
    proc = subprocess.run([sys.executable, "-c", script, "run", str(one_step_runbook(folder)), "--runs-dir",
                           str(folder / "runs"), "-q", "--non-interactive"], capture_output=True, text=True,
                          check=True, cwd=folder, env={**os.environ, "RUNBOOK_HOME": str(folder / "home")})
    return proc.stdout.strip().splitlines()[-1]


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

# In lint fixtures `‸` marks where a rule must fire: the character after it is at the reported column.
MARK = "‸"


def unmark(text: str) -> tuple[str, list[tuple[int, int]]]:
    """The text without `‸` marks, and the (line, column) each mark points at."""
    lines, marks = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        while MARK in line:
            marks.append((number, line.index(MARK) + 1))
            line = line.replace(MARK, "", 1)
        lines.append(line)
    return "\n".join(lines), marks


def positions(diags: Iterable[Diagnostic], rule_id: str) -> list[tuple[int, int]]:
    """Where the diagnostics of one rule are, as sorted (line, column) pairs."""
    return sorted((d.line, d.column) for d in diags if d.rule == rule_id)


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
