"""What a YAML syntax error means to a runbook author: where the fix goes, and how.

libyaml says where its parser gave up, in its own words ("mapping values are not
allowed in this context"). The mistake is often elsewhere (the quote opened three
lines up), and the words never say what to write instead. `explain` turns the error
into the place to fix and a message with a hint for the mistakes people make most:
an unquoted `: ` inside a value, a value starting with `{{` (a mapping to YAML), tabs,
an unclosed quote or bracket, a stray `-`, a key without a space after its colon, a
leading `*`, `&`, `@` or backtick, backslashes in double quotes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple


class Explained(NamedTuple):
    line: int  # 1-based
    column: int  # 1-based
    message: str


class _Error(NamedTuple):
    """The parts of a MarkedYAMLError a hint looks at, with 1-based positions."""

    problem: str
    context: str
    line: int
    column: int
    context_line: int
    context_column: int
    lines: list[str]

    def text(self, line: int) -> str:
        return self.lines[line - 1] if 0 < line <= len(self.lines) else ""

    @property
    def char(self) -> str:
        text = self.text(self.line)
        return text[self.column - 1] if 0 < self.column <= len(text) else ""

    def at(self, line: int, column: int, message: str) -> Explained:
        return Explained(line, column, f"YAML syntax error: {message}")

    def here(self, message: str) -> Explained:
        return self.at(self.line, self.column, message)


def explain(exc: Any, text: str) -> Explained:
    """Position and message (with a hint where one is known) for a libyaml MarkedYAMLError."""
    error = _parts(exc, text)
    for hint in _HINTS:
        found = hint(error)
        if found is not None:
            return found
    return error.here(_plain(error))


def _parts(exc: Any, text: str) -> _Error:
    mark = exc.problem_mark or exc.context_mark
    context = exc.context_mark or mark
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    cline, ccolumn = (context.line + 1, context.column + 1) if context else (line, column)
    return _Error(exc.problem or "invalid YAML", exc.context or "", line, column, cline, ccolumn,
                  text.splitlines())


def _plain(error: _Error) -> str:
    if "single document" in error.context or "single document" in error.problem:
        return "more than one YAML document (`---`) in the file: expected exactly one"
    return f"{error.problem} ({error.context})" if error.context else error.problem


# -- suggestions ----------------------------------------------------------------------------

_KEY = re.compile(r"^(?P<indent>\s*(?:-\s+)*)(?P<key>[^\s'\"#{}\[\]][^#]*?):(?:\s+|$)")


def quoted(key: str, value: str) -> str:
    """How to write `key: value` so YAML reads the value as one string."""
    shown = value if len(value) <= 60 else value[:57].rsplit(" ", 1)[0] + " ..."
    if '"' not in value and "\\" not in value:
        return f'{key}: "{shown}"' if key else f'"{shown}"'
    if "'" not in value:
        return f"{key}: '{shown}'" if key else f"'{shown}'"
    return f"{key}: | (and the value on the next line, indented)"


def _key_and_value(line: str) -> tuple[str, str] | None:
    match = _KEY.match(line)
    if match is None:
        return None
    return match.group("key").strip(), line[match.end():].strip()


def template_value(line_text: str, column: int) -> str | None:
    """A message for a value starting with `{{` at `column` (1-based) of a line, if it is one."""
    if line_text[column - 1: column + 1] != "{{" or _inside_quotes(line_text, column):
        return None
    before = line_text[: column - 1].rstrip()
    match = _KEY.match(line_text)
    if match is not None and match.end() == column - 1:
        key = match.group("key").strip()
    elif before.lstrip(" -") == "" or before.endswith(("[", ",")):
        key = ""
    else:
        return None  # `{{` in the middle of a value: not what YAML tripped on
    value = line_text[column - 1:].strip()
    return ("a value that starts with '{{' must be quoted: YAML reads '{' as the start of a "
            f"mapping, not a template. Write {quoted(key, value)}")


def _inside_quotes(text: str, column: int) -> bool:
    before = text[: column - 1]
    return before.count('"') % 2 == 1 or before.count("'") % 2 == 1


# -- the hints, first match wins ------------------------------------------------------------


def _tab(error: _Error) -> Explained | None:
    if error.char != "\t" and "tab character" not in error.problem:
        return None
    text = error.text(error.line)
    indent = text[: len(text) - len(text.lstrip())]
    column = indent.index("\t") + 1 if "\t" in indent else error.column
    return error.at(error.line, column, "a tab indents this line: YAML indentation must be "
                                        "spaces (set your editor to insert spaces)")


def _braces(error: _Error) -> Explained | None:
    for line in dict.fromkeys((error.line, error.context_line)):
        text = error.text(line)
        column = text.find("{{") + 1
        while column > 0:
            message = template_value(text, column)
            if message is not None:
                return error.at(line, column, message)
            column = text.find("{{", column + 1) + 1
    return None


def _colon(error: _Error) -> Explained | None:
    if not error.problem.startswith("mapping values are not allowed"):
        return None
    line = error.text(error.line)
    parts = _key_and_value(line[: error.column - 1])
    if parts is not None:
        key, value = parts[0], (_key_and_value(line) or ("", ""))[1]
        return error.here(f"': ' inside the value of '{key}' reads as a second key: quote the "
                          f"whole value ({quoted(key, value)}) or write it as a block ({key}: | "
                          "and the value on the next line, indented)")
    above = _previous_line(error)
    if above is not None and _NO_SPACE.match(error.text(above)):
        return _no_space(error, above)
    return error.here("this line is indented deeper than the one above, which holds a value, "
                      "so YAML reads it as part of that value: align it with its sibling keys")


_NO_SPACE = re.compile(r"^\s*(?:-\s+)?[\w.-]+:[^\s:/]")


def _no_space(error: _Error, line: int) -> Explained:
    text = error.text(line)
    return error.at(line, text.index(":") + 2, "a key needs a space after its colon: YAML "
                    f"reads {text.strip()!r} as text, so the next line is out of place")


def _simple_key(error: _Error) -> Explained | None:
    if "simple key" not in error.context:
        return None
    if _NO_SPACE.match(error.text(error.context_line)):
        return _no_space(error, error.context_line)
    return error.at(error.context_line, error.context_column,
                    "text where a key (`name: value`) was expected: add the ': ', or indent "
                    "this line under the value it continues")


def _previous_line(error: _Error) -> int | None:
    for line in range(error.line - 1, 0, -1):
        text = error.text(line).strip()
        if text and not text.startswith("#"):
            return line
    return None


def _quote(error: _Error) -> Explained | None:
    if "quoted scalar" not in error.context:
        return None
    if "escape" in error.problem:
        return error.here("a backslash in double quotes starts an escape (\\n, \\t, \\\\): use "
                          "single quotes for regular expressions and paths, or double the backslash")
    ended = "the file ends" if "end of stream" in error.problem else f"line {error.line} is reached"
    return error.at(error.context_line, error.context_column,
                    f"this quote is never closed ({ended} inside it): close it on the same "
                    "line, or use a block (|) for text over several lines")


_FLOW = {"flow sequence": ("[", "]"), "flow mapping": ("{", "}")}


def _flow(error: _Error) -> Explained | None:
    pair = next((p for name, p in _FLOW.items() if name in error.context), None)
    if pair is None or not error.problem.startswith("did not find expected"):
        return None
    opener, closer = pair
    if error.line > error.context_line:
        return error.at(error.context_line, error.context_column,
                        f"this '{opener}' is never closed (YAML looked for ',' or '{closer}' "
                        f"up to line {error.line}): add the '{closer}'")
    return error.here(f"inside {opener} {closer}, a value holding ': ', ',', brackets or braces "
                      f"must be quoted (\"a: b\"), or the '{opener}' is not closed")


def _dash(error: _Error) -> Explained | None:
    if error.problem == "did not find expected '-' indicator":
        return error.here("a key where the list above expects an item: start each item with "
                          "'- ', or indent this key under the item it belongs to")
    if error.char != "-" or not error.problem.startswith("did not find expected key"):
        return None
    return error.here("a list item ('-') where a key of the mapping above was expected: indent "
                      "it like the other items of its list, or remove the stray '-'")


def _after_quote(error: _Error) -> Explained | None:
    if not error.problem.startswith("did not find expected key"):
        return None
    before = error.text(error.line)[: error.column - 1].rstrip()
    if not before.endswith(("'", '"')):
        return None
    return error.here("text after the closing quote: quote the whole value, not part of it")


def _indent(error: _Error) -> Explained | None:
    if not error.problem.startswith("did not find expected key"):
        return None
    return error.here("this line is indented less than the lines above but does not line up "
                      "with any key: align it with its sibling keys")


_STARTS = {"alias": "'*' starts an alias (*name)", "anchor": "'&' starts an anchor (&name)"}


def _start_char(error: _Error) -> Explained | None:
    scanning = error.context.startswith("while scanning a")
    what = next((w for k, w in _STARTS.items() if f"scanning an {k}" in error.context), None)
    if what is None and "cannot start any token" in error.problem and error.char in "@`%":
        what = f"'{error.char}' cannot start a plain value"
    if what is None and error.problem == "found undefined alias":
        what = "'*' starts an alias of an anchor (&name) that is not defined above"
    if what is None:
        return None
    line, column = (error.context_line, error.context_column) if scanning else (error.line, error.column)
    text = error.text(line)
    parts = _key_and_value(text[: column - 1] + "x")
    example = quoted(parts[0], text[column - 1:].strip()) if parts else '"*.log"'
    return error.at(line, column, f"{what}: quote a value that starts with it ({example})")


_HINTS: tuple[Callable[[_Error], Explained | None], ...] = (
    _tab, _braces, _quote, _colon, _simple_key, _flow, _dash, _after_quote, _start_char, _indent,
)
