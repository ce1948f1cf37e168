"""A fast path for the templates runbooks write most: `{{ inputs.host }}`,
`{{ stdout | int }}`, `outputs.pct >= inputs.threshold`.

Jinja builds a new Context (merging a ChainMap of globals) on every render, which
costs more than the rendering itself. This module turns the parsed Jinja AST of
simple templates into closures over the same environment: attribute and item access
go through the sandbox's own `getattr`/`getitem`, filters and tests are the
environment's, undefined names are the environment's StrictUndefined, and output goes
through the same `finalize`. Any node outside the subset (calls, slices, blocks,
loops, filters that need the context) makes the compiler decline, and the caller
uses Jinja itself. Tests check both paths give the same results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._limits import BINARY, concat
from ._quick_eval import joined

Fn = Callable[[Mapping[str, Any]], Any]


class _Decline(Exception):
    """The template uses something outside the fast subset."""


# Jinja's node names for the operators, evaluated by the same bounded functions (_limits).
_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    node: BINARY[op] for node, op in (("Add", "+"), ("Sub", "-"), ("Mul", "*"), ("Div", "/"),
                                      ("FloorDiv", "//"), ("Mod", "%"), ("Pow", "**"))
}


class _Compiler:
    def __init__(self, env: Any) -> None:
        from jinja2 import nodes

        self.env = env
        self.nodes = nodes

    def expr(self, node: Any) -> Fn:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise _Decline(type(node).__name__)
        return method(node)

    def _Const(self, node: Any) -> Fn:
        value = node.value
        return lambda c: value

    def _Name(self, node: Any) -> Fn:
        if node.ctx != "load":
            raise _Decline("store")
        name, env = node.name, self.env

        def lookup(c: Mapping[str, Any]) -> Any:
            try:
                return c[name]
            except KeyError:
                if name in env.globals:
                    return env.globals[name]
                return env.undefined(name=name)

        return lookup

    def _Getattr(self, node: Any) -> Fn:
        inner, attr, getattr_ = self.expr(node.node), node.attr, self.env.getattr
        return lambda c: getattr_(inner(c), attr)

    def _Getitem(self, node: Any) -> Fn:
        if isinstance(node.arg, self.nodes.Slice):
            raise _Decline("slice")
        inner, key, getitem = self.expr(node.node), self.expr(node.arg), self.env.getitem
        return lambda c: getitem(inner(c), key(c))

    def _callable(self, table: Mapping[str, Any], node: Any) -> tuple[Any, list[Fn], dict[str, Fn]]:
        from jinja2.utils import _PassArg

        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise _Decline("dynamic arguments")
        func = table.get(node.name)
        if func is None or _PassArg.from_obj(func) is not None:
            raise _Decline(f"filter or test {node.name}")
        args = [self.expr(a) for a in node.args]
        kwargs = {kw.key: self.expr(kw.value) for kw in node.kwargs}
        return func, args, kwargs

    def _Filter(self, node: Any) -> Fn:
        if node.node is None:
            raise _Decline("filter block")
        inner = self.expr(node.node)
        func, args, kwargs = self._callable(self.env.filters, node)
        if not args and not kwargs:
            return lambda c: func(inner(c))
        return lambda c: func(inner(c), *[a(c) for a in args], **{k: v(c) for k, v in kwargs.items()})

    def _Test(self, node: Any) -> Fn:
        inner = self.expr(node.node)
        func, args, kwargs = self._callable(self.env.tests, node)
        return lambda c: func(inner(c), *[a(c) for a in args], **{k: v(c) for k, v in kwargs.items()})

    def _Compare(self, node: Any) -> Fn:
        from ._quick_eval import comparison

        return comparison(self.expr(node.expr), [(op.op, self.expr(op.expr)) for op in node.ops])

    def _And(self, node: Any) -> Fn:
        left, right = self.expr(node.left), self.expr(node.right)
        return lambda c: left(c) and right(c)

    def _Or(self, node: Any) -> Fn:
        left, right = self.expr(node.left), self.expr(node.right)
        return lambda c: left(c) or right(c)

    def _Not(self, node: Any) -> Fn:
        inner = self.expr(node.node)
        return lambda c: not inner(c)

    def _Neg(self, node: Any) -> Fn:
        inner = self.expr(node.node)
        return lambda c: -inner(c)

    def _Pos(self, node: Any) -> Fn:
        inner = self.expr(node.node)
        return lambda c: +inner(c)

    def _binary(self, node: Any) -> Fn:
        op = _BINARY[type(node).__name__]
        left, right = self.expr(node.left), self.expr(node.right)
        return lambda c: op(left(c), right(c))

    _Add = _Sub = _Mul = _Div = _FloorDiv = _Mod = _Pow = _binary

    def _Concat(self, node: Any) -> Fn:
        parts = [self.expr(n) for n in node.nodes]
        return lambda c: concat(*[p(c) for p in parts])

    def _CondExpr(self, node: Any) -> Fn:
        test, yes = self.expr(node.test), self.expr(node.expr1)
        if node.expr2 is None:
            env = self.env
            return lambda c: yes(c) if test(c) else env.undefined("the inline if-expression evaluated to false")
        no = self.expr(node.expr2)
        return lambda c: yes(c) if test(c) else no(c)

    def _List(self, node: Any) -> Fn:
        items = [self.expr(n) for n in node.items]
        return lambda c: [i(c) for i in items]

    def _Tuple(self, node: Any) -> Fn:
        items = [self.expr(n) for n in node.items]
        return lambda c: tuple(i(c) for i in items)

    def _Dict(self, node: Any) -> Fn:
        pairs = [(self.expr(p.key), self.expr(p.value)) for p in node.items]
        return lambda c: {k(c): v(c) for k, v in pairs}


def parse_expression(env: Any, text: str) -> Any:
    """Jinja's tree of a bare expression; TemplateSyntaxError if anything follows it."""
    from jinja2.parser import Parser

    parser = Parser(env, text, state="variable")
    expr = parser.parse_expression()
    if not parser.stream.eos:
        token = parser.stream.current
        parser.fail(f"unexpected {token.value!r} after the expression", token.lineno)
    return expr


def compile_expression(env: Any, source: str) -> Fn | None:
    """A closure evaluating a bare expression, or None (use Jinja)."""
    try:
        return _Compiler(env).expr(parse_expression(env, source))
    except Exception:  # outside the subset, or a syntax error Jinja reports its own way
        return None


def compile_parts(env: Any, source: str) -> list[str | Fn] | None:
    """A template made only of text and simple `{{ }}`, as text and closures; or None."""
    try:
        tree = env.parse(source)
    except Exception:
        return None
    compiler = _Compiler(env)
    nodes = compiler.nodes
    parts: list[str | Fn] = []
    try:
        for stmt in tree.body:
            if not isinstance(stmt, nodes.Output):
                return None
            for child in stmt.nodes:
                parts.append(child.data if isinstance(child, nodes.TemplateData) else compiler.expr(child))
    except _Decline:
        return None
    return parts


def compile_template(env: Any, source: str) -> Fn | None:
    """A closure rendering a template made only of text and simple `{{ }}`, or None."""
    parts = compile_parts(env, source)
    return None if parts is None else joined(parts, env.finalize or (lambda v: v))
