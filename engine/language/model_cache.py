"""Built runbooks and scenarios kept on disk by what they were built from, so running a
file that has not changed since it was last checked clean skips its YAML, the schema,
building the model and lint (as Python's .pyc files skip compiling an unchanged module).
For the 500-step bench runbook that was 163k of a step's 737k instructions.

An entry is used only if it was written under the same salt (the engine's version, the
code and schemas that build and check a model, the options and environment that change
it), for the same file name seen from the same directory, with the same text, and every
other file its check read (`cache.note`: an included runbook, the connections file, the
runbook a scenario rehearses; or their absence) still has the bytes it had. Only a model
that was checked clean is kept: a file with errors is checked, and refused, every time.

The model is pickled, so like a .pyc an entry is trusted to be what this engine wrote: it
is read only from a file this user owns that nobody else may write. Anything wrong with an
entry (missing, truncated, corrupt, foreign, unwritable) only means building the model as
before. Only the `runbook` command turns it on (`enable`, from engine/cli); a program that
imports the engine, and the test suite, build every model afresh. RUNBOOK_NO_CACHE=1 turns
it off, with the validation cache.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from . import cache
from .limits import DEFAULT_LIMITS, Limits
from .model import MISSING, Runbook
from .source_map import SourceMap

FORMAT = 1
# Where a model's code lives: by the package layering (tests/test_architecture.py) the
# language imports only itself, the templates and the engine's base modules.
_CODE = ("language", "templates")
# The environment a model depends on: includes.ENV and connections.ENV (both modules
# import the YAML reader, which a kept model is used without; a test keeps them equal).
ENVIRONMENT = ("RUNBOOK_INCLUDE_PATH", "RUNBOOK_CONNECTIONS")
_directory: Path | None = None


def enable(directory: Path | None = None) -> None:
    """Keep built models in `directory` (default: the cache in the runbook home) from now on
    in this process, unless RUNBOOK_NO_CACHE is set."""
    global _directory
    if cache.enabled():
        _directory = (directory if directory is not None else cache.default_directory()) / "models"


def enabled() -> bool:
    """Whether models are kept in this process."""
    return _directory is not None


def disable() -> None:
    """Build every model afresh from now on (the default)."""
    global _directory
    _directory = None


class Slot(NamedTuple):
    """Where the model of one file, as read, is kept; and what it must match."""

    path: Path
    salt: str
    content_hash: str

    def load(self) -> Any:
        """The kept model, or None when there is none that may be used."""
        try:
            with open(self.path, "rb") as handle:
                return _unpickled(handle, self)
        except Exception:  # whatever a damaged entry raises only means building afresh
            return None

    def store(self, model: Any, deps: Iterable[str]) -> None:
        """Keep `model`, whole or not at all; failing to only costs the next run time."""
        header = (FORMAT, self.salt, self.content_hash,
                  {dep: cache.file_fingerprint(dep) for dep in sorted(set(deps))})
        temp = self.path.with_suffix(f".{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
            with os.fdopen(fd, "wb") as handle:
                _pickler(handle).dump(header)
                _pickler(handle).dump(model)
            os.replace(temp, self.path)
        except Exception:  # an unwritable directory, a model that does not pickle
            _remove(temp)


def options_key(strict: bool = False, groups: Iterable[str] | None = None,
                limits: Limits = DEFAULT_LIMITS) -> tuple[str, ...]:
    """What of a check's options, and of the environment, a model depends on (the includes
    allowed outside the runbook's tree, the connections file named)."""
    return (f"strict {strict}", f"groups {sorted(groups or ())}", f"limits {limits}",
            *(f"{name} {os.environ.get(name, '')}" for name in ENVIRONMENT))


def read(file: str, limit: int = DEFAULT_LIMITS.max_bytes) -> bytes | None:
    """The bytes of `file` if it is a regular file of at most `limit` bytes; None otherwise
    (its check says why)."""
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data if len(data) <= limit else None


def slot(file: str, content: bytes, key: Iterable[str]) -> Slot | None:
    """The slot of `file` read as `content`, checked with the options `key` (options_key),
    when models are kept in this process."""
    if _directory is None:
        return None
    where = cache.fingerprint(f"{os.getcwd()}\0{file}".encode(errors="surrogateescape"))
    return Slot(_directory / f"{where}.pickle", _salt(tuple(key)), cache.fingerprint(content))


def kept(file: str | os.PathLike[str], kind: type) -> Any:
    """The model kept for `file` as it is now, if it is a `kind` checked with the default
    options; None otherwise. Without the YAML reader, the schema or the builder: a command
    that finds its model here imports none of them."""
    name = os.fspath(file)
    content = read(name) if _directory is not None else None
    place = slot(name, content, options_key()) if content is not None else None
    found = place.load() if place is not None else None
    return found if isinstance(found, kind) else None


