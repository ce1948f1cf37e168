"""Lint rules on values the schema cannot judge: a NUL byte where a command goes, a
duration too long for any clock, an input's regular expression, its default and its
sources, answers compared with a value their question never offers, and a JSON query
that does not parse."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import Any

from engine.templates.patterns import deferred

from .duration import MAX_TEXT
from .fields import Field, line_col, spot
from .model import MISSING, AskField, ManualSpec, Runbook, compile_pattern, too_long
from .rules import ERROR, Finding, rule
from .runbook_check import RunbookCheck

# Where a string goes to execve, a socket or an SSH channel: none of them carries a NUL.
_COMMAND_PARTS = (("run",), ("env",), ("http", "url"), ("http", "headers"))


def _to_command(f: Field) -> bool:
    if f.step is None:
        return f.path[:1] == ("targets",)
    sub = f.path[len(f.step.path):]
    return any(sub[: len(part)] == part for part in _COMMAND_PARTS)


@rule("RB134", "nul-byte", ERROR,
      "A NUL byte cannot be part of a command, its environment, a URL, a header or a host name: "
      "the step could only fail.")
def _nul_bytes(c: RunbookCheck) -> Iterator[Finding]:
    for f in c.fields:
        if "\x00" in f.text and _to_command(f):
            index = f.text.index("\x00")
            line = f.text.count("\n", 0, index) + 1
            column = index - (f.text.rfind("\n", 0, index) + 1) + 1
            yield Finding(f.path, "a NUL byte (\\0) cannot be passed to a command, URL or host: remove it",
                          at=(line, column))


@rule("RB135", "duration-too-long", ERROR,
      f"Durations are at most {MAX_TEXT}: longer is a mistake, and a 400-digit timeout overflows "
      "every clock it reaches.")
def _long_durations(c: RunbookCheck) -> Iterator[Finding]:
    for path in too_long(c.runbook):
        yield Finding(path, f"duration is longer than the {MAX_TEXT} maximum")


@rule("RB136", "input-pattern", ERROR,
      "An input's `pattern` must be a valid regular expression, or every value fails to check.")
def _input_patterns(c: RunbookCheck) -> Iterator[Finding]:
    for name, spec in c.runbook.inputs.items():
        if spec.pattern is None:
            continue
        problem = _pattern_problem(spec.pattern)
        if problem is not None:
            message, at = problem
            yield Finding(("inputs", name, "pattern"),
                          f"pattern of input '{name}' is not a valid regular expression: {message}", at=at)


def _pattern_problem(pattern: str) -> tuple[str, tuple[int, int] | None] | None:
    """What is wrong with a pattern, and where in it when `re` says (line, column)."""
    try:
        re.compile(pattern)
    except re.error as exc:
        return exc.msg, (exc.lineno or 1, exc.colno or 1) if exc.pos is not None else None
    except (OverflowError, RecursionError):
        return str(compile_pattern(pattern)), None  # the other ways `re` refuses a pattern
    return None


@rule("RB137", "input-default", ERROR,
      "An input's default must satisfy its own type, choices, pattern, minimum and maximum: "
      "otherwise a run without the input fails, or works with a value nobody allowed.")
def _input_defaults(c: RunbookCheck) -> Iterator[Finding]:
    for name, spec in c.runbook.inputs.items():
        if spec.default is MISSING or spec.default is None:
            continue
        problem = spec.wrong_type(spec.default)
        if problem is None and _checkable(spec.pattern):
            problem = spec.violation(spec.default)
        if problem:
            yield Finding(("inputs", name, "default"), f"the default of input '{name}' {problem}")


@rule("RB150", "input-source", ERROR,
      "An input's value comes from one file or one command (after `-i`, an inputs file, the alert and "
      "`env`): with both, which one counts would be a guess.")
def _input_sources(c: RunbookCheck) -> Iterator[Finding]:
    for name, spec in c.runbook.inputs.items():
        if spec.file is not None and spec.command is not None:
            yield Finding(("inputs", name, "command"),
                          f"input '{name}' names both a `file` and a `command`: keep one")


def _checkable(pattern: str | None) -> bool:
    """A default is checked against its pattern only if the pattern compiles (RB136 says why not)."""
    return pattern is None or not isinstance(compile_pattern(pattern), str)


def _choices(rb: Runbook) -> dict[tuple[str, str], AskField]:
    """(step id, field) -> the ask field of a question with choices."""
    return {(step.id, ask.name): ask for step in rb.steps(rollbacks=True) if isinstance(step.spec, ManualSpec)
            for ask in step.spec.ask if ask.choices is not None}


_COMPARES = deferred(r"==|!=|\bin\b")
_REGIONS = deferred(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


def _compares(f: Field, asked: dict[tuple[str, str], AskField]) -> bool:
    if not any(len(r) == 4 and r[0] == "steps" and r[2] == "answers" and (r[1], r[3]) in asked
               for r in f.analysis.refs):
        return False
    if f.expression and not f.braced:
        return _COMPARES.search(f.text) is not None
    return any(_COMPARES.search(m.group()) for m in _REGIONS.finditer(f.text))


@rule("RB138", "answer-not-a-choice", ERROR,
      "Comparing an answer with a value its question does not offer is never true (or always, "
      "with !=): the step it guards is silently skipped, or always runs.")
def _answer_choices(c: RunbookCheck) -> Iterator[Finding]:
    asked = _choices(c.runbook)
    if not asked:
        return
    from engine.templates.comparisons import comparisons

    for f in c.parsed:
        # Only a field that reads an answer to a question with choices, and compares, is parsed again.
        if "answers" not in f.text or not _compares(f, asked):
            continue
        for comparison in comparisons(f.text, expression=f.expression and not f.braced):
            ref = comparison.ref
            ask = asked.get((ref[1], ref[3])) if len(ref) == 4 and ref[0] == "steps" and ref[2] == "answers" \
                else None
            if ask is not None:
                yield from _not_offered(f, ask, ref, comparison.values)


def _not_offered(f: Field, ask: AskField, ref: tuple[str, ...], values: tuple[Any, ...]) -> Iterator[Finding]:
    choices = ask.choices or ()
    for value in values:
        if value in choices:
            continue
        offered = ", ".join(repr(x) for x in choices)
        import difflib  # only when a problem is worded

        close = difflib.get_close_matches(str(value).lower(), [str(x).lower() for x in choices], n=1, cutoff=0.6)
        hint = f" (did you mean {_shown(choices, close[0])!r}?)" if close else ""
        yield Finding(f.path, f"{'.'.join(ref)} is compared with {value!r}, which is not one of its "
                              f"choices ({offered}){hint}", at=_literal_at(f, value))


def _shown(choices: tuple[Any, ...], text: str) -> Any:
    return next(x for x in choices if str(x).lower() == text)


def _literal_at(f: Field, value: Any) -> tuple[int, int] | None:
    expression = f.expression and not f.braced
    needles = [f"'{value}'", f'"{value}"'] if isinstance(value, str) else [repr(value), str(value).lower()]
    for needle in needles:
        found = spot(f.text, needle, expression=expression)
        if found is not None:
            return found
    return None


_QUERY = deferred(r"json_query\(\s*(?P<q>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\s*\)", re.DOTALL)


@rule("RB144", "bad-json-query", ERROR,
      "A JMESPath query that does not parse fails its step at run time, mid-incident; a literal one is "
      "checked here.")
def _json_queries(c: RunbookCheck) -> Iterator[Finding]:
    from engine.templates.parsing import query_error

    for f in c.analysed:
        if "json_query" not in f.analysis.filters:
            continue
        for match in _QUERY.finditer(f.text):
            try:
                query = ast.literal_eval(match.group("q"))
            except (ValueError, SyntaxError):
                continue  # an escape Python reads differently: the run will say
            error = query_error(query)
            if error is not None:
                yield Finding(f.path, f"json_query {match.group('q')} is not a JMESPath query: {error}",
                              at=line_col(f.text, match.start("q")))
