"""Timings of a run, computed from its journal records alone.

t=0 is the alert (the start of the run). Acknowledged: someone took the page (or the
first human action). Triaged and recovered: the end of the triage and recovery phases,
when they completed. Mitigated means the fault was acted on: in a drill whose scenario
declares `mitigated_when`, the moment that condition on the simulated world first held
(`incident.mitigated`); otherwise the end of the remediation phase, provided a step in
it acted (a command, a request, a manual action, not a skipped step, a message or a
`set:`) and succeeded. A remediation phase where nothing acted mitigated nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

HUMAN_EVENTS = frozenset(("prompt.answered", "approval", "hint.shown"))
ACTING_KINDS = frozenset(("run", "http", "manual"))  # step kinds that act on the fault


class Milestone(NamedTuple):
    """One of the four key times: its Timings attribute, how people read it, and the
    scenario objective that bounds it."""

    attr: str  # "acknowledged"
    label: str  # "Acknowledged"
    verb: str  # "acknowledge", as in "time to acknowledge"
    objective: str  # "time_to_acknowledge"


MILESTONES = (Milestone("acknowledged", "Acknowledged", "acknowledge", "time_to_acknowledge"),
              Milestone("triaged", "Triaged", "triage", "time_to_triage"),
              Milestone("mitigated", "Mitigated", "mitigate", "time_to_mitigate"),
              Milestone("recovered", "Recovered", "recover", "time_to_recover"))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), interpolated between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class StepTiming:
    step: str
    phase: str = ""
    status: str = ""
    duration: float = 0.0
    attempts: int = 0
    role: str | None = None
    waited: float = 0.0  # time spent waiting for people (answers, approvals)
    started: float = 0.0
    finished: float | None = None
    rollback_of: str | None = None
    kind: str = ""

    @property
    def own(self) -> bool:
        """Whether its time is its own: a block's or a switch's is that of its steps."""
        return self.kind not in ("block", "switch")


# A step's timing is made at every step of a trial: `StepTiming(step, phase, started=t)`
# goes through type.__call__, which hands the keyword over in a dict (about 1,000
# instructions a step on Python 3.11); the instance made, then its __init__ called from
# here, takes it as the interpreter passes keywords, without one.
_new, _init_timing = object.__new__, StepTiming.__init__


@dataclass
class Timings:
    run_id: str = ""
    runbook: str = ""
    scenario: str | None = None
    mode: str = ""
    outcome: str | None = None
    reason: str = ""
    duration: float | None = None
    acknowledged: float | None = None
    triaged: float | None = None
    mitigated: float | None = None
    recovered: float | None = None
    steps: dict[str, StepTiming] = field(default_factory=dict)
    retries: int = 0
    polls: int = 0
    hints: list[dict[str, Any]] = field(default_factory=list)
    approvals: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    priority: str | None = None
    priority_changes: list[dict[str, Any]] = field(default_factory=list)
    first_update: float | None = None
    escalations: list[dict[str, Any]] = field(default_factory=list)
    injections: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)
    last_elapsed: float = 0.0
    complete: bool = False
    mitigated_when: str | None = None  # the drill's world decides mitigation with this condition
    mitigated_by: str = ""  # why the run counts as mitigated, in words
    # step -> its run for each item of its (or its block's) for_each, in run order:
    # {index, item, status, error}, for objectives on items ("the leader last").
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def human_time(self) -> float:
        return sum(s.waited for s in self.steps.values())

    @property
    def machine_time(self) -> float:
        return sum(max(s.duration - s.waited, 0.0) for s in self.steps.values() if s.own)

    def ran(self, step: str) -> bool:
        timing = self.steps.get(step)
        return timing is not None and timing.status not in ("skipped", "pending")

    def per_role(self) -> dict[str, dict[str, float]]:
        """Per role: the steps it owns and their time, and the answers and approvals given
        in it with the time they were waited for (so an incident commander who only
        approves is there, and the wait for an approval counts for the role that gave it)."""
        out: dict[str, dict[str, float]] = {}

        def entry(role: Any, default: str) -> dict[str, float]:
            return out.setdefault(str(role or default), {"steps": 0, "time": 0.0, "responses": 0, "waited": 0.0})

        for s in self.steps.values():
            if not s.own:
                continue
            owned = entry(s.role, "(automation)")
            owned["steps"] += 1
            owned["time"] += s.duration
        for item in [*self.answers, *self.approvals]:
            given = entry(item.get("role"), "(no role)")
            given["responses"] += 1
            given["waited"] += _num(item.get("waited"))
        return out

    def per_participant(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for item in [*self.answers, *self.approvals]:
            who = str(item.get("by") or "(unnamed)")
            entry = out.setdefault(who, {"responses": 0, "waited": 0.0})
            entry["responses"] += 1
            entry["waited"] += _num(item.get("waited"))
        return out


def _elapsed(record: Mapping[str, Any]) -> float:
    return _num(record.get("elapsed"))


def _num(value: Any) -> float:
    """A number from a record; 0 for anything else (a hand-edited or damaged journal
    must still give a report, not a crash)."""
    kind = type(value)
    if kind is float:  # the usual case, first: finite floats pass (inf - inf and nan are not 0)
        return value if value - value == 0 else 0.0
    if kind is int:
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return 0.0
    try:
        number = float(value)
    except ValueError:
        return 0.0
    return number if math.isfinite(number) else 0.0


class Collector:
    """Folds records into Timings, one event kind at a time."""

    def __init__(self) -> None:
        self.t = Timings()
        self.first_human: float | None = None
        self.first_step: float | None = None
        self.depth = 0  # open phases: an included runbook's phases nest inside a step of ours
        self.remediating = False  # inside our own remediation phase (included steps too)
        self.acted: str | None = None  # the first remediation step that acted and succeeded
        self.world_mitigated = False
        self._handlers: dict[Any, Any] = {}  # event name -> method (looked up once per name)
        self.item_of: dict[str, Any] = {}  # step -> the item its last step.started ran for
        self.elapsed = 0.0  # of the record being added

    def add(self, r: Mapping[str, Any]) -> None:
        elapsed = self.at(r.get("elapsed"))
        event = r.get("event")
        try:
            handler = self._handlers[event]
        except (KeyError, TypeError):  # an event name seen first, or not text
            handler = self._handler(event)
        if handler is not None:
            handler(r)
        if self.first_human is None and event in HUMAN_EVENTS:
            self.first_human = elapsed

    def at(self, elapsed: Any) -> float:
        """The next record's elapsed time (as a number), for its handler."""
        if type(elapsed) is not float or elapsed - elapsed != 0:  # not the finite float the engine writes
            elapsed = _num(elapsed)
        if elapsed > self.t.last_elapsed:
            self.t.last_elapsed = elapsed
        self.elapsed = elapsed
        return elapsed

    def _handler(self, event: Any) -> Any:
        if not isinstance(event, str):
            return None
        handler = self._handlers[event] = getattr(self, "_" + event.replace(".", "_"), None)
        return handler

    def _run_started(self, r: Mapping[str, Any]) -> None:
        self.t.run_id, self.t.runbook = str(r.get("run_id", "")), str(r.get("runbook", ""))
        self.t.scenario, self.t.mode = r.get("scenario"), str(r.get("mode", ""))
        incident = r.get("incident")
        self.t.priority = incident.get("priority") if isinstance(incident, Mapping) else None
        self.depth = 0  # a resumed run starts its phases afresh
        self.t.outcome, self.t.complete = None, False  # and only its last attempt's run.finished ends it

    def _incident_acknowledged(self, r: Mapping[str, Any]) -> None:
        if self.t.acknowledged is None:
            self.t.acknowledged = _elapsed(r)

    def _step_started(self, r: Mapping[str, Any]) -> None:
        step = r.get("step")
        self.started(self.elapsed, step if type(step) is str else str(step), str(r.get("phase", "")), r.get("role"),
                     r.get("rollback_of"), r.get("index"), r.get("item"))

    def started(self, elapsed: float, step: str, phase: str, role: Any, rollback_of: Any, index: Any,
                item: Any) -> None:
        """A step.started's fields, typed as the engine makes them: from its event and
        stamp (engine/run/key_times.py), or from its record once add() and _step_started
        made them so (setting the elapsed time again changes nothing)."""
        if elapsed > self.t.last_elapsed:  # at(), without the call and the check of a record's value
            self.t.last_elapsed = elapsed
        self.elapsed = elapsed
        timing = self.t.steps.get(step)
        if timing is None:  # for_each starts a step once per item: keep the first start
            timing = self.t.steps[step] = _new(StepTiming)
            _init_timing(timing, step, phase, started=self.elapsed)
        timing.role, timing.rollback_of = role, rollback_of
        if index is not None:  # a step of a block's item: objectives on items read it
            self.item_of[step] = item
        if self.first_step is None:
            self.first_step = self.elapsed

    def _step_finished(self, r: Mapping[str, Any]) -> None:
        # The engine writes these types; a damaged journal may not (and must still give a report).
        step, status, kind = r.get("step"), r.get("status"), r.get("kind")
        duration, attempts = r.get("duration"), r.get("attempts")
        if type(duration) is not float or duration - duration != 0:  # not a finite float
            duration = _num(duration)
        self.finished(self.elapsed, step if type(step) is str else str(step), str(r.get("phase", "")),
                      status if type(status) is str else str(status), kind if type(kind) is str else str(kind or ""),
                      duration, attempts if type(attempts) is int else int(_num(attempts)), r.get("index"),
                      r.get("error"), r.get("rollback_of"))

    def finished(self, elapsed: float, step: str, phase: str, status: str, kind: str, duration: float,
                 attempts: int, index: Any, error: Any, rollback_of: Any) -> None:
        """A step.finished's fields, typed as the engine makes them: from its event and
        stamp (engine/run/key_times.py), or from its record once add() and _step_finished
        made them so (setting the elapsed time again changes nothing)."""
        if elapsed > self.t.last_elapsed:  # at(), without the call and the check of a record's value
            self.t.last_elapsed = elapsed
        self.elapsed = elapsed
        timing = self.t.steps.get(step)
        if timing is None:
            timing = self.t.steps[step] = StepTiming(step, phase)
        again = index is not None and timing.finished is not None  # the next item of its block
        timing.status, timing.kind = status, kind
        timing.duration = (timing.duration if again else 0.0) + duration
        timing.attempts = (timing.attempts if again else 0) + attempts
        timing.finished = self.elapsed
        if index is not None:
            self.t.items.setdefault(step, []).append({"index": index, "item": self.item_of.get(step),
                                                      "status": status, "error": error})
        if self.remediating and self.acted is None and status == "ok" and kind in ACTING_KINDS and not rollback_of:
            self.acted = step

    def _step_attempt(self, r: Mapping[str, Any]) -> None:
        if r.get("polling"):
            self.t.polls += 1
        else:
            self.t.retries += 1

    def _wait(self, r: Mapping[str, Any]) -> None:
        timing = self.t.steps.get(str(r.get("step")))
        if timing is not None:
            timing.waited += _num(r.get("waited"))

    def _prompt_answered(self, r: Mapping[str, Any]) -> None:
        self._wait(r)
        self.t.answers.append(dict(r))

    def _approval(self, r: Mapping[str, Any]) -> None:
        self._wait(r)
        self.t.approvals.append(dict(r))

    def _hint_shown(self, r: Mapping[str, Any]) -> None:
        self.t.hints.append(dict(r))

    def _phase_started(self, r: Mapping[str, Any]) -> None:
        self.phase_started(self.elapsed, r.get("phase"))

    def phase_started(self, elapsed: float, phase: Any) -> None:
        """A phase.started's phase: from its event and stamp (engine/run/key_times.py), or
        from its record once add() made its elapsed time a number."""
        if elapsed > self.t.last_elapsed:  # at(), without the call and the check of a record's value
            self.t.last_elapsed = elapsed
        self.elapsed = elapsed
        if not self.depth and phase == "remediation":
            self.remediating = True
        self.depth += 1

    def _phase_finished(self, r: Mapping[str, Any]) -> None:
        self.phase_finished(self.elapsed, r.get("phase"), r.get("status"))

    def phase_finished(self, elapsed: float, phase: Any, status: Any) -> None:
        """A phase.finished's fields, as phase_started() takes a phase.started's."""
        if elapsed > self.t.last_elapsed:
            self.t.last_elapsed = elapsed
        self.elapsed = elapsed
        self.depth = max(self.depth - 1, 0)
        if self.depth:
            return
        if phase == "remediation":
            self.remediating = False
        if status != "ok":
            return
        if phase == "triage":
            self.t.triaged = elapsed
        elif phase == "recovery":
            self.t.recovered = elapsed
        elif phase == "remediation" and self.acted is not None and self.t.mitigated_when is None:
            self.t.mitigated = elapsed
            self.t.mitigated_by = f"remediation done; {self.acted} acted"

    def _mitigation_watched(self, r: Mapping[str, Any]) -> None:
        self.t.mitigated_when = str(r.get("condition") or "")

    def _incident_mitigated(self, r: Mapping[str, Any]) -> None:
        if self.world_mitigated:
            return  # the first moment counts
        self.world_mitigated = True
        self.t.mitigated = _elapsed(r)
        if r.get("step"):
            cause = f" after {r['step']}"
        elif r.get("injected") is not None:
            cause = f" at injected event {_num(r.get('injected')) + 1:g}"  # numbered from 1, as the trainer's
        else:
            cause = " from the start"
        self.t.mitigated_by = f"`{r.get('condition')}` became true{cause}"

    def _priority_changed(self, r: Mapping[str, Any]) -> None:
        self.t.priority = r.get("priority")
        self.t.priority_changes.append(dict(r))

    def _notify_sent(self, r: Mapping[str, Any]) -> None:
        self.t.notifications.append(dict(r))
        if r.get("purpose") == "update" and self.t.first_update is None:
            self.t.first_update = _elapsed(r)

    def _escalation_fired(self, r: Mapping[str, Any]) -> None:
        self.t.escalations.append(dict(r))

    def _inject_fired(self, r: Mapping[str, Any]) -> None:
        self.t.injections.append(dict(r))

    def _run_finished(self, r: Mapping[str, Any]) -> None:
        self.t.outcome, self.t.reason = r.get("outcome"), str(r.get("reason") or "")
        self.t.duration, self.t.complete = _num(r.get("duration")), True

    def result(self) -> Timings:
        t = self.t
        if t.acknowledged is None:
            t.acknowledged = self.first_human if self.first_human is not None else self.first_step
        if t.outcome != "resolved":
            t.recovered = None
        return t


def timings(records: Iterable[Mapping[str, Any]]) -> Timings:
    """Timings of one run from its journal records (a dict per line)."""
    collector = Collector()
    for record in records:
        collector.add(record)
    return collector.result()
