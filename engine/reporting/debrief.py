"""A drill's debrief: the scorecard against the scenario's objectives, hints, wrong
turns, who did what (answers and approvals too), and earlier runs of the same scenario
side by side.

Two audiences: the trainees' debrief (the default) holds nothing the trainees would not
have seen in an incident: an injected event shows its message, never its kind (a red
herring?) or the state it changed, and a silent one is left out. The trainer's debrief
(`runbook report --trainer`) adds the trainer notes: the scenario's description, every
injected event with its kind and state change, and why each fault is there.

The scenario file is found by the id the journal recorded, near the runbook the run
used (its folder, a sibling `scenarios/` folder) or in ./scenarios; `--scenario FILE`
overrides the search. Without it the debrief still has every timing, and says why
the objectives are missing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.run.journal import read_journal
from engine.run.metrics import timings
from engine.run.records import clean
from engine.simulation.drill import Scorecard, score, wrong_turns

from ._format import plain
from .journals import journals_under, scenario_of
from .review import decisions

HISTORY_LIMIT = 8
_KIND = re.compile(r"^kind:\s*['\"]?scenario['\"]?\s*(#.*)?$", re.MULTILINE)


@dataclass
class HistoryRun:
    """One run of the scenario, for the side-by-side table."""

    run_id: str
    started: str
    outcome: str | None
    acknowledged: float | None
    triaged: float | None
    mitigated: float | None
    recovered: float | None
    retries: int
    hints: int
    met: int | None = None
    checks: int | None = None
    current: bool = False


@dataclass
class Injected:
    """An injected event as the trainer knows it."""

    at: float
    kind: str
    message: str
    changed: dict[str, Any]
    by_trainer: bool


@dataclass
class TrainerNotes:
    """What the trainees must not see: how the drill works."""

    description: str = ""
    events: list[Injected] = field(default_factory=list)
    faults: list[tuple[str, str]] = field(default_factory=list)  # (which response, why it is there)


@dataclass
class Debrief:
    scenario_id: str
    scenario: Any = None  # simulation.scenario.Scenario, when found
    scenario_file: str | None = None
    note: str = ""
    card: Scorecard | None = None
    wrong_turns: list[str] = field(default_factory=list)
    history: list[HistoryRun] = field(default_factory=list)
    history_note: str = ""
    decisions: list[Any] = field(default_factory=list)  # review.Action: answers and approvals
    notes: TrainerNotes | None = None  # only in the trainer's debrief

    @property
    def title(self) -> str:
        return self.scenario.title if self.scenario is not None else self.scenario_id

    def to_dict(self) -> dict[str, Any]:
        card = self.card
        return {
            "scenario": self.scenario_id, "title": self.title, "scenario_file": self.scenario_file,
            "note": self.note, "passed": card.passed if card else None,
            "checks": plain(card.checks) if card else [], "unscripted": card.unscripted if card else [],
            "wrong_turns": self.wrong_turns, "history": plain(self.history), "history_note": self.history_note,
            "decisions": plain(self.decisions), **({"trainer_notes": plain(self.notes)} if self.notes else {}),
        }


TRAINER_ONLY = ("kind", "set")  # fields of inject.fired that only the trainer's view keeps


def trainee_view(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A drill's records as the trainees may read them: injected events keep their message
    only; one without a message (a silent change of the simulated world) is left out."""
    out = []
    for r in records:
        if r.get("event") == "inject.fired":
            if not r.get("message"):
                continue
            r = {k: v for k, v in r.items() if k not in TRAINER_ONLY}
        out.append(r)
    return out


def trainer_notes(scenario: Any, records: list[dict[str, Any]]) -> TrainerNotes:
    """The trainer's notes: from the scenario file when found, and the journal's injections."""
    events = [Injected(float(r.get("elapsed") or 0.0), str(r.get("kind") or "info"), str(r.get("message") or ""),
                       dict(r.get("set") or {}), bool(r.get("manual"))) for r in records
              if r.get("event") == "inject.fired"]
    if scenario is None:
        return TrainerNotes(events=events)
    faults = [(_which(resp), resp.description.strip()) for resp in scenario.responses if resp.description]
    return TrainerNotes(scenario.description.strip(), events, faults)


def _which(response: Any) -> str:
    if response.step is not None:
        return f"step {response.step}"
    match = response.match
    parts = [f"{k} {getattr(match, k)}" for k in ("command", "command_regex", "host", "url", "method")
             if match is not None and getattr(match, k) is not None]
    return "match " + ", ".join(parts)


