"""What a run knows so far: inputs, vars, step results, incident. It is the template
context, and it is what `resume` rebuilds from the journal."""

# Annotations are evaluated (no `from __future__ import annotations`): `dataclass` checks
# each one given as text against patterns (ClassVar, InitVar) at every start.
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from engine.language.model import DEFAULT_MATRIX, Runbook
from engine.templates.dates import RunNow


@dataclass
class StepRecord:
    """The result of one step, as `steps.<id>` shows it to later templates."""

    id: str
    status: str = "pending"
    exit_code: int | None = None
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, Any] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0
    attempts: int = 0
    status_code: int | None = None
    headers: dict[str, str] | None = None
    body: str | None = None
    json: Any = None
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    truncated: bool = False
    results: dict[str, Any] = field(default_factory=dict)  # what its kind adds: a promql step's `value`...
    case: str | None = None  # a switch: the case it took (`default` when none matched)
    outcome: str | None = None  # an `end:` step: the outcome it ended the run with
    reason: str | None = None  # why it was skipped, when not because `when` was false (a refusal)
    # How this step is shown when secrets were used: fields of view() as computed from
    # secrets shown as *** (outputs, for_each items). Empty: shown as it is (masked as text).
    shown: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def shown_view(self, masker: Any) -> dict[str, Any]:
        """view() as templates that build what is shown see it: text masked, and what
        was computed from secrets as it was computed from ***."""
        view = masker.data(self.view()) if masker else self.view()
        view.update(self.shown)
        return view

    def view(self) -> dict[str, Any]:
        return {
            "status": self.status, "exit_code": self.exit_code, "stdout": self.stdout,
            "stderr": self.stderr, "outputs": self.outputs, "answers": self.answers,
            "duration": self.duration, "attempts": self.attempts, "status_code": self.status_code,
            "headers": self.headers or {}, "body": self.body, "json": self.json,
            "hosts": self.hosts, "items": self.items, "error": self.error, **self.results,
        }


@dataclass
class Incident:
    """The incident's impact, urgency and the priority they give, as a run sets them."""

    impact: str | None = None
    urgency: str | None = None
    priority: str | None = None
    _seen: ClassVar[dict[str, Any] | None] = None  # seen(), until a field changes (per instance)

    def __init__(self, impact: str | None = None, urgency: str | None = None, priority: str | None = None) -> None:
        # Written past __setattr__ (see RunState.__init__): every run makes an incident.
        self.__dict__.update(impact=impact, urgency=urgency, priority=priority)

    def view(self) -> dict[str, Any]:
        return {"impact": self.impact, "urgency": self.urgency, "priority": self.priority}

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        object.__setattr__(self, "_seen", None)  # a set: changes `incident` in templates

    def seen(self) -> dict[str, Any]:
        """view() as every template context shares it (read-only: the sandbox is immutable),
        made again only after a change: a run sets its incident a few times at most."""
        seen = self._seen
        if seen is None:
            seen = self.view()
            object.__setattr__(self, "_seen", seen)
        return seen


# The fields of a RunState that a template context holds: setting one makes the next context again.
_IN_CONTEXT = frozenset(("inputs", "vars", "_views", "run_id", "mode", "phase", "started_at", "alert", "runbook",
                         "incident", "_now"))


def _opening(runbook: Runbook, incident: Incident | None) -> Incident:
    """The incident a run opens with: as given, else as the runbook's `severity:` sets it."""
    incident = incident if incident is not None else Incident()
    sev = runbook.severity
    if sev is not None and incident.impact is None and incident.urgency is None:
        return Incident(sev.impact, sev.urgency, priority_of(runbook, sev.impact, sev.urgency))
    return incident


def priority_of(runbook: Runbook, impact: str | None, urgency: str | None) -> str | None:
    """Impact x urgency -> P1..P5 from the runbook's matrix (ITIL-style default)."""
    if impact is None or urgency is None:
        return None
    matrix = runbook.severity.matrix if runbook.severity else DEFAULT_MATRIX
    row = matrix.get(impact)
    return row.get(urgency) if row is not None else None


