"""Journals on disk, for the reports that read many: every journal under a directory,
and which scenario a journal's run played (read from its first line alone)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from engine.run.journal import JOURNAL, first_record


def journal_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Every journal under the given files and directories (recursively), each once."""
    seen: set[str] = set()
    for given in paths:
        root = Path(given)
        found = [root] if root.is_file() else [Path(d, JOURNAL) for d, _, files in os.walk(root) if JOURNAL in files]
        for path in sorted(found):
            key = os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                yield path


def journals_under(root: Path) -> Iterator[Path]:
    """The journals of the runs under `root`: its own first, if it is a run directory."""
    if (root / JOURNAL).is_file():
        yield root / JOURNAL
    yield from sorted(p for p in root.rglob(JOURNAL) if p.parent != root)


def scenario_of(path: str | os.PathLike[str]) -> str | None:
    """The scenario a journal's run played (first line only); None for a live run."""
    record = first_record(Path(path)) or {}
    value = record.get("scenario")
    return str(value) if value else None
