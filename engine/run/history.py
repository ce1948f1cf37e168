"""Past runs: their directories, outcomes and durations (for `runbook runs`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.language.duration import format_duration

from .journal import JOURNAL, first_record, last_record


@dataclass
class RunSummary:
    run_id: str
    runbook: str
    mode: str
    started: str
    outcome: str
    duration: float | None
    path: str

    @property
    def duration_text(self) -> str:
        return format_duration(self.duration) if self.duration is not None else "-"


def list_runs(runs_dir: Path, limit: int = 50) -> list[RunSummary]:
    """Newest first. A run with no run.finished is shown as unfinished (crashed or running)."""
    if not runs_dir.is_dir():
        return []
    dirs = sorted((d for d in runs_dir.iterdir() if (d / JOURNAL).is_file()), reverse=True)
    out = []
    for directory in dirs[:limit]:
        first = first_record(directory / JOURNAL) or {}
        last = last_record(directory / JOURNAL) or {}
        finished = last.get("event") == "run.finished"
        out.append(RunSummary(
            run_id=str(first.get("run_id", directory.name)), runbook=str(first.get("runbook", "?")),
            mode=str(first.get("mode", "?")), started=str(first.get("t", "?")),
            outcome=str(last.get("outcome")) if finished else "unfinished",
            duration=float(last["duration"]) if finished and "duration" in last else None,
            path=str(directory),
        ))
    return out


COLUMNS = ("RUN", "MODE", "OUTCOME", "DURATION", "STARTED")


def runs_table(runs: list[RunSummary]) -> list[str]:
    """`runbook runs` as text: a header, then one aligned line per run."""
    rows = [COLUMNS] + [(r.run_id, r.mode, r.outcome, r.duration_text, r.started) for r in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    return [f"{run:<{widths[0]}}  {mode:<{widths[1]}}  {outcome:<{widths[2]}}  {took:>{widths[3]}}  {started}"
            for run, mode, outcome, took, started in rows]