@dataclass
class RunState:
    """Everything a run knows while it runs: inputs, vars, each step's record."""

    runbook: Runbook
    run_id: str
    mode: str
    inputs: dict[str, Any]
    started_at: float
    vars: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, StepRecord] = field(default_factory=dict)
    incident: Incident = field(default_factory=Incident)
    phase: str | None = None
    # Secret inputs given to this run, and the masker of its secrets: with any, what the
    # engine shows is rendered from shown_context(), where they are ***.
    secret_inputs: frozenset[str] = frozenset()
    masker: Any = None
    shown_vars: dict[str, Any] = field(default_factory=dict)  # vars computed from secrets, as shown
    clock: Callable[[], float] | None = None  # the run's clock (`now()`): simulated in drills and tests
    alert: dict[str, Any] | None = None  # the alert that started the run (alerts.record), as `run.alert`
    # Made by __init__: each step's view, as shown when secrets were used; `now()`; the context's base.
    _views: dict[str, dict[str, Any]] = field(init=False, repr=False, compare=False)
    _shown_views: dict[str, dict[str, Any]] = field(init=False, repr=False, compare=False)
    _now: RunNow = field(init=False, repr=False, compare=False)
    _base: dict[str, Any] | None = field(init=False, repr=False, compare=False)

    def __init__(self, runbook: Runbook, run_id: str, mode: str, inputs: dict[str, Any], started_at: float,
                 vars: dict[str, Any] | None = None, steps: dict[str, StepRecord] | None = None,
                 incident: Incident | None = None, phase: str | None = None,
                 secret_inputs: frozenset[str] = frozenset(), masker: Any = None,
                 shown_vars: dict[str, Any] | None = None, clock: Callable[[], float] | None = None,
                 alert: dict[str, Any] | None = None) -> None:
        # The fields as the dataclass declares them, written at once past __setattr__: a
        # class's own __setattr__ is a call the interpreter enters from C for each field
        # (about 90k instructions for a run state), and every trial of an estimate makes one.
        steps = steps if steps is not None else {}
        self.__dict__.update(
            runbook=runbook, run_id=run_id, mode=mode, inputs=inputs, started_at=started_at,
            vars={**runbook.vars, **(vars or {})}, steps=steps, incident=_opening(runbook, incident),
            # A run opens in its first phase: `run.phase` in the update sent as it opens says so.
            phase=runbook.phases[0].name if phase is None and runbook.phases else phase,
            secret_inputs=secret_inputs, masker=masker, shown_vars=shown_vars if shown_vars is not None else {},
            clock=clock, alert=alert, _views={rid: r.view() for rid, r in steps.items()}, _now=RunNow(clock),
            _shown_views={}, _base=None)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in _IN_CONTEXT:
            object.__setattr__(self, "_base", None)  # the next context is made again

    @property
    def secret(self) -> bool:
        """Whether anything shown must be rendered apart from what is executed."""
        return bool(self.secret_inputs)

    def record(self, rec: StepRecord) -> None:
        self.steps[rec.id] = rec
        self._views[rec.id] = rec.view()
        if self.secret_inputs:
            self._shown_views[rec.id] = rec.shown_view(self.masker)

    def shown_context(self, **current: Any) -> dict[str, Any]:
        """The context of what is shown and journaled: secret inputs are `***` (Masked),
        and so is whatever was computed from them (vars, outputs, items); step output is
        masked. `current` must hold the shown forms of the running step's names."""
        ctx = self.context(**current)
        if self.secret_inputs:
            from engine.templates.templating import Masked

            ctx["inputs"] = {k: Masked() if k in self.secret_inputs else v for k, v in self.inputs.items()}
            ctx["vars"] = {**self.vars, **self.shown_vars}
            ctx["steps"] = self._shown_views
        return ctx

    def context(self, **current: Any) -> dict[str, Any]:
        """The template context; `current` adds the running step's own names."""
        base = self._base
        if base is None or base["incident"] is not self.incident._seen:
            base = self.__dict__["_base"] = self._base_context()  # past __setattr__ (see __init__)
        return {**base, **current}

    def _base_context(self) -> dict[str, Any]:
        """What every context holds until the phase, the incident or a part changes: each
        context is a copy of it (templates cannot change its parts: the sandbox is
        immutable, and the engine never writes into them, only into a context itself)."""
        return {
            "inputs": self.inputs,
            "vars": self.vars,
            "steps": self._views,
            "run": {"id": self.run_id, "mode": self.mode, "phase": self.phase,
                    "started_at": self.started_at, "alert": self.alert or {}},
            "runbook": {"id": self.runbook.id, "title": self.runbook.title},
            "incident": self.incident.seen(),
            "now": self._now,
        }
