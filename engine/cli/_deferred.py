"""Standard-library modules that other standard-library modules import for functions a
command seldom calls, loaded when first used instead.

`dataclasses` imports `inspect` (and with it ast, dis, tokenize and linecache) to word the
signature of a class that has no docstring, and `copy` for `asdict`; `pathlib` imports
`ntpath` for Windows paths and `fnmatch` for `glob` and `match`, and the `urllib.parse`
it imports brings `ipaddress` to check a bracketed host. Together that was 38M of the
284M instructions a one-step `runbook run` executed, for code it never ran. The command
puts an empty module in each one's place; the first read of a name it does not have yet
runs the module's own code in it, once, so whoever uses one gets exactly the module (the
same object, its identity kept).

Only the `runbook` command defers them (engine/cli/entry.py), before anything imports
them; a program that imports the engine keeps its imports as they are.
"""

from __future__ import annotations

import _thread
import importlib.util
import sys
import types
from importlib.machinery import FrozenImporter, SourceFileLoader
from typing import Any

MODULES = ("inspect", "copy", "ntpath", "fnmatch", "ipaddress")
# One lock for every deferred module: a thread that reads a name while another runs the
# module's code waits for the whole module, as an import would make it wait.
_LOCK = _thread.RLock()
_started: set[str] = set()


class _Deferred(types.ModuleType):
    """A module whose code has not run yet: it runs at the first read of a missing name."""

    def __getattr__(self, name: str) -> Any:
        with _LOCK:
            if type(self) is _Deferred and self.__name__ not in _started:
                _started.add(self.__name__)
                try:
                    self.__spec__.loader.exec_module(self)  # type: ignore[union-attr]
                except BaseException:
                    _started.discard(self.__name__)  # the error is the user's; the next read tries again
                    raise
                self.__class__ = types.ModuleType  # type: ignore[assignment]
            if type(self) is _Deferred:  # its own code, still running, reads a name it has not set
                return types.ModuleType.__getattribute__(self, name)
        return getattr(self, name)


def defer(names: tuple[str, ...] = MODULES) -> None:
    """Put a deferred module in the place of each of `names` not imported yet."""
    for name in names:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or not (spec.loader is FrozenImporter or isinstance(spec.loader, SourceFileLoader)):
            continue  # a built-in or compiled module (none of these here): imported as usual
        module = importlib.util.module_from_spec(spec)
        module.__class__ = _Deferred
        sys.modules[name] = module
