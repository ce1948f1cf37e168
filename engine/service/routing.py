"""Which alert starts which runbook: the serve config's routes, first match wins.

A route matches an alert by its source, its name (the `alertname` label), labels equal to
values and labels whose values match regular expressions (the whole value). It names a
runbook (its id, found in the config's runbook directories, or its file) and gives the
run its inputs: the route's own, then each input the runbook maps from the alert
(`alert: labels.instance`), read from this alert. It carries a policy (the phases that
run unattended, the steps that need whose approval) and the pool of workers that may run
it. `once_within` is counted per route and label set, in the store (intake does it).

An alert no route matches gets no run; it is still stored and shown.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import EngineError, UsageError
from engine.language.model import Runbook
from engine.language.serve_routes import RunbookCatalog
from engine.run.alerts import lookup, record

from .config import Route, ServeConfig
from .store import NewRun

log = logging.getLogger("runbook.intake")


@dataclass(frozen=True)
class Target:
    """A route made ready: its name, its runbook loaded, its regular expressions compiled."""

    name: str
    route: Route
    runbook: Runbook
    file: str
    patterns: Mapping[str, re.Pattern[str]]

    def matches(self, source: str, alert: Mapping[str, Any]) -> bool:
        labels: Mapping[str, str] = alert.get("labels") or {}
        r = self.route
        return ((r.source is None or r.source == source)
                and (r.alertname is None or labels.get("alertname") == r.alertname)
                and all(labels.get(k) == v for k, v in r.labels.items())
                and all(k in labels and p.fullmatch(labels[k]) is not None for k, p in self.patterns.items()))

    @property
    def policy(self) -> dict[str, Any]:
        """What the run's worker applies (engine/run/policy.py), kept with the alert."""
        gate_role = self.route.gate_role or (self.runbook.defaults.role if self.route.unattended else None)
        return {"unattended": list(self.route.unattended), "approvals": dict(self.route.approvals),
                "gate_role": gate_role, "pool": dict(self.route.pool)}

    def run(self, source: str, alert: Mapping[str, Any]) -> NewRun:
        """The run this alert starts: the route's inputs, then those the runbook maps from the alert."""
        inputs = dict(self.route.inputs)
        for name, spec in self.runbook.inputs.items():
            if spec.alert and name not in inputs:
                value = lookup(alert, spec.alert)
                if value is not None:
                    inputs[name] = value
        return NewRun(self.runbook.id, self.file, inputs, alert=record(alert), pool=dict(self.route.pool),
                      origin=f"hook:{source} route:{self.name}")


class Router:
    """The routes of a serve config, each with its runbook loaded."""

    def __init__(self, targets: list[Target]) -> None:
        self.targets = targets

    @classmethod
    def of(cls, config: ServeConfig) -> Router:
        """UsageError naming every route whose runbook cannot be found or loaded."""
        base = Path(config.file).resolve().parent if config.file else Path.cwd()
        from engine.language.validation import load_runbook

        catalog = RunbookCatalog(config.runbooks, load_runbook)
        targets, problems = [], []
        for i, route in enumerate(config.routes):
            name = route.name or f"route-{i + 1}"
            try:
                file, runbook = catalog.find(base, route.runbook)
            except EngineError as exc:
                problems.append(f"route {name}: {exc}")
                continue
            patterns = {k: re.compile(v) for k, v in route.labels_match.items()}
            targets.append(Target(name, route, runbook, file, patterns))
        if problems:
            raise UsageError("the serve config's routes cannot start their runbooks:\n  " + "\n  ".join(problems))
        return cls(targets)

    def match(self, source: str, alert: Mapping[str, Any]) -> Target | None:
        return next((t for t in self.targets if t.matches(source, alert)), None)
