"""Lint: every semantic rule over the model, each with a stable id and a one-line rationale.

The rules come in families, one module each: runbooks (`_runbook_rules`), Kubernetes targets
(`_kube_rules`), values in shell commands (`_shell_rules`), quoting traps
(`_quoting_rules`), `include:` steps (`_include_rules`), values the schema cannot judge
(`_value_rules`), switches and endings (`_flow_rules`), scenarios (`_scenario_rules`) and
inventories (`_inventory_rules`).
They register with engine/language/rules.py and look at what a check computes once per
file (engine/language/runbook_check.py); this module pulls them together. The runbook
families that have error rules are imported with it; those whose rules are all warnings
(WARNING_FAMILIES) when warnings are asked for, since a run, which drops warnings, need
not load them; the scenario and inventory ones are run by validation for those files,
and imported here only to list every rule. `# runbook: ignore[RB101]` on a line
silences a rule there.
"""

from __future__ import annotations

import importlib

from . import (  # noqa: F401  (register the runbook rules)
    _flow_rules,
    _include_rules,
    _kube_rules,
    _runbook_rules,
    _value_rules,
)
from .channels import KnownChannels
from .diagnostics import STRUCTURAL_RULES, STRUCTURAL_WARNINGS, Diagnostic
from .loader import Document
from .model import Runbook
from .rules import RULES, run_rules
from .runbook_check import RunbookCheck

__all__ = ["RULES", "WARNING_FAMILIES", "KnownChannels", "describe_rules", "lint_runbook", "rule_catalog"]

# Runbook rule families whose every rule is a warning (tests/test_lint.py holds them to it).
WARNING_FAMILIES = ("_quoting_rules", "_shell_rules")


def _warning_families() -> None:
    for name in WARNING_FAMILIES:
        importlib.import_module(f"{__package__}.{name}")


def lint_runbook(doc: Document, runbook: Runbook, *, inventory_groups: frozenset[str] | None = None,
                 channels: KnownChannels | None = None, warnings: bool = True) -> list[Diagnostic]:
    """Run every runbook rule (with warnings=False, only those that report errors);
    findings positioned in `doc`."""
    if warnings:
        _warning_families()
    check = RunbookCheck(doc, runbook, inventory_groups, channels)
    return run_rules("runbook", check, doc, warnings=warnings)


def describe_rules() -> list[dict[str, str]]:
    """Rule table for docs and `runbook rules`: every family's rules, by id."""
    from . import _inventory_rules, _scenario_rules  # noqa: F401  (register their rules)

    _warning_families()

    return [
        {"id": r.id, "name": r.name, "severity": r.severity.value, "applies_to": r.kind,
         "rationale": r.rationale}
        for r in sorted(RULES.values(), key=lambda r: r.id)
    ]


def rule_catalog() -> dict[str, dict[str, str]]:
    """Every rule id -> {name, rationale, severity}: structural rules and lint rules."""
    catalog = {
        rid: {"name": name, "rationale": why, "severity": "warning" if rid in STRUCTURAL_WARNINGS else "error"}
        for rid, (name, why) in STRUCTURAL_RULES.items()
    }
    for entry in describe_rules():
        catalog[entry["id"]] = {k: entry[k] for k in ("name", "rationale", "severity")}
    return catalog
