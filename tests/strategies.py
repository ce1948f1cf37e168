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


# -- hostile values for the hostile-input suite (tests/hostile) ------------------------------------

# Characters that mean something to a shell, to JSON, to URLs, to HTML or to a terminal,
# and some that are only hard to encode.
HOSTILE_ALPHABET = st.sampled_from(list("$`'\"\\;|&<>(){}[]*?!#~%=+,:/ \n\t\r") + ["\x1b", "\x7f", "é", "✓", "🔑",
                                                                                     "\u202e", "\u00a0"])

hostile_text = st.text(alphabet=HOSTILE_ALPHABET | st.characters(codec="utf-8", exclude_characters="\0"),
                       min_size=1, max_size=24)
"""A short string likely to break quoting of any kind (no NUL: no channel carries it)."""

secrets = st.tuples(st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N")), min_size=3, max_size=8),
                    st.text(alphabet=HOSTILE_ALPHABET.filter(lambda c: c not in "\n\r"), min_size=1, max_size=8),
                    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\0\n\r"), min_size=3,
                            max_size=8)).map("".join).filter(lambda s: len(set(s)) >= 5)
"""A secret as a person might choose it, with characters that quoting and escaping change:
long and varied enough that finding it anywhere is a leak."""

EVENTS = ["run.started", "phase.started", "phase.finished", "step.started", "step.attempt", "step.finished",
          "host.finished", "prompt.answered", "approval", "rollback.started", "rollback.finished", "notify.sent",
          "incident.acknowledged", "priority.changed", "escalation.fired", "hint.shown", "inject.fired",
          "clock.control", "run.finished", "nonsense"]
FIELDS = ["seq", "t", "elapsed", "step", "phase", "kind", "status", "duration", "attempts", "attempt", "hosts",
          "items", "stdout", "stderr", "error", "reason", "command", "outcome", "waited", "by", "channel", "ok",
          "next_in", "polling", "host", "exit_code", "run_id", "title", "file", "mode", "inputs", "answers",
          "resumed_from", "rollback_of", "message", "priority"]

journal_record = st.fixed_dictionaries(
    {"event": st.sampled_from(EVENTS)},
    optional={name: values | hostile_text for name in FIELDS},
)
"""A journal record as the engine might write it, or not: known events, any field, any value."""
