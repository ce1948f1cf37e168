"""Filters that read what commands print: sizes (`'2.5GiB' | bytes`, `| human_bytes`),
durations (`'1h30m' | seconds`), tables (`| parse_table`), YAML (`| from_yaml`) and a JSON
query (`| json_query('[?healthy].name')`, JMESPath as Ansible's json_query).

Every one runs under the render bounds (_limits): the ones that loop over a command's
output under the deadline, and a value they build (a YAML alias tree, a query's
projection) is measured before a template can expand it. A value not known before the
run (a dry-run's Placeholder) passes through unchanged, so the plan shows what it reads.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

from . import _limits
from .patterns import deferred
from .values import Placeholder

__all__ = ["bytes_of", "from_yaml", "human_bytes", "json_query", "parse_table", "query_error", "seconds"]

_SHOWN = 40  # characters of a value an error message quotes


def _quoted(value: Any) -> str:
    text = str(value)
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


# -- sizes ------------------------------------------------------------------------------------------

_SIZE = deferred(r"\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-zA-Z]*)\s*")
_PREFIXES = "kmgtpezy"
# kB MB GB: powers of 1000; KiB Ki: powers of 1024; a bare K M G as df -h, du -h and ls -lh
# print them: powers of 1024 (as coreutils' numfmt --from=iec and sort -h read them).
_UNITS = {"": 1, "b": 1, "byte": 1, "bytes": 1}
for _i, _p in enumerate(_PREFIXES, 1):
    _UNITS[f"{_p}b"] = 1000 ** _i
    _UNITS[f"{_p}ib"] = _UNITS[f"{_p}i"] = _UNITS[_p] = 1024 ** _i


def bytes_of(value: Any) -> Any:
    """`'2.5GiB'` -> 2684354560, `'4 kB'` -> 4000, `'20G'` -> 21474836480; a number as it is."""
    if isinstance(value, Placeholder):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return round(value)
    match = _SIZE.fullmatch(str(value)) if isinstance(value, str) else None
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        raise ValueError(f"bytes: cannot read {_quoted(value)} as a size "
                         "(a number with an optional unit: 512, 4 kB, 2.5GiB, 20G, 512Mi)")
    number = float(match.group(1))
    if not math.isfinite(number) or abs(number) * unit > 2 ** 80:
        raise ValueError(f"bytes: {_quoted(value)} is not a size a disk or memory can have")
    return round(number * unit)


def human_bytes(value: Any, si: bool = False, precision: int = 1) -> Any:
    """2684354560 -> `2.5 GiB` (powers of 1024); `si=true`: `2.7 GB` (powers of 1000)."""
    if isinstance(value, Placeholder):
        return value
    number = float(bytes_of(value))
    base, suffix = (1000, "B") if si else (1024, "iB")
    if not 0 <= precision <= 6:
        raise ValueError("human_bytes: precision is 0 to 6 digits")
    for i, prefix in enumerate(" KMGTPEZY"):
        if abs(number) < base ** (i + 1) or prefix == "Y":
            if i == 0:
                return f"{round(number)} B"
            text = f"{number / base ** i:.{precision}f}".rstrip("0").rstrip(".") if precision else \
                f"{number / base ** i:.0f}"
            return f"{text} {'k' if si and prefix == 'K' else prefix}{suffix}"
    raise AssertionError("unreachable")


# -- durations --------------------------------------------------------------------------------------

_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0,
                   "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}
_PART = deferred(r"(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|µs|ms|sec|min|s|m|h|d|w|y)", re.IGNORECASE)
_CLOCK = deferred(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)")  # ps etime: [[dd-]hh:]mm:ss


def seconds(value: Any) -> Any:
    """`'1h30m'` -> 5400.0, `'15s'`, `'500ms'` -> 0.5, `'2d4h'`, `'01:02:03'`, `'3-04:05:06'`; a number as it is."""
    if isinstance(value, Placeholder):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip() if isinstance(value, str) else ""
    clock = _CLOCK.fullmatch(text)
    if clock:
        days, hours, minutes, secs = clock.groups()
        return int(days or 0) * 86400.0 + int(hours or 0) * 3600.0 + int(minutes) * 60.0 + float(secs)
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-").replace(" ", "")
    parts = list(_PART.finditer(body))
    if text and _is_number(body):
        return sign * float(body)
    if not parts or "".join(p.group(0) for p in parts) != body:
        raise ValueError(f"seconds: cannot read {_quoted(value)} as a duration "
                         "(such as 15s, 500ms, 1h30m, 2d, 01:02:03)")
    return sign * sum(float(p.group(1)) * _DURATION_UNITS[p.group(2).lower()] for p in parts)


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


# -- tables -----------------------------------------------------------------------------------------

_RULE = deferred(r"^[\s+\-=|:─━│┃┌┐└┘├┤┬┴┼╭╮╰╯═║╔╗╚╝╠╣╦╩╬╞╡╪╤╧]*$")
_BARS = deferred(r"[|│┃║]")


@_limits.guarded
def parse_table(value: Any, columns: list[str] | None = None) -> Any:
    """A table as commands print it -> a list of mappings keyed by its header.

    Boxed tables (`etcdctl -w table`, psql, `| a | b |`, box-drawing lines) are split at
    their bars; whitespace tables (`kubectl get`, `df -h`, `ps`) at the columns that are
    blank on every line, so a value holding a space (`3 (2d ago)`) stays whole and a
    heading of two words (`Mounted on`) is one column. `columns=[...]` names the columns
    of a table printed without a header; each line is split on whitespace, the last
    column taking the rest of the line. Every value is text, stripped."""
    if isinstance(value, Placeholder):
        return value
    lines = [line.rstrip() for line in str(value).replace("\t", "    ").splitlines()]
    lines = [line for line in lines if line.strip()]
    if columns is not None:
        return _named(lines, [str(c) for c in columns])
    if not lines:
        return []
    if any(_BARS.search(line) for line in lines):
        return _boxed(lines)
    return _aligned(lines)


def _named(lines: list[str], columns: list[str]) -> list[dict[str, str]]:
    if not columns:
        raise ValueError("parse_table: columns= needs at least one name")
    rows = []
    for line in lines:
        cells = line.split(None, len(columns) - 1)
        rows.append(dict(zip(columns, cells + [""] * (len(columns) - len(cells)), strict=True)))
    return rows


def _boxed(lines: list[str]) -> list[dict[str, str]]:
    # Rules (`+---+`, `----+----`, box drawing) and lines without a bar (psql's `(2 rows)`) are no rows.
    rows = [_cells(line) for line in lines if _BARS.search(line) and not _RULE.match(line)]
    if not rows:
        return []
    header, *body = rows
    return [_row(header, cells) for cells in body]


def _cells(line: str) -> list[str]:
    cells = [c.strip() for c in _BARS.split(line)]
    if cells and not cells[0] and _BARS.match(line.lstrip()):
        cells = cells[1:]
    if cells and not cells[-1] and _BARS.search(line.rstrip()[-1:]):
        cells = cells[:-1]
    return cells


def _row(header: list[str], cells: list[str]) -> dict[str, str]:
    cells = cells + [""] * (len(header) - len(cells))
    return {name or f"column{i + 1}": cells[i] for i, name in enumerate(header)}


def _aligned(lines: list[str]) -> list[dict[str, str]]:
    spans = _column_spans(lines)
    header, *body = [[(line[a:b] if b else line[a:]).strip() for a, b in spans] for line in lines]
    names, table = header, body
    # A heading word with nothing under it on any line is part of the heading before it.
    keep: list[int] = []
    for i in range(len(names)):
        if keep and names[i] and all(not row[i] for row in table):
            names[keep[-1]] = f"{names[keep[-1]]} {names[i]}"
            continue
        keep.append(i)
    return [{names[i] or f"column{n + 1}": row[i] for n, i in enumerate(keep)} for row in table]


def _column_spans(lines: list[str]) -> list[tuple[int, int]]:
    """(start, end) of each column: the runs of positions that hold text on some line. The
    last column runs to the end of each line (end 0)."""
    width = max(map(len, lines))
    used = bytearray(width)
    for line in lines:
        for match in re.finditer(r"\S+", line):
            used[match.start():match.end()] = b"\1" * (match.end() - match.start())
    spans = [(m.start(), m.end()) for m in re.finditer(rb"\x01+", bytes(used))]
    if not spans:
        return [(0, 0)]
    return [*spans[:-1], (spans[-1][0], 0)]


# -- YAML and JSON queries -------------------------------------------------------------------------


@_limits.guarded
def from_yaml(value: Any) -> Any:
    """A YAML document (one) as data, with YAML 1.1 scalars as the runbook loader reads them."""
    if isinstance(value, Placeholder):
        return value
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(str(value), Loader=loader)
    except yaml.YAMLError as exc:
        raise ValueError(f"from_yaml: not valid YAML ({_first_line(exc)})") from None
    except RecursionError:
        raise ValueError("from_yaml: the YAML is nested too deeply") from None
    _limits.measured(data, "from_yaml")  # aliases may make a small text a huge value
    return data


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:200]


@_limits.guarded
def json_query(value: Any, query: str) -> Any:
    """JMESPath, as Ansible's `json_query`: `json | json_query('items[?status==`Running`].name')`."""
    if isinstance(value, Placeholder):
        return value
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        result = _compiled_query(str(query)).search(value, options=_query_options())
    except JMESPathError as exc:
        raise ValueError(f"json_query: {_first_line(exc)}") from None
    except RecursionError:
        raise ValueError("json_query: the query or the data is nested too deeply") from None
    _limits.measured(result, "json_query")
    del jmespath
    return result


