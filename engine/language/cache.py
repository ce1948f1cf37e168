"""Validation results by file content, so validating a large tree again re-checks only
what changed (as ruff and mypy do).

An entry is reused only if the file's bytes, and the bytes of every other file its
check read (an included runbook, the runbook a scenario rehearses; or their absence),
are unchanged, and the salt matches: the engine's version, its code and schemas
(sizes and modification times), and the options that change results. The cache lives
in `$RUNBOOK_HOME/cache/` (default `.runbook/cache/`); `--no-cache` or
RUNBOOK_NO_CACHE=1 turns it off. It is only ever an optimisation: any problem reading
or writing it means working without it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.home import home

if TYPE_CHECKING:  # imported where a stored result is read: a run reads none (model_cache.py)
    from .diagnostics import Diagnostic

FORMAT = 1
_recording: list[list[str]] = []


def note(path: str | os.PathLike[str]) -> None:
    """A check read (or looked for) another file: its result depends on that file too."""
    if _recording:
        _recording[-1].append(os.fspath(path))


class Recorder:
    """Collects the files `note`d while one file is checked."""

    def __enter__(self) -> list[str]:
        _recording.append([])
        return _recording[-1]

    def __exit__(self, *exc: object) -> None:
        _recording.pop()


def fingerprint(data: bytes) -> str:
    """BLAKE2b of `data`, 16 bytes, in hex."""
    try:  # CPython's own: hashlib would load OpenSSL first (10M instructions a run)
        from _blake2 import blake2b
    except ImportError:  # pragma: no cover - another Python
        from hashlib import blake2b
    return blake2b(data, digest_size=16).hexdigest()


def file_fingerprint(path: str) -> str | None:
    """The fingerprint of a regular file's bytes; "directory" for a directory (a serve config
    names runbook directories: one appearing must change the result); None for anything else
    (never blocks on a FIFO)."""
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            return "directory"
        if not stat.S_ISREG(mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return fingerprint(handle.read())
    except OSError:
        return None
    finally:
        os.close(fd)


def salt(extra: Iterable[str] = ()) -> str:
    """What, besides the files, decides the results: code, schemas, version, options."""
    from engine import __version__

    root = Path(__file__).resolve().parent.parent  # the whole engine package
    parts = [f"format {FORMAT}", __version__]
    for base in (root, root.parent / "schemas", root / "schemas"):
        if base.is_dir():
            for entry in sorted(base.rglob("*.py")) + sorted(base.glob("*.json")):
                stat = entry.stat()
                parts.append(f"{entry.name}:{stat.st_size}:{stat.st_mtime_ns}")
    parts.extend(extra)
    return fingerprint("\n".join(parts).encode())


def _encode(d: Diagnostic) -> list[Any]:
    return [d.line, d.column, d.severity.value, d.rule, d.message, list(d.path)]


def _decode(file: str, row: list[Any]) -> Diagnostic:
    from .diagnostics import Diagnostic, Severity

    line, column, severity, rule, message, path = row
    return Diagnostic(file, line, column, Severity(severity), rule, message, tuple(path))


class ValidationCache:
    """Load once, look up and store per file, save once."""

    def __init__(self, directory: Path, salt_value: str) -> None:
        self.path = directory / "validate.json"
        self.salt = salt_value
        self.entries: dict[str, dict[str, Any]] = {}
        self.changed = False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("salt") == salt_value:
                self.entries = dict(data.get("entries") or {})
        except (OSError, ValueError):
            pass

    def lookup(self, file: str, content: bytes) -> list[Diagnostic] | None:
        entry = self.entries.get(file)
        if entry is None or entry.get("hash") != fingerprint(content):
            return None
        for dep, expected in (entry.get("deps") or {}).items():
            if file_fingerprint(dep) != expected:
                return None
        return [_decode(file, row) for row in entry.get("diagnostics", [])]

    def store(self, file: str, content: bytes, diagnostics: list[Diagnostic], deps: Iterable[str]) -> None:
        self.entries[file] = {
            "hash": fingerprint(content),
            "deps": {dep: file_fingerprint(dep) for dep in sorted(set(deps))},
            "diagnostics": [_encode(d) for d in diagnostics],
        }
        self.changed = True

    def save(self) -> None:
        if self.changed:
            write_entries(self.path, self.salt, self.entries)


def write_entries(path: Path, salt: str, entries: dict[str, Any]) -> None:
    """Write a cache file of `entries` under `salt`: whole or not at all, even with runs in
    parallel; a cache that cannot be written only costs time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(f".{os.getpid()}.tmp")
        temp.write_text(json.dumps({"salt": salt, "entries": entries}), encoding="utf-8")
        os.replace(temp, path)
    except OSError:
        pass


def enabled(flag: bool | None = None) -> bool:
    if flag is not None:
        return flag
    return os.environ.get("RUNBOOK_NO_CACHE", "") in ("", "0")


def default_directory() -> Path:
    return home() / "cache"
