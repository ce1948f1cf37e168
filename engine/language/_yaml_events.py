"""Plain data straight from libyaml's event stream: the loader's fast path.

Composing a node tree costs a Python object, two marks and a resolver call per value,
and a clean file never reads the tree (positions are wanted only for diagnostics). So a
document is first built from the parser's events, keeping nothing. Anything out of the
ordinary (an anchor or alias, a tag, a merge key, a duplicate or non-scalar key, a value
the constructor refuses, nesting at the limit, a syntax error) makes the fast path give
up, and the loader does the exact, node-based load instead (_yaml_nodes.py): every
message and position stays that path's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from yaml.events import (
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

from ._yaml_nodes import _SPECIAL_FIRST, STR, FastLoader, Limits, Problem, scalar

__all__ = ["UNUSUAL", "quick_data"]

# What quick_data returns when the document needs the exact path.
UNUSUAL: Any = object()

_RESOLVER = yaml.resolver.Resolver()


class _Unusual(Exception):
    """Raised inside the walk: this document needs the node-based load."""


def quick_data(text: str, limits: Limits) -> Any:
    """The document's data, or UNUSUAL when it holds anything the fast path leaves to
    the node-based load (which then reports or builds it exactly).

    Without aliases no value is larger than its text, so the expansion budget the
    node-based builder keeps (at least 10x the text) cannot run out here.
    """
    parser = FastLoader(text)
    get: Callable[[], Any] = parser.get_event
    try:
        get()  # stream start
        if get().__class__ is StreamEndEvent:
            return UNUSUAL  # empty: the exact path says so
        data = _value(get(), get, limits.max_depth, 0)
        get()  # document end
        if get().__class__ is not StreamEndEvent:
            return UNUSUAL  # a second document: the exact path refuses it
        return data
    except (_Unusual, Problem, yaml.YAMLError):
        return UNUSUAL
    finally:
        parser.dispose()


def _value(event: Any, get: Callable[[], Any], max_depth: int, depth: int) -> Any:
    cls = event.__class__
    if cls is ScalarEvent:
        return _scalar(event)
    if event.anchor is not None or event.tag is not None or depth >= max_depth:
        raise _Unusual
    if cls is MappingStartEvent:
        return _mapping(get, max_depth, depth + 1)
    if cls is SequenceStartEvent:
        items = []
        append = items.append
        while (item := get()).__class__ is not SequenceEndEvent:
            append(_value(item, get, max_depth, depth + 1))
        return items
    raise _Unusual  # an alias


def _mapping(get: Callable[[], Any], max_depth: int, depth: int) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    while (knode := get()).__class__ is ScalarEvent:
        key = _scalar(knode)
        if key in result:
            raise _Unusual  # a duplicate: reported with its position
        result[key] = _value(get(), get, max_depth, depth)
    if knode.__class__ is not MappingEndEvent:
        raise _Unusual  # a key that is a mapping or a list
    return result


def _scalar(event: Any, _special: frozenset[str | None] = _SPECIAL_FIRST) -> Any:
    """A scalar resolved as FastLoader and the builder resolve it (same tags, same values)."""
    if event.anchor is not None or event.tag is not None:
        raise _Unusual
    value: str = event.value
    implicit = event.implicit
    if not implicit[0] or (value and value[0] not in _special):
        return value
    tag = _RESOLVER.resolve(ScalarNode, value, implicit)
    if tag == STR:
        return value
    # A merge key `<<` resolves to a tag scalar() refuses: the exact path merges it.
    return scalar(ScalarNode(tag, value, event.start_mark, event.end_mark))