def query_error(query: str) -> str | None:
    """Why a JMESPath query does not compile (validate checks literal queries), or None."""
    from jmespath.exceptions import JMESPathError

    try:
        _compiled_query(query)
    except JMESPathError as exc:  # its message, then the query with a caret under the fault
        return str(exc).splitlines()[0].removeprefix("Bad jmespath expression: ").rstrip(":")
    except RecursionError:
        return "the query is nested too deeply"
    return None


@lru_cache(maxsize=256)
def _compiled_query(query: str) -> Any:
    import jmespath

    return jmespath.compile(query)


@lru_cache(maxsize=1)
def _query_options() -> Any:
    """JMESPath's functions, with the two that build text from a value bounded like `~`."""
    import jmespath
    from jmespath import functions

    class Bounded(functions.Functions):
        @functions.signature({"types": []})
        def _func_to_string(self, arg: Any) -> Any:
            _limits.measured(arg, "to_string")
            return super()._func_to_string(arg)

        @functions.signature({"types": ["string"]}, {"types": ["array-string"]})
        def _func_join(self, separator: str, array: list[str]) -> Any:
            _limits.grown(len(separator) * len(array) + sum(map(len, array)), "join")
            return super()._func_join(separator, array)

    return jmespath.Options(custom_functions=Bounded())
