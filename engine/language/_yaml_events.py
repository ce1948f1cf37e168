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
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

from ._yaml_nodes import _SPECIAL_FIRST, STR, FastLoader, Problem, scalar
from .limits import Limits

__all__ = ["UNUSUAL", "quick_data"]

# What quick_data returns when the document needs the exact path.
UNUSUAL: Any = object()

_RESOLVER = yaml.resolver.Resolver()
# Plain scalars that may be more than a string (`true`, `5`, `no`, `nginx`) -> their value:
# the same few words recur in every file, and a value depends on the text alone. The
# values are immutable, so one object can stand for every occurrence.
_PLAIN: dict[str, Any] = {}
_PLAIN_MAX = 20_000


class _Unusual(Exception):
    """Raised inside the walk: this document needs the node-based load."""


class _Walk:
    """What one walk keeps: the limits, and for anchors what aliases may expand to."""

    __slots__ = (
        "aliased_chars",
        "aliased_nodes",
        "allowed",
        "anchors",
        "end",
        "get",
        "limits",
        "max_depth",
        "open",
    )

    def __init__(self, get: Callable[[], Any], limits: Limits, size: int) -> None:
        self.get, self.max_depth, self.limits = get, limits.max_depth, limits
        self.allowed = max(limits.min_expansion, limits.max_expansion * size)  # as the node builder's budget
        self.end = 0  # where the last collection closed (an index into the text)
        self.anchors: dict[str, tuple[Any, int]] = {}  # anchor -> (value, characters it may hold)
        self.open: list[list[Any]] = []  # anchored collections being built: [anchor, start, characters]
        self.aliased_nodes = 0  # collection nodes re-built through aliases, as the node builder counts them
        self.aliased_chars = 0  # at most this many characters come from aliases


def quick_data(text: str, limits: Limits) -> Any:
    """The document's data, or UNUSUAL when it holds anything the fast path leaves to
    the node-based load (which then reports or builds it exactly)."""
    parser = FastLoader(text)
    walk = _Walk(parser.get_event, limits, len(text))
    try:
        data = _document(walk)
    except (_Unusual, Problem, yaml.YAMLError):
        return UNUSUAL
    finally:
        parser.dispose()
    return data if data is UNUSUAL or _within(walk, data, len(text)) else UNUSUAL


def _document(walk: _Walk) -> Any:
    get = walk.get
    get()  # stream start
    if get().__class__ is StreamEndEvent:
        return UNUSUAL  # empty: the exact path says so
    data = _value(get(), walk, 0)
    get()  # document end
    if get().__class__ is not StreamEndEvent:
        return UNUSUAL  # a second document: the exact path refuses it
    return data


def _within(walk: _Walk, data: Any, size: int) -> bool:
    """Whether the node builder's alias limits hold, or may not: then it decides.

    It counts every value built (aliases re-build theirs) and every character of every
    scalar. Without aliases no value is larger than its text and the budget (at least
    10x the text) cannot run out; with them, characters are bounded from above by the
    source span of each aliased value, and values counted exactly.
    """
    return not walk.anchors or size + walk.aliased_chars + _count(data) <= walk.allowed


