"""One dataclass per event. Observers (console, journal, drill scoring) receive them.

Events are never changed once made, but they are not frozen dataclasses: a frozen
dataclass's `__init__` sets each field with `object.__setattr__`, which made building an
event cost more than journaling it (a simulated step builds three, a Monte Carlo
estimate millions). They keep slots, equality and a hash by value.

The journal stores each event as one JSON line: `{"seq", "t", "elapsed", "event", ...}`.
`StepOutput` is the exception: live output goes to the console and to step log files,
never into journal lines.
"""

# Annotations are evaluated (no `from __future__ import annotations`): `dataclass` checks
# each one given as text against a pattern three times (ClassVar, InitVar, KW_ONLY), 1.6M
# instructions of a run's start-up for these 28 classes.

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from ._event_code import compiled


@dataclass(slots=True, unsafe_hash=True)
class Event:
    """The base of every event: its journal name and whether it is journaled."""

    name: ClassVar[str] = "event"
    journaled: ClassVar[bool] = True

    def record(self) -> dict[str, Any]:
        """Fields as a plain dict (for JSON), without the stamp."""
        cls = type(self)
        return {} if cls is Event else compiled(cls).record(self)

    def stamped(self, seq: int, t: float, elapsed: float) -> dict[str, Any]:
        """The whole record: the stamp, the event's name, then its fields (as record())."""
        cls = type(self)
        if cls is Event:
            return {"seq": seq, "t": t, "elapsed": elapsed, "event": self.name}
        return compiled(cls).stamped(self, seq, t, elapsed)


@dataclass(slots=True, unsafe_hash=True)
class RunStarted(Event):
    """A run began: which runbook, in which mode, with what inputs and who took part."""

    name: ClassVar[str] = "run.started"
    run_id: str
    runbook: str
    title: str
    file: str
    mode: str
    inputs: dict[str, Any] = field(default_factory=dict)
    participants: list[dict[str, str]] = field(default_factory=list)
    pid: int = 0
    hostname: str = ""
    version: str = ""
    resumed_from: str | None = None
    scenario: str | None = None
    incident: dict[str, Any] = field(default_factory=dict)
    alert: dict[str, Any] | None = None  # the alert that started the run (alerts.record)
    digest: str | None = None  # the runbook's text and its includes' (engine/run/digest.py)


@dataclass(slots=True, unsafe_hash=True)
class RunResumed(Event):
    """`runbook resume` continues this run: who, why, and what was decided about the
    steps the earlier attempt left (it follows the run.started of the new attempt)."""

    name: ClassVar[str] = "run.resumed"
    by: str
    reason: str = ""
    previous: str = ""  # how the earlier attempt ended: failed, aborted, refused, escalated or crashed
    stop_step: str | None = None  # the step that stopped it
    rerun: list[str] = field(default_factory=list)  # steps that stopped it (or were cut off), run again
    skip: list[str] = field(default_factory=list)  # steps skipped instead of run
    from_step: str | None = None
    undone: list[str] = field(default_factory=list)  # steps whose rollbacks the earlier attempt ran
    downtime: float = 0.0  # seconds between the earlier attempt's last record and this resume
    leftovers: list[dict[str, Any]] = field(default_factory=list)  # commands still running: step, pgid, host, action


@dataclass(slots=True, unsafe_hash=True)
class Acknowledged(Event):
    """Someone took the page: the drill's "time to acknowledge" ends here."""

    name: ClassVar[str] = "incident.acknowledged"
    by: str | None = None
    role: str | None = None


@dataclass(slots=True, unsafe_hash=True)
class PhaseStarted(Event):
    """A phase of the runbook began."""

    name: ClassVar[str] = "phase.started"
    phase: str


@dataclass(slots=True, unsafe_hash=True)
class PhaseFinished(Event):
    """A phase ended: its status and how long it took."""

    name: ClassVar[str] = "phase.finished"
    phase: str
    status: str
    duration: float


@dataclass(slots=True, unsafe_hash=True)
class StepStarted(Event):
    """A step began: what it runs, where, and for which item or block."""

    name: ClassVar[str] = "step.started"
    step: str
    phase: str
    kind: str
    title: str = ""
    command: str | None = None
    target: str | None = None
    hosts: list[str] = field(default_factory=list)
    role: str | None = None
    rollback_of: str | None = None
    item: Any = None
    instructions: str | None = None  # a manual step's rendered text: what the person was asked to do
    block: str | None = None  # the block (or switch) this step runs inside
    index: int | None = None  # the item of the block's for_each it runs for


