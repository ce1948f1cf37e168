"""Lint rules for `include:` steps: the runbook exists, stays in the tree, is a valid
runbook, gets the inputs it needs, and does not lead back to the runbook including it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from . import includes
from .model import IncludeSpec, Step
from .rules import ERROR, DataPath, Finding, did_you_mean, rule
from .runbook_check import RunbookCheck


def _place(c: RunbookCheck, step: Step) -> DataPath:
    path: DataPath = (*step.path, "include")
    if c.doc.source.node((*path, "runbook")) is not None:
        path = (*path, "runbook")  # `include: {runbook: ...}`: point at the path
    return path


def _included(c: RunbookCheck) -> list[tuple[Step, IncludeSpec, Path, bool]]:
    """Each include step with the file it names and whether that file is in the tree
    (worked out once per file, and only for a runbook that has includes)."""
    found = c.runbook.derived.get("includes")
    if found is None:
        steps = list(includes.include_steps(c.runbook))
        roots = _roots(c) if steps else ()
        found = c.runbook.derived["includes"] = [
            (step, spec, path, includes.inside(path, roots))
            for step, spec in steps for path in (includes.target(c.runbook.file, spec.runbook),)
        ]
    return found


def _roots(c: RunbookCheck) -> tuple[Path, ...]:
    roots = c.runbook.derived.get("include_roots")
    if roots is None:
        roots = c.runbook.derived["include_roots"] = includes.roots(c.runbook.file)
    return roots


@rule("RB119", "missing-include", ERROR,
      "An included runbook that does not exist fails the run when the step is reached.")
def _missing_include(c: RunbookCheck) -> Iterator[Finding]:
    for step, spec, path, inside in _included(c):
        if inside and not includes.referenced(path).exists:
            yield Finding(_place(c, step), f"included runbook '{spec.runbook}' does not exist")


@rule("RB130", "include-outside-tree", ERROR,
      "An include may only reach the runbook's own directory and below, or a directory in "
      "$RUNBOOK_INCLUDE_PATH: `include: /etc/passwd` must not pass.")
def _include_outside(c: RunbookCheck) -> Iterator[Finding]:
    for step, spec, _, inside in _included(c):
        if not inside:
            yield Finding(_place(c, step), includes.outside_message(spec.runbook, _roots(c)))


@rule("RB131", "include-cycle", ERROR,
      "A runbook that includes itself, directly or through others, never ends.")
def _include_cycle(c: RunbookCheck) -> Iterator[Finding]:
    for step, spec, path, inside in _included(c):
        start = Path(os.path.realpath(c.runbook.file))
        chain = includes.cycle_through(start, path, _roots(c)) if inside else None
        if chain is None:
            continue
        if len(chain) == 2 and chain[0] == chain[1]:
            yield Finding(_place(c, step), f"include '{spec.runbook}' includes this runbook itself")
            continue
        shown = " -> ".join(_name(p, start.parent) for p in chain)
        yield Finding(_place(c, step), f"include '{spec.runbook}' leads to an include cycle: {shown}")


def _name(path: Path, base: Path) -> str:
    return os.path.relpath(path, base) if base in path.parents or path.parent == base else str(path)


@rule("RB132", "include-invalid", ERROR,
      "An include of a file that is not a valid runbook fails the run when the step is reached.")
def _include_invalid(c: RunbookCheck) -> Iterator[Finding]:
    for step, spec, path, inside in _included(c):
        found = includes.referenced(path) if inside else None
        if found is None or not found.exists or found.model is not None:
            continue
        if found.reason:
            why = f"cannot be read: {found.reason}"
        elif found.wrong_kind is not None:
            why = f"is a {found.wrong_kind}, not a runbook"
        else:
            why = f"is not valid ({found.errors} error(s)): run `runbook validate` on it"
        yield Finding(_place(c, step), f"included file '{spec.runbook}' {why}")


@rule("RB133", "include-inputs", ERROR,
      "An included runbook gets only the inputs the include names: an unknown one is a typo, a "
      "missing required one fails the step.")
def _include_inputs(c: RunbookCheck) -> Iterator[Finding]:
    for step, spec, path, inside in _included(c):
        child = includes.referenced(path).model if inside else None
        if child is None:
            continue
        for name in spec.inputs:
            if name not in child.inputs:
                yield Finding((*step.path, "include", "inputs", name),
                              f"included runbook '{child.id}' has no input '{name}'"
                              f"{did_you_mean(name, child.inputs)}", key=True)
        missing = [n for n, i in child.inputs.items() if i.required and not i.sourced and n not in spec.inputs]
        if missing:
            yield Finding(_place(c, step), f"included runbook '{child.id}' needs input(s) "
                                           f"{', '.join(repr(m) for m in missing)}: give them under include.inputs")
