"""What the console shows of the past, read from the store: statistics across finished runs
(as `runbook stats --database` computes them), the runbooks the serve config serves with
their last runs and their flow as a picture, and the audit trail (who did what, how, when).

Every value goes to a template as data; the templates escape it.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.language.model import Runbook
from engine.reporting.stats import RunPoint, Stats, grouped, safe_point

from .store import AuditEntry, RunQuery, RunRow, Store

log = logging.getLogger("runbook.console")
STATS_RUNS = 1000  # the newest finished runs a stats page reads (`runbook stats --database` reads all)
LAST_RUNS = 5  # runs shown under each runbook
AUDIT_PAGE = 100
AUDITED = ("login", "login.failed", "login.throttled", "logout", "password.set", "question.answered",
           "run.abort", "run.resume", "token.created", "token.revoked")


class StatsCache:
    """What each finished run contributes to the statistics, kept between views: a run is
    exported and read once, and again only when its journal grew (a resumed run). Without
    it every view of the stats page exported up to 1,000 journals."""

    def __init__(self) -> None:
        self._points: dict[str, tuple[int, RunPoint | None]] = {}
        self._lock = threading.Lock()

    def stats_of(self, store: Store, limit: int = STATS_RUNS) -> tuple[Stats, int]:
        """The statistics of the newest `limit` finished runs, and how many finished runs
        there are: each run read as `runbook stats` reads a run directory."""
        t0 = time.perf_counter()
        finished = store.find_runs(RunQuery(status="finished", limit=limit))[:limit]
        total = store.counts().get("finished", 0)
        with self._lock:
            points = {run.id: self._point(store, run) for run in finished}
            self._points = {run_id: self._points[run_id] for run_id in points}  # forget older runs
        found = [point for point in points.values() if point is not None]
        skipped = [run_id for run_id, point in points.items() if point is None]
        return grouped(found, len(points), skipped, time.perf_counter() - t0), total

    def _point(self, store: Store, run: RunRow) -> RunPoint | None:
        known = self._points.get(run.id)
        if known is not None and known[0] == run.last_seq:
            return known[1]
        with tempfile.TemporaryDirectory(prefix="runbook-stats-") as tmp:
            point = safe_point(store.export(run.id, Path(tmp) / run.id))
        self._points[run.id] = (run.last_seq, point)
        return point


@dataclass(frozen=True)
class Served:
    """A runbook the serve config serves: its id, title and file, and its last runs."""

    id: str
    title: str
    file: str
    runs: list[RunRow]


class Catalog:
    """The runbooks the serve config serves, by id: those its routes start, then every
    other runbook in its runbook directories. Loaded once, when first asked."""

    def __init__(self, places: tuple[Path, ...], routed: dict[str, tuple[str, Runbook]]) -> None:
        self.places, self.routed = places, routed
        self._loaded: dict[str, tuple[str, Runbook]] | None = None

    def runbooks(self) -> dict[str, tuple[str, Runbook]]:
        if self._loaded is None:
            self._loaded = dict(self.routed)
            for file in _files(self.places):
                runbook = _runbook(file)
                if runbook is not None:
                    self._loaded.setdefault(runbook.id, (str(file.resolve()), runbook))
        return self._loaded

    def served(self, store: Store) -> list[Served]:
        """Each runbook with its newest runs, by id."""
        return [Served(rid, runbook.title or "", file, store.find_runs(RunQuery(runbook=rid, limit=LAST_RUNS))
                       [:LAST_RUNS]) for rid, (file, runbook) in sorted(self.runbooks().items())]

    def graph_svg(self, runbook_id: str) -> str | None:
        """The runbook's flow as `runbook graph -f svg` draws it (None: no such runbook)."""
        from engine.reporting.graph import build_graph
        from engine.reporting.graph_svg import render_svg

        found = self.runbooks().get(runbook_id)
        return render_svg(build_graph(found[1])) if found is not None else None


def _files(places: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for place in places:
        if place.is_file():
            files.append(place)
        elif place.is_dir():
            files.extend(sorted(p for p in place.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()))
    return files


def _runbook(file: Path) -> Runbook | None:
    from engine.language.validation import load_runbook

    try:
        return load_runbook(file)
    except EngineError as exc:  # a scenario, an inventory, or a broken runbook: not served
        log.debug("%s: not a runbook: %s", file, str(exc).splitlines()[0])
        return None


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    what: str  # the kind shown ("" for every kind)
    older: str | None  # the query string of the next page, None on the last


def audit_page(store: Store, params: dict[str, Any]) -> AuditPage:
    """A page of the audit trail, newest first, of one kind of entry or all."""
    what = params.get("what", "") if params.get("what", "") in AUDITED else ""
    try:
        before = int(params["before"]) if params.get("before") else None
    except ValueError:
        before = None
    entries = store.audit_entries(what=what or None, before=before, limit=AUDIT_PAGE + 1)
    older = None
    if len(entries) > AUDIT_PAGE:
        entries = entries[:AUDIT_PAGE]
        older = f"before={entries[-1].id}" + (f"&what={what}" if what else "")
    return AuditPage(entries, what, older)
