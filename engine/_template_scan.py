"""Reading what a simple template references, without importing or running Jinja.

Lint needs, for every template and expression: the names it reads, the dotted
references (`steps.usage.outputs.pct`), the filters and tests it uses. Jinja's parser
gives that, but importing jinja2 is a third of `runbook validate`'s start-up and its
parse trees are slow to walk. This module parses a conservative subset of Jinja's
expression language (names, attributes, subscripts, literals, operators, filters,
tests, conditional expressions) inside `{{ }}` and plain text.

It only ever *accepts* what Jinja accepts: anything it is unsure of - `{% %}`, calls,
slices, whitespace control, unusual literals, and every syntax error - makes it give
up (None), and the caller asks Jinja, which remains the authority on errors. Tests
compare its answers with Jinja's on the shipped runbooks, a large generated corpus
and random expressions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<name>[a-zA-Z_][a-zA-Z0-9_]*)
  | (?P<float>\d+\.\d+)
  | (?P<int>[1-9][0-9]*|0)   # as Jinja: no leading zeros (`01` is two tokens there)
  | (?P<str>'[^'\\]*(?:\\.[^'\\]*)*'|"[^"\\]*(?:\\.[^"\\]*)*")
  | (?P<op>//|\*\*|==|!=|>=|<=|\}\}|[-+*/%~|.,()\[\]<>{}:])
""", re.VERBOSE | re.DOTALL)

_KEYWORDS = {"and", "or", "not", "in", "is", "if", "else"}
_CONSTANTS = {"true", "false", "none", "True", "False", "None"}
_COMPARE = {"==", "!=", ">", ">=", "<", "<="}


class _GiveUp(Exception):
    """Outside the subset, or not valid: let Jinja decide."""


@dataclass
class Scan:
    names: set[str] = field(default_factory=set)
    refs: list[tuple[str, ...]] = field(default_factory=list)
    filters: set[str] = field(default_factory=set)
    tests: set[str] = field(default_factory=set)
    private: list[str] = field(default_factory=list)


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
    """Recursive descent over Jinja's precedence levels; builds a tiny tuple AST."""

    def __init__(self, tokens: list[tuple[str, str]], scan: Scan) -> None:
        self.t, self.i, self.scan = tokens, 0, scan

    def peek(self) -> tuple[str, str]:
        return self.t[self.i] if self.i < len(self.t) else ("end", "")

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

    # expr: or ('if' or ('else' expr)?)?
    def expr(self) -> tuple:
        node = self.or_()
        if self.at("if"):
            self.take("if")
            test = self.or_()
            other = None
            if self.at("else"):
                self.take("else")
                other = self.expr()
            return ("cond", node, test, other) if other is not None else ("cond", node, test)
        return node

    def or_(self) -> tuple:
        node = self.and_()
        while self.at("or"):
            self.take("or")
            node = ("op", node, self.and_())
        return node

    def and_(self) -> tuple:
        node = self.not_()
        while self.at("and"):
            self.take("and")
            node = ("op", node, self.not_())
        return node

    def not_(self) -> tuple:
        if self.at("not"):
            self.take("not")
            return ("op", self.not_())
        return self.compare()

    def compare(self) -> tuple:
        node = self.math1()
        while True:
            k, v = self.peek()
            if (k == "op" and v in _COMPARE) or self.at("in"):
                self.i += 1
            elif self.at("not") and self.i + 1 < len(self.t) and self.t[self.i + 1] == ("name", "in"):
                self.i += 2
            else:
                return node
            node = ("op", node, self.math1())

    def math1(self) -> tuple:
        node = self.concat()
        while self.at("+") or self.at("-"):
            self.i += 1
            node = ("op", node, self.concat())
        return node

    def concat(self) -> tuple:
        node = self.math2()
        while self.at("~"):
            self.i += 1
            node = ("op", node, self.math2())
        return node

    def math2(self) -> tuple:
        node = self.power()
        while self.at("*") or self.at("/") or self.at("//") or self.at("%"):
            self.i += 1
            node = ("op", node, self.power())
        return node

    def power(self) -> tuple:
        node = self.unary()
        while self.at("**"):
            self.i += 1
            node = ("op", node, self.unary())
        return node

    def unary(self) -> tuple:
        if self.at("-") or self.at("+"):
            self.i += 1
            return self.filters(("op", self.unary()))
        return self.filters(self.postfix(self.primary()))

    def primary(self) -> tuple:
        k, v = self.peek()
        if k == "name":
            if v in _CONSTANTS:
                self.i += 1
                return ("const",)
            if v in _KEYWORDS:
                raise _GiveUp
            self.i += 1
            return ("name", v)
        if k in ("int", "float", "str"):
            self.i += 1
            return ("const",)
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

    def list_(self) -> tuple:
        self.take("[")
        items = []
        while not self.at("]"):
            items.append(self.expr())
            if not self.at(","):
                break
            self.take(",")
        self.take("]")
        return ("op", *items)

    def postfix(self, node: tuple) -> tuple:
        while True:
            if self.at("."):
                self.i += 1
                k, v = self.peek()
                if k != "name" and k != "int":
                    raise _GiveUp
                self.i += 1
                node = ("attr", node, v)
            elif self.at("["):
                self.i += 1
                k, v = self.peek()
                if k in ("str", "int") and self.i + 1 < len(self.t) and self.t[self.i + 1] == ("op", "]"):
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

    def filters(self, node: tuple) -> tuple:
        while True:
            if self.at("|"):
                self.i += 1
                name = self.take(kind="name")
                self.scan.filters.add(name)
                node = ("op", node, *self.arguments())
            elif self.at("is"):
                self.i += 1
                if self.at("not"):
                    self.i += 1
                name = self.take(kind="name")
                if name in _KEYWORDS:
                    raise _GiveUp
                self.scan.tests.add(name)
                if not self.at("("):
                    # Jinja takes a following name or literal as the test's argument
                    # (`x is divisibleby 3`, and `x is defined if y` as an error).
                    k, v = self.peek()
                    if (k in ("name", "int", "float", "str") and v not in ("else", "or", "and")) or v in ("[", "{"):
                        raise _GiveUp
                node = ("op", node, *self.arguments())
            else:
                return node

    def arguments(self) -> list[tuple]:
        if not self.at("("):
            return []
        self.take("(")
        args = []
        while not self.at(")"):
            if self.peek()[0] == "name" and self.i + 1 < len(self.t) and self.t[self.i + 1][1] == "=":
                raise _GiveUp  # keyword arguments: Jinja decides
            args.append(self.expr())
            if not self.at(","):
                break
            self.take(",")
        self.take(")")
        return args


