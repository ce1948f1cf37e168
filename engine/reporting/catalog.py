"""The runbooks and scenarios coverage counts, found under paths: each runbook as its
outline (a RunbookCoverage with nothing exercised: its steps and the branches they can
take), each scenario as its model (staleness scores its journals against its objectives).

Parsing a thousand runbooks costs seconds; their outlines are cached by each file's
content (`coverage.json` beside the validation cache, under the same salt: the engine's
code, schemas and version), so an unchanged runbook is read and hashed, never parsed.
An outline keeps its runbook's digest (engine/run/digest.py) with the hash of each file
it includes: an included file that changed means parsing the runbook again.
A file is fully validated before its outline is cached: a runbook with errors is an error
that names it (ValidationFailed), as in every command.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.language import cache
from engine.language.model import Runbook
from engine.language.scenario import Scenario
from engine.language.validation import ValidationFailed, check_file, discover
from engine.run.digest import included_files

from .coverage import Branch, RunbookCoverage, runbook_coverage

CACHE_FILE = "coverage.json"
_MIN_FILES = 16  # below this, the cache costs more than it saves (as validation's)


@dataclass
class Catalog:
    """The outlines of the runbooks found, and the scenarios that play each (by runbook file)."""

    runbooks: list[RunbookCoverage] = field(default_factory=list)
    scenarios: dict[str, list[Scenario]] = field(default_factory=dict)  # resolved runbook file -> scenarios

    def models(self) -> list[Runbook]:
        """The runbooks' models, parsed again (the HTML report draws their flows)."""
        out = []
        for rb in self.runbooks:
            checked = check_file(rb.file)
            if isinstance(checked.model, Runbook):
                out.append(checked.model)
        return out


def load_catalog(paths: Iterable[str | os.PathLike[str]], *, use_cache: bool | None = None) -> Catalog:
    """Every runbook and scenario under `paths` (files or directories, searched recursively)."""
    files = discover(paths)
    store = _Store.open() if len(files) >= _MIN_FILES and cache.enabled(use_cache) else None
    out = Catalog()
    outlines: dict[str, RunbookCoverage] = {}
    contents: dict[str, bytes | None] = {}
    for name in files:
        contents[name] = content = _content(name)
        hit = store.lookup(name, content) if store is not None and content is not None else None
        if hit is not None:
            outlines[name] = hit
    todo = [name for name in files if name not in outlines]
    for name, found in zip(todo, _outline_all(todo), strict=True):
        if found is None:  # a scenario, or a file with problems: read here, where its error is raised
            model = _model(name)
            if isinstance(model, Scenario):
                out.scenarios.setdefault(str(model.runbook_path), []).append(model)
                continue
            if not isinstance(model, Runbook):
                continue
            found = runbook_coverage(model), included_files(model)
        outlines[name] = found[0]
        content = contents[name]
        if store is not None and content is not None:
            store.store(name, content, *found)
    out.runbooks = [outlines[name] for name in files if name in outlines]
    if store is not None:
        store.save()
    return out


_PARALLEL_MIN = 48  # files: below this, a second process costs more than it saves (as validation's)


def _outline_all(files: list[str]) -> list[tuple[RunbookCoverage, list[Path]] | None]:
    """Each file's outline and included files when it is a valid runbook, else None;
    over the machine's CPUs (at most 4) when there are many (parsing is CPU-bound)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    jobs = min(cpus, 4)
    if jobs <= 1 or len(files) < _PARALLEL_MIN:
        return [None] * len(files)  # all read by the caller, each once
    import multiprocessing

    try:
        context = multiprocessing.get_context("fork")
    except ValueError:
        return [None] * len(files)
    size = -(-len(files) // jobs)
    chunks = [files[i:i + size] for i in range(0, len(files), size)]
    with context.Pool(len(chunks) - 1) as pool:
        pending = pool.map_async(_outline_chunk, chunks[1:])
        first = _outline_chunk(chunks[0])
        return [*first, *(found for part in pending.get() for found in part)]


def _outline_chunk(files: list[str]) -> list[tuple[RunbookCoverage, list[Path]] | None]:
    return [_outline(name) for name in files]


def _outline(name: str) -> tuple[RunbookCoverage, list[Path]] | None:
    """A valid runbook's outline (only that crosses back from a worker, not its model)."""
    checked = check_file(name)
    if any(d.is_error for d in checked.diagnostics) or not isinstance(checked.model, Runbook):
        return None
    try:
        return runbook_coverage(checked.model), included_files(checked.model)
    except EngineError:  # a declaration naming no branch: the caller raises it with its place
        return None


def _content(name: str) -> bytes | None:
    try:
        with open(name, "rb") as handle:
            return handle.read()
    except OSError:
        return None  # the check says why


def _hash(path: Path) -> str | None:
    content = _content(str(path))
    return None if content is None else cache.fingerprint(content)


def _model(name: str) -> Any:
    checked = check_file(name)
    if any(d.is_error for d in checked.diagnostics) or checked.model is None:
        raise ValidationFailed(name, checked.diagnostics, checked.text)
    return checked.model


class _Store:
    """Outlines by file and content hash: loaded once, saved once, whole or not at all."""

    def __init__(self, path: Path, salt: str) -> None:
        self.path, self.salt, self.changed = path, salt, False
        self.entries: dict[str, dict[str, Any]] = {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("salt") == salt:
                self.entries = dict(data.get("entries") or {})
        except (OSError, ValueError):
            pass

    @classmethod
    def open(cls) -> _Store:
        return cls(cache.default_directory() / CACHE_FILE, cache.salt(["coverage outlines"]))

    def lookup(self, name: str, content: bytes) -> RunbookCoverage | None:
        entry = self.entries.get(name)
        if not isinstance(entry, dict) or entry.get("hash") != cache.fingerprint(content):
            return None
        try:
            if any(_hash(Path(path)) != known for path, known in entry["included"]):
                return None  # an included runbook changed: the digest (and its includes) with it
            return RunbookCoverage(entry["id"], entry["title"], name, list(entry["steps"]), dict(entry["kinds"]),
                                   [Branch(s, label) for s, label in entry["branches"]], tuple(entry["alerts"]),
                                   digest=entry["digest"],
                                   unreachable={Branch(s, label): why for s, label, why in entry["unreachable"]})
        except (KeyError, TypeError, ValueError):
            return None  # an entry of another shape: parse the file again

    def store(self, name: str, content: bytes, rb: RunbookCoverage, included: list[Path]) -> None:
        self.entries[name] = {"hash": cache.fingerprint(content), "id": rb.id, "title": rb.title, "steps": rb.steps,
                              "kinds": rb.kinds, "branches": [[b.step, b.label] for b in rb.branches],
                              "alerts": list(rb.alerts), "digest": rb.digest,
                              "unreachable": [[b.step, b.label, why] for b, why in rb.unreachable.items()],
                              "included": [[str(p), _hash(p)] for p in included]}
        self.changed = True

    def save(self) -> None:
        if self.changed:
            cache.write_entries(self.path, self.salt, self.entries)