@dataclass(slots=True, unsafe_hash=True)
class StepOutput(Event):
    """A line of a step's live output (shown and logged, never journaled)."""

    name: ClassVar[str] = "step.output"
    journaled: ClassVar[bool] = False
    step: str
    stream: str
    text: str
    host: str | None = None
    item: int | None = None  # the index of the block's item it is for, when items run at once


@dataclass(slots=True, unsafe_hash=True)
class StepProcess(Event):
    """A command of a step started: its process group, here (host None) or on a remote
    host. Written at once, so `resume` can find the command after the engine was killed."""

    name: ClassVar[str] = "step.process"
    step: str
    pgid: int
    host: str | None = None


@dataclass(slots=True, unsafe_hash=True)
class BackgroundStarted(Event):
    """A block's background helper started (pid None in a drill: simulated) and is ready,
    or is not (`error`: it died or was not ready in time; the block then fails)."""

    name: ClassVar[str] = "background.started"
    step: str  # the block
    helper: str
    command: str
    pid: int | None = None
    ready: str = ""
    error: str | None = None


@dataclass(slots=True, unsafe_hash=True)
class BackgroundStopped(Event):
    """A block's background helper ended: stopped when the block ended, or died before
    (`died`: it ended on its own while the block ran; `output` is its output's tail)."""

    name: ClassVar[str] = "background.stopped"
    step: str
    helper: str
    exit_code: int | None = None
    died: bool = False
    output: str = ""


@dataclass(slots=True, unsafe_hash=True)
class StepAttempt(Event):
    """One attempt (or poll) that did not end the step: a retry or another poll follows."""

    name: ClassVar[str] = "step.attempt"
    step: str
    attempt: int
    ok: bool
    exit_code: int | None = None
    error: str | None = None
    duration: float = 0.0
    next_in: float = 0.0
    polling: bool = False
    stdout: str = ""  # a bounded tail (an HTTP body's), so a past run can be replayed attempt by attempt
    stderr: str = ""
    status_code: int | None = None  # the HTTP status this attempt got (None: no answer, or not HTTP)
    command: str | None = None  # the command the next try runs, when it names `attempt` (as shown)


@dataclass(slots=True, unsafe_hash=True)
class StepFinished(Event):
    """A step ended: its status, output tails, outputs, answers and per-host results."""

    name: ClassVar[str] = "step.finished"
    step: str
    phase: str
    kind: str
    status: str  # ok | failed | skipped | refused | aborted | not_confirmed
    duration: float = 0.0
    attempts: int = 1
    exit_code: int | None = None
    error: str | None = None
    reason: str | None = None
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)
    status_code: int | None = None
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)
    rollback_of: str | None = None
    block: str | None = None  # the block (or switch) this step ran inside
    index: int | None = None  # the item of the block's for_each it ran for
    case: str | None = None  # a switch: the case taken (`default` when none matched)
    outcome: str | None = None  # an `end:` step (or a refusal's `on_refuse: {end}`): how it ends the run
    # What the step's kind adds (a promql step's value, an alert step's alerts, a silence's
    # id): read back by `resume`, so a silence made before a crash is still expired after.
    results: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, unsafe_hash=True)
class HostFinished(Event):
    """One host of a fan-out step is done; done/failed/running of total is the progress."""

    name: ClassVar[str] = "host.finished"
    step: str
    host: str
    status: str  # ok | failed | timed_out | unreachable | auth_failed | host_key | aborted
    exit_code: int | None = None
    duration: float = 0.0
    error: str | None = None
    done: int = 0
    failed: int = 0
    running: int = 0
    total: int = 0
    command: str | None = None  # this host's own command (as shown), when it names `host`


@dataclass(slots=True, unsafe_hash=True)
class PromptAnswered(Event):
    """Someone answered a step's prompt."""

    name: ClassVar[str] = "prompt.answered"
    step: str
    answers: dict[str, Any]
    by: str | None = None
    role: str | None = None
    waited: float = 0.0
    via: str | None = None  # how the answer came to a service run: cli, api, slack, console


@dataclass(slots=True, unsafe_hash=True)
class Approval(Event):
    """A step's approval was given or refused, by whom and after how long."""

    name: ClassVar[str] = "approval"
    step: str
    approved: bool
    by: str | None = None
    role: str | None = None
    required_role: str | None = None
    waited: float = 0.0
    message: str = ""
    via: str | None = None  # how the answer came to a service run: cli, api, slack, console
    policy: str | None = None  # who asked when the runbook did not: a serve route's policy


