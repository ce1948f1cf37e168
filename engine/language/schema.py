"""JSON Schema validation of loaded documents -> positioned Diagnostics.

The schemas in `schemas/` are the contract (editors read them too). They ship inside
the wheel as `engine/schemas/`; in a source checkout they are read from the top level.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from engine.errors import UsageError

from ._validator import Check, Issue, compile_schema
from .diagnostics import Diagnostic, Severity
from .loader import Document

KINDS = ("runbook", "scenario", "inventory")
# Config files the engine reads: validated with positions where they are read, and by
# `runbook validate` too (a repository keeps them beside its runbooks, and pre-commit
# checks every file), which runs their schema and their own checks but builds no model.
CONFIGS = ("serve", "connections")

# Stable rule ids for schema problems, by JSON Schema keyword.
RULES = {
    "additionalProperties": "RB010",
    "required": "RB011",
    "type": "RB012",
    "dependentRequired": "RB015",
    "not": "RB015",  # a key that has no meaning on this kind of step (`expect` on a block)
    "oneOf": "RB014",
    "anyOf": "RB014",
}
RULE_INVALID_VALUE = "RB013"
RULE_KIND = "RB003"

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # engine/: schemas/ inside it (a wheel) or beside it


def schema_path(kind: str) -> Path:
    """Where the schema file for `kind` is: inside the installed package, or the repo."""
    if kind not in KINDS + CONFIGS:
        raise UsageError(f"unknown schema {kind!r}: expected one of {', '.join(KINDS + CONFIGS)}")
    for base in (_PACKAGE_DIR / "schemas", _PACKAGE_DIR.parent / "schemas"):
        candidate = base / f"{kind}.schema.json"
        if candidate.is_file():
            return candidate
    raise UsageError(f"schema file {kind}.schema.json is missing from the installation")


@cache
def load_schema(kind: str) -> dict[str, Any]:
    with open(schema_path(kind), encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


@cache
def _validator(kind: str) -> Check:
    return compile_schema(load_schema(kind), lazy=True)


def issues(kind: str, data: Any) -> list[Issue]:
    """Raw schema issues for plain data (no positions): for callers without a file."""
    found: list[Issue] = []
    _validator(kind)(data, (), found)
    return found


def validate(doc: Document) -> list[Diagnostic]:
    """Every schema problem of a document, each positioned and with a rule id."""
    kind = doc.kind
    if kind not in KINDS + CONFIGS:
        return [_kind_problem(doc)]
    return [_diagnostic(doc, issue) for issue in issues(kind, doc.data)]


def validate_as(doc: Document, kind: str) -> list[Diagnostic]:
    """Every problem of a document read as `kind` (a config file, say), positioned."""
    return [_diagnostic(doc, issue) for issue in issues(kind, doc.data)]


def _kind_problem(doc: Document) -> Diagnostic:
    raw = doc.data.get("kind")
    if raw is None:
        return doc.diagnostic((), "missing `kind:`: expected `kind: runbook`, `kind: scenario` or "
                                  "`kind: inventory`", RULE_KIND)
    return doc.diagnostic(("kind",), f"unknown kind {raw!r}: expected runbook, scenario, inventory, "
                                     "serve or connections", RULE_KIND)


def _diagnostic(doc: Document, issue: Issue) -> Diagnostic:
    rule = RULES.get(issue.keyword, RULE_INVALID_VALUE)
    return doc.diagnostic(issue.path, issue.message, rule, Severity.ERROR, key=issue.at_key)
