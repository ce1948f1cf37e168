"""Standard-library modules that other standard-library modules import for functions a
command seldom calls, loaded when first used instead.

`dataclasses` imports `inspect` (and with it ast, dis, tokenize and linecache) to word the
signature of a class that has no docstring, and `copy` for `asdict`; `pathlib` imports
`ntpath` for Windows paths, `fnmatch` for `glob` and `match`, and `urllib.parse` (which
brings `ipaddress` to check a bracketed host) for `as_uri`. Together that was 42M of the
284M instructions a one-step `runbook run` executed, for code it never ran. The command
puts an empty module in each one's place; the first read of a name it does not have yet
runs the module's own code in it, once, so whoever uses one gets exactly the module (the
same object, its identity kept). A function another module takes from it as it is
imported (`from urllib.parse import quote_from_bytes`) is there beforehand, as a stand-in
that loads the module and calls the real one. The same goes for three patterns `json`
compiles at import for the pure-Python code its C accelerator replaces (2.3M): `re`'s
cache holds a stand-in for each, compiled at its first use. And for two the engine itself
imports for what few runs do: `queue`, for the items of a block that run at once
(engine/run/_driver.py), `shlex`, to quote a template's value (3.4M together), and
`heapq`, for the timers of an incident's updates and of a drill's clock.

Only the `runbook` command defers them (engine/cli/entry.py), before anything imports
them; a program that imports the engine keeps its imports as they are.
"""

from __future__ import annotations

import _thread
import importlib.util
import re
import sys
import types
from collections.abc import Callable, Mapping
from importlib.machinery import FrozenImporter, SourceFileLoader
from typing import Any

# Each module, and the functions its importers take from it at import (stand-ins until it loads).
MODULES: Mapping[str, tuple[str, ...]] = {"inspect": (), "copy": (), "ntpath": (), "fnmatch": (), "ipaddress": (),
                                          "urllib.parse": ("quote_from_bytes",), "queue": (), "shlex": (), "heapq": ()}
# Exactly as json/scanner.py (NUMBER_RE) and json/encoder.py (ESCAPE, ESCAPE_ASCII) compile them.
PATTERNS = ((r'(-?(?:0|[1-9]\d*))(\.\d+)?([eE][-+]?\d+)?', re.VERBOSE | re.MULTILINE | re.DOTALL),
            (r'[\x00-\x1f\\"\b\f\n\r\t]', 0), (r'([\\"]|[^\ -~])', 0))
# One lock for every deferred module: a thread that reads a name while another runs the
# module's code waits for the whole module, as an import would make it wait.
_LOCK = _thread.RLock()
_started: set[str] = set()


class _Deferred(types.ModuleType):
    """A module whose code has not run yet: it runs at the first read of a missing name."""

    def __getattr__(self, name: str) -> Any:
        if name == "__path__":  # what `from module import name` asks first: none of these is a package
            raise AttributeError(name)
        _load(self)
        if type(self) is _Deferred:  # its own code, still running, reads a name it has not set
            return types.ModuleType.__getattribute__(self, name)
        return getattr(self, name)


def _load(module: types.ModuleType) -> None:
    """Run a deferred module's code in it, once (a no-op once it has run, or while it runs)."""
    with _LOCK:
        if type(module) is not _Deferred or module.__name__ in _started:
            return
        _started.add(module.__name__)
        try:
            module.__spec__.loader.exec_module(module)  # type: ignore[union-attr]
        except BaseException:
            _started.discard(module.__name__)  # the error is the user's; the next read tries again
            raise
        module.__class__ = types.ModuleType  # type: ignore[assignment]


class _Pattern:
    """A compiled pattern that is compiled at its first use."""

    def __init__(self, source: str, flags: int) -> None:
        self._source, self._flags = source, flags
        self._compiled: re.Pattern[str] | None = None

    def __getattr__(self, name: str) -> Any:
        if self._compiled is None:
            # re.compile(source, flags) would return this stand-in from the cache; re.UNICODE,
            # which a str pattern has anyway, makes another key and compiles it.
            self._compiled = re.compile(self._source, self._flags | re.UNICODE)
        return getattr(self._compiled, name)


def _stand_in(module: types.ModuleType, name: str) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        _load(module)
        return getattr(module, name)(*args, **kwargs)  # the module's own code has replaced the stand-in

    call.__name__ = call.__qualname__ = name
    return call


def defer(modules: Mapping[str, tuple[str, ...]] = MODULES) -> None:
    """Put a deferred module in the place of each of `modules` not imported yet, and
    json's patterns in `re`'s cache if json is not imported yet."""
    cache = getattr(re, "_cache", None)
    if "json" not in sys.modules and isinstance(cache, dict):
        for source, flags in PATTERNS:
            cache.setdefault((str, source, flags), _Pattern(source, flags))
    for name, taken in modules.items():
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)  # a submodule's package is imported here
        if spec is None or spec.submodule_search_locations is not None or \
                not (spec.loader is FrozenImporter or isinstance(spec.loader, SourceFileLoader)):
            continue  # a package, a built-in or a compiled module (none of these here): imported as usual
        module = importlib.util.module_from_spec(spec)
        module.__class__ = _Deferred
        for function in taken:
            setattr(module, function, _stand_in(module, function))
        sys.modules[name] = module
        package, _, tail = name.rpartition(".")
        if package:  # as the import system does once it has loaded a submodule
            setattr(sys.modules[package], tail, module)
