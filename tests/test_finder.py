"""The `runbook` command's finder of the engine's own modules (engine/cli/_finder.py): the
spec the path finder would give, for plain modules only; anything else goes on to it."""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

from support import RUN_COMMAND, probe_one_step_run

from engine.cli._finder import EngineFinder

_SPECS = RUN_COMMAND + """\
from importlib.machinery import PathFinder, SourceFileLoader
from engine.cli import _finder

def facts(spec):
    return (spec.name, spec.origin, spec.cached, spec.has_location, spec.submodule_search_locations, spec.parent,
            type(spec.loader).__name__, spec.loader.path)

differ = []
for name, module in sorted(sys.modules.items()):
    if not name.startswith("engine.") or not isinstance(module.__spec__.loader, SourceFileLoader):
        continue
    expected = PathFinder.find_spec(name, sys.modules[name.rpartition(".")[0]].__path__)
    if (facts(module.__spec__), module.__file__, module.__cached__) != (facts(expected), expected.origin,
                                                                         expected.cached):
        differ.append(name)
print(_finder._installed is not None and _finder._installed.found > 40, differ)
"""


def test_a_run_finds_the_engine_modules_by_listing_with_the_spec_the_path_finder_gives(tmp_path: Path) -> None:
    probe_one_step_run(_SPECS, tmp_path)
    assert probe_one_step_run(_SPECS, tmp_path) == "True []"


def _same(one: importlib.machinery.ModuleSpec, other: importlib.machinery.ModuleSpec | None) -> bool:
    assert other is not None
    return (one.name, one.origin, one.cached, one.has_location, one.submodule_search_locations, type(one.loader),
            one.loader.path) == (  # type: ignore[union-attr]
        other.name, other.origin, other.cached, other.has_location, other.submodule_search_locations,
        type(other.loader), other.loader.path)  # type: ignore[union-attr]


def test_it_leaves_packages_extension_modules_other_names_and_missing_directories_to_the_path_finder(
        tmp_path: Path) -> None:
    for name in ("plain.py", "both.py", "fast.py", f"fast{importlib.machinery.EXTENSION_SUFFIXES[0]}"):
        (tmp_path / name).write_text("", encoding="utf-8")
    (tmp_path / "both").mkdir()
    (tmp_path / "both" / "__init__.py").write_text("", encoding="utf-8")
    finder, where = EngineFinder(), [str(tmp_path)]
    found = finder.find_spec("engine.x.plain", where)
    assert found is not None and _same(found, importlib.machinery.PathFinder.find_spec("engine.x.plain", where))
    assert [finder.find_spec(name, where) for name in ("engine.x.both", "engine.x.fast", "engine.x.none")] == [None] * 3
    assert finder.find_spec("other.plain", where) is None and finder.find_spec("engine", None) is None
    assert finder.find_spec("engine.x.plain", [str(tmp_path / "gone")]) is None
    assert finder.found == 1
