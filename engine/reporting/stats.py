"""Statistics across many journals (drills and live runs): per runbook and scenario,
how many runs, how they ended, p50/p90 of the key times, and whether the team is
getting faster.

Thousands of journals are read quickly by streaming them line by line and decoding
only the few records the key times need: the event name is read from the raw line,
so step results with their output tails are never parsed (of a remediation step's
result only the head is read: did it act and succeed?).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine.errors import JournalError
from engine.run.journal import decode, journal_lines, open_journal
from engine.run.metrics import MILESTONES, percentile, timings
from engine.run.records import clean

from ._format import dur, plain
from .journals import journal_files

METRICS = tuple((m.attr, m.verb) for m in MILESTONES)
# The records the key times are computed from; everything else is skipped unparsed.
NEEDED = frozenset((b"run.started", b"run.finished", b"incident.acknowledged", b"prompt.answered", b"approval",
                    b"hint.shown", b"phase.started", b"phase.finished", b"mitigation.watched",
                    b"incident.mitigated"))
FIRST_ONLY = b"step.started"  # only the first one counts (acknowledged, when nobody answered anything)
REMEDIATION_ONLY = b"step.finished"  # only inside remediation (did a step act?), and only its head
_HEAD_END = b', "duration": '  # step.finished: step, phase, kind and status come first, output last
_EVENT = re.compile(rb'"event"\s*:\s*"([^"]*)"')
MAX_PERIODS = 12
STEADY = 0.10  # a change of the median under 10% is no trend


@dataclass
class RunPoint:
    """The facts of one run that statistics need."""

    path: str
    run_id: str
    runbook: str
    scenario: str | None
    mode: str
    started: float | None  # epoch seconds
    outcome: str  # or "unfinished"
    duration: float | None
    acknowledged: float | None = None
    triaged: float | None = None
    mitigated: float | None = None
    recovered: float | None = None


def _event(line: bytes) -> bytes | None:
    at = line.find(b'"event": "')
    if at >= 0:
        end = line.find(b'"', at + 10)
        return line[at + 10:end] if end > 0 else None
    match = _EVENT.search(line)
    return match.group(1) if match else None


def lean_records(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """The records of a journal that key times need, decoded lazily; torn or bad lines skipped."""
    first_step = True
    phases: list[Any] = []  # the open phases, outermost first (an include nests its own)
    with open_journal(Path(path)) as handle:
        for line in journal_lines(handle):
            name = _event(line)
            if name is None or (name not in NEEDED and not (first_step and name == FIRST_ONLY)
                                and not (name == REMEDIATION_ONLY and phases[:1] == ["remediation"])):
                continue
            first_step = first_step and name != FIRST_ONLY
            record = _head(line) if name == REMEDIATION_ONLY else decode(line)
            if record is not None:
                _track(phases, name, record)
                yield clean(record)




def _head(line: bytes) -> dict[str, Any] | None:
    """A step.finished record without its results: the fields before `duration` (the
    journal writes them in a fixed order), so the output tail is never parsed."""
    end = line.find(_HEAD_END)
    return decode(line[:end] + b"}") if end > 0 else decode(line)


def _track(phases: list[Any], name: bytes, record: dict[str, Any]) -> None:
    if name == b"phase.started":
        phases.append(record.get("phase"))
    elif name == b"phase.finished" and phases:
        phases.pop()
    elif name == b"run.started":
        phases.clear()  # a resumed run starts its phases afresh


def _epoch(stamp: Any) -> float | None:
    if isinstance(stamp, (int, float)):
        return float(stamp)
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def read_point(path: str | os.PathLike[str]) -> RunPoint | None:
    """One journal's RunPoint; None when it has no run.started record (not a run)."""
    started: dict[str, Any] = {}

    def remember(records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for record in records:
            if not started and record.get("event") == "run.started":
                started.update(record)
            yield record

    t = timings(remember(lean_records(path)))
    if not started:
        return None
    return RunPoint(str(path), t.run_id, t.runbook, t.scenario, t.mode, _epoch(started.get("t")),
                    str(t.outcome) if t.complete else "unfinished", t.duration,
                    t.acknowledged, t.triaged, t.mitigated, t.recovered)


# -- aggregation --------------------------------------------------------------------------------


@dataclass
class Period:
    label: str
    runs: int
    p50: float | None


@dataclass
class Trend:
    """Is the team getting faster? The median of the later half of the runs against the
    earlier half; periods give the same medians per calendar period."""

    metric: str
    verdict: str  # faster | slower | steady | too few runs
    earlier: float | None = None
    later: float | None = None
    change: float | None = None  # (later - earlier) / earlier
    periods: list[Period] = field(default_factory=list)


@dataclass
class Group:
    runbook: str
    scenario: str | None
    runs: list[RunPoint] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.runbook} / {self.scenario}" if self.scenario else f"{self.runbook} (live)"

    @property
    def outcomes(self) -> dict[str, int]:
        return dict(Counter(r.outcome for r in self.runs).most_common())

    @property
    def modes(self) -> dict[str, int]:
        return dict(Counter(r.mode for r in self.runs).most_common())

    def values(self, metric: str) -> list[float]:
        return [v for v in (getattr(r, metric) for r in self.runs) if v is not None]

    def p(self, metric: str, q: float) -> float | None:
        return percentile(self.values(metric), q)

    def trend(self, metric: str) -> Trend:
        return trend(self.runs, metric)

    @property
    def headline(self) -> Trend:
        """The trend of the latest milestone the runs reach (recovery, else mitigation, ...)."""
        for metric, _ in reversed(METRICS):
            if len(self.values(metric)) >= 2:
                return self.trend(metric)
        return self.trend("recovered")


