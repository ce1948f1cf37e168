"""Lint rule for values in shell commands: a `{{ }}` inside the command's own quotes, a
heredoc, a comment or a nested shell, read as /bin/sh reads the command
(engine.templates.shell.template_slots)."""

from __future__ import annotations

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
    from engine.templates import shell

    for f in c.parsed:
        if f.path[-1] != "run" or f.step is None or not isinstance(f.step.spec, RunSpec):
            continue
        for start, expression, slot in shell.template_slots(f.text):
            if slot.kind != shell.PLAIN and not _RAW_OR_QUOTED.search(expression) and \
                    not _a_number(c.runbook, expression):
                yield Finding(f.path, _quoting_advice(expression, slot), at=line_col(f.text, start))


# The author chose (raw, quote), or the value is a number: nothing to say.
_RAW_OR_QUOTED = re.compile(r"\|\s*(raw|quote|int|float)\s*(\(.*\))?\s*$", re.DOTALL)


_INPUT = re.compile(r"^inputs\.(\w+)$")


def _a_number(runbook: Runbook, expression: str) -> bool:
    """`inputs.port` of an integer, number or boolean input: its value cannot hold shell syntax."""
    match = _INPUT.match(expression)
    spec = runbook.inputs.get(match.group(1)) if match else None
    return spec is not None and spec.type in ("integer", "number", "boolean")


def _quoting_advice(expression: str, slot: Any) -> str:
    from engine.templates import shell

    shown = f"{{{{ {expression} }}}}"
    plainly = "pass it through `env:` (env: {VALUE: \"" + shown + "\"}) and write \"$VALUE\" instead"
    if slot.kind in (shell.DOUBLE, shell.SINGLE):
        return (f"{shown} is inside the command's own quotes: the engine escapes it for them, but values "
                f"are quoted for you; drop the quotes around it, or {plainly}")
    if slot.kind in (shell.HEREDOC, shell.LITERAL):
        return (f"{shown} is inside a heredoc: it is escaped for it, and a value holding the line "
                f"{slot.detail} fails the step; {plainly}")
    if slot.kind == shell.COMMENT:
        return f"{shown} is inside a comment: a value with a line break fails the step; take it out"
    return f"{shown} {shell.nested_advice(slot.detail)}"