def _unpickled(handle: Any, slot: Slot) -> Any:
    unpickler = _pickle().Unpickler

    info = os.fstat(handle.fileno())
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        return None  # not ours alone: unpickling it could run anyone's code
    header = unpickler(handle).load()
    if not isinstance(header, tuple) or header[:3] != (FORMAT, slot.salt, slot.content_hash):
        return None
    if any(cache.file_fingerprint(dep) != expected for dep, expected in header[3].items()):
        return None
    return unpickler(handle).load()


_salts: dict[tuple[str, ...], str] = {}


def _salt(extra: tuple[str, ...]) -> str:
    found = _salts.get(extra)
    if found is None:
        found = _salts[extra] = cache.fingerprint("\n".join([*_code_stamps(), *extra]).encode())
    return found


def _code_stamps() -> list[str]:
    """What the models' code is: the Python and engine versions, and each source file and
    schema that builds or checks a model, by size and modification time."""
    from engine import __version__

    engine = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parts = [f"format {FORMAT}", __version__, sys.implementation.cache_tag or sys.version]
    found: list[tuple[str, int, int]] = []
    _stamps(engine, found, recurse=False)
    for folder in (*(os.path.join(engine, name) for name in _CODE), os.path.join(os.path.dirname(engine), "schemas"),
                   os.path.join(engine, "schemas")):
        _stamps(folder, found, recurse=True)
    return parts + [f"{path}:{size}:{mtime}" for path, size, mtime in sorted(found)]


def _stamps(folder: str, found: list[tuple[str, int, int]], *, recurse: bool) -> None:
    """(path, size, mtime) of each .py and .json file in `folder` (and below, with `recurse`)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if entry.name.endswith((".py", ".json")):
            info = entry.stat()
            found.append((entry.path, info.st_size, info.st_mtime_ns))
        elif recurse and entry.name != "__pycache__" and entry.is_dir():
            _stamps(entry.path, found, recurse=True)


def _pickle() -> Any:
    import importlib

    try:  # the C pickler alone: pickle.py's own import costs three times as much
        return importlib.import_module("_pickle")
    except ImportError:  # pragma: no cover - another Python
        return importlib.import_module("pickle")


def _pickler(handle: Any) -> Any:
    pickler = _pickle().Pickler(handle, protocol=5)
    pickler.dispatch_table = _REDUCERS
    return pickler


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _proxy(data: dict[str, Any]) -> MappingProxyType[str, Any]:
    return MappingProxyType(data)


def _reduce_proxy(proxy: MappingProxyType[str, Any]) -> tuple[Any, ...]:
    return _proxy, (dict(proxy),)


def _reduce_missing(_missing: object) -> str:
    return "MISSING"  # a global of the module MISSING's class is defined in: the same object


def _runbook(fields: dict[str, Any]) -> Runbook:
    return Runbook(**fields)


def _reduce_runbook(runbook: Runbook) -> tuple[Any, ...]:
    # `derived` is a cache of facts computed from the fields: the copy computes its own.
    return _runbook, ({name: getattr(runbook, name) for name in Runbook.__slots__ if name != "derived"},)


def _reduce_source(source: SourceMap) -> tuple[Any, ...]:
    if source.composed or source.file is None:
        return source.__reduce__()
    return _deferred_source, (source.text, source.file)  # its tree is composed if ever asked for


def _deferred_source(text: str, file: str) -> SourceMap:
    return SourceMap(None, text, partial(_compose, file), file)


def _compose(file: str, text: str) -> Any:
    from .loader import _compose_text_of  # only when a position is asked for

    return _compose_text_of(file, text)


def _reduce_record(record: tuple[Any, ...]) -> tuple[Any, ...]:
    # Made again by tuple.__new__, as a NamedTuple's own __new__ does, without calling that
    # Python function once a record: a fifth less to load, a third less to write.
    return tuple.__new__, (type(record), tuple(record))


class _Reducers(dict[type, Any]):
    """How the parts of a model that pickle cannot take by itself, or takes slowly, are kept:
    a read-only mapping as its dict, MISSING as the one MISSING there is, the model's records
    (NamedTuples) as their class and values, a Runbook without its `derived` cache, a source
    map not composed yet as its text and file (composed again, if asked for, without loading
    the YAML reader before)."""

    def __missing__(self, cls: type) -> Any:
        if not (issubclass(cls, tuple) and hasattr(cls, "_fields")):
            raise KeyError(cls)
        self[cls] = _reduce_record
        return _reduce_record


_REDUCERS = _Reducers({
    MappingProxyType: _reduce_proxy,
    type(MISSING): _reduce_missing,
    Runbook: _reduce_runbook,
    SourceMap: _reduce_source,
})