def _median(values: Sequence[float]) -> float | None:
    return percentile(values, 50)


def trend(runs: Sequence[RunPoint], metric: str) -> Trend:
    ordered = sorted(runs, key=lambda r: (r.started or 0.0, r.run_id))
    values = [v for v in (getattr(r, metric) for r in ordered) if v is not None]
    out = Trend(metric, "too few runs", periods=periods(ordered, metric))
    if len(values) < 4:
        return out
    half = len(values) // 2
    out.earlier, out.later = _median(values[:half]), _median(values[-half:])
    if out.earlier and out.later is not None:
        out.change = (out.later - out.earlier) / out.earlier
        out.verdict = "faster" if out.change < -STEADY else "slower" if out.change > STEADY else "steady"
    else:
        out.verdict = "steady"
    return out


_SIZES = ((86400.0, "%Y-%m-%d"), (7 * 86400.0, "%Y-%m-%d"), (30 * 86400.0, "%Y-%m"), (91 * 86400.0, "%Y-%m"),
          (365 * 86400.0, "%Y"))


def periods(ordered: Sequence[RunPoint], metric: str) -> list[Period]:
    """Median per calendar period (day, week, month, quarter or year: at most 12 periods)."""
    stamps = [r.started for r in ordered if r.started is not None]
    if not stamps:
        return []
    first, span = min(stamps), max(stamps) - min(stamps)
    size, fmt = next(((s, f) for s, f in _SIZES if span / s < MAX_PERIODS), _SIZES[-1])
    buckets: dict[int, list[RunPoint]] = {}
    for run in ordered:
        if run.started is not None:
            buckets.setdefault(int((run.started - first) // size), []).append(run)
    out = []
    for index in sorted(buckets):
        label = datetime.fromtimestamp(first + index * size, tz=timezone.utc).strftime(fmt)
        runs = buckets[index]
        out.append(Period(label, len(runs), _median([v for v in (getattr(r, metric) for r in runs) if v is not None])))
    return out


@dataclass
class Stats:
    groups: list[Group]
    journals: int
    skipped: list[str] = field(default_factory=list)  # unreadable, or not a run
    seconds: float = 0.0


def collect(paths: Iterable[str | os.PathLike[str]]) -> Stats:
    """Statistics over every journal under `paths`."""
    t0 = time.perf_counter()
    points: list[RunPoint] = []
    count, skipped = 0, []
    for path in journal_files(paths):
        count += 1
        point = safe_point(path)
        if point is None:
            skipped.append(str(path))
        else:
            points.append(point)
    return grouped(points, count, skipped, time.perf_counter() - t0)


def safe_point(path: str | os.PathLike[str]) -> RunPoint | None:
    """read_point, with an unreadable journal (or a FIFO or device named journal.jsonl) None."""
    try:
        return read_point(path)
    except (OSError, JournalError):
        return None


def grouped(points: Iterable[RunPoint], journals: int, skipped: list[str], seconds: float) -> Stats:
    """Statistics of runs already read: grouped by runbook and scenario."""
    groups: dict[tuple[str, str | None], Group] = {}
    for point in points:
        key = (point.runbook, point.scenario)
        groups.setdefault(key, Group(*key)).runs.append(point)
    ordered = sorted(groups.values(), key=lambda g: (g.runbook, g.scenario or ""))
    return Stats(ordered, journals, skipped, seconds)


# -- rendering: text and JSON (HTML is in html.py) -------------------------------------------------


def _pair(group: Group, metric: str) -> str:
    p50, p90 = group.p(metric, 50), group.p(metric, 90)
    return "-" if p50 is None else f"{dur(p50)}/{dur(p90)}"


def trend_text(t: Trend) -> str:
    if t.change is None:
        return t.verdict
    return f"{t.verdict} ({t.change:+.0%} {dict(METRICS).get(t.metric, t.metric)})"


def render_text(stats: Stats) -> str:
    """A table: one row per runbook and scenario."""
    head = ["runbook / scenario", "runs", "outcomes", *[f"{label} p50/p90" for _, label in METRICS], "trend"]
    rows = [[g.name, str(len(g.runs)), ", ".join(f"{k} {v}" for k, v in g.outcomes.items()),
             *[_pair(g, m) for m, _ in METRICS], trend_text(g.headline)] for g in stats.groups]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"{stats.journals} journal(s), {sum(len(g.runs) for g in stats.groups)} run(s) in "
                 f"{len(stats.groups)} group(s), read in {stats.seconds:.2f}s"
                 + (f"; {len(stats.skipped)} skipped (not a run or unreadable)" if stats.skipped else ""))
    return "\n".join(lines) + "\n"


def to_dict(stats: Stats) -> dict[str, Any]:
    groups = []
    for g in stats.groups:
        groups.append({
            "runbook": g.runbook, "scenario": g.scenario, "runs": len(g.runs), "outcomes": g.outcomes,
            "modes": g.modes,
            "times": {m: {"n": len(g.values(m)), "p50": g.p(m, 50), "p90": g.p(m, 90)} for m, _ in METRICS},
            "trends": {m: plain(g.trend(m)) for m, _ in METRICS},
            "headline": plain(g.headline),
        })
    return {"format": "runbook-stats/1", "journals": stats.journals, "skipped": stats.skipped,
            "seconds": round(stats.seconds, 3), "groups": groups}


def render_json(stats: Stats) -> str:
    return json.dumps(to_dict(stats), indent=2) + "\n"
