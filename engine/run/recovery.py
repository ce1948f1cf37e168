"""What an earlier attempt of a run left in its journal, and how to continue it.

`runbook resume RUN` reads the journal (`recover`), then `plan` decides, with the
operator, what happens to each step. Completed steps are restored and never run again.
The step that stopped the run (failed, aborted or refused) runs again only when the
operator says so (`--rerun-failed`, or yes on a terminal), or is skipped (`--skip STEP`);
`--from STEP` starts again at STEP. A step the engine was running when it died is run
again only if `idempotent: true`, or when the operator says so.

Rollbacks: if the earlier attempt ran the rollbacks of completed steps, those steps are
no longer done. Continuing after them would act on a state they no longer set, so
`plan` refuses unless the operator names where to continue (`--from`; on a terminal it
offers to run them again). Steps that were undone are never rolled back a second time.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.errors import JournalError, UsageError
from engine.language.model import AskField, Runbook

from .journal import logged_output, read_journal
from .leftovers import Started
from .records import clean
from .state import StepRecord

# Outcomes a run can be resumed from (a crash, with no run.finished at all, too).
RESUMABLE = ("failed", "aborted", "refused", "escalated")
DONE = ("ok", "skipped")  # a step.finished status that needs no second run
STATUSES = (*DONE, "failed", "aborted", "refused", "not_confirmed")  # what step.finished can say


@dataclass
class PhaseMark:
    """When a phase first started (run-relative seconds) and, once it ended well, how long it took."""

    start: float
    duration: float | None = None


@dataclass
class Recovered:
    """What a run's journal tells: enough to continue it."""

    run_id: str
    runbook_file: str
    mode: str
    inputs: dict[str, Any]
    secret_inputs: list[str]
    participants: list[dict[str, str]]
    started_at: float  # wall-clock time the run started (its first run.started)
    last_seq: int
    last_elapsed: float
    outcome: str | None  # how the last attempt ended; None: it stopped without run.finished
    stop_step: str | None = None
    stop_reason: str = ""
    steps: dict[str, StepRecord] = field(default_factory=dict)  # the last result of each step
    interrupted: list[str] = field(default_factory=list)  # running when the engine died
    undone: list[str] = field(default_factory=list)  # completed, then rolled back (in rollback order)
    vars: dict[str, Any] = field(default_factory=dict)
    incident: dict[str, Any] = field(default_factory=dict)
    phases: dict[str, PhaseMark] = field(default_factory=dict)
    escalations: set[int] = field(default_factory=set)
    started: list[Started] = field(default_factory=list)  # where the interrupted steps ran
    alert: dict[str, Any] | None = None  # the alert that started the run (its `run.alert`)

    @property
    def previous(self) -> str:
        """How the earlier attempt ended, in one word."""
        return self.outcome or "crashed"


def recover(run_dir: Path) -> Recovered:
    """Read a run's journal; UsageError when there is nothing to continue, JournalError
    when the journal cannot say what is needed. Records are read through `records.clean`,
    so a damaged field is missing, never a crash."""
    contents = read_journal(run_dir)
    if contents.started is None:
        raise UsageError(f"{contents.path} has no run.started record: not a journal of a run")
    started = clean(contents.started)
    if started.get("mode", "live") != "live":
        raise UsageError(f"run {started.get('run_id')} is a {started.get('mode')} run: resume continues live runs")
    if not started.get("file"):
        raise JournalError(f"cannot resume: {contents.path}: run.started does not name the runbook file")
    started.setdefault("run_id", run_dir.name)  # run directories are named by their run id
    records = [clean(r) for r in contents.records]
    reader = _Reader(run_dir)
    for record in records:
        reader.add(record)
    if reader.outcome is not None and reader.outcome not in RESUMABLE:
        raise UsageError(f"run {started['run_id']} already finished ({reader.outcome}); nothing to resume")
    return reader.result(started, records[-1])


