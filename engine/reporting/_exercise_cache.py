"""What each journal exercised, kept between runs of `runbook coverage`.

A finished journal never changes, and reading ten thousand of them is most of what
coverage costs (JSON, line by line). Each journal's Exercise is kept in
`$RUNBOOK_HOME/cache/exercises.json` under the journal's path with its identity as
`stat` gives it (inode, size, modification and change times, in nanoseconds, as git's
index keeps a file's): a journal still being written, rewritten or replaced has another
and is read again. A journal of a runbook not asked about is kept as that runbook's id
alone, until coverage is asked about that runbook. The file is salted like the validation cache (the engine's code, its
version), so a changed reader never trusts an older one's results. It is loaded once,
saved once (whole, through a temporary file), and `RUNBOOK_NO_CACHE=1` turns it off.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Container
from pathlib import Path
from typing import Any

from engine.language import cache

from .exercise import Exercise

CACHE_FILE = "exercises.json"
MIN_JOURNALS = 16  # below this, loading the cache costs more than reading the journals
MAX_ENTRIES = 200_000  # past this, journals not read this time are dropped from the file


def identity(path: str) -> list[int] | None:
    """What says a journal is unchanged since it was read; None when it cannot be stat'ed."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return [info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns]


class ExerciseCache:
    """Journal path -> [identity, its Exercise encoded]; `fresh` holds what was read this time."""

    def __init__(self, path: Path, salt: str) -> None:
        self.path, self.salt = path, salt
        self.entries: dict[str, list[Any]] = {}
        self.fresh: dict[str, list[Any]] = {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("salt") == salt and isinstance(data.get("entries"), dict):
                self.entries = data["entries"]
        except (OSError, ValueError):
            pass

    @classmethod
    def open(cls, journals: int, use_cache: bool | None = None) -> ExerciseCache | None:
        """The cache, when it is on and there are journals enough to be worth it."""
        if journals < MIN_JOURNALS or not cache.enabled(use_cache):
            return None
        return cls(cache.default_directory() / CACHE_FILE, cache.salt(["coverage exercises"]))

    def lookup(self, path: str, ident: list[int] | None, wanted: Container[str]) -> tuple[bool, Exercise | None]:
        """(found, the Exercise: None for a journal that is not a run). A journal kept
        only as a run of some other runbook (read to its run.started) is found while that
        runbook is still not `wanted`."""
        entry = self.entries.get(path)
        if ident is None or not isinstance(entry, list) or len(entry) != 2 or entry[0] != ident:
            return False, None
        try:
            if isinstance(entry[1], str):  # the runbook of a journal read only to its start
                return (False, None) if entry[1] in wanted else (True, Exercise(path, entry[1]))
            return True, None if entry[1] is None else decode(path, entry[1])
        except (TypeError, ValueError, KeyError, IndexError):
            return False, None  # an entry of another shape: read the journal again

    def save(self, seen: list[str]) -> None:
        """Write what was read this time over the older entries (those of journals not
        seen this time are kept, up to MAX_ENTRIES)."""
        if not self.fresh:
            return
        entries = {**self.entries, **self.fresh}
        if len(entries) > MAX_ENTRIES:
            entries = {p: entries[p] for p in seen if p in entries}
        cache.write_entries(self.path, self.salt, entries)


def entry(run: Exercise | None, wanted: Container[str]) -> list[Any] | str | None:
    """What to keep of a journal read as `wanted` says: its Exercise, None for one that is
    not a run, or only the runbook's id when it ran another runbook (read to its start)."""
    if run is None:
        return None
    return encode(run) if run.runbook in wanted else run.runbook


def encode(run: Exercise) -> list[Any]:
    return [run.runbook, run.mode, run.scenario, run.digest, run.started, run.outcome,
            [[s, status, n] for (s, status), n in run.ended.items()], [list(t) for t in run.taken],
            sorted(run.succeeded)]


def decode(path: str, row: list[Any]) -> Exercise:
    runbook, mode, scenario, digest, started, outcome, ended, taken, succeeded = row
    return Exercise(path, str(runbook), str(mode), scenario, digest, started, str(outcome),
                    Counter({(str(s), str(status)): int(n) for s, status, n in ended}),
                    {(str(s), str(label)) for s, label in taken}, {str(s) for s in succeeded})
