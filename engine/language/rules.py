"""The lint rule registry: what a rule is, what it reports, and running the rules of one kind.

A rule is a function registered with `@rule(id, name, severity, rationale, kind)`. It sees
what its family computes once per file (a RunbookCheck, ScenarioCheck or InventoryCheck)
and yields Findings; `run_rules` positions them with the document's source map. The
families (`_runbook_rules`, `_shell_rules`, `_include_rules`, `_value_rules`,
`_scenario_rules`, `_inventory_rules`) import this module; engine/language/lint.py pulls
them together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from .diagnostics import Diagnostic, Severity
from .loader import Document
from .model import Path as DataPath


class Rule(NamedTuple):
    """A registered rule: stable id, kebab-case name, severity, one-line rationale, the kind
    of file it checks, and the function that yields its findings."""

    id: str
    name: str
    severity: Severity
    rationale: str
    kind: str  # "runbook", "scenario" or "inventory"
    check: Callable[[Any], Iterator[Finding]]


class Finding(NamedTuple):
    """One problem a rule found: the data path it is about and the message."""

    path: DataPath
    message: str
    key: bool = False  # position at the key of path[-1]
    at: tuple[int, int] | None = None  # (line, column) inside the string at `path`


RULES: dict[str, Rule] = {}


def rule(rule_id: str, name: str, severity: Severity, rationale: str, kind: str = "runbook",
         ) -> Callable[[Callable[[Any], Iterator[Finding]]], Callable[[Any], Iterator[Finding]]]:
    """Register a rule function under a stable id."""

    def register(func: Callable[[Any], Iterator[Finding]]) -> Callable[[Any], Iterator[Finding]]:
        RULES[rule_id] = Rule(rule_id, name, severity, rationale, kind, func)
        return func

    return register


ERROR, WARNING = Severity.ERROR, Severity.WARNING


def run_rules(kind: str, subject: Any, doc: Document, *, warnings: bool = True) -> list[Diagnostic]:
    """Every finding of the rules of `kind` on `subject`, positioned in `doc` (with
    warnings=False, of the rules whose findings are errors only)."""
    out: list[Diagnostic] = []
    for rule_ in RULES.values():
        if rule_.kind != kind or (not warnings and rule_.severity is not ERROR):
            continue
        for finding in rule_.check(subject):
            if finding.at is not None:
                pos = doc.source.inside_scalar(finding.path, *finding.at)
                out.append(Diagnostic(doc.file, pos.line, pos.column, rule_.severity, rule_.id,
                                      finding.message, finding.path))
                continue
            out.append(doc.diagnostic(finding.path, finding.message, rule_.id, rule_.severity,
                                      key=finding.key))
    return out


def did_you_mean(word: str, options: Any) -> str:
    """` (did you mean 'x'?)` for the option closest to `word`, or "" when none is close."""
    import difflib

    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