class _Reader:
    """Folds journal records into what `Recovered` holds, one event kind at a time."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.outcome: str | None = None
        self.stop: dict[str, Any] = {}
        self.steps: dict[str, StepRecord] = {}
        self.open: list[str] = []
        self.undone: list[str] = []
        self.vars: dict[str, Any] = {}
        self.incident: dict[str, Any] | None = None
        self.phases: dict[str, PhaseMark] = {}
        self.depth = 0
        self.escalations: set[int] = set()
        self.where: dict[str, tuple[str | None, tuple[str, ...]]] = {}  # step -> (target, hosts)
        self.groups: dict[str, list[tuple[int, str | None]]] = {}  # step -> (pgid, host) seen started

    def add(self, r: Mapping[str, Any]) -> None:
        event = str(r.get("event", ""))
        if event.startswith("step.") and not r.get("step"):
            return  # damaged: a step event that names no step tells nothing about any step
        handler = getattr(self, "_" + event.replace(".", "_"), None)
        if handler is not None:
            handler(r)

    def _run_started(self, r: Mapping[str, Any]) -> None:
        self.outcome, self.stop, self.open, self.depth = None, {}, [], 0
        self.where, self.groups = {}, {}
        if self.incident is None:
            self.incident = dict(r.get("incident") or {})

    def _run_finished(self, r: Mapping[str, Any]) -> None:
        self.outcome, self.stop = str(r.get("outcome")), dict(r)

    def _phase_started(self, r: Mapping[str, Any]) -> None:
        if self.depth == 0:  # phases of an included runbook nest inside a step of ours
            self.phases.setdefault(str(r.get("phase")), PhaseMark(_elapsed(r)))
        self.depth += 1

    def _phase_finished(self, r: Mapping[str, Any]) -> None:
        self.depth = max(self.depth - 1, 0)
        mark = self.phases.get(str(r.get("phase")))
        if self.depth == 0 and mark is not None and r.get("status") == "ok":
            mark.duration = round(max(_elapsed(r) - mark.start, 0.0), 3)

    def _step_started(self, r: Mapping[str, Any]) -> None:
        step = str(r.get("step"))
        if not r.get("rollback_of") and step not in self.open:
            self.open.append(step)
        hosts = r.get("hosts")
        self.where[step] = (r.get("target") or None, tuple(str(h) for h in hosts) if isinstance(hosts, list) else ())

    def _step_process(self, r: Mapping[str, Any]) -> None:
        if isinstance(r.get("pgid"), int):
            self.groups.setdefault(str(r.get("step")), []).append((r["pgid"], r.get("host") or None))

    def _step_finished(self, r: Mapping[str, Any]) -> None:
        step = str(r.get("step"))
        if r.get("rollback_of"):
            undone = str(r["rollback_of"])
            if undone not in self.undone:
                self.undone.append(undone)
            return
        self.steps[step] = _record_from(r, self.run_dir)
        if step in self.open:
            self.open.remove(step)
        if r.get("status") == "ok" and step in self.undone:
            self.undone.remove(step)  # run again after it was undone: done once more
        if r.get("vars"):
            self.vars = dict(r["vars"])

    def _priority_changed(self, r: Mapping[str, Any]) -> None:
        self.incident = {k: r.get(k) for k in ("impact", "urgency", "priority")}

    def _escalation_fired(self, r: Mapping[str, Any]) -> None:
        if isinstance(r.get("rule"), int):
            self.escalations.add(r["rule"])

    def result(self, started: Mapping[str, Any], last: Mapping[str, Any]) -> Recovered:
        inputs = dict(started.get("inputs") or {})
        secret = [k for k, v in inputs.items() if v == "***"]
        return Recovered(
            str(started["run_id"]), str(started.get("file")), str(started.get("mode", "live")),
            {k: v for k, v in inputs.items() if k not in secret}, secret,
            list(started.get("participants") or []), _epoch(started) - _elapsed(started),
            int(last.get("seq", 0)), _elapsed(last), self.outcome,
            self.stop.get("failed_step"), str(self.stop.get("reason") or ""), self.steps,
            [] if self.outcome else list(self.open), list(self.undone), self.vars, self.incident or {},
            self.phases, self.escalations, [] if self.outcome else self._started(),
            dict(started["alert"]) if isinstance(started.get("alert"), Mapping) else None,
        )

    def _started(self) -> list[Started]:
        """Where each step the engine was running when it died had started its commands."""
        return [Started(step, *self.where.get(step, (None, ())), tuple(self.groups.get(step, [])))
                for step in self.open]


def _elapsed(record: Mapping[str, Any]) -> float:
    try:
        return float(record.get("elapsed") or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _epoch(record: Mapping[str, Any]) -> float:
    try:
        return datetime.fromisoformat(str(record.get("t")).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise UsageError(f"the journal's run.started has no readable time ({record.get('t')!r})") from None


def _record_from(record: Mapping[str, Any], run_dir: Path) -> StepRecord:
    step_id = str(record["step"]).rsplit("/", 1)[-1]
    # A record without a readable status is not known to have succeeded: it counts as
    # failed, so it is run again only after the operator says so.
    status = record.get("status")
    rec = StepRecord(step_id, status=status if status in STATUSES else "failed", exit_code=record.get("exit_code"),
                     stdout=record.get("stdout") or "", stderr=record.get("stderr") or "",
                     outputs=dict(record.get("outputs") or {}), answers=dict(record.get("answers") or {}),
                     duration=record.get("duration") or 0.0, attempts=record.get("attempts") or 1,
                     status_code=record.get("status_code"), hosts=dict(record.get("hosts") or {}),
                     items=list(record.get("items") or []), results=dict(record.get("results") or {}),
                     error=record.get("error") or (None if status in STATUSES else "the journal does not say"))
    for stream in ("stdout", "stderr"):  # the journal keeps a tail; the log file has it all
        logged = logged_output(record, run_dir, stream)
        if logged is not None:
            setattr(rec, stream, logged)
    return rec


def os_user() -> str:
    """Who is at this machine, when no --as names them."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def reason_question() -> AskField:
    return AskField("reason", "text", "Why resume this run? (recorded in the journal; Enter for no reason)")


def step_ids(runbook: Runbook) -> list[str]:
    """The runbook's own steps in run order (rollbacks and included steps not counted)."""
    return [s.id for s in runbook.steps()]


def unknown_steps(runbook: Runbook, names: Iterable[str | None], flag: str) -> list[str]:
    from .answers import did_you_mean

    ids = step_ids(runbook)
    return [f"{flag} {n}: runbook '{runbook.id}' has no step '{n}'{did_you_mean(n, ids)}"
            for n in names if n is not None and n not in ids]
