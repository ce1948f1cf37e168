"""An included runbook, run as a step of another: where an include may lead (inside the
tree of the runbook that was started, never round a cycle), its inputs rendered from
the step, and its outcome as the step's attempt. The runner runs it with the same
services, bus and clock (only the runner makes runners); all around that is here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.language import includes
from engine.language.model import IncludeSpec, Runbook, Step
from engine.templates import templating

from ._driver import Where
from .attempt import Attempt
from .inputs import resolve


@dataclass(frozen=True)
class Inclusion:
    """An include that may run: the runbook, its inputs, and where its own includes may lead."""

    runbook: Runbook
    inputs: dict[str, Any]
    roots: tuple[Path, ...]  # the started runbook's tree (and $RUNBOOK_INCLUDE_PATH)
    chain: tuple[Path, ...]  # the runbooks running, the outermost first and this one last
    secrets: tuple[str, ...] = ()  # its secret inputs' values (from its env, a file, a command)


def prepare(book: Runbook, step: Step, spec: IncludeSpec, ctx: dict[str, Any], load: Callable[[Path], Runbook],
            roots: tuple[Path, ...], chain: tuple[Path, ...], *, live: bool = True) -> Inclusion | Attempt:
    """The runbook `step` of `book` includes, ready to run; or the failed attempt saying why
    not (outside the tree, a cycle, an invalid runbook or inputs). Only a live run reads
    the included runbook's secret files and runs its secret commands."""
    roots = roots or includes.roots(book.file)
    chain = chain or (Path(os.path.realpath(book.file)),)
    path = includes.target(book.file, spec.runbook)
    if not includes.inside(path, roots):
        return Attempt(False, includes.outside_message(spec.runbook, roots))
    if path in chain or len(chain) > includes.MAX_DEPTH:
        return Attempt(False, f"include '{spec.runbook}' would run a runbook that is already running "
                              "(an include cycle)")
    inputs = {k: templating.render_value(v, ctx, where=Where(book, (*step.path, "include", "inputs", k)))
              for k, v in spec.inputs.items()}
    try:
        child = load(path)
        resolved = resolve(child, from_file=inputs, read_sources=live)
    except EngineError as exc:  # an invalid runbook or inputs: this step fails, the run goes on ending
        return Attempt(False, f"cannot include {spec.runbook}: {exc}")
    return Inclusion(child, resolved.values, roots, (*chain, path), tuple(resolved.secrets))


def outcome(child: Runbook, ended: str, reason: str) -> Attempt:
    """How the included runbook ended, as the including step's attempt."""
    ok = ended in ("resolved", "not_confirmed")
    return Attempt(ok, None if ok else f"included runbook {child.id} ended {ended}: {reason}",
                   outputs={"outcome": ended, "reason": reason},
                   cancelled=ended in ("aborted", "escalated"), refused=ended == "refused")
