"""The digest of a runbook as it is about to run: SHA-256 over its file's bytes and those
of every runbook it includes (and they include, depth-first, each file once), so a
journal's `run.started` names exactly the version of the runbook it ran.

Coverage counts a journal only for the runbook version it ran, and staleness says a
scenario's runbook changed since it last passed by comparing digests
(engine/reporting/coverage.py, staleness.py). The bytes are hashed, not the model:
a comment or a reordered key is a new version, as a reviewer of the file would see it.
`run.started` names the file too, by its absolute path (runbook_file).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.language import includes
from engine.language.model import Runbook

__all__ = ["digest_of", "included_files", "remembered", "runbook_digest", "runbook_file", "sha256"]

# CPython's own SHA-256, for the digest and the run lock's name (lock.py): every run
# computes both, and hashlib would load OpenSSL first.
try:
    from _sha256 import sha256
except ImportError:  # pragma: no cover - another Python, or 3.12+ (`_sha2`)
    from hashlib import sha256


# The digests remembered by remembered(), for its thread only: a run that another thread
# starts meanwhile (a service's) reads its files as usual.
_local = threading.local()


@contextmanager
def remembered() -> Iterator[None]:
    """While many runs start from the same loaded runbook (the trials of an estimate),
    each runbook's digest is computed once in this thread: reading, resolving and
    hashing its files again for every trial cost a tenth of a 20-step trial's own work."""
    outer: dict[int, tuple[Runbook, str | None]] | None = getattr(_local, "memo", None)
    _local.memo = outer if outer is not None else {}
    try:
        yield
    finally:
        _local.memo = outer


def runbook_digest(book: Runbook) -> str | None:
    """The digest of `book`'s file and its includes; None when its file cannot be read
    (a runbook built in memory, or a file removed since it was loaded)."""
    memo: dict[int, tuple[Runbook, str | None]] | None = getattr(_local, "memo", None)
    if memo is None:
        return _digest_of_files(book)
    kept = memo.get(id(book))
    if kept is None or kept[0] is not book:  # the book is kept, so its id is not reused
        kept = memo[id(book)] = (book, _digest_of_files(book))
    return kept[1]


def runbook_file(book: Runbook) -> str:
    """`book`'s file as run.started names it: an absolute path. Kept on the runbook when
    its file is absolute already (it then does not depend on the working directory):
    every trial of an estimate asked again."""
    kept = book.derived.get("absolute file")
    if kept is None:
        kept = os.path.abspath(book.file)
        if os.path.isabs(book.file):
            book.derived["absolute file"] = kept
    return str(kept)


def _digest_of_files(book: Runbook) -> str | None:
    root = Path(os.path.realpath(book.file))
    try:
        own = root.read_bytes()
    except OSError:
        return None
    return digest_of([own, *(_read(p) for p in included_files(book))])


def digest_of(contents: Iterable[bytes | None]) -> str:
    """SHA-256 (hex) over the files' contents in order, each framed by its length; an
    unreadable file (None) counts as itself, apart from an empty one."""
    hasher = sha256()
    for data in contents:
        hasher.update(b"-\n" if data is None else b"%d\n" % len(data))
        hasher.update(data or b"")
    return hasher.hexdigest()


def included_files(book: Runbook) -> list[Path]:
    """Every runbook file `book` includes, directly or through another include, in the
    order a depth-first walk meets them, each once. An include leading outside the
    runbook's tree never runs, so it is not part of the version."""
    root = Path(os.path.realpath(book.file))
    allowed = includes.roots(book.file)
    seen: list[Path] = []
    _walk(book, allowed, {root}, seen, 0)
    return seen


def _walk(book: Runbook, allowed: tuple[Path, ...], visited: set[Path], out: list[Path], depth: int) -> None:
    if depth >= includes.MAX_DEPTH:
        return
    for _, spec in includes.include_steps(book):
        path = includes.target(book.file, spec.runbook)
        if path in visited or not includes.inside(path, allowed):
            continue
        visited.add(path)
        out.append(path)
        child = includes.referenced(path).model
        if child is not None:
            _walk(child, allowed, visited, out, depth + 1)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
