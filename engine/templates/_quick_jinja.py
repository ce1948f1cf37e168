"""The quick path for the templates runbooks write most, without importing Jinja.

`{{ inputs.host }}`, `{{ stdout | int }}`, `outputs.pct >= inputs.threshold`: most
templates are names, attributes, literals, operators and a few filters. Importing
jinja2 and building its environment costs more than a short run itself, and lint
only needs to know what a template reads. This module parses a conservative subset of
Jinja's expression language inside `{{ }}` and plain text, to

  * `scan`: the names, dotted references, filters, tests and private attributes a
    template uses (for lint), and
  * `compile_template` / `compile_expression`: closures that render or evaluate it
    exactly as our Jinja environment would (for runs), when every filter and test it
    uses is one of ours.

Evaluation lives in `_quick_eval`. It only ever accepts what Jinja accepts: anything it is unsure of - `{% %}`, calls,
slices, whitespace control, unusual literals, Jinja's own filters and tests, and every
syntax error - makes it decline (None), and the caller uses Jinja, the authority.
Evaluation follows the sandboxed environment: a key of a mapping wins over a method,
private attributes are refused, an undefined name or attribute is an error (strict).
Tests compare both halves with Jinja on the shipped runbooks, a generated corpus and
random expressions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Node = tuple[Any, ...]
Fn = Callable[[Mapping[str, Any]], Any]

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<name>[a-zA-Z_][a-zA-Z0-9_]*)
  | (?P<float>\d+\.\d+)
  | (?P<int>[1-9][0-9]*|0)   # as Jinja: no leading zeros (`01` is two tokens there)
  | (?P<str>'[^'\\]*(?:\\.[^'\\]*)*'|"[^"\\]*(?:\\.[^"\\]*)*")
  | (?P<op>//|\*\*|==|!=|>=|<=|\}\}|[-+*/%~|.,()\[\]<>{}:])
""", re.VERBOSE | re.DOTALL)

_KEYWORDS = {"and", "or", "not", "in", "is", "if", "else"}
_CONSTANTS = {"true": True, "false": False, "none": None, "True": True, "False": False, "None": None}
_COMPARE = {"==": "eq", "!=": "ne", ">": "gt", ">=": "gteq", "<": "lt", "<=": "lteq"}


class _GiveUp(Exception):
    """Outside the subset, or not valid: let Jinja decide."""


class Scan:
    """What a template reads: names, dotted references, filters, tests, private attributes."""

    __slots__ = ("filters", "names", "private", "refs", "tests")

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.refs: list[tuple[str, ...]] = []
        self.filters: set[str] = set()
        self.tests: set[str] = set()
        self.private: list[str] = []


# -- tokens and parsing ----------------------------------------------------------------------


def _tokens(text: str, start: int, *, until_close: bool) -> tuple[list[tuple[str, str]], int]:
    """Tokens from `start`; with until_close, stop after the `}}` that ends the block."""
    out: list[tuple[str, str]] = []
    pos, end = start, len(text)
    while pos < end:
        m = _TOKEN.match(text, pos)
        if m is None:
            raise _GiveUp
        pos = m.end()
        kind = m.lastgroup or ""
        value = m.group()
        if kind == "ws":
            continue
        if value == "}}":
            if until_close:
                return out, pos
            raise _GiveUp
        if kind == "str" and "\\" in value:
            raise _GiveUp  # escapes: leave the fine print to Jinja
        out.append((kind, value))
    if until_close:
        raise _GiveUp  # `{{` never closed
    return out, pos