@dataclass(slots=True, unsafe_hash=True)
class RollbackStarted(Event):
    """Rollback began: why, and which steps it undoes."""

    name: ClassVar[str] = "rollback.started"
    reason: str
    steps: list[str] = field(default_factory=list)


@dataclass(slots=True, unsafe_hash=True)
class RollbackFinished(Event):
    """Rollback ended (or was skipped)."""

    name: ClassVar[str] = "rollback.finished"
    status: str
    skipped: bool = False


@dataclass(slots=True, unsafe_hash=True)
class NotifySent(Event):
    """A notification was sent (or failed) on a channel."""

    name: ClassVar[str] = "notify.sent"
    channel: str
    message: str
    ok: bool = True
    error: str | None = None
    step: str | None = None
    purpose: str = "notify"  # notify | update | escalation
    attempts: int = 1  # webhook attempts made (0: not tried, the channel is unknown)
    note: str | None = None  # e.g. no channels config: shown on the console only


@dataclass(slots=True, unsafe_hash=True)
class InjectFired(Event):
    """A drill's scripted event happened in the simulated world."""

    name: ClassVar[str] = "inject.fired"
    index: int
    at: float
    message: str | None = None
    kind: str = "info"
    set: dict[str, Any] = field(default_factory=dict)
    manual: bool = False


@dataclass(slots=True, unsafe_hash=True)
class MitigationWatched(Event):
    """A drill's world decides when the fault counts as mitigated: `condition` (the
    scenario's `mitigated_when`) over its state, not the end of the remediation phase."""

    name: ClassVar[str] = "mitigation.watched"
    condition: str


@dataclass(slots=True, unsafe_hash=True)
class Mitigated(Event):
    """The world's `mitigated_when` became true: after a reply of `step`, or the injected
    event with the index `injected` (as `inject.fired` records it), or already at the start."""

    name: ClassVar[str] = "incident.mitigated"
    condition: str
    step: str | None = None
    injected: int | None = None  # never `event`: that key names the record's event


@dataclass(slots=True, unsafe_hash=True)
class HintShown(Event):
    """A trainer's hint was shown during a step."""

    name: ClassVar[str] = "hint.shown"
    step: str
    hint: str
    by: str | None = None


@dataclass(slots=True, unsafe_hash=True)
class PriorityChanged(Event):
    """The incident's impact, urgency or priority changed."""

    name: ClassVar[str] = "priority.changed"
    impact: str | None
    urgency: str | None
    priority: str | None
    previous: str | None = None
    by: str | None = None
    role: str | None = None
    step: str | None = None
    reason: str = ""


@dataclass(slots=True, unsafe_hash=True)
class EscalationFired(Event):
    """An escalation rule fired: why, and on which channel."""

    name: ClassVar[str] = "escalation.fired"
    rule: int
    reason: str
    channel: str
    handoff: bool = False
    step: str | None = None


@dataclass(slots=True, unsafe_hash=True)
class ClockControl(Event):
    """Trainer controls in a drill: pause, resume, end."""

    name: ClassVar[str] = "clock.control"
    action: str
    by: str | None = None


@dataclass(slots=True, unsafe_hash=True)
class RunFinished(Event):
    """The run ended: its outcome, duration and per-phase times."""

    name: ClassVar[str] = "run.finished"
    outcome: str
    duration: float
    reason: str = ""
    failed_step: str | None = None
    error: str | None = None
    phases: dict[str, float] = field(default_factory=dict)


class Observer(Protocol):
    """Anything the EventBus hands events to (journal, console, drill scoring)."""

    def on_event(self, event: Event, stamp: "Stamp") -> None: ...


@dataclass(slots=True, unsafe_hash=True)
class Stamp:
    """When an event happened: journal sequence number, wall time, run-relative time."""

    seq: int
    t: float
    elapsed: float


EVENT_TYPES: dict[str, type[Event]] = {}
# Each class's field names, made when a record of it is first read back: a live run reads
# none, and making them all at import was 0.5M instructions of its start-up.
_FIELDS: dict[type[Event], tuple[str, ...]] = {}


for _cls in list(Event.__subclasses__()):
    if "__slots__" not in _cls.__dict__:
        continue  # the class as written, before @dataclass(slots=True) made it anew
    EVENT_TYPES[_cls.name] = _cls


def from_record(record: dict[str, Any]) -> Event | None:
    """The typed event for a journal record; None for an unknown event name."""
    cls = EVENT_TYPES.get(record.get("event", ""))
    if cls is None:
        return None
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return cls(**{k: v for k, v in record.items() if k in names})
