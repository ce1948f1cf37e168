"""Hypothesis strategies shared by the tests: JSON-like values and mutated documents."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

Data = dict[str, Any]

SCHEMA_WORDS = sorted(
    {"id", "run", "http", "manual", "wait", "notify", "set", "include", "ask", "stdin",
     "exit_codes", "until", "every", "timeout", "retries", "attempts", "delay", "backoff",
     "target", "hosts", "group", "port", "serial", "max_failures", "parallel", "confirm",
     "message", "role", "channel", "url", "status", "method", "min", "max", "median", "p90",
     "choices", "type", "step", "match", "at", "matrix", "after", "when", "rollback", "runbook",
     "kind", "version", "title", "timout", "Bad", "incident.impact"}
)
STRINGS = ["", "x", "5s", "1h30m", "30", "25%", "P1", "P9", "GET", "get", "disk-full", "Disk",
           "a_b", "runbook", "scenario", "default", "string", "{{ x }}", "steps.a.stdout == 'x'"]

values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.sampled_from([-1, 0, 1, 2, 3, 100, 255, 256, 599, 600, 65535, 65536]),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([0.5, 1.0, 2.0, -0.0]),
        st.sampled_from(STRINGS),
        st.text(max_size=6),
    ),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(SCHEMA_WORDS) | st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)

Path_ = tuple[str | int, ...]


def _paths(value: Any, path: Path_ = ()) -> list[Path_]:
    """Every path to a node of `value` (the root included)."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_paths(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_paths(item, (*path, index)))
    return found


def _parent(data: Any, path: Path_) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


Mutation = Callable[[Any, Path_, st.DataObject], None]


def _delete(data: Any, path: Path_, draw: st.DataObject) -> None:
    parent = _parent(data, path)
    del parent[path[-1]]


def _replace(data: Any, path: Path_, draw: st.DataObject) -> None:
    _parent(data, path)[path[-1]] = draw.draw(values, label="replacement")


def _add_key(data: Any, path: Path_, draw: st.DataObject) -> None:
    node = _parent(data, path)[path[-1]] if path else data
    if isinstance(node, dict):
        key = draw.draw(st.sampled_from(SCHEMA_WORDS), label="key")
        node[key] = draw.draw(values, label="value")


def _append(data: Any, path: Path_, draw: st.DataObject) -> None:
    node = _parent(data, path)[path[-1]] if path else data
    if isinstance(node, list):
        source = draw.draw(st.sampled_from(node), label="copy") if node else None
        node.append(copy.deepcopy(source) if draw.draw(st.booleans()) else draw.draw(values))


def _wrap(data: Any, path: Path_, draw: st.DataObject) -> None:
    parent = _parent(data, path)
    parent[path[-1]] = [parent[path[-1]]]


MUTATIONS: list[Mutation] = [_delete, _replace, _add_key, _append, _wrap]


@st.composite
def mutated(draw: st.DrawFn, base: Data) -> Data:
    """A copy of `base` after one to three edits at random places: a key deleted, an
    unknown or known key added, a value replaced by one of any type, an item appended,
    a value wrapped in a list."""
    data = copy.deepcopy(base)
    helper = draw(st.data())
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        mutation = draw(st.sampled_from(MUTATIONS))
        if not path and mutation is not _add_key:
            continue
        mutation(data, path, helper)
    return data
