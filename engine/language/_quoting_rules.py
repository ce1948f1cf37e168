"""Lint rules for quoting traps: text that validates, reads right, and does something else
at run time. A backslash escape inside a template's string literal (`'\\1'` is chr(1)), an
inline `if` producing shell syntax in a command (quoted into one argument), and a `~/`
path that a quoted value leaves unexpanded. Each message says the fix."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .fields import Field, line_col
from .model import Runbook, RunSpec
from .rules import WARNING, Finding, rule
from .runbook_check import RunbookCheck

# A string literal inside `{{ }}` / `{% %}` (or a bare expression), and a `{{ }}` of a command.
_REGIONS = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", re.DOTALL)
_OCTAL = re.compile(r"\\[0-7]")
_EXPRESSION = re.compile(r"\{\{-?(?P<expr>.*?)-?\}\}", re.DOTALL)


def _literals(f: Field) -> Iterator[tuple[int, str]]:
    """(offset, text) of every string literal of the field's templates."""
    regions = [(0, len(f.text))] if f.expression and not f.braced else \
        [m.span() for m in _REGIONS.finditer(f.text)]
    for start, end in regions:
        for match in _LITERAL.finditer(f.text, start, end):
            yield match.start(), match.group(0)


@rule("RB141", "backslash-digit-in-template-string", WARNING,
      "Jinja reads backslash escapes in its strings as Python does: '\\1' is the character chr(1), "
      "not a backreference, and the step fails or does the wrong thing only at run time.")
def _octal_escapes(c: RunbookCheck) -> Iterator[Finding]:
    for f in c.parsed:
        if "\\" not in f.text:
            continue  # most fields: no backslash at all
        for offset, literal in _literals(f):
            escapes = [m for m in re.finditer(r"\\.", literal) if _OCTAL.fullmatch(m.group(0))]
            if escapes:
                found = escapes[0].group(0)
                yield Finding(f.path, (
                    f"{found!s} in the template string {literal} is the character chr({found[1]}), not a "
                    f"backreference: write \\{found} in the template (in a double-quoted YAML string, "
                    f"\\\\\\{found}), or \\\\g<{found[1]}>"), at=line_col(f.text, offset))


def _commands(c: RunbookCheck, needle: str) -> Iterator[tuple[Field, int, str]]:
    """(field, offset, expression) of every `{{ }}` of a `run` command holding `needle`."""
    for f in c.parsed:
        if needle in f.text and f.path[-1] == "run" and f.step is not None and isinstance(f.step.spec, RunSpec):
            for match in _EXPRESSION.finditer(f.text):
                yield f, match.start(), match.group("expr").strip()


_RAW = re.compile(r"\|\s*raw\s*$")
_SHELL_SYNTAX = re.compile(r"[\s|&;<>()$`*?]|^$")


@rule("RB142", "inline-if-in-command", WARNING,
      "A value is quoted as one argument: `{{ '--force' if c else '' }}` passes an empty argument when c "
      "is false (and fails without `else`), and `{{ '-a -l' if c }}` passes '-a -l' as one word.")
def _inline_if(c: RunbookCheck) -> Iterator[Finding]:
    for f, offset, expression in _commands(c, "if"):
        if _RAW.search(expression):
            continue
        bare = _LITERAL.sub(lambda m: "S" * len(m.group(0)), expression)
        branch = re.search(r"\bif\b", bare)
        if branch is None or not _LITERAL.match(expression):
            continue
        has_else = re.search(r"\belse\b", bare) is not None
        literals = [m.group(0)[1:-1] for m in _LITERAL.finditer(expression)]
        if has_else and not any(_SHELL_SYNTAX.search(text) for text in literals):
            continue  # `{{ 'json' if c else 'yaml' }}`: one word either way
        condition = expression[branch.end():].split(" else ")[0].strip()
        words = literals[0] or (literals[1] if len(literals) > 1 else "")
        test = condition if literals[0] else f"not ({condition})"
        yield Finding(f.path, (
            f"{{{{ {expression} }}}} is quoted into one argument: "
            + ("it fails the step when the condition is false (no else), " if not has_else else
               "an empty value is still an argument (''), and words or shell syntax stay one argument; ")
            + f"write {{% if {test} %}}{words}{{% endif %}} (text in the command, not a value)"
        ), at=line_col(f.text, offset))


_LITERAL_TILDE = re.compile(r"^(['\"])~[\w.-]*/")
_REF = re.compile(r"^(inputs|vars)\.(\w+)$")


def _tilde_value(runbook: Runbook, expression: str) -> str | None:
    """The `~/…` a command's value would hold: a literal, an input's default or a var's value."""
    literal = _LITERAL_TILDE.match(expression)
    if literal and _LITERAL.fullmatch(expression):
        return expression[1:-1]
    ref = _REF.match(expression)
    if ref is None:
        return None
    value = (runbook.inputs[ref.group(2)].default if ref.group(1) == "inputs" and ref.group(2) in runbook.inputs
             else runbook.vars.get(ref.group(2)) if ref.group(1) == "vars" else None)
    return value if isinstance(value, str) and re.match(r"~[\w.-]*/", value) else None


@rule("RB143", "tilde-in-quoted-value", WARNING,
      "The shell expands `~` only where it is unquoted: a value is quoted, so `~/backup` reaches the command "
      "as a directory literally named '~'.")
def _tilde(c: RunbookCheck) -> Iterator[Finding]:
    rb = c.runbook
    homes = any(isinstance(v, str) and v.startswith("~") for v in rb.vars.values()) or any(
        isinstance(i.default, str) and i.default.startswith("~") for i in rb.inputs.values())
    for f, offset, expression in _commands(c, "{{" if homes else "~"):
        if _RAW.search(expression):
            continue
        value = _tilde_value(c.runbook, expression)
        if value is not None:
            rest = value.split("/", 1)[1]
            yield Finding(f.path, (
                f"{{{{ {expression} }}}} is {value!r}: quoted, its '~' is not your home directory. Write the "
                f"home part in the command (\"$HOME\"/{rest or '…'}, or ~/{{{{ relative path }}}}), or add "
                "| raw if the value is yours and holds no shell syntax"), at=line_col(f.text, offset))
