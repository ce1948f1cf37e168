"""How the `runbook` command finds the engine's own modules: by one listing of each of its
package's directories, read when the package's first module is imported.

Python's path finder looks for every module in order among the built-in, the frozen and
the path's modules, and in the directory for an extension module of each suffix before
the source file: about 100k instructions a module, a run imports a hundred of the
engine's. This finder answers first for a plain module of the engine (a `.py` file with
no package or extension module of the same name beside it) with the spec the path finder
would give; anything else, and any directory it cannot list, goes on to the path finder.

Only the `runbook` command installs it (engine/cli/entry.py); a program that imports the
engine keeps its import system as it is.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib.machinery import EXTENSION_SUFFIXES, ModuleSpec, SourceFileLoader


class EngineFinder:
    """A meta path finder for the engine's plain modules."""

    def __init__(self) -> None:
        self.listings: dict[str, frozenset[str]] = {}
        self.found = 0  # modules it found (the rest went on to the path finder)

    def find_spec(self, name: str, path: Sequence[str] | None = None, target: object = None) -> ModuleSpec | None:
        if path is None or len(path) != 1 or not name.startswith("engine."):
            return None
        directory = path[0]
        names = self.listings.get(directory)
        if names is None:
            names = self.listings[directory] = _listing(directory)
        tail = name.rpartition(".")[2]
        if tail + ".py" not in names or tail in names or any(tail + s in names for s in EXTENSION_SUFFIXES):
            return None  # not there, or a package or an extension module the path finder prefers
        origin = f"{directory}/{tail}.py"
        spec = ModuleSpec(name, SourceFileLoader(name, origin), origin=origin)
        spec.has_location = True  # as spec_from_file_location makes it: __file__ and __cached__ set
        self.found += 1
        return spec


def _listing(directory: str) -> frozenset[str]:
    try:
        return frozenset(os.listdir(directory))
    except (OSError, TypeError, ValueError):  # gone, unreadable, or not a directory (a zip)
        return frozenset()


_installed: EngineFinder | None = None


def install() -> EngineFinder:
    """Put the finder before the path finder (once; later calls return the one in use)."""
    global _installed
    if _installed is None:
        _installed = EngineFinder()
        sys.meta_path.insert(0, _installed)
    return _installed
