"""Evaluating the quick path's trees (see `_quick_jinja`) as our Jinja environment would.

The sandbox's rules, strict undefined names and attributes, our filters and tests, and
the same `finalize` on output; a tree using anything else (Jinja's own filters or
tests, its globals) is declined at compile time, and Jinja renders it.
"""

from __future__ import annotations

import operator
import types
from collections import abc, deque
from collections.abc import Callable, Mapping
from typing import Any

from ._limits import BINARY, MAX_SIZE, grown
from ._quick_jinja import Fn, Node, _GiveUp, _parse_expression, _parse_template


class UndefinedError(Exception):
    """Named like Jinja's, so messages read the same whichever path rendered."""


class SecurityError(Exception):
    """Named like Jinja's sandbox error."""


def _type_name(obj: Any) -> str:
    if obj is None:
        return "None"
    module = type(obj).__module__
    name = type(obj).__name__
    return f"{name} object" if module == "builtins" else f"{module}.{name} object"


# Jinja's ImmutableSandboxedEnvironment rules (jinja2.sandbox): attributes that mutate
# known containers, and internals of functions, types, frames and generators, are
# refused. A test checks these against Jinja's own predicates.
_MUTATING: tuple[tuple[Any, frozenset[str]], ...] = (
    (abc.MutableSet, frozenset({"add", "clear", "difference_update", "discard", "pop", "remove",
                                "symmetric_difference_update", "update"})),
    (abc.MutableMapping, frozenset({"clear", "pop", "popitem", "setdefault", "update"})),
    (abc.MutableSequence, frozenset({"append", "clear", "pop", "reverse", "insert", "sort", "extend", "remove"})),
    (deque, frozenset({"append", "appendleft", "clear", "extend", "extendleft", "pop", "popleft", "remove",
                       "rotate"})),
)
_INTERNAL_TYPES = (types.CodeType, types.TracebackType, types.FrameType)
_INTERNAL_ATTRIBUTES = {types.GeneratorType: {"gi_frame", "gi_code"}, types.CoroutineType: {"cr_frame", "cr_code"},
                        types.AsyncGeneratorType: {"ag_code", "ag_frame"}}


def unsafe(obj: Any, attribute: str) -> bool:
    """Whether the sandbox refuses `obj.attribute`."""
    if attribute.startswith("_") or isinstance(obj, _INTERNAL_TYPES):
        return True
    if isinstance(obj, type) and attribute == "mro":
        return True
    for kind, internal in _INTERNAL_ATTRIBUTES.items():
        if isinstance(obj, kind) and attribute in internal:
            return True
    for kind, mutating in _MUTATING:
        if isinstance(obj, kind):
            return attribute in mutating
    return False


def _safe(obj: Any, attribute: str, value: Any) -> Any:
    if unsafe(obj, attribute):
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe.")
    return value


def _getattr(obj: Any, attribute: str) -> Any:
    # A dict first: isinstance(obj, Mapping) is a Python-level call (ABCMeta) for one.
    if type(obj) is dict or isinstance(obj, Mapping):
        try:
            return obj[attribute]  # a key wins over a method of the same name
        except (KeyError, TypeError):
            pass
    try:
        value = getattr(obj, attribute)
    except AttributeError:
        try:
            return obj[attribute]
        except (TypeError, LookupError):
            pass
    else:
        return _safe(obj, attribute, value)
    raise UndefinedError(f"{_type_name(obj)!r} has no attribute {attribute!r}")


def _name_attr(name: str, key: str) -> Fn:
    """`inputs.host`, `state.n` (most of what templates read): the name's lookup and the
    attribute in one call, not two; what is not a dict's key goes through _getattr."""

    def name_attr(c: Mapping[str, Any]) -> Any:
        try:
            obj = c[name]
        except KeyError:
            raise UndefinedError(f"{name!r} is undefined") from None
        if type(obj) is dict:
            try:
                return obj[key]
            except KeyError:
                pass
        return _getattr(obj, key)

    return name_attr


def _getitem(obj: Any, key: Any) -> Any:
    try:
        return obj[key]
    except (TypeError, LookupError):
        if isinstance(key, str):
            try:
                value = getattr(obj, key)
            except AttributeError:
                pass
            else:
                return _safe(obj, key, value)
    what = "attribute" if isinstance(key, str) else "element"
    raise UndefinedError(f"{_type_name(obj)!r} has no {what} {key!r}")


_BINARY = BINARY  # the same bounded operators as Jinja's path (see _limits)
_CMP: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "gteq": operator.ge,
    "lt": operator.lt, "lteq": operator.le, "in": lambda a, b: a in b, "notin": lambda a, b: a not in b,
}


def comparison(first: Fn, ops: list[tuple[str, Fn]]) -> Fn:
    """`a < b <= c` as Jinja compiles it: Python's chained comparison. `ops` pairs an
    operator name as in Jinja's tree (eq, ne, gt, gteq, lt, lteq, in, notin) with a side."""
    pairs = [(_CMP[op], fn) for op, fn in ops]
    if len(pairs) == 1:
        (op, right), = pairs
        return lambda c: op(first(c), right(c))

    def chained(c: Mapping[str, Any]) -> Any:
        left = first(c)
        for op_, right_fn in pairs:
            right_value = right_fn(c)
            if not op_(left, right_value):
                return False
            left = right_value
        return True

    return chained