def _count(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(map(_count, value.values()))
    if isinstance(value, list):
        return 1 + sum(map(_count, value))
    return 1


def _value(event: Any, walk: _Walk, depth: int) -> Any:
    cls = event.__class__
    if cls is ScalarEvent:
        value = _scalar(event)
        if event.anchor is not None:
            _anchor(walk, event.anchor, value, len(event.value))
        return value
    if cls is AliasEvent:
        return _alias(walk, event.anchor)
    if event.tag is not None or depth >= walk.max_depth:
        raise _Unusual
    anchor = event.anchor
    if anchor is not None:
        if anchor in walk.anchors or any(o[0] == anchor for o in walk.open):
            raise _Unusual  # a duplicate anchor: the exact path refuses it
        walk.open.append([anchor, event.start_mark.index, 0])
    if cls is MappingStartEvent:
        value = _mapping(walk, depth + 1)
    elif cls is SequenceStartEvent:
        value = _sequence(walk, depth + 1)
    else:
        raise _Unusual
    if anchor is not None:
        _, start, inner = walk.open.pop()
        _anchor(walk, anchor, value, walk.end - start + inner)
    return value


# Most scalars are plain strings with no anchor or tag: the two loops below take those
# in line (a call per scalar is a good part of the Python side of loading).


def _sequence(walk: _Walk, depth: int, _special: frozenset[str | None] = _SPECIAL_FIRST) -> list[Any]:
    get = walk.get
    items: list[Any] = []
    append = items.append
    while (item := get()).__class__ is not SequenceEndEvent:
        if item.__class__ is ScalarEvent and item.anchor is None and item.tag is None and (
                not item.implicit[0] or ((text := item.value) and text[0] not in _special)):
            append(item.value)
        else:
            append(_value(item, walk, depth))
    walk.end = _end(item)
    return items


def _mapping(walk: _Walk, depth: int, _special: frozenset[str | None] = _SPECIAL_FIRST) -> dict[Any, Any]:
    get = walk.get
    result: dict[Any, Any] = {}
    while (knode := get()).__class__ is ScalarEvent and knode.anchor is None:
        key = knode.value
        if knode.tag is not None or (knode.implicit[0] and (not key or key[0] in _special)):
            key = _scalar(knode)
        if key in result:
            raise _Unusual  # a duplicate: reported with its position
        item = get()
        if item.__class__ is ScalarEvent and item.anchor is None and item.tag is None and (
                not item.implicit[0] or ((text := item.value) and text[0] not in _special)):
            result[key] = item.value
        else:
            result[key] = _value(item, walk, depth)
    if knode.__class__ is not MappingEndEvent:
        raise _Unusual  # a key that is a mapping, a list, an alias or an anchor
    walk.end = _end(knode)
    return result


def _end(event: Any) -> int:
    """Where a collection's closing event ends (an index into the text)."""
    return int(event.end_mark.index)


def _anchor(walk: _Walk, anchor: str, value: Any, chars: int) -> None:
    if anchor in walk.anchors:
        raise _Unusual  # a duplicate anchor: the exact path refuses it
    walk.anchors[anchor] = (value, chars)


def _alias(walk: _Walk, anchor: str) -> Any:
    """A fresh copy of the anchored value, as the node builder re-builds it."""
    found = walk.anchors.get(anchor)
    if found is None:
        raise _Unusual  # undefined, or an alias inside its own anchor: the exact path says so
    value, chars = found
    walk.aliased_chars += chars
    for entry in walk.open:  # what an enclosing anchor's aliases will expand to
        entry[2] += chars
    if isinstance(value, (dict, list)):
        walk.aliased_nodes += _count(value)
        if walk.aliased_nodes > walk.limits.max_alias_nodes:
            raise _Unusual  # a "billion laughs": the exact path stops it, and says where
        value = _copy(value)
    if walk.aliased_chars > walk.allowed:
        raise _Unusual  # may expand past the budget: the exact path decides
    return value


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _scalar(event: Any, _special: frozenset[str | None] = _SPECIAL_FIRST) -> Any:
    """A scalar resolved as FastLoader and the builder resolve it (same tags, same values)."""
    if event.tag is not None:
        raise _Unusual
    value: str = event.value
    implicit = event.implicit
    if not implicit[0] or (value and value[0] not in _special):
        return value
    found = _PLAIN.get(value, _PLAIN)
    if found is not _PLAIN:
        return found
    tag = _RESOLVER.resolve(ScalarNode, value, implicit)
    # A merge key `<<` resolves to a tag scalar() refuses: the exact path merges it.
    found = value if tag == STR else scalar(ScalarNode(tag, value, event.start_mark, event.end_mark))
    if len(_PLAIN) < _PLAIN_MAX and len(value) <= 64:
        _PLAIN[value] = found
    return found
