"""The source of a journal line function (journal_writer.py): one f-string of an event
class's keys as JSON text and each value written as the encoder writes it, the plain
ones (text, null, empty containers) without a call, and a run of fields that may be
None tested at once.
"""

from __future__ import annotations

import json

_string = json.encoder.encode_basestring  # what the encoder writes of a str (ensure_ascii off)


def type_text(kind: object) -> str:
    """A field's declared type as its annotation reads (`str`, `str | None`,
    `dict[str, Any]`), whether its class kept annotations as text or evaluated them."""
    if isinstance(kind, str):
        return kind
    return (kind.__name__ if isinstance(kind, type) else str(kind)).replace("typing.", "")


def line_source(event: str, fields: list[tuple[str, str]]) -> str:
    """The source of `line(event, seq, t, elapsed)`, which writes an event of these fields
    as the journal's encoder does (`_value`, `_string` and float.__repr__ as `_repr` in its namespace)."""
    # `t` is iso()'s text (digits and -:.TZ), which JSON writes as it is.
    head = _literal('{"seq": ') + "{seq}" + _literal(', "t": "') + "{t}" + _literal('", "elapsed": ') + \
        "{elapsed}" + _literal(', "event": ' + _string(event))
    statements: list[str] = []
    pieces: list[str] = []
    for run in _runs(fields):
        text = "".join(_literal(f", {_string(name)}: ") + f"{{{_field_text(name, kind)}}}" for name, kind in run)
        if len(run) == 1:
            pieces.append(text)
            continue
        # Fields that are mostly null together (a step's block, index, case...): their text
        # at once when all are, tested without a walrus and a branch for each.
        nulls = "".join(f", {_string(name)}: null" for name, _ in run)
        test = " and ".join(f"event.{name} is None" for name, _ in run)
        statements.append(f"    g{len(statements)} = {nulls!r} if {test} else f'{text}'\n")
        pieces.append(f"{{g{len(statements) - 1}}}")
    return "def line(event, seq, t, elapsed):\n" + "".join(statements) + \
        f"    return f'{head}{''.join(pieces)}{_literal(chr(125) + chr(10))}'\n"


def _runs(fields: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The fields in their order, those that may be None next to each other in one run."""
    runs: list[list[tuple[str, str]]] = []
    for name, kind in fields:
        nullable = _may_be_none(kind)
        if runs and nullable and _may_be_none(runs[-1][-1][1]):
            runs[-1].append((name, kind))
        else:
            runs.append([(name, kind)])
    return runs


def _may_be_none(kind: str) -> bool:
    """Whether a field's first test is `is None` (see _field_text)."""
    return not {"None", "Any"}.isdisjoint(_outer(kind))


def _outer(kind: str) -> frozenset[str]:
    """The outer types of a declared type's text: `dict[str, Any] | None`: dict, None.
    Worked out once a text: every run makes its line functions (a few kinds, many fields)."""
    if (found := _OUTER.get(kind)) is None:
        start, end = kind.find("["), kind.rfind("]")
        bare = kind[:start] + kind[end + 1:] if 0 <= start < end else kind  # as re.sub(r"\[.*\]", "", kind)
        found = _OUTER[kind] = frozenset(part.strip() for part in bare.split("|"))
    return found


_OUTER: dict[str, frozenset[str]] = {}


# What a field's declared type says it mostly holds, tried in this order without a call
# (an int is written by the f-string itself, as str() writes it); anything else, _value.
_PLAIN_TESTS = (
    ("None", 'v is None', '"null"'),
    ("Any", 'v is None', '"null"'),
    ("str", "v.__class__ is str", "_string(v)"),
    ("bool", "v is False", '"false"'),
    ("bool", "v is True", '"true"'),
    ("int", "v.__class__ is int", "v"),
    ("float", "v.__class__ is float and v - v == 0", "_repr(v)"),  # finite: NaN and infinities are _value's
    ("dict", "v.__class__ is dict and not v", '"{}"'),
    ("list", "v.__class__ is list and not v", '"[]"'),
)


def _field_text(name: str, kind: str) -> str:
    """The f-string expression that writes field `name` declared as `kind` (its text)."""
    outer = _outer(kind)
    tests = list(dict.fromkeys((test, text) for word, test, text in _PLAIN_TESTS if word in outer))
    if not tests:
        return f"_value(event.{name})"
    # The first test is evaluated first: it takes the field's value.
    first = tests[0][0].replace("v", f"(v := event.{name})", 1)
    return "".join(f"{text} if {first if i == 0 else test} else " for i, (test, text) in enumerate(tests)) + "_value(v)"


def _literal(text: str) -> str:
    """JSON text as the literal part of a single-quoted f-string."""
    return text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") \
        .replace("{", "{{").replace("}", "}}")
