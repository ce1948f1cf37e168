"""Included runbooks: where an `include:` may point, and what validate finds there.

An include resolves against the directory of the runbook holding the step, and must
stay inside the tree of the runbook that was started (its directory and below), or
inside a directory listed in $RUNBOOK_INCLUDE_PATH (separated by `:`, like PATH).
Symbolic links are followed first, so a link cannot lead out of the tree either.
`include: /etc/passwd` is refused by validate and at run time alike.

Validate reads each runbook another file names (an include, a scenario's runbook) once
per process: loaded, checked against the schema and built, never linted (its own check
does that). A runbook whose includes lead back to itself is an include cycle.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from . import cache
from .limits import DEFAULT_LIMITS, Limits
from .model import IncludeSpec, Runbook, Step

ENV = "RUNBOOK_INCLUDE_PATH"
MAX_DEPTH = 32  # includes within includes; a longer chain is a mistake, not a design


class Referenced(NamedTuple):
    """What validate knows of a runbook another file names."""

    model: Runbook | None  # built when the file is a valid runbook
    errors: int  # its loading and schema errors (0 when it does not exist)
    exists: bool
    wrong_kind: str | None = None  # the kind found where a runbook was expected (if it has one)
    reason: str = ""  # why it could not be read, when it could not


# (path, size, mtime, limits) -> what was found: a file changed since is read again.
_REFERENCED: dict[tuple[Path, int, int, Limits], Referenced] = {}


def forget() -> None:
    """Drop what was read (a new validation of many files starts afresh)."""
    _REFERENCED.clear()


def referenced(path: Path, limits: Limits = DEFAULT_LIMITS) -> Referenced:
    """The runbook at `path`, read once per process however many files name it."""
    cache.note(path)
    try:
        info = os.stat(path)
    except OSError:
        return Referenced(None, 0, False)
    key = (path, info.st_size, info.st_mtime_ns, limits)
    found = _REFERENCED.get(key)
    if found is None:
        found = _REFERENCED[key] = _read(path, limits)
    return found


def _read(path: Path, limits: Limits) -> Referenced:
    # Here, not at the top: a run's digest uses this module, and a run of a model kept on
    # disk (model_cache.py) does not import the YAML reader, the schema or the builder.
    from . import schema
    from .builder import build_runbook
    from .loader import LoadError, load_file

    try:
        doc = load_file(path, limits)
    except LoadError as exc:
        return Referenced(None, 1, True, reason=exc.diagnostic.message)
    errors = [d for d in [*doc.problems, *schema.validate(doc)] if d.is_error]
    if doc.kind != "runbook":  # a scenario, an inventory, or no kind at all (a schema error)
        return Referenced(None, len(errors) or 1, True, doc.kind)
    return Referenced(None if errors else build_runbook(doc), len(errors), True)


def roots(top: str | os.PathLike[str]) -> tuple[Path, ...]:
    """Where includes may lead: the started runbook's directory, then $RUNBOOK_INCLUDE_PATH."""
    own = Path(os.path.realpath(os.path.dirname(os.path.abspath(top))))
    extra = (Path(os.path.realpath(p)) for p in os.environ.get(ENV, "").split(os.pathsep) if p.strip())
    return (own, *extra)


def target(includer: str | os.PathLike[str], ref: str) -> Path:
    """The file an include names, relative to the runbook holding it, links followed."""
    return Path(os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(includer)), ref)))


def inside(path: Path, allowed: tuple[Path, ...]) -> bool:
    return any(path == root or root in path.parents for root in allowed)


def outside_message(ref: str, allowed: tuple[Path, ...]) -> str:
    where = f"{allowed[0]}" + (f" or {', '.join(map(str, allowed[1:]))}" if len(allowed) > 1 else "")
    return (f"include '{ref}' leads outside the runbook's tree ({where}): move the runbook there, "
            f"or list its directory in ${ENV}")


def include_steps(book: Runbook) -> Iterator[tuple[Step, IncludeSpec]]:
    for step in book.steps(rollbacks=True):
        if isinstance(step.spec, IncludeSpec):
            yield step, step.spec


def cycle_through(start: Path, path: Path, allowed: tuple[Path, ...], limits: Limits = DEFAULT_LIMITS,
                  ) -> list[Path] | None:
    """The chain of includes from the runbook `start`, through its include of `path`, that
    comes back to a file already on it (`[a, a]` for a self-include), or None."""
    return _Walk(allowed, limits).from_file([start], path)


class _Walk:
    """Depth-first over includes; a file fully explored without a cycle is not explored again,
    so a tree of shared includes costs one visit per file."""

    def __init__(self, allowed: tuple[Path, ...], limits: Limits) -> None:
        self.allowed, self.limits = allowed, limits
        self.acyclic: set[Path] = set()

    def from_file(self, chain: list[Path], path: Path) -> list[Path] | None:
        if path in chain:
            return [*chain, path]
        if path in self.acyclic or not inside(path, self.allowed) or len(chain) >= MAX_DEPTH:
            return None
        book = referenced(path, self.limits).model
        if book is not None:
            for _, spec in include_steps(book):
                found = self.from_file([*chain, path], target(book.file, spec.runbook))
                if found is not None:
                    return found
        self.acyclic.add(path)
        return None
