"""Comparisons a template makes between a reference and literal values (lint checks them
against the choices a question offers).

`steps.assess.answers.cause == 'crashd'`, `'logs' != steps.assess.answers.cause`,
`steps.assess.answers.cause in ['logs', 'data']`, `... not in (...)`: which reference is
compared, how, and with which literals. The quick parser (`_quick_jinja`) reads most
expressions without importing Jinja; Jinja's own parser reads the rest. A template
that parses with neither has no comparisons here (RB105 reports it).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any, NamedTuple

__all__ = ["Comparison", "comparisons"]


class Comparison(NamedTuple):
    """One reference compared with literal values."""

    ref: tuple[str, ...]  # ("steps", "assess", "answers", "cause")
    op: str  # eq | ne | in | notin
    values: tuple[Any, ...]  # the literal(s) compared with


_OPS = ("eq", "ne", "in", "notin")
_SWAPPED = {"eq": "eq", "ne": "ne"}  # `'x' == ref` reads as `ref == 'x'`


@lru_cache(maxsize=4096)
def comparisons(text: str, *, expression: bool) -> tuple[Comparison, ...]:
    """Every reference compared with literals in `text` (a template, or a bare expression)."""
    from . import _quick_jinja as quick

    try:
        trees = [quick._parse_expression(text)] if expression else quick._parse_template(text)
    except (quick._GiveUp, RecursionError):
        trees = None
    if trees is not None:
        return tuple(c for tree in trees if not isinstance(tree, str) for c in _quick(tree))
    return tuple(_with_jinja(text, expression))


# -- the quick parser's tuple trees -----------------------------------------------------------


def _quick(node: Any) -> Iterator[Comparison]:
    from ._quick_jinja import _chain

    if node[0] == "cmp":
        left = node[1]
        for op, right in node[2]:
            found = _pair(_chain(left), _literal(left), op, _chain(right), _literal(right))
            if found is not None:
                yield found
            left = right
    for child in _subtrees(node):
        yield from _quick(child)


def _subtrees(node: Any) -> Iterator[Any]:
    kind = node[0]
    if kind == "cmp":
        yield node[1]
        yield from (right for _, right in node[2])
    elif kind == "list":
        yield from node[1]
    elif kind in ("filter", "test"):
        yield node[1]
        yield from node[3]
    elif kind == "bin":
        yield from node[2:4]
    elif kind == "item":
        yield from (c for c in (node[1], node[3]) if c is not None)
    elif kind not in ("const", "name"):  # attr, and, or, not, cond, neg, pos
        yield from (c for c in node[1:] if isinstance(c, tuple))


def _literal(node: Any) -> tuple[Any, ...] | None:
    if node[0] == "const":
        return (node[1],)
    if node[0] == "list" and all(item[0] == "const" for item in node[1]):
        return tuple(item[1] for item in node[1])
    return None


def _pair(left_ref: tuple[str, ...] | None, left_lit: tuple[Any, ...] | None, op: str,
          right_ref: tuple[str, ...] | None, right_lit: tuple[Any, ...] | None) -> Comparison | None:
    if op not in _OPS:
        return None
    if left_ref is not None and right_lit is not None:
        if op in ("eq", "ne") and len(right_lit) != 1:
            return None  # `x == [a, b]` compares with a list, not with its items
        return Comparison(left_ref, op, right_lit)
    if right_ref is not None and left_lit is not None and op in _SWAPPED and len(left_lit) == 1:
        return Comparison(right_ref, _SWAPPED[op], left_lit)
    return None


# -- Jinja's tree, for what the quick parser leaves to it -------------------------------------


def _with_jinja(text: str, expression: bool) -> Iterator[Comparison]:
    from jinja2 import TemplateSyntaxError, nodes

    from ._environment import environment
    from ._jinja_fast import parse_expression

    env = environment(False)
    try:
        tree = parse_expression(env, text) if expression else env.parse(text)
    except (TemplateSyntaxError, RecursionError):
        return
    # find_all() walks children only: wrap so a comparison at the root is found too.
    found = nodes.Template([nodes.Output([tree])]).find_all(nodes.Compare) if expression \
        else tree.find_all(nodes.Compare)
    for compare in found:
        left = compare.expr
        for operand in compare.ops:
            pair = _pair(_jinja_chain(left), _jinja_literal(left), operand.op,
                         _jinja_chain(operand.expr), _jinja_literal(operand.expr))
            if pair is not None:
                yield pair
            left = operand.expr


def _jinja_chain(node: Any) -> tuple[str, ...] | None:
    from jinja2 import nodes

    if isinstance(node, nodes.Name):
        return (node.name,)
    if isinstance(node, nodes.Getattr):
        inner = _jinja_chain(node.node)
        return (*inner, node.attr) if inner else None
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        inner = _jinja_chain(node.node)
        return (*inner, str(node.arg.value)) if inner else None
    return None


def _jinja_literal(node: Any) -> tuple[Any, ...] | None:
    from jinja2 import nodes

    if isinstance(node, nodes.Const):
        return (node.value,)
    if isinstance(node, nodes.List | nodes.Tuple):
        items = [i for i in node.items if isinstance(i, nodes.Const)]
        return tuple(i.value for i in items) if len(items) == len(node.items) else None
    return None
