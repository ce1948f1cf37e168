"""A PromQL query rendered so that a substituted value stays a value: inside a quoted
PromQL string (`job="{{ inputs.job }}"`) it is escaped as string text, so a label value
from an alert such as `api"} or vector(1)` cannot change the query; outside quotes a
value that holds a quote is refused. A query with `{% %}` blocks is rendered as written
(the blocks decide what is text), and says nothing about quoting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from engine.errors import TemplateError
from engine.templates import templating

_SUBSTITUTION = re.compile(r"\{\{(-?)(.*?)(-?)\}\}", re.DOTALL)
_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def render_query(text: str, ctx: Mapping[str, Any], where: object) -> str:
    """The query with every `{{ }}` value escaped for where it lands (see the module)."""
    if "{%" in text or "{#" in text:
        return templating.render(text, ctx, where=where)
    out: list[str] = []
    quote: str | None = None
    position = 0
    for found in _SUBSTITUTION.finditer(text):
        literal = text[position:found.start()]
        literal = literal.rstrip() if found.group(1) else literal
        quote = _scan(literal, quote)
        out.append(literal)
        value = templating.render("{{" + found.group(2) + "}}", ctx, where=where)
        out.append(_placed(value, quote, found.group(2).strip(), where))
        position = found.end()
        if found.group(3):
            rest = text[position:]
            position += len(rest) - len(rest.lstrip())
    out.append(text[position:])
    return "".join(out)


def _scan(literal: str, quote: str | None) -> str | None:
    """The quoting state after `literal`: None outside a string, else its quote character."""
    escaped = False
    for char in literal:
        if quote is None:
            if char in "\"'`":
                quote = char
        elif escaped:
            escaped = False
        elif char == "\\" and quote != "`":
            escaped = True
        elif char == quote:
            quote = None
    return quote


def _placed(value: str, quote: str | None, expression: str, where: object) -> str:
    if quote is None:
        if any(q in value for q in "\"'`"):
            raise TemplateError(f"`{{{{ {expression} }}}}` gives a value with a quote outside a quoted PromQL "
                                "string: it would change the query. Put it inside quotes "
                                "(label=\"{{ ... }}\") or pass only a number, a duration or a name", where=where)
        return value
    if quote == "`":
        if "`" in value:
            raise TemplateError(f"`{{{{ {expression} }}}}` gives a value with a backtick inside a raw "
                                "PromQL string: use double quotes around it", where=where)
        return value
    escaped = "".join(_ESCAPES.get(c, c) for c in value)
    return escaped.replace(quote, "\\" + quote)