def _candidates(runbook_file: str) -> Iterator[Path]:
    dirs: list[Path] = []
    if runbook_file:
        here = Path(runbook_file).parent
        dirs += [here, here.parent / "scenarios", here / "scenarios"]
    dirs += [Path.cwd() / "scenarios", Path.cwd()]
    seen: set[Path] = set()
    for directory in dirs:
        if directory in seen or not directory.is_dir():
            continue
        seen.add(directory)
        yield from sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def _declares(path: Path, scenario_id: str) -> bool:
    """A cheap look at the text before loading: `kind: scenario` and `id: <id>`."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    ident = re.compile(rf"^id:\s*['\"]?{re.escape(scenario_id)}['\"]?\s*(#.*)?$", re.MULTILINE)
    return bool(_KIND.search(text) and ident.search(text))


def find_scenario(scenario_id: str, runbook_file: str) -> Path | None:
    """The scenario file with this id near the runbook (or in ./scenarios), if any."""
    return next((p for p in _candidates(runbook_file) if _declares(p, scenario_id)), None)


def _load(path: Path) -> Any:
    from engine.language.validation import load_scenario

    return load_scenario(path)


def _scenario(scenario_id: str, runbook_file: str, given: str | None) -> tuple[Any, str | None, str]:
    """(scenario or None, its file, a note for the reader)."""
    path = Path(given) if given else find_scenario(scenario_id, runbook_file)
    if path is None:
        return None, None, (f"The scenario file for {scenario_id!r} was not found near {runbook_file or 'the runbook'} "
                            "or in ./scenarios: timings are shown without objectives (pass --scenario FILE).")
    try:
        scenario = _load(path)
    except EngineError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, str(path), f"The scenario file {path} could not be loaded ({first}): objectives are not shown."
    note = ""
    if scenario.id != scenario_id:
        note = f"The scenario file {path} has id {scenario.id!r}; this run recorded {scenario_id!r}."
    return scenario, str(path), note


def debrief(report: Any, *, scenario_file: str | None = None, history_dir: str | None = None,
            trainer_records: list[dict[str, Any]] | None = None) -> Debrief:
    """The debrief of a drill report (`report.scenario` is set); with `trainer_records` (the
    whole journal), the trainer's, with the trainer notes."""
    scenario_id = str(report.scenario)
    scenario, path, note = _scenario(scenario_id, report.file, scenario_file)
    out = Debrief(scenario_id, scenario, path, note, decisions=decisions(report.timings))
    if trainer_records is not None:
        out.notes = trainer_notes(scenario, trainer_records)
    if scenario is not None:
        out.card = score(scenario, report.timings)
        out.wrong_turns = list(out.card.wrong_turns)
    else:
        out.wrong_turns = wrong_turns(report.timings)
    if history_dir is not None:
        out.history, out.history_note = _history(Path(history_dir), scenario_id, scenario, report)
    return out


# -- earlier runs ---------------------------------------------------------------------------------


def _row(path: Path, scenario: Any, current: Path) -> HistoryRun:
    contents = read_journal(path)
    first = contents.started or {}
    t = timings(clean(r) for r in contents.records)
    row = HistoryRun(t.run_id or path.parent.name, str(first.get("t") or ""), t.outcome if t.complete else "unfinished",
                     t.acknowledged, t.triaged, t.mitigated, t.recovered, t.retries, len(t.hints),
                     current=path.resolve() == current.resolve())
    if scenario is not None:
        card = score(scenario, t)
        row.met, row.checks = len(card.checks) - len(card.missed), len(card.checks)
    return row


def _history(root: Path, scenario_id: str, scenario: Any, report: Any) -> tuple[list[HistoryRun], str]:
    """The latest runs of the same scenario under `root`, oldest first, this run included."""
    current = Path(report.source)
    matches = [p for p in journals_under(root) if scenario_of(p) == scenario_id]
    if not any(p.resolve() == current.resolve() for p in matches):
        matches.append(current)
    rows = [_row(p, scenario, current) for p in matches]
    rows.sort(key=lambda r: (r.started, r.run_id))
    dropped = max(len(rows) - HISTORY_LIMIT, 0)
    kept = rows[-HISTORY_LIMIT:]
    if dropped and not any(r.current for r in kept):
        kept = kept[1:] + [r for r in rows if r.current]
    note = f"{len(rows)} run(s) of {scenario_id} found under {root}"
    note += f"; the latest {len(kept)} are shown" if dropped else ""
    return kept, note