class _Parser:
    """Recursive descent over Jinja's precedence levels; builds a typed tuple tree."""

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.t, self.i = tokens, 0

    def peek(self, ahead: int = 0) -> tuple[str, str]:
        j = self.i + ahead
        return self.t[j] if j < len(self.t) else ("end", "")

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        k, v = self.peek()
        if (value is not None and v != value) or (kind is not None and k != kind) or k == "end":
            raise _GiveUp
        self.i += 1
        return v

    def at(self, value: str) -> bool:
        k, v = self.peek()
        return v == value and k in ("op", "name")

    def done(self) -> None:
        if self.i != len(self.t):
            raise _GiveUp

    def expr(self) -> Node:
        node = self.or_()
        if self.at("if"):
            self.take("if")
            test = self.or_()
            other = None
            if self.at("else"):
                self.take("else")
                other = self.expr()
            return ("cond", node, test, other)
        return node

    def or_(self) -> Node:
        node = self.and_()
        while self.at("or"):
            self.take("or")
            node = ("or", node, self.and_())
        return node

    def and_(self) -> Node:
        node = self.not_()
        while self.at("and"):
            self.take("and")
            node = ("and", node, self.not_())
        return node

    def not_(self) -> Node:
        if self.at("not"):
            self.take("not")
            return ("not", self.not_())
        return self.compare()

    def compare(self) -> Node:
        first = self.math1()
        ops: list[tuple[str, Node]] = []
        while True:
            k, v = self.peek()
            if k == "op" and v in _COMPARE:
                self.i += 1
                op = _COMPARE[v]
            elif self.at("in"):
                self.i += 1
                op = "in"
            elif self.at("not") and self.peek(1) == ("name", "in"):
                self.i += 2
                op = "notin"
            else:
                return ("cmp", first, tuple(ops)) if ops else first
            ops.append((op, self.math1()))

    def _binary(self, ops: tuple[str, ...], inner: Callable[[], Node]) -> Node:
        node = inner()
        while any(self.at(op) for op in ops):
            op = self.take()
            node = ("bin", op, node, inner())
        return node

    def math1(self) -> Node:
        return self._binary(("+", "-"), self.concat)

    def concat(self) -> Node:
        return self._binary(("~",), self.math2)

    def math2(self) -> Node:
        return self._binary(("*", "/", "//", "%"), self.power)

    def power(self) -> Node:
        return self._binary(("**",), self.unary)

    def unary(self) -> Node:
        # Jinja: the sign binds tighter than filters (`-x | abs` is `(-x) | abs`)
        return self.filters(self.unary_plain())

    def unary_plain(self) -> Node:
        if self.at("-") or self.at("+"):
            sign = self.take()
            return ("neg" if sign == "-" else "pos", self.unary_plain())
        return self.postfix(self.primary())

    def primary(self) -> Node:
        k, v = self.peek()
        if k == "name":
            self.i += 1
            if v in _CONSTANTS:
                return ("const", _CONSTANTS[v])
            if v in _KEYWORDS:
                raise _GiveUp
            return ("name", v)
        if k == "int":
            self.i += 1
            return ("const", int(v))
        if k == "float":
            self.i += 1
            return ("const", float(v))
        if k == "str":
            self.i += 1
            return ("const", v[1:-1])
        if v == "(":
            self.i += 1
            node = self.expr()
            if self.at(","):
                raise _GiveUp  # tuples: rare; Jinja decides
            self.take(")")
            return node  # parentheses make no node in Jinja's tree either
        if v == "[":
            return self.list_()
        raise _GiveUp

    def list_(self) -> Node:
        self.take("[")
        items = []
        while not self.at("]"):
            items.append(self.expr())
            if not self.at(","):
                break
            self.take(",")
        self.take("]")
        return ("list", tuple(items))

    def postfix(self, node: Node) -> Node:
        while True:
            if self.at("."):
                self.i += 1
                k, v = self.peek()
                self.i += 1
                if k == "name":
                    node = ("attr", node, v)
                elif k == "int":
                    node = ("item", node, int(v), None)  # `a.0` is an item in Jinja
                else:
                    raise _GiveUp
            elif self.at("["):
                self.i += 1
                k, v = self.peek()
                if k in ("str", "int") and self.peek(1) == ("op", "]"):
                    self.i += 2
                    node = ("item", node, v[1:-1] if k == "str" else int(v), None)
                else:
                    index = self.expr()
                    self.take("]")
                    node = ("item", node, None, index)
            elif self.at("("):
                raise _GiveUp  # calls: Jinja decides
            else:
                return node

    def filters(self, node: Node) -> Node:
        while True:
            if self.at("|"):
                self.i += 1
                name = self.take(kind="name")
                node = ("filter", node, name, self.arguments())
            elif self.at("is"):
                self.i += 1
                negated = self.at("not")
                if negated:
                    self.i += 1
                name = self.take(kind="name")
                if name in _KEYWORDS:
                    raise _GiveUp
                if not self.at("("):
                    # Jinja takes a following name or literal as the test's argument
                    # (`x is divisibleby 3`, and `x is defined if y` as an error).
                    k, v = self.peek()
                    if (k in ("name", "int", "float", "str") and v not in ("else", "or", "and")) or v in ("[", "{"):
                        raise _GiveUp
                node = ("test", node, name, self.arguments(), negated)
            else:
                return node

    def arguments(self) -> tuple[Node, ...]:
        if not self.at("("):
            return ()
        self.take("(")
        args = []
        while not self.at(")"):
            if self.peek()[0] == "name" and self.peek(1)[1] == "=":
                raise _GiveUp  # keyword arguments: Jinja decides
            args.append(self.expr())
            if not self.at(","):
                break
            self.take(",")
        self.take(")")
        return tuple(args)


