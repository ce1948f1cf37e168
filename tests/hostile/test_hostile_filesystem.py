"""Hostile file systems: a FIFO or a device where a document should be, symlinks out of
the tree and in loops, includes that escape, repeat or never end."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hostile_harness import Case, Runner

PARENT = """\
kind: runbook
version: 1
id: parent
title: Parent
defaults: {{timeout: 30s}}
detection:
  - id: probe
    run: "true"
    expect: exit_code == 0
remediation:
  - id: sub
    include: {{runbook: {target}}}
"""

CHILD = """\
kind: runbook
version: 1
id: child
title: Child
defaults: {{timeout: 30s}}
remediation:
  - id: again
    include: {{runbook: {target}}}
"""


def _commands(kind: str, runbook: Path) -> list[Case]:
    return [Case(kind, "validate", ["validate", str(runbook)]),
            Case(kind, "dry-run", ["run", "--dry-run", str(runbook)]),
            Case(kind, "run", Runner.run_args(runbook)),
            Case(kind, "graph", ["graph", str(runbook), "-f", "svg"])]


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


INCLUDES = {
    "etc-passwd": lambda folder: "/etc/passwd",
    "dev-zero": lambda folder: "/dev/zero",
    "dev-urandom": lambda folder: "/dev/urandom",
    "fifo": lambda folder: str(_fifo(folder / "pipe.yaml")),
    "directory": lambda folder: str(folder),
    "parent-dir": lambda folder: "../outside.yaml",
    "symlink-out": lambda folder: (folder / "link.yaml").symlink_to("/etc/hostname") or "link.yaml",
    "self": lambda folder: "parent.yaml",
    "missing": lambda folder: "missing.yaml",
}


@pytest.mark.parametrize("name", INCLUDES)
def test_include_that_escapes_or_never_ends(hostile: Runner, name: str) -> None:
    folder = hostile.work / "in"
    (hostile.work / "outside.yaml").write_text(CHILD.format(target="in/parent.yaml"), encoding="utf-8")
    target = INCLUDES[name](folder)
    runbook = hostile.write("parent.yaml", PARENT.format(target=target))
    hostile.check(*_commands(f"include:{name}", runbook))


def test_include_cycle_through_two_runbooks(hostile: Runner) -> None:
    runbook = hostile.write("parent.yaml", PARENT.format(target="child.yaml"))
    hostile.write("child.yaml", CHILD.format(target="parent.yaml"))
    hostile.check(*_commands("include:cycle", runbook))


def test_directory_with_things_that_are_not_files(hostile: Runner) -> None:
    """`validate DIR` walks into a FIFO, devices, a symlink loop and a symlink out of the
    tree, each named like a runbook."""
    folder = hostile.work / "in" / "tree"
    folder.mkdir()
    (folder / "ok.yaml").write_text(PARENT.format(target="ok.yaml"), encoding="utf-8")
    _fifo(folder / "x.yaml")
    (folder / "zero.yaml").symlink_to("/dev/zero")
    (folder / "loop-a.yaml").symlink_to(folder / "loop-b.yaml")
    (folder / "loop-b.yaml").symlink_to(folder / "loop-a.yaml")
    (folder / "out.yaml").symlink_to("/etc/passwd")
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to(folder)  # a directory loop
    hostile.check(Case("fs:tree", "validate", ["validate", str(folder)]),
                  Case("fs:tree", "validate", ["validate", str(folder), "-f", "json"]),
                  Case("fs:tree", "test", ["test", str(folder)]))


def test_special_files_as_the_named_document(hostile: Runner) -> None:
    """A device or a directory passed where a file is expected (not a FIFO: reading a named
    pipe waits for a writer, as `cat` does)."""
    runbook = hostile.write("ok.yaml", PARENT.format(target="ok.yaml").replace("include: {runbook: ok.yaml}",
                                                                                'run: "true"'))
    cases = []
    for special in ("/dev/zero", "/dev/null", str(hostile.work / "in")):
        cases += [Case("fs:special", "validate", ["validate", special]),
                  Case("fs:special", "run", Runner.run_args(runbook, "--alert", special)),
                  Case("fs:special", "run", Runner.run_args(runbook, "--inputs-file", special)),
                  Case("fs:special", "dry-run", ["run", "--dry-run", str(runbook), "--inventory", special]),
                  Case("fs:special", "report", ["report", special])]
    hostile.check(*cases)
