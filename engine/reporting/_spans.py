"""What a run's timeline is made of: bars (one per step execution) split into segments,
their hosts and items, phase spans, markers, and where an incomplete journal stopped.
Built by timeline.py from journal records; read by every report part and renderer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.language.duration import format_duration


@dataclass
class Segment:
    """Part of a bar: `people` (waiting for an answer or approval), `retry` or `poll` delay,
    or `stopped` (the run was not running: its worker died, until another took it over)."""

    kind: str
    start: float
    end: float
    label: str = ""


@dataclass
class SubRun:
    """One host of a fan-out step, or one item of a for_each step."""

    name: str
    status: str
    start: float
    end: float
    exit_code: int | None = None
    error: str | None = None
    estimated: bool = False  # placed from a duration only (no host.finished event)
    command: str | None = None  # the host's own command, when it differed from host to host
    index: int | None = None  # the item of a block's for_each a step inside it ran for


@dataclass
class Bar:
    """One step execution on the time axis."""

    step: str
    phase: str
    kind: str
    start: float
    end: float | None = None  # None: still running when the journal stopped
    status: str = "running"
    title: str = ""
    depth: int = 0  # > 0 inside an included runbook
    seq: int = 0  # journal order, for listing bars among phases
    attempts: int = 0
    role: str | None = None
    command: str | None = None
    instructions: str | None = None  # a manual step's text, as the person read it
    target: str | None = None
    rollback_of: str | None = None
    block: str | None = None  # the block (or switch) it ran inside: reports fold it under that step
    exit_code: int | None = None
    error: str | None = None
    reason: str | None = None
    stderr: str = ""
    stdout: str = ""
    segments: list[Segment] = field(default_factory=list)
    retries: list[dict[str, Any]] = field(default_factory=list)
    hosts: list[SubRun] = field(default_factory=list)
    items: list[SubRun] = field(default_factory=list)

    @property
    def duration(self) -> float:
        if self.block is not None and self.items:  # its items ran between the block's other steps
            return sum(i.end - i.start for i in self.items)
        return (self.end if self.end is not None else self.start) - self.start

    @property
    def people(self) -> float:
        return sum(s.end - s.start for s in self.segments if s.kind == "people")

    @property
    def delays(self) -> float:
        return sum(s.end - s.start for s in self.segments if s.kind in ("retry", "poll"))

    @property
    def stopped(self) -> float:
        return sum(s.end - s.start for s in self.segments if s.kind == "stopped")

    @property
    def machine(self) -> float:
        return max(self.duration - self.people - self.delays - self.stopped, 0.0)

    @property
    def label(self) -> str:
        return self.step if not self.rollback_of else f"{self.step} (undoes {self.rollback_of})"

    @property
    def failed_hosts(self) -> list[SubRun]:
        return [h for h in self.hosts if h.status not in ("ok", "skipped")]

    @property
    def shows_hosts(self) -> bool:
        """Whether reports list the hosts: a fan-out, or a single host that did not succeed."""
        return len(self.hosts) > 1 or bool(self.failed_hosts)

    @property
    def retried(self) -> bool:
        """More attempts than its items (or than once): retries or polls happened."""
        return self.attempts > max(len(self.items), 1)


@dataclass
class PhaseSpan:
    phase: str
    start: float
    end: float | None = None
    status: str = "running"
    depth: int = 0
    seq: int = 0


@dataclass
class Marker:
    """A moment on the axis: `inject`, `notify`, `update`, `escalation`, `hint`, `priority`,
    `rollback`, `acknowledged`, `resume`, `clock`."""

    at: float
    kind: str
    label: str
    detail: str = ""
    ok: bool = True


@dataclass
class Stop:
    """Where an incomplete journal stopped."""

    at: float
    last_event: str
    last_seq: int | None
    phase: str | None
    steps: list[str]
    torn: bool = False
    bad_lines: list[int] = field(default_factory=list)
    wall: str = ""  # the wall-clock stamp of the last record

    def describe(self) -> str:
        where = f"during step {', '.join(self.steps)}" if self.steps else (
            f"in phase {self.phase}" if self.phase else "before the first phase")
        stamp = f" ({self.wall})" if self.wall else ""
        text = f"The journal stops at +{format_duration(self.at)}{stamp} {where}, after {self.last_event}"
        text += f" (seq {self.last_seq})" if self.last_seq is not None else ""
        text += "; the run did not finish (the engine crashed, was killed, or is still running)."
        if self.torn:
            text += " Its last line was cut short mid-write and is ignored."
        return text


@dataclass
class Timeline:
    bars: list[Bar] = field(default_factory=list)
    phases: list[PhaseSpan] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    end: float = 0.0
    stop: Stop | None = None
    # Waits for people outside any step: a service route's gate before a phase (gate:PHASE)
    waits: list[Segment] = field(default_factory=list)

    def bar(self, step: str) -> Bar | None:
        return next((b for b in reversed(self.bars) if b.step == step), None)