def _parse_expression(text: str) -> Node:
    tokens, _ = _tokens(text, 0, until_close=False)
    parser = _Parser(tokens)
    tree = parser.expr()
    parser.done()
    return tree


def _parse_template(text: str) -> list[str | Node] | None:
    """Text and `{{ }}` expressions, in order; None if Jinja must decide."""
    if "{%" in text or "{#" in text:
        return None
    parts: list[str | Node] = []
    pos = 0
    while True:
        begin = text.find("{{", pos)
        if begin < 0:
            if pos < len(text):
                parts.append(text[pos:])
            return parts
        if text.startswith("{{-", begin):
            return None
        if begin > pos:
            parts.append(text[pos:begin])
        tokens, pos = _tokens(text, begin + 2, until_close=True)
        if text[pos - 3:pos - 2] == "-" and tokens and tokens[-1] == ("op", "-"):
            return None  # `-}}` whitespace control
        parser = _Parser(tokens)
        parts.append(parser.expr())
        parser.done()


# -- analysis (lint) -------------------------------------------------------------------------


def _chain(node: Node) -> tuple[str, ...] | None:
    kind = node[0]
    if kind == "name":
        return (node[1],)
    if kind in ("attr", "item") and (kind == "attr" or node[3] is None):
        inner = _chain(node[1])
        return (*inner, str(node[2])) if inner else None
    return None


def _walk(node: Node, scan: Scan) -> None:
    """Collect what a tree reads, as the Jinja-based analysis does."""
    kind = node[0]
    if kind in ("attr", "item") and isinstance(node[2], str) and node[2].startswith("_"):
        scan.private.append(node[2])
    chain = _chain(node)
    if chain is not None:
        scan.refs.append(chain)
        scan.names.add(chain[0])
        _private_in_chain(node, scan)
        return
    for child in _children(node, scan):
        _walk(child, scan)


def _children(node: Node, scan: Scan) -> list[Node]:
    kind = node[0]
    if kind in ("attr",):
        return [node[1]]
    if kind == "item":
        return [node[1]] + ([node[3]] if node[3] is not None else [])
    if kind == "filter":
        scan.filters.add(node[2])
        return [node[1], *node[3]]
    if kind == "test":
        scan.tests.add(node[2])
        return [node[1], *node[3]]
    if kind == "cmp":
        return [node[1], *(right for _, right in node[2])]
    if kind == "bin":
        return [node[2], node[3]]
    if kind == "list":
        return list(node[1])
    if kind in ("const", "name"):
        return []
    return [c for c in node[1:] if isinstance(c, tuple)]  # and, or, not, neg, pos, cond


def _private_in_chain(node: Node, scan: Scan) -> None:
    while node[0] in ("attr", "item"):
        node = node[1]
        if node[0] in ("attr", "item") and isinstance(node[2], str) and node[2].startswith("_"):
            scan.private.append(node[2])


def scan(text: str, *, expression: bool) -> Scan | None:
    """What the template (or bare expression) references; None if Jinja must decide."""
    result = Scan()
    try:
        if expression:
            _walk(_parse_expression(text), result)
            return result
        parts = _parse_template(text)
        if parts is None:
            return None
        for part in parts:
            if not isinstance(part, str):
                _walk(part, result)
        return result
    except (_GiveUp, RecursionError):
        return None