def _chain(node: tuple) -> tuple[str, ...] | None:
    kind = node[0]
    if kind == "name":
        return (node[1],)
    if kind == "attr":
        inner = _chain(node[1])
        return (*inner, str(node[2])) if inner else None
    if kind == "item" and node[3] is None:
        inner = _chain(node[1])
        return (*inner, str(node[2])) if inner else None
    return None


def _walk(node: tuple, scan: Scan) -> None:
    """Collect names, references and private attributes, as the Jinja-based analysis does."""
    kind = node[0]
    if kind in ("attr", "item"):
        key = node[2]
        if isinstance(key, str) and key.startswith("_"):
            scan.private.append(key)
    chain = _chain(node)
    if chain is not None:
        scan.refs.append(chain)
        scan.names.add(chain[0])
        _private_in_chain(node, scan)
        return
    if kind == "attr":
        _walk(node[1], scan)
    elif kind == "item":
        _walk(node[1], scan)
        if node[3] is not None:
            _walk(node[3], scan)
    elif kind in ("op", "cond"):
        for child in node[1:]:
            if isinstance(child, tuple):
                _walk(child, scan)


def _private_in_chain(node: tuple, scan: Scan) -> None:
    while node[0] in ("attr", "item"):
        node = node[1]
        if node[0] in ("attr", "item") and isinstance(node[2], str) and node[2].startswith("_"):
            scan.private.append(node[2])


def _expression(tokens: list[tuple[str, str]], scan: Scan) -> None:
    parser = _Parser(tokens, scan)
    tree = parser.expr()
    parser.done()
    _walk(tree, scan)


def scan(text: str, *, expression: bool) -> Scan | None:
    """What the template (or bare expression) references; None if Jinja must decide."""
    result = Scan()
    try:
        if expression:
            tokens, _ = _tokens(text, 0, until_close=False)
            _expression(tokens, result)
            return result
        if "{%" in text or "{#" in text:
            return None
        pos = 0
        while True:
            begin = text.find("{{", pos)
            if begin < 0:
                return result
            if text.startswith("{{-", begin):
                return None
            tokens, pos = _tokens(text, begin + 2, until_close=True)
            if text[pos - 3:pos - 2] == "-" and tokens and tokens[-1] == ("op", "-"):
                return None  # `-}}` whitespace control
            _expression(tokens, result)
    except (_GiveUp, RecursionError):
        return None
