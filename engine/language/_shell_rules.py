"""Lint rule for values in shell commands: a `{{ }}` inside the command's own quotes, a
heredoc, a comment or a nested shell, read as /bin/sh reads the command."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

from .fields import line_col
from .model import Runbook, RunSpec
from .rules import WARNING, Finding, rule
from .runbook_check import RunbookCheck


@rule("RB140", "template-in-shell-quotes", WARNING,
      "A value inside the command's own quotes, a heredoc or a comment is escaped for that place, and one "
      "inside a nested shell (sh -c \"…\", ssh, eval, backticks) is refused unless it is a plain word: "
      "passing it through `env:` and writing \"$VAR\" is plain to read and safe everywhere.")
def _templates_in_shell_quotes(c: RunbookCheck) -> Iterator[Finding]:
    from engine.templates import _shell

    for f in c.parsed:
        if f.path[-1] != "run" or f.step is None or not isinstance(f.step.spec, RunSpec):
            continue
        for start, expression, slot in _shell_slots(f.text):
            if slot.kind != _shell.PLAIN and not _RAW_OR_QUOTED.search(expression) and \
                    not _a_number(c.runbook, expression):
                yield Finding(f.path, _quoting_advice(expression, slot), at=line_col(f.text, start))


_TEMPLATE_PARTS = re.compile(r"\{\{-?(?P<expr>.*?)-?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
# The author chose (raw, quote), or the value is a number: nothing to say.
_RAW_OR_QUOTED = re.compile(r"\|\s*(raw|quote|int|float)\s*(\(.*\))?\s*$", re.DOTALL)


_INPUT = re.compile(r"^inputs\.(\w+)$")


def _a_number(runbook: Runbook, expression: str) -> bool:
    """`inputs.port` of an integer, number or boolean input: its value cannot hold shell syntax."""
    match = _INPUT.match(expression)
    spec = runbook.inputs.get(match.group(1)) if match else None
    return spec is not None and spec.type in ("integer", "number", "boolean")


@functools.lru_cache(maxsize=4096)
def _shell_slots(text: str) -> tuple[tuple[int, str, Any], ...]:
    """(offset, expression, shell context) of every `{{ }}` of a `run` command, read as the
    shell reads it (`{% %}` and comments taken out)."""
    from engine.templates import _shell

    if _shell.MARK in text or not _shell.may_quote(text):
        return ()  # a NUL byte is another rule's business; nothing to quote, nothing to say
    skeleton, found = [], []
    last = 0
    for match in _TEMPLATE_PARTS.finditer(text):
        skeleton.append(text[last:match.start()])
        if match.group("expr") is not None:
            skeleton.append(_shell.MARK)
            found.append((match.start(), match.group("expr").strip()))
        last = match.end()
    skeleton.append(text[last:])
    slots = _shell.scan("".join(skeleton))
    return tuple((start, expr, slot) for (start, expr), slot in zip(found, slots, strict=True))


def _quoting_advice(expression: str, slot: Any) -> str:
    from engine.templates import _shell

    shown = f"{{{{ {expression} }}}}"
    plainly = "pass it through `env:` (env: {VALUE: \"" + shown + "\"}) and write \"$VALUE\" instead"
    if slot.kind in (_shell.DOUBLE, _shell.SINGLE):
        return (f"{shown} is inside the command's own quotes: the engine escapes it for them, but values "
                f"are quoted for you; drop the quotes around it, or {plainly}")
    if slot.kind in (_shell.HEREDOC, _shell.LITERAL):
        return (f"{shown} is inside a heredoc: it is escaped for it, and a value holding the line "
                f"{slot.detail} fails the step; {plainly}")
    if slot.kind == _shell.COMMENT:
        return f"{shown} is inside a comment: a value with a line break fails the step; take it out"
    return f"{shown} {_shell.nested_advice(slot.detail)}"

