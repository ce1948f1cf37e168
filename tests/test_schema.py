"""engine.language.schema and schemas/*.json: valid 2020-12 schemas, documented, positioned rule ids."""

from __future__ import annotations

import json
import re
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from support import ROOT

from engine.errors import UsageError
from engine.language import schema
from engine.language.diagnostics import Diagnostic
from engine.language.loader import load_text

KINDS = ("runbook", "scenario", "inventory")


def load(kind: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "schemas" / f"{kind}.schema.json").read_text(encoding="utf-8"))
    return data


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_a_valid_2020_12_schema(kind: str) -> None:
    document = load(kind)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(document)


def _properties(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(location, schema) of every property declared anywhere in a schema."""
    if isinstance(node, dict):
        for name, sub in node.get("properties", {}).items():
            yield f"{where}/properties/{name}", sub
        for key, value in node.items():
            yield from _properties(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _properties(item, f"{where}/{index}")


def _resolve(document: dict[str, Any], sub: dict[str, Any]) -> dict[str, Any]:
    while "description" not in sub and "$ref" in sub:
        target: Any = document
        for part in sub["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        sub = target
    return sub


@pytest.mark.parametrize("kind", KINDS)
def test_every_property_has_a_description(kind: str) -> None:
    """Editors show descriptions on hover: a property may inherit one through its $ref."""
    document = load(kind)
    found = list(_properties(document))
    assert len(found) > (10 if kind == "inventory" else 40)
    missing = [where for where, sub in found if not _resolve(document, sub).get("description", "").strip()]
    assert missing == []


@pytest.mark.parametrize("kind", KINDS)
def test_schema_path_finds_the_shipped_schema(kind: str) -> None:
    path = schema.schema_path(kind)
    assert path.is_file()
    assert json.loads(path.read_text(encoding="utf-8")) == load(kind)
    assert schema.load_schema(kind) == load(kind)


def test_schema_path_rejects_an_unknown_kind() -> None:
    with pytest.raises(UsageError, match="unknown schema 'playbook'"):
        schema.schema_path("playbook")


# -- diagnostics with rule ids ---------------------------------------------------------------

HEAD = "kind: runbook\nversion: 1\nid: demo\ntitle: Demo\n"


def validate(body: str, head: str = HEAD) -> list[Diagnostic]:
    return schema.validate(load_text(head + textwrap.dedent(body), "rb.yaml"))


def where(diags: list[Diagnostic]) -> list[tuple[str, int, int]]:
    return sorted((d.rule, d.line, d.column) for d in diags)


def test_valid_document_has_no_schema_diagnostics() -> None:
    assert validate("detection:\n  - {id: a, run: df}\n") == []


def test_unknown_key_is_rb010_at_the_key() -> None:
    [diag] = validate("""\
        detection:
          - id: a
            run: df
            timout: 5s
        """)
    assert (diag.rule, diag.line, diag.column) == ("RB010", 8, 5)
    assert "did you mean 'timeout'" in diag.message
    assert diag.path == ("detection", 0, "timout")


def test_missing_key_is_rb011_at_the_mapping() -> None:
    [diag] = validate("detection:\n  - run: df\n")
    assert (diag.rule, diag.line, diag.column) == ("RB011", 6, 5)
    assert "missing required key 'id'" in diag.message


def test_missing_top_level_key_is_rb011_at_the_start() -> None:
    [diag] = validate("", head="kind: runbook\nversion: 1\nid: demo\n")
    assert (diag.rule, diag.line, diag.column) == ("RB011", 1, 1)
    assert "'title'" in diag.message


def test_wrong_type_is_rb012_at_the_value() -> None:
    [diag] = validate("detection:\n  - {id: a, wait: 30}\n")
    assert (diag.rule, diag.line, diag.column) == ("RB012", 6, 19)
    assert "with a unit" in diag.message


@pytest.mark.parametrize(
    ("body", "line", "column"),
    [
        ("detection:\n  - {id: Bad, run: df}\n", 6, 10),  # pattern
        ("detection:\n  - {id: a, http: {url: u, method: FETCH}}\n", 6, 36),  # enum
        ("targets:\n  box: {hosts: [h], port: 70000}\n", 6, 27),  # maximum
        ("detection:\n  - {id: a, run: x, retries: {attempts: 1000000}}\n", 6, 41),  # a retry storm
        ("detection:\n  - {id: a, run: x, retries: 101}\n", 6, 30),
        ("title2: x\n", 5, 1),  # not RB013: an unknown key
    ],
)
def test_invalid_value_is_rb013_at_the_value(body: str, line: int, column: int) -> None:
    [diag] = validate(body)
    expected = "RB010" if body.startswith("title2") else "RB013"
    assert (diag.rule, diag.line, diag.column) == (expected, line, column)


def test_wrong_constant_is_rb013() -> None:
    [diag] = validate("", head="kind: runbook\nversion: 2\nid: demo\ntitle: Demo\n")
    assert (diag.rule, diag.line, diag.column) == ("RB013", 2, 10)


def test_step_kind_problem_is_rb014_at_the_step() -> None:
    diags = validate("""\
        detection:
          - {id: a, run: df, manual: look}
          - {id: b}
        """)
    assert where(diags) == [("RB014", 6, 5), ("RB014", 7, 5)]
    assert "found 'run' and 'manual'" in diags[0].message
    assert "found none" in diags[1].message


def test_ask_without_manual_is_rb015_at_the_ask_key() -> None:
    [diag] = validate("""\
        triage:
          - id: a
            run: df
            ask: {cause: {choices: [x]}}
        """)
    assert (diag.rule, diag.line, diag.column) == ("RB015", 8, 5)
    assert "'ask' is only allowed together with 'manual'" in diag.message


def test_every_problem_is_reported_at_once() -> None:
    diags = validate("""\
        tittle: x
        detection:
          - {id: a, run: df, timout: 1s}
          - {id: b, wait: 5}
        recovery: {}
        """)
    assert [d.rule for d in sorted(diags, key=Diagnostic.sort_key)] == ["RB010", "RB010", "RB012", "RB012"]


@pytest.mark.parametrize(
    ("text", "message"),
    [("title: x\n", "missing `kind:`"), ("kind: playbook\n", "unknown kind 'playbook'")],
)
def test_missing_or_unknown_kind_is_rb003(text: str, message: str) -> None:
    [diag] = schema.validate(load_text(text, "x.yaml"))
    assert diag.rule == "RB003"
    assert message in diag.message


def test_scenario_documents_use_the_scenario_schema() -> None:
    doc = load_text("kind: scenario\nversion: 1\nid: s\ntitle: t\nrunbook: r.yaml\nhints: {a: 1}\n")
    [diag] = schema.validate(doc)
    assert (diag.rule, diag.line, diag.column) == ("RB012", 6, 12)


def test_issues_for_plain_data_have_paths_but_no_positions() -> None:
    found = schema.issues("runbook", {"kind": "runbook", "version": 1, "id": "x", "title": "t", "x": 1})
    assert [(i.keyword, i.path) for i in found] == [("additionalProperties", ("x",))]


# -- patterns run in linear time -------------------------------------------------------------


def _patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            elif key == "patternProperties":
                yield from value
            yield from _patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from _patterns(item)


PATTERNS = sorted({p for kind in KINDS for p in _patterns(load(kind))})
PIECES = ["a", ".", "1", "s", "m", ".a", "1s", "1.1s", "_", "-", "%", "P1", "incident.", "vars.a"]


def _fastest_search(regex: re.Pattern[str], text: str) -> float:
    """Seconds for one search, the best of three (a scheduler hiccup is not a slow regex)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        regex.search(text)
        best = min(best, time.perf_counter() - started)
        if best < 0.05:
            break
    return best


@pytest.mark.parametrize("pattern", PATTERNS)
def test_schema_pattern_fails_fast_on_adversarial_strings(pattern: str) -> None:
    """A file under review must not hang `runbook validate` through a pattern (ReDoS)."""
    regex = re.compile(pattern)
    for repeat in (4, 8, 12):
        for first in PIECES:
            for second in PIECES:
                text = (first + second) * repeat + "!"
                assert _fastest_search(regex, text) < 0.05, f"{pattern!r} is slow on {text!r}"


def test_a_valid_runbook_is_checked_without_wording_a_single_issue(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clean file costs no message: a step's kind (one of a dozen one-key branches) and
    `if: {required: [block]}` are decided by key tests, not by wording an issue for every
    branch that does not apply and dropping it (counted, not timed)."""
    from engine.language import _schema_checks, _schema_keywords

    worded: list[object] = []

    class Counted(_schema_checks.Issue):
        def __new__(cls, *args: Any, **kwargs: Any) -> Any:
            worded.append(args)
            return super().__new__(cls, *args, **kwargs)

    monkeypatch.setattr(_schema_keywords, "Issue", Counted)
    monkeypatch.setattr(_schema_checks, "Issue", Counted)
    text = (ROOT / "runbooks" / "stale-lock.yaml").read_text(encoding="utf-8")
    assert schema.validate(load_text(text)) == []
    assert worded == []
