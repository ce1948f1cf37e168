"""A run's report: everything `runbook report` shows, built from the journal alone.

The journal is the single source: key times come from `metrics.timings`, the time
axis from `timeline.build_timeline`; a drill adds its debrief (scorecard, history),
a live run its post-incident review draft. Renderers (Markdown, HTML, JSON) only
format a `Report`; they compute nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from engine.errors import JournalError
from engine.run.journal import read_journal, run_finished
from engine.run.metrics import MILESTONES, Timings, timings
from engine.run.records import clean

from ._format import plain
from .review import review
from .timeline import Bar, Timeline, build_timeline

SLOWEST = 5


@dataclass
class KeyTime:
    """A milestone from t=0 (the alert, the start of the run), and its objective in a drill."""

    name: str
    label: str
    at: float | None
    objective: float | None = None
    wall: str | None = None  # wall-clock time, from the run's start stamp

    @property
    def met(self) -> bool | None:
        if self.objective is None:
            return None
        return self.at is not None and self.at <= self.objective + 1e-9


@dataclass
class Report:
    source: str
    run_id: str
    runbook: str
    title: str
    file: str
    mode: str
    started_at: str
    timings: Timings
    timeline: Timeline
    key_times: list[KeyTime]
    scenario: str | None = None
    hostname: str = ""
    version: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    participants: list[dict[str, Any]] = field(default_factory=list)
    outcome: str | None = None
    reason: str = ""
    failed_step: str | None = None
    duration: float | None = None
    complete: bool = False
    torn: bool = False
    bad_lines: list[int] = field(default_factory=list)
    drill: Any = None  # debrief.Debrief for a drill
    review: Any = None  # review.Review for a live run
    alert: dict[str, Any] | None = None  # the alert that started the run (alerts.record), if any

    @property
    def is_drill(self) -> bool:
        return self.scenario is not None

    @property
    def steps(self) -> list[Bar]:
        """Step bars whose time is their own (an include's, a block's or a switch's time is
        that of the steps inside)."""
        return [b for b in self.timeline.bars if b.kind not in ("include", "block", "switch")]

    @property
    def people_time(self) -> float:
        """Waits for people in the steps, and between phases (a service route's gate)."""
        return sum(b.people for b in self.steps) + sum(w.end - w.start for w in self.timeline.waits)

    @property
    def machine_time(self) -> float:
        return sum(b.machine for b in self.steps)

    @property
    def delay_time(self) -> float:
        return sum(b.delays for b in self.steps)

    @property
    def slowest(self) -> list[Bar]:
        ran = [b for b in self.steps if b.status != "skipped"]
        return sorted(ran, key=lambda b: b.duration, reverse=True)[:SLOWEST]

    @property
    def status_text(self) -> str:
        if not self.complete:
            return "incomplete"
        return self.outcome or "unknown"


def wall_time(started_at: str, offset: float | None) -> str | None:
    """The ISO stamp `offset` seconds after the run's start stamp."""
    if offset is None or not started_at:
        return None
    try:
        start = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    stamp = start + timedelta(seconds=offset)
    return stamp.strftime("%Y-%m-%d %H:%M:%S") + " UTC"


def _key_times(t: Timings, started_at: str, objectives: Any = None) -> list[KeyTime]:
    out = []
    for m in MILESTONES:
        at = getattr(t, m.attr)
        limit = getattr(objectives, m.objective, None) if objectives is not None else None
        out.append(KeyTime(m.attr, m.label, at, limit, wall_time(started_at, at)))
    return out


def _base(path: Path, records: list[dict[str, Any]], contents: Any) -> Report:
    first: dict[str, Any] = next((r for r in records if r.get("event") == "run.started"), {})
    last: dict[str, Any] = run_finished(records) or {}
    t = timings(records)
    timeline = build_timeline(records, complete=bool(last), torn=contents.torn, bad_lines=contents.bad_lines)
    started_at = str(first.get("t") or "")
    return Report(
        source=str(path), run_id=str(first.get("run_id") or path.parent.name), runbook=str(first.get("runbook") or "?"),
        title=str(first.get("title") or first.get("runbook") or "?"), file=str(first.get("file") or ""),
        mode=str(first.get("mode") or "?"), started_at=started_at, timings=t, timeline=timeline,
        key_times=_key_times(t, started_at), scenario=first.get("scenario"),
        hostname=str(first.get("hostname") or ""), version=str(first.get("version") or ""),
        inputs=dict(first.get("inputs") or {}), participants=list(first.get("participants") or []),
        outcome=last.get("outcome"), reason=str(last.get("reason") or ""), failed_step=last.get("failed_step"),
        duration=float(last["duration"]) if last.get("duration") is not None else None,
        complete=bool(last), torn=contents.torn, bad_lines=list(contents.bad_lines),
        alert=first.get("alert") if isinstance(first.get("alert"), dict) else None,
    )


def build_report(source: str | os.PathLike[str], *, scenario_file: str | None = None,
                 history_dir: str | None = None, trainer: bool = False) -> Report:
    """The report of the run in `source` (a run directory or a journal file). A drill's is
    the trainees' debrief, built from their view of the journal; `trainer` makes it the
    trainer's, with the trainer notes."""
    contents = read_journal(source)
    if not contents.records:
        raise JournalError(f"{contents.path} holds no journal records")
    whole = [clean(r) for r in contents.records]
    drill = bool(next((r for r in whole if r.get("event") == "run.started"), {}).get("scenario"))
    if drill and not trainer:
        # The debrief is imported for drills only: it brings the drill scorer, and with
        # it the execution loop, which a live run's report never needs.
        from .debrief import trainee_view

        whole = trainee_view(whole)
    contents.records = whole
    report = _base(contents.path, contents.records, contents)
    if report.is_drill:
        from .debrief import debrief

        report.drill = debrief(report, scenario_file=scenario_file, history_dir=history_dir,
                               trainer_records=whole if trainer else None)
        objectives = report.drill.scenario.objectives if report.drill.scenario is not None else None
        report.key_times = _key_times(report.timings, report.started_at, objectives)
    else:
        report.review = review(report, contents.records)
    return report


def to_dict(report: Report) -> dict[str, Any]:
    """The report as plain data (the JSON format): the facts, and what was derived."""
    data = plain(report)
    data.pop("drill", None)
    data.pop("review", None)
    data["format"] = "runbook-report/1"
    data["status"] = report.status_text
    data["key_times"] = [{**plain(k), "met": k.met} for k in report.key_times]
    data["time"] = {"people": report.people_time, "machine": report.machine_time, "delays": report.delay_time}
    data["slowest"] = [{"step": b.step, "duration": b.duration, "status": b.status} for b in report.slowest]
    data["stop"] = {**plain(report.timeline.stop), "text": report.timeline.stop.describe()} \
        if report.timeline.stop else None
    if report.drill is not None:
        data["drill"] = report.drill.to_dict()
    if report.review is not None:
        data["review"] = plain(report.review)
    return data


def render_json(report: Report) -> str:
    return json.dumps(to_dict(report), indent=2, ensure_ascii=False) + "\n"
