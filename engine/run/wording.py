"""Conditions in words, for people: `incident.priority == 'P1'` reads "the priority is P1".

Escalation messages go to managers and stakeholders, who should not have to read Jinja.
The common shapes are spoken (comparisons, `in`, `and`/`or`/`not`, the names of the
template context, the filters that only convert a value); anything else is quoted
whole, on one line.
"""

from __future__ import annotations

from typing import Any

_OPS = {"eq": "is", "ne": "is not", "gt": "is above", "gteq": "is at least", "lt": "is below",
        "lteq": "is at most", "in": "is", "notin": "is not"}
_INCIDENT = {"priority": "the priority", "impact": "the impact", "urgency": "the urgency"}
_STEP_PARTS = {"outputs": "output", "answers": "answer"}
_NEUTRAL_FILTERS = frozenset({"int", "float", "string", "trim", "lower", "upper", "bool", "length", "count"})


class _Unspoken(Exception):
    """A shape that has no wording here: the expression is quoted instead."""


def one_line(text: str) -> str:
    """An expression on one line (a multi-line `when` must not be cut at its first line)."""
    return " ".join(text.split())


def describe(expression: str) -> str:
    """`expression` (a bare Jinja expression) in words, or quoted on one line."""
    try:
        return _say(_parse(expression))
    except _Unspoken:
        return f"`{one_line(expression)}` holds"


def _parse(expression: str) -> Any:
    import jinja2
    from jinja2 import nodes

    try:
        template = jinja2.Environment().parse("{{ (" + expression + ") }}")
    except jinja2.TemplateSyntaxError:
        raise _Unspoken from None
    body = template.body
    if len(body) != 1 or not isinstance(body[0], nodes.Output) or len(body[0].nodes) != 1:
        raise _Unspoken
    return body[0].nodes[0]


def _say(node: Any) -> str:
    from jinja2 import nodes

    if isinstance(node, nodes.And):
        return f"{_say(node.left)} and {_say(node.right)}"
    if isinstance(node, nodes.Or):
        return f"{_say(node.left)} or {_say(node.right)}"
    if isinstance(node, nodes.Not):
        return f"not ({_say(node.node)})"
    if isinstance(node, nodes.Compare):
        return _compare(node)
    return _value(node)


def _compare(node: Any) -> str:
    words, left = [], _value(node.expr)
    for operand in node.ops:
        if operand.op not in _OPS:
            raise _Unspoken
        right = _choices(operand.expr) if operand.op in ("in", "notin") else _value(operand.expr)
        words.append(f"{left} {_OPS[operand.op]} {right}")
        left = right
    return " and ".join(words)


def _choices(node: Any) -> str:
    from jinja2 import nodes

    if not isinstance(node, (nodes.List, nodes.Tuple)) or not node.items:
        return f"one of {_value(node)}"
    values = [_value(item) for item in node.items]
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


def _value(node: Any) -> str:
    from jinja2 import nodes

    if isinstance(node, nodes.Const):
        return _constant(node.value)
    if isinstance(node, nodes.Filter) and node.name in _NEUTRAL_FILTERS and node.node is not None:
        return _value(node.node) if node.name not in ("length", "count") else f"the number of {_value(node.node)}"
    if isinstance(node, (nodes.Getattr, nodes.Getitem, nodes.Name)):
        return _name(_path(node))
    raise _Unspoken


def _constant(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, str):
        return value if value.strip() and value == value.strip() else repr(value)
    if isinstance(value, (int, float)):
        return str(value)
    raise _Unspoken


def _path(node: Any) -> list[str]:
    from jinja2 import nodes

    if isinstance(node, nodes.Name):
        return [node.name]
    if isinstance(node, nodes.Getattr):
        return [*_path(node.node), node.attr]
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        return [*_path(node.node), str(node.arg.value)]
    raise _Unspoken


def _name(path: list[str]) -> str:
    head, rest = path[0], path[1:]
    if head == "incident" and len(rest) == 1 and rest[0] in _INCIDENT:
        return _INCIDENT[rest[0]]
    if head == "steps" and len(rest) == 3 and rest[1] in _STEP_PARTS:
        return f"the {_STEP_PARTS[rest[1]]} {rest[2]} of step {rest[0]}"
    if head == "steps" and len(rest) == 2:
        return f"the {rest[1].replace('_', ' ')} of step {rest[0]}"
    if head in ("vars", "inputs") and len(rest) == 1:
        return f"{'input' if head == 'inputs' else 'the value'} {rest[0]}"
    return ".".join(path)