class _Evaluator:
    """Turns a tree into closures; declines filters and tests that are not ours."""

    def __init__(self, filters: Mapping[str, Callable[..., Any]], tests: Mapping[str, Callable[..., Any]],
                 globals_: frozenset[str]) -> None:
        self.filters, self.tests, self.globals = filters, tests, globals_

    def build(self, node: Node) -> Fn:
        method = getattr(self, "_" + node[0])
        fn: Fn = method(node)
        return fn

    def _const(self, node: Node) -> Fn:
        value = node[1]
        return lambda c: value

    def _name(self, node: Node) -> Fn:
        name = node[1]
        if name in self.globals:
            raise _GiveUp  # range, dict, ...: Jinja's own
        def lookup(c: Mapping[str, Any]) -> Any:
            try:
                return c[name]
            except KeyError:
                raise UndefinedError(f"{name!r} is undefined") from None
        return lookup

    def _attr(self, node: Node) -> Fn:
        inner, key = self.build(node[1]), node[2]
        if node[1][0] == "name":
            return _name_attr(node[1][1], key)
        return lambda c: _getattr(inner(c), key)

    def _item(self, node: Node) -> Fn:
        inner = self.build(node[1])
        if node[3] is None:
            key = node[2]
            return lambda c: _getitem(inner(c), key)
        index = self.build(node[3])
        return lambda c: _getitem(inner(c), index(c))

    def _call(self, table: Mapping[str, Callable[..., Any]], node: Node) -> tuple[Callable[..., Any], Fn, list[Fn]]:
        func = table.get(node[2])
        if func is None:
            raise _GiveUp  # one of Jinja's: Jinja runs it
        return func, self.build(node[1]), [self.build(a) for a in node[3]]

    def _filter(self, node: Node) -> Fn:
        func, inner, args = self._call(self.filters, node)
        if not args:
            return lambda c: func(inner(c))
        return lambda c: func(inner(c), *[a(c) for a in args])

    def _test(self, node: Node) -> Fn:
        func, inner, args = self._call(self.tests, node)
        if node[4]:
            return lambda c: not func(inner(c), *[a(c) for a in args])
        return lambda c: func(inner(c), *[a(c) for a in args])

    def _cmp(self, node: Node) -> Fn:
        return comparison(self.build(node[1]), [(op, self.build(right)) for op, right in node[2]])

    def _bin(self, node: Node) -> Fn:
        op, left, right = _BINARY[node[1]], self.build(node[2]), self.build(node[3])
        return lambda c: op(left(c), right(c))

    def _and(self, node: Node) -> Fn:
        left, right = self.build(node[1]), self.build(node[2])
        return lambda c: left(c) and right(c)

    def _or(self, node: Node) -> Fn:
        left, right = self.build(node[1]), self.build(node[2])
        return lambda c: left(c) or right(c)

    def _not(self, node: Node) -> Fn:
        inner = self.build(node[1])
        return lambda c: not inner(c)

    def _neg(self, node: Node) -> Fn:
        inner = self.build(node[1])
        return lambda c: -inner(c)

    def _pos(self, node: Node) -> Fn:
        inner = self.build(node[1])
        return lambda c: +inner(c)

    def _cond(self, node: Node) -> Fn:
        if node[3] is None:
            raise _GiveUp  # Jinja yields a lenient Undefined (renders as ""): its business
        then, test, other = self.build(node[1]), self.build(node[2]), self.build(node[3])
        return lambda c: then(c) if test(c) else other(c)

    def _list(self, node: Node) -> Fn:
        items = [self.build(n) for n in node[1]]
        return lambda c: [i(c) for i in items]


def compile_expression(text: str, evaluator: _Evaluator) -> Fn | None:
    try:
        return evaluator.build(_parse_expression(text))
    except (_GiveUp, RecursionError, KeyError):
        return None


def compile_parts(text: str, evaluator: _Evaluator) -> list[str | Fn] | None:
    """The template as text and compiled expressions, in order; None if Jinja must decide."""
    try:
        parsed = _parse_template(text)
        if parsed is None:
            return None
        return [p if isinstance(p, str) else evaluator.build(p) for p in parsed]
    except (_GiveUp, RecursionError, KeyError):
        return None


def compile_template(text: str, evaluator: _Evaluator,
                     finalize: Callable[[Any], Any]) -> Callable[[Mapping[str, Any]], str] | None:
    parts = compile_parts(text, evaluator)
    return None if parts is None else joined(parts, finalize)


def joined(parts: list[Any], finalize: Callable[[Any], Any]) -> Callable[[Mapping[str, Any]], str]:
    """A renderer of compiled template parts: text as it is, expressions finalized, joined."""
    if len(parts) == 1 and not isinstance(parts[0], str):
        return _single(parts[0], finalize)

    def render(c: Mapping[str, Any]) -> str:
        out = [p if isinstance(p, str) else str(finalize(p(c))) for p in parts]
        if len(out) > 1 and sum(map(len, out)) > MAX_SIZE:
            grown(sum(map(len, out)), "the rendered text")
        return "".join(out)

    return render


def _single(part: Fn, finalize: Callable[[Any], Any]) -> Callable[[Mapping[str, Any]], str]:
    """The renderer of a template that is one expression (`{{ state.n }}`, a simulated
    command's usual output): no list to build and join. Only joining can grow text past
    MAX_SIZE here (each value is bounded by its own operators), so there is no check."""

    def render(c: Mapping[str, Any]) -> str:
        return str(finalize(part(c)))

    return render


def evaluator(filters: Mapping[str, Callable[..., Any]], tests: Mapping[str, Callable[..., Any]],
              globals_: frozenset[str]) -> _Evaluator:
    return _Evaluator(filters, tests, globals_)
