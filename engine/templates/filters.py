"""The filters and tests runbooks use beside Jinja's own (Ansible users' habits), and the
names of Jinja's own, so lint can tell a known filter from a typo without importing Jinja.

Every filter that runs a regular expression does it under the render deadline; the
conversions fail loudly instead of Jinja's silent 0.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from typing import Any

from . import _limits
from .dates import days_until, to_datetime
from .parsing import bytes_of, from_yaml, human_bytes, json_query, parse_table, seconds
from .values import Placeholder, Raw

_NO_DEFAULT: Any = object()


def _to_int(value: Any, default: Any = _NO_DEFAULT, base: int = 10) -> int:
    # Jinja's own `int` turns garbage into 0 silently; a runbook acting on a wrong
    # number is worse than one that stops, so fail unless a default is given.
    if isinstance(value, Placeholder):
        return value  # type: ignore[return-value]
    try:
        if isinstance(value, str):
            return int(value.strip(), base)
        return int(value)
    except (TypeError, ValueError):
        if default is not _NO_DEFAULT:
            return int(default)
        raise ValueError(f"cannot convert {value!r} to an integer") from None


def _to_float(value: Any, default: Any = _NO_DEFAULT) -> float:
    if isinstance(value, Placeholder):
        return value  # type: ignore[return-value]
    try:
        return float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        if default is not _NO_DEFAULT:
            return float(default)
        raise ValueError(f"cannot convert {value!r} to a number") from None


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y")
    return bool(value)


@_limits.guarded
def _regex_search(value: Any, pattern: str, *groups: Any, ignorecase: bool = False) -> Any:
    match = re.search(pattern, str(value), re.IGNORECASE if ignorecase else 0)
    if match is None:
        return None
    if not groups:
        return match.group(0)
    picked = [match.group(int(g[1:]) if str(g).startswith("\\") else g) for g in groups]
    return picked[0] if len(picked) == 1 else picked


@_limits.guarded
def _regex_replace(value: Any, pattern: str, replacement: str = "", ignorecase: bool = False) -> str:
    return re.sub(pattern, replacement, str(value), flags=re.IGNORECASE if ignorecase else 0)


@_limits.guarded
def _regex_findall(value: Any, pattern: str, ignorecase: bool = False) -> list[Any]:
    return re.findall(pattern, str(value), re.IGNORECASE if ignorecase else 0)


def _from_json(value: Any) -> Any:
    if isinstance(value, Placeholder):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"from_json: not valid JSON ({exc})") from None
    except RecursionError:
        raise ValueError("from_json: the JSON is nested too deeply") from None


def _to_json(value: Any, indent: int | None = None) -> str:
    _limits.json_indent(indent)
    return json.dumps(value, indent=indent, sort_keys=True, default=str)


def _quote(value: Any) -> Raw:
    # Already quoted: the shell environment must not quote it a second time.
    return Raw(shlex.quote(str(value)))


@_limits.guarded
def _test_search(value: Any, pattern: str, ignorecase: bool = False) -> bool:
    return re.search(pattern, str(value), re.IGNORECASE if ignorecase else 0) is not None


@_limits.guarded
def _test_match(value: Any, pattern: str, ignorecase: bool = False) -> bool:
    return re.match(pattern, str(value), re.IGNORECASE if ignorecase else 0) is not None


FILTERS: dict[str, Callable[..., Any]] = {
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "regex_search": _regex_search,
    "regex_replace": _regex_replace,
    "regex_findall": _regex_findall,
    "from_json": _from_json,
    "to_json": _to_json,
    "quote": _quote,
    "raw": Raw,
    # Reading what commands print (parsing.py, dates.py): README, "Parsing helpers".
    "bytes": bytes_of,
    "human_bytes": human_bytes,
    "seconds": seconds,
    "parse_table": parse_table,
    "from_yaml": from_yaml,
    "json_query": json_query,
    "to_datetime": to_datetime,
}
# Filters that read the run's context (the run's clock): Jinja passes it; the quick
# tiers, which call filters with the value alone, leave templates using them to Jinja.
CONTEXT_FILTERS: dict[str, Callable[..., Any]] = {"days_until": days_until}
TESTS: dict[str, Callable[..., bool]] = {"search": _test_search, "match": _test_match}


# Names the environment knows, listed here so lint need not import jinja2 to learn them.
# A test compares these with the real environment, so a Jinja upgrade cannot make them drift.
JINJA_FILTERS = frozenset({
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e",
    "escape", "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent",
    "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min", "pprint",
    "random", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr",
    "slice", "sort", "string", "striptags", "sum", "title", "tojson", "trim", "truncate", "unique",
    "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr",
})
JINJA_TESTS = frozenset({
    "!=", "<", "<=", "==", ">", ">=", "boolean", "callable", "defined", "divisibleby", "eq",
    "equalto", "escaped", "even", "false", "filter", "float", "ge", "greaterthan", "gt", "in",
    "integer", "iterable", "le", "lessthan", "lower", "lt", "mapping", "ne", "none", "number",
    "odd", "sameas", "sequence", "string", "test", "true", "undefined", "upper",
})
JINJA_GLOBALS = frozenset({"cycler", "dict", "joiner", "lipsum", "namespace", "range"})


def known_filters() -> frozenset[str]:
    """Every filter name a template may use."""
    return JINJA_FILTERS | frozenset(FILTERS) | frozenset(CONTEXT_FILTERS)


def known_tests() -> frozenset[str]:
    """Every test name a template may use (`is ...`)."""
    return JINJA_TESTS | frozenset(TESTS)


def known_globals() -> frozenset[str]:
    """Every global a template may call (`range`, `dict`, ...)."""
    return JINJA_GLOBALS
