"""What a compiled schema check is and what it reports: `check(value, path, out)` appends
an Issue for each problem to `out`. Shared by the keyword builders (_schema_keywords.py)
and the compiler that puts them together (_validator.py), with the wording of messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

Path = tuple[str | int, ...]


class Issue(NamedTuple):
    """One problem a schema check found: where, the keyword it breaks, and the message."""

    path: Path
    keyword: str
    message: str
    at_key: bool = False  # position the problem at the key of path[-1], not its value


Check = Callable[[Any, Path, list[Issue]], None]


class Compiles(Protocol):
    """What a keyword builder asks of the compiler: checks for subschemas and `$ref`s."""

    def compile(self, schema: Any = None, name: str = "") -> Check: ...

    def ref(self, pointer: str) -> Check: ...

    def properties(self, schemas: dict[str, Any]) -> dict[str, Check]: ...


class SchemaCompileError(Exception):
    """A schema uses a keyword (or a `$ref`) this compiler does not implement."""


def describe(value: Any) -> str:
    """'a string ("x")', 'an integer (3)': the found value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    if isinstance(value, str):
        return f"a string ({shown})"
    return f"{'an integer' if isinstance(value, int) else 'a number'} ({shown})"


def words(items: list[str], joiner: str = "or") -> str:
    """'a, b or c': items joined for a message."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {joiner} " + items[-1]


def suggest(word: str, options: list[str]) -> str:
    """` (did you mean 'x'?)` for the option closest to `word`, or ""."""
    import difflib  # only when a file has a problem to word

    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def accept(value: Any, path: Path, out: list[Issue]) -> None:
    """The check of `true` (and `{}`): every value passes."""
    return None


def refuse(value: Any, path: Path, out: list[Issue]) -> None:
    """The check of `false`: no value passes."""
    out.append(Issue(path, "false", "no value is allowed here"))


def all_of_checks(checks: list[Check]) -> Check:
    """One check running every one of `checks`."""
    if len(checks) == 2:  # the common pair (a type and its keywords), without a loop
        first, second = checks

        def both(value: Any, path: Path, out: list[Issue]) -> None:
            first(value, path, out)
            second(value, path, out)

        return both

    def check(value: Any, path: Path, out: list[Issue]) -> None:
        for c in checks:
            c(value, path, out)

    return check
