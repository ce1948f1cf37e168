"""The layout holds: no import cycles between modules, packages import only down the layers,
private modules and names stay inside their package, and files stay small enough to read.

Read from the code's own imports (ast), deferred imports inside functions and
TYPE_CHECKING blocks included: a cycle hidden in a function still knots the design.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

ENGINE = Path(__file__).resolve().parent.parent / "engine"

# Layers, lowest first: a package may import its own modules and those of lower layers.
LAYERS = ("templates", "language", "executors", "fleet", "run", "simulation", "reporting", "service", "cli")
# Top-level modules: the base every layer may use, and the entry points above them all.
BASE = frozenset({"engine", "engine.errors", "engine.home"})  # `engine` itself: __version__
TOP = frozenset({"engine.testing", "engine.__main__"})
MAX_LINES = 450  # "about 400": a file longer than this has a seam to split along


class Edge(NamedTuple):
    source: str
    target: str
    names: tuple[str, ...]
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ENGINE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ENGINE.rglob("*.py"))}


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def edges_of(module: str, path: Path) -> Iterator[Edge]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "engine":
                    yield Edge(module, _known(alias.name), (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, module, path.name == "__init__.py")
            if target.split(".")[0] != "engine":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:  # `from package import module`
                    yield Edge(module, sub, (), node.lineno)
                else:
                    yield Edge(module, _known(target), (alias.name,), node.lineno)


def _known(name: str) -> str:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name


EDGES = [e for m, p in MODULES.items() for e in edges_of(m, p)]


def package_of(module: str) -> str:
    """The subsystem a module belongs to: `run` for engine.run.runner; the module itself at the top."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else module


def rank(module: str) -> float:
    if module in BASE:
        return -1
    if module in TOP or module == "engine.__init__":
        return len(LAYERS)
    package = package_of(module)
    return LAYERS.index(package) if package in LAYERS else len(LAYERS)


def cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for e in EDGES:
        if e.target != e.source and e.target in graph:
            graph[e.source].add(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def where(e: Edge) -> str:
    return f"{MODULES[e.source].relative_to(ENGINE.parent)}:{e.line}: {e.source} -> {e.target}"


def test_no_module_imports_itself_back_through_others() -> None:
    assert cycles() == []


def test_packages_import_only_their_own_layer_and_those_below() -> None:
    upward = [where(e) for e in EDGES
              if package_of(e.source) != package_of(e.target) and rank(e.target) > rank(e.source)]
    assert upward == []


def test_private_modules_and_names_stay_inside_their_package() -> None:
    def private(e: Edge) -> bool:
        leaf = e.target.rpartition(".")[2]
        return (leaf.startswith("_") and not leaf.startswith("__")) or any(
            n.startswith("_") and not n.startswith("__") for n in e.names)

    leaks = [where(e) for e in EDGES if package_of(e.source) != package_of(e.target) and private(e)]
    assert leaks == []


@pytest.mark.parametrize("package", LAYERS)
def test_every_package_says_what_it_owns_its_layer_and_its_public_names(package: str) -> None:
    init = ENGINE / package / "__init__.py"
    tree = ast.parse(init.read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree) or ""
    assert "Layer:" in doc, f"{init}: the docstring names the package's layer"
    names = [n for n in tree.body if isinstance(n, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets)]
    assert names, f"{init}: __all__ lists the package's public names"
    public = ast.literal_eval(names[0].value)
    for name in public:
        assert not name.startswith("_")
        assert f"engine.{package}.{name}" in MODULES or name in {n.id for a in tree.body if isinstance(
            a, ast.Assign) for n in a.targets if isinstance(n, ast.Name)} | {
            alias.asname or alias.name for i in tree.body if isinstance(i, ast.ImportFrom) for alias in i.names}, (
            f"{init}: __all__ names {name!r}, which the package does not have")


def test_no_engine_module_at_the_top_but_the_base_and_the_entry_points() -> None:
    loose = sorted(m for m in MODULES if m.count(".") == 1 and package_of(m) not in LAYERS
                   and m not in BASE | TOP)
    assert loose == []


def test_files_stay_short_enough_to_read() -> None:
    long = {str(p.relative_to(ENGINE.parent)): n for p in MODULES.values()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}
