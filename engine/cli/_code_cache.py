"""The code the standard library generates while the engine is imported, compiled once.

`@dataclass` writes the source of each class's `__init__`, `__repr__`, `__eq__`, ... and
compiles it (an `exec` of a string) at every import; a NamedTuple compiles its `__new__`
(`eval` in collections) and each annotation given as a string (typing.ForwardRef); the
engine makes its events' record() and its journal's line functions the same way. A
one-step `runbook run` creates 49 dataclasses and 53 NamedTuples: that compiling (and the
collections its garbage set off) was 27% of its start-up (149M of 549M instructions).
Python keeps the bytecode of modules (.pyc) but not this, so the command does the same for
it: the code objects, keyed by their exact source text, live in one marshal file beside
the engine's .pyc files (the same place, the same trust, and like them not written under
PYTHONDONTWRITEBYTECODE), and are used instead of compiling the same text again. A code
object is what compile() makes of that text with the flags the standard library compiles
it with, so every class is exactly what it was.
Any problem reading or writing the file only means compiling, as before.

Only the `runbook` command installs it (engine/cli/entry.py); a program that imports the
engine as a library keeps its standard library as it is.
"""

from __future__ import annotations

import atexit
import importlib.machinery
import importlib.util
import marshal
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

# Past this many entries (the commands' code together is some hundreds; more is code of
# engine versions since replaced), the file starts over with what this process used:
# loading costs about 3 microseconds an entry, at every start, used or not.
MAX_ENTRIES = 1024
# The commands that keep their code in a file of their own: a one-step run uses 267
# entries of the 665 every command together makes (`runbook test` alone adds 227), and
# would load them all. Such a file starts over past twice what the process used (code of
# an engine since changed); the other commands share one file.
APART = frozenset({"run", "resume", "validate", "test", "drill"})
Key = tuple[str, str, int]  # mode, source text, optimization level


class CodeCache:
    """Code objects by source text: loaded from `path`, saved there if anything was added.
    `own`: the file is one command's, which keeps at most twice what a process used."""

    def __init__(self, path: Path | None, own: bool = False) -> None:
        self.path, self.own = path, own
        self.known: dict[Key, CodeType] = _load(path)
        self.used: dict[Key, CodeType] = {}
        self.added = False

    def code(self, source: str, mode: str) -> CodeType:
        """What compile(source, "<string>", mode) gives, without inheriting our flags."""
        key = (mode, source, sys.flags.optimize)
        found = self.known.get(key)
        if type(found) is not CodeType:  # not cached (or a damaged file held something else)
            # dont_inherit: dataclasses, collections and typing compile without __future__
            # flags; this module's `annotations` must not change their code.
            found = self.known[key] = compile(source, "<string>", mode, dont_inherit=True)
            self.added = True
        self.used[key] = found
        return found

    def save(self) -> None:
        """Write the file if this process compiled anything new (whole or not at all)."""
        if not self.added or self.path is None or sys.dont_write_bytecode:
            return
        limit = min(MAX_ENTRIES, 2 * len(self.used)) if self.own else MAX_ENTRIES
        entries = self.known if len(self.known) <= limit else self.used
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temp = self.path.with_suffix(f".{os.getpid()}.tmp")
            temp.write_bytes(marshal.dumps(entries))
            os.replace(temp, self.path)
        except (OSError, ValueError):
            pass


def _load(path: Path | None) -> dict[Key, CodeType]:
    if path is None:
        return {}
    try:
        data = marshal.loads(path.read_bytes())
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    return data if isinstance(data, dict) else {}


def default_path(command: str | None = None) -> Path | None:
    """Beside the engine's own .pyc files (PYTHONPYCACHEPREFIX and the cache tag honoured);
    a file of its own for a command in APART."""
    try:
        pyc = importlib.util.cache_from_source(str(Path(__file__).resolve().parent.parent / "__init__.py"))
    except NotImplementedError:  # no cache tag: this Python keeps no bytecode either
        return None
    own = f"{command}." if command in APART else ""
    return Path(pyc).with_name(f"generated-code.{own}{sys.implementation.cache_tag}.marshal")


_installed: CodeCache | None = None


def installed() -> bool:
    """Whether this process is the `runbook` command (its entry point installed the cache)."""
    return _installed is not None


def install(path: Path | None = None, command: str | None = None) -> CodeCache:
    """Use the cache for the code dataclasses, namedtuple and typing generate, from now on
    in this process (once; later calls return the cache in use): the file at `path`, or
    the command's (default_path)."""
    global _installed
    if _installed is not None:
        return _installed
    cache = _installed = CodeCache(path, own=False) if path is not None else \
        CodeCache(default_path(command), own=command in APART)
    import collections
    import typing

    collections.eval = _evaluator(cache)  # type: ignore[attr-defined]
    typing.compile = _compiler(cache)  # type: ignore[attr-defined]
    pending = {name: patch for name, patch in _PATCHES.items() if name not in sys.modules}
    for name in _PATCHES.keys() - pending.keys():
        _PATCHES[name](sys.modules[name], cache)
    if pending:  # most commands never import some of them: patch each when (if) it is
        sys.meta_path.insert(0, _PatchingFinder(cache, pending))
    atexit.register(cache.save)
    return cache


def _evaluator(cache: CodeCache) -> Any:
    def cached_eval(source: Any, *namespaces: Any) -> Any:
        return eval(cache.code(source, "eval") if isinstance(source, str) else source, *namespaces)

    return cached_eval


def _compiler(cache: CodeCache) -> Any:
    def cached_compile(source: Any, filename: Any, mode: str, *args: Any, **kwargs: Any) -> Any:
        if isinstance(source, str) and filename == "<string>" and not args and not kwargs:
            return cache.code(source, mode)
        return compile(source, filename, mode, *args, **kwargs)

    return cached_compile


def _patch_exec(module: ModuleType, cache: CodeCache) -> None:
    def cached_exec(source: Any, *namespaces: Any) -> None:
        exec(cache.code(source, "exec") if isinstance(source, str) else source, *namespaces)

    # A global of the module shadows the builtin for its code alone.
    module.exec = cached_exec  # type: ignore[attr-defined]


def _give_code_cache(module: ModuleType, cache: CodeCache) -> None:
    """For a module that asks its `code_cache` for code (and decides by it what to make)."""
    module.code_cache = cache.code  # type: ignore[attr-defined]


# The modules that generate code, and how each is given the cache: dataclasses, the
# executors' records' __init__ (engine/executors/base.py) and the events' record()
# (engine/run/_event_code.py) exec source text; the journal's line functions
# (engine/run/journal_writer.py) ask for the code, and are made from a class's first
# line once it costs a look-up.
_PATCHES: dict[str, Callable[[ModuleType, CodeCache], None]] = {
    "dataclasses": _patch_exec, "engine.executors.base": _patch_exec, "engine.run._event_code": _patch_exec,
    "engine.run.journal_writer": _give_code_cache}


class _PatchingFinder:
    """Finds the modules of `pending` as usual, and patches each right after it is executed."""

    def __init__(self, cache: CodeCache, pending: dict[str, Callable[[ModuleType, CodeCache], None]]) -> None:
        self.cache, self.pending = cache, pending

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name not in self.pending:
            return None
        patch = self.pending.pop(name)
        if not self.pending:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader, cache = spec.loader, self.cache
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            # Before its code runs, for the code it generates meanwhile (base.py's classes);
            # and after, for a name its code sets (journal_writer's code_cache = None).
            patch(module, cache)
            run(module)
            patch(module, cache)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec
