"""Journals on disk, for the reports that read many: every journal under a directory,
and which scenario a journal's run played (read from its first line alone)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from engine.run.journal import JOURNAL, first_record


def journal_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Every journal under the given files and directories (recursively), each once."""
    return map(Path, journal_paths(paths))


def journal_paths(paths: Iterable[str | os.PathLike[str]]) -> Iterator[str]:
    """journal_files as strings: each journal once however many ways lead to it (a
    directory given twice, a link), told by its device and inode (one stat, where
    resolving every link of a path costs a stat per part of it)."""
    seen: set[tuple[int, int] | str] = set()
    for given in paths:
        root = os.fspath(given)
        found = [root] if os.path.isfile(root) else [os.path.join(d, JOURNAL) for d, _, files in os.walk(root)
                                                       if JOURNAL in files]
        for path in sorted(found, key=_parts):
            key = _identity(path)
            if key not in seen:
                seen.add(key)
                yield path


def _parts(path: str) -> list[str]:
    return path.split(os.sep)  # the order of Path objects: part by part


def _identity(path: str) -> tuple[int, int] | str:
    try:
        info = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return info.st_dev, info.st_ino


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
