"""The runbooks a serve config's routes start, and what a route's policy asks of them.

A route names its runbook by file (beside the config) or by id (in the config's
`runbooks:` directories). Its policy must fit that runbook: every step of `approvals:`
exists, and nothing in an `unattended` phase waits for a person (a `confirm:`, a manual
step, a question without a default, a policy approval): nobody would be there to
answer. Shared by `runbook validate` and `runbook serve`, which refuse such a route with
the config's file, line and column and the step's own position.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.errors import EngineError, UsageError

from . import cache
from .diagnostics import Diagnostic
from .loader import Document
from .model import MISSING, ManualSpec, Runbook, Step

RULE = "RB013"
log = logging.getLogger("runbook.intake")

Load = Callable[[Path], Runbook]  # validation.load_runbook (passed in: validation imports this module's callers)


class RunbookCatalog:
    """The runbooks in a config's directories, by id (loaded only when a route asks)."""

    def __init__(self, places: Sequence[Path], load: Load) -> None:
        self.places, self.load = tuple(places), load
        self._by_id: dict[str, tuple[str, Runbook]] | None = None

    def find(self, base: Path, name: str) -> tuple[str, Runbook]:
        """The file and runbook a route names; EngineError when there is none."""
        path = base / name
        cache.note(path)
        if path.is_file():
            return str(path.resolve()), self.load(path)
        found = self._ids().get(name)
        if found is None:
            raise UsageError(f"no runbook {name!r}: not a file beside the config, nor the id of a runbook in "
                             f"{', '.join(str(p) for p in self.places) or 'the config runbooks (none listed)'}")
        return found

    def _ids(self) -> dict[str, tuple[str, Runbook]]:
        if self._by_id is None:
            self._by_id = {}
            for file in self._files():
                cache.note(file)
                try:
                    runbook = self.load(file)
                except EngineError as exc:  # a scenario, an inventory, or a broken runbook
                    log.debug("%s: not a runbook routes can start: %s", file, str(exc).splitlines()[0])
                    continue
                self._by_id.setdefault(runbook.id, (str(file.resolve()), runbook))
        return self._by_id

    def _files(self) -> list[Path]:
        files: list[Path] = []
        for place in self.places:
            if place.is_file():
                files.append(place)
            elif place.is_dir():
                files.extend(sorted(p for p in place.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()))
        return files


def waits_for_person(step: Step) -> str | None:
    """What in the step waits for a person (None: nothing does)."""
    if step.confirm is not None:
        return "asks for an approval (confirm:)"
    spec = step.spec
    if isinstance(spec, ManualSpec):
        missing = [f.name for f in spec.ask if f.default is MISSING]
        if not spec.ask:
            return "is a manual step a person acknowledges"
        if missing:
            return f"asks {', '.join(missing)} without a default"
    return None


def check_routes(doc: Document, load: Load) -> list[Diagnostic]:
    """Every problem of the routes' policies with their runbooks, positioned in the config."""
    routes = [(i, r) for i, r in enumerate(doc.data.get("routes", [])) if r.get("unattended") or r.get("approvals")]
    if not routes:
        return []  # nothing to load: validating a config without policies reads no runbook
    base = Path(doc.file).resolve().parent
    catalog = RunbookCatalog([base / entry for entry in doc.data.get("runbooks", [])], load)
    found: list[Diagnostic] = []
    for i, route in routes:
        try:
            _, runbook = catalog.find(base, route["runbook"])
        except EngineError:  # not there (yet), or broken: `runbook serve` refuses it, saying which
            continue
        found += _policy(doc, i, route, runbook)
    return found


def _policy(doc: Document, i: int, route: dict[str, Any], runbook: Runbook) -> list[Diagnostic]:
    name = route.get("name") or f"route {i + 1}"
    unattended = list(route.get("unattended") or [])
    approvals: dict[str, str] = dict(route.get("approvals") or {})
    found = [doc.diagnostic(("routes", i, "approvals", step), f"{name}: runbook {runbook.id} has no step {step!r}",
                            RULE, key=True) for step in approvals if runbook.step(step) is None]
    for j, phase in enumerate(unattended):
        for step in (s for s in runbook.steps() if s.phase == phase):
            why = waits_for_person(step) or (f"needs an approval by {approvals[step.id]} (approvals:)"
                                             if step.id in approvals else None)
            if why is not None:
                found.append(doc.diagnostic(("routes", i, "unattended", j),
                                            f"{name}: phase {phase} runs unattended, but step {step.id} "
                                            f"({runbook.where(step.path)}) {why}: nobody would answer", RULE))
    return found
