"""Data files people hand to a run (an alert payload, an inputs file), JSON or YAML,
read under the same limits as a runbook: size, nesting, alias expansion, numbers.

Such a file comes from outside (a webhook body saved by a script, a file written by
another tool), so it is treated as hostile: a 1 kB alias bomb, a 100,000-deep list or
a 5,000-digit number is a positioned error (exit 2), never a crash or a hang.

JSON is read as JSON (`1e5` is a number, `\\ud83d\\ude00` one character), after a scan
that bounds its nesting; anything else, or JSON that does not parse, as YAML by the
runbook loader.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

from engine.errors import InputError

from .loader import DEFAULT_LIMITS, RULE_LIMIT, Limits, LoadError, load_value, read_text

# Strings are skipped whole, so brackets inside them do not count. An unclosed string runs
# to the end (`"?`): the scan never backtracks, so it stays linear on any text.
_JSON_TOKENS = re.compile(r'"(?:[^"\\]+|\\.)*"?|[\[\]{}]', re.DOTALL)
_MAX_DIGITS = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 4300


class _TooManyDigits(ValueError):
    def __init__(self, digits: str) -> None:
        super().__init__(digits)
        self.digits = digits


def load_mapping(path: str | os.PathLike[str], what: str, *, empty_ok: bool = False,
                 limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """The mapping at the top of a JSON or YAML file; InputError naming `what` and the
    place (`file:line:col`) otherwise. `empty_ok`: an empty file is an empty mapping."""
    name = os.fspath(path)
    try:
        data = parse_value(read_text(name, limits), name, limits)
    except LoadError as exc:
        d = exc.diagnostic
        where = name if d.rule == "RB000" else f"{name}:{d.line}:{d.column}"
        raise InputError(f"cannot use the {what} {where}: {d.message} [{d.rule}]") from None
    if data is None:
        if empty_ok:
            return {}
        raise InputError(f"the {what} {name} is empty")
    if not isinstance(data, dict):
        raise InputError(f"the {what} {name} must hold a mapping at the top level, not a "
                         f"{'list' if isinstance(data, list) else type(data).__name__}")
    return data


def parse_value(text: str, file: str = "<value>", limits: Limits = DEFAULT_LIMITS) -> Any:
    """One value written as JSON or YAML (a list or map given on the command line), under
    the same limits; LoadError otherwise. Empty text is None."""
    if text.lstrip()[:1] in ("{", "["):
        try:
            return _json(text, file, limits)
        except json.JSONDecodeError as exc:
            try:  # `{a: 1}` is YAML, not JSON
                return load_value(text, file, limits)
            except LoadError as not_yaml:
                if not_yaml.diagnostic.rule == RULE_LIMIT:
                    raise  # hostile, whichever way it is read
                raise _error(file, exc.lineno, exc.colno, f"JSON syntax error: {exc.msg}", "RB001") from None
    return load_value(text, file, limits)


def _json(text: str, file: str, limits: Limits) -> Any:
    _check_json_depth(text, file, limits)
    try:
        return json.loads(text, parse_int=_integer)
    except _TooManyDigits as exc:
        line, column = _line_col(text, text.find(exc.digits))
        raise _error(file, line, column, f"a number with {len(exc.digits)} digits: more than "
                     f"{_MAX_DIGITS} is not a valid integer", "RB001") from None
    except RecursionError:  # the depth scan should have stopped it; never a crash
        raise _error(file, 1, 1, f"nesting deeper than {limits.max_depth} levels", RULE_LIMIT) from None


def _integer(digits: str) -> int:
    if len(digits) > _MAX_DIGITS:
        raise _TooManyDigits(digits)
    return int(digits)


def _check_json_depth(text: str, file: str, limits: Limits) -> None:
    if text.count("[") + text.count("{") <= limits.max_depth:
        return  # cannot nest deeper than that many openers
    depth = 0
    for token in _JSON_TOKENS.finditer(text):
        char = token.group()
        if char in "[{":
            depth += 1
            if depth > limits.max_depth:
                line, column = _line_col(text, token.start())
                raise _error(file, line, column, f"nesting deeper than {limits.max_depth} levels", RULE_LIMIT)
        elif char in "]}":
            depth -= 1


def _line_col(text: str, index: int) -> tuple[int, int]:
    index = max(index, 0)
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _error(file: str, line: int, column: int, message: str, rule: str) -> LoadError:
    from .diagnostics import Diagnostic, Severity

    return LoadError(Diagnostic(file, line, column, Severity.ERROR, rule, message))
