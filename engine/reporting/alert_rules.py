"""Prometheus alerting rules, for alert coverage: every `alert:` rule in rule files, both
as Prometheus reads them (`groups:` of `rules:`) and as Kubernetes resources of kind
`PrometheusRule` (the same groups under `spec:`), several documents to a file.

Only what coverage needs is read (the alert's name, its `runbook_url` annotation and
where it is); the files are composed, not constructed, so each alert keeps its line.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from engine.errors import EngineError

RULE_SUFFIXES = (".yaml", ".yml")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class RuleFileError(EngineError):
    """A rule file that cannot be read (exit 2), with where."""

    exit_code = 2


@dataclass(frozen=True)
class AlertRule:
    """One `alert:` rule: its name, its runbook_url annotation, and where it is."""

    name: str
    runbook_url: str | None
    file: str
    line: int  # 1-based

    def runbook_name(self) -> str | None:
        """The runbook its runbook_url points at: the last segment of the URL's path,
        without a .yaml, .yml or .md suffix (`.../runbooks/disk-full.yaml` -> disk-full)."""
        if not self.runbook_url:
            return None
        tail = urlsplit(self.runbook_url).path.rstrip("/").rsplit("/", 1)[-1]
        for suffix in (".yaml", ".yml", ".md", ".html"):
            tail = tail.removesuffix(suffix)
        return tail or None


def rule_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """The YAML files named, or found under named directories, in sorted order."""
    for given in paths:
        root = Path(given)
        if root.is_file():
            yield root
        else:
            yield from sorted(p for p in root.rglob("*") if p.suffix in RULE_SUFFIXES and p.is_file())


def read_rules(path: Path) -> list[AlertRule]:
    """Every alert rule in one file (recording rules and other documents are ignored)."""
    try:
        text = path.read_text(encoding="utf-8")
        documents = list(yaml.compose_all(text, Loader=_Loader))
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError(f"{path}: cannot read the rule file: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise RuleFileError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    out: list[AlertRule] = []
    for doc in documents:
        for rule in _rules(_groups(doc)):
            name = _scalar(_get(rule, "alert"))
            if name:
                annotations = _get(rule, "annotations")
                out.append(AlertRule(name, _scalar(_get(annotations, "runbook_url")), str(path),
                                     rule.start_mark.line + 1))
    return out


def read_all(paths: Iterable[str | os.PathLike[str]]) -> tuple[list[AlertRule], int]:
    """Every alert rule under `paths`, and how many files were read."""
    rules: list[AlertRule] = []
    count = 0
    for path in rule_files(paths):
        count += 1
        rules += read_rules(path)
    return rules, count


def _groups(doc: yaml.Node | None) -> list[yaml.Node]:
    """A rule file's groups, or a PrometheusRule's (under spec:)."""
    if _scalar(_get(doc, "kind")) == "PrometheusRule":
        doc = _get(doc, "spec")
    groups = _get(doc, "groups")
    return list(groups.value) if isinstance(groups, yaml.SequenceNode) else []


def _rules(groups: list[yaml.Node]) -> Iterator[yaml.MappingNode]:
    for group in groups:
        rules = _get(group, "rules")
        if isinstance(rules, yaml.SequenceNode):
            yield from (r for r in rules.value if isinstance(r, yaml.MappingNode))


def _get(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                return v
    return None


def _scalar(node: yaml.Node | None) -> str | None:
    return str(node.value) if isinstance(node, yaml.ScalarNode) and node.value != "" else None
