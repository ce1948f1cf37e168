"""What the step driver and its kinds share. The run they work for is seen through
`RunView`, what a step may use of it: the Runner is one, and neither the driver nor a
kind imports it (the runner imports them). `Driver` is the driver's own state across
the steps of a run: what is shown apart from what runs, and the step's output streams.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, NamedTuple, Protocol

from engine.executors.base import Cancel
from engine.language.model import IncludeSpec, Runbook, Step

from ._output import StepSink, StepStreams
from ._shown import Shown, visible
from .attempt import Attempt, StepStop
from .bus import EventBus
from .clock import Clock
from .masking import Masker
from .services import Services
from .state import RunState, StepRecord


class RunView(Protocol):
    """What a step may use of the run it belongs to."""

    runbook: Runbook
    state: RunState
    bus: EventBus
    clock: Clock
    masker: Masker
    services: Services
    cancel: Cancel
    prefix: str  # `sub/` before the ids of an included runbook's steps
    uses_json: bool  # someone reads `json`: outputs are parsed as JSON

    def timeout_for(self, step: Step) -> float | None:
        """How long the step may take, within what is left of the run's own timeout."""

    def sleep(self, seconds: float) -> bool:
        """Wait on the run's clock; False if interrupted or handed off (see interruption)."""

    def interruption(self) -> str:
        """Why a wait was cut short."""

    def interrupt(self, *, hard: bool = False, reason: str = "interrupted") -> None:
        """Stop the current step (Ctrl-C at a prompt)."""

    def asking(self, step: str = "") -> AbstractContextManager[None]:
        """Around a prompt: a signal may break into it, escalation rules watch it."""

    def hand_off(self, reason: str) -> None:
        """End the run as `escalated` once this step is done."""

    def notify(self, channel: str, message: str, *, title: str | None = None, step: str | None = None,
               purpose: str = "notify", budget: float | None = None, required: bool = False,
               action: str | None = None) -> Attempt:
        """Send a message, journaled; fails only a `required` one (or an unknown channel)."""

    def include(self, step: Step, spec: IncludeSpec, sid: str, extra: dict[str, Any]) -> Attempt:
        """Run another runbook as this step."""

    def step(self, step: Step, *, rollback_of: str | None = None) -> StepRecord:
        """Run a step of this run (a step inside a block or a switch case); StepStop when
        the run must end after it."""


class Where(tuple[Runbook, tuple[str | int, ...], tuple[str | int, ...]]):
    """A lazy `file:line:col`: walking the YAML node tree costs more than rendering.
    It is (runbook, the step's path, the field's path within the step): a tuple, so
    that making one, as every render does, runs no Python code of its own."""

    __slots__ = ()

    def __new__(cls, runbook: Runbook, path: tuple[str | int, ...]) -> Where:
        return tuple.__new__(cls, (runbook, path, ()))

    def __str__(self) -> str:
        runbook, step, field = self
        return runbook.where((*step, *field))


class Started(NamedTuple):
    """What a step's step.started announced, for its tries: the command the first try
    runs (None: each try renders its own), the target and its hosts, the renderer of each
    host's command (a command that names `{{ host }}`), a manual step's instructions as
    the person read them. Kept apart from the step's template names (`extra`), which a
    template context copies at every render."""

    command: str | None
    target: str | None
    hosts: list[str]
    per_host: Callable[[str], str] | None
    instructions: str | None


NOT_STARTED = Started(None, None, [], None, None)
_UNSEEN = object()  # Driver._logs before the first look
_where = _started = tuple.__new__  # (a NamedTuple's or Where's own __new__ would be Python code)


class Driver:
    """The step driver's state across the steps of one run, and what its kinds ask of it."""

    started: Started = NOT_STARTED  # what the step under way announced (see start)
    _logs: Any = _UNSEEN  # the journal's logs_of (see logs_of), looked up on first use

    def __init__(self, run: RunView) -> None:
        self.r = run
        self.shown = Shown(run.state, run.masker)  # what is shown, apart from what runs
        self.streams = StepStreams()  # the output streams of the step
        # Inside a block: the names its item adds (`item`, `index`) for the steps within,
        # and the block (with the item's index) that journal events name.
        self.scope: dict[str, Any] = {}
        self.within: tuple[str, int | None] | None = None
        self.deadline: float | None = None  # when the `timeout` of the blocks it runs in is up (monotonic)
        # How the run must end once the step that ran is recorded (an `end:` step, or a
        # stop inside a block): the runner raises it, so the step still gets its record.
        self.stop: StepStop | None = None
        # Inside an item of a block: the records its steps made (see _block.collect).
        self.ran: dict[str, StepRecord] | None = None
        # Items running at once (_items.py): one thread at a time drives the run.
        self.baton: Baton | None = None
        self.announced = False  # step.started emitted for the step being executed
        # Seconds the item under way waited for its turn after its commands were done
        # (Baton): not the time of its steps.
        self.lag = 0.0

    def save(self) -> tuple[Any, ...]:
        """What the driver holds for the item under way (see Baton: items take turns)."""
        return (self.scope, self.within, self.deadline, self.stop, self.ran, self.streams, self.announced, self.lag,
                self.started)

    def restore(self, saved: tuple[Any, ...]) -> None:
        (self.scope, self.within, self.deadline, self.stop, self.ran, self.streams, self.announced, self.lag,
         self.started) = saved

    def start(self, command: str | None, target: str | None, hosts: list[str],
              per_host: Callable[[str], str] | None, instructions: str | None) -> None:
        """The step under way announced itself (step.started): what its tries need of that."""
        self.started = _started(Started, (command, target, hosts, per_host, instructions))
        self.announced = True

    def released(self) -> AbstractContextManager[None]:
        """Around a wait (a command, a sleep): items running at once go on meanwhile."""
        return self.baton.released() if self.baton is not None else nullcontext()

    def take_stop(self) -> StepStop | None:
        """The stop a step left for the runner (see `stop`), once."""
        stop, self.stop = self.stop, None
        return stop

    def where(self, step: Step, *path: str | int) -> Where:
        """Where a field of a step is in the file; resolved only if an error needs it."""
        return _where(Where, (self.r.runbook, step.path, path))

    def context(self, extra: dict[str, Any]) -> dict[str, Any]:
        """The template context of a step: the run's, with its `item` or `host`."""
        return self.r.state.context(**visible(extra))

    def seen(self, extra: dict[str, Any]) -> dict[str, Any]:
        """The context of what people read (instructions, approvals, messages): secrets as ***."""
        return self.shown.context(extra) if self.shown.active else self.r.state.context(**visible(extra))

    def logs_of(self, sid: str) -> list[str]:
        """The step's log files, as the journal names them (when a journal keeps any)."""
        find = self._logs
        if find is _UNSEEN:  # the bus's observers are set as it is made: look once (the first step)
            find = self._logs = next((f for o in self.r.bus.observers if (f := getattr(o, "logs_of", None))), None)
        return list(find(sid)) if find is not None else []

    def sink(self, sid: str) -> StepSink:
        """Where a command or request of step `sid` sends its output (a context manager)."""
        item = self.within[1] if self.baton is not None and self.within is not None else None
        return StepSink(self.r.bus, self.r.masker, self.streams, sid, item)


class Baton:
    """Items of a block that run at once take turns driving the run: the thread that
    holds the baton alone changes the run's state, emits its events and uses the driver;
    it lets go only while it waits (a command runs, a sleep), so the items' commands run
    at the same time while their state changes stay one at a time."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.lock = threading.Lock()
        # Questions the items ask, asked on the main thread (engine/run/_items.py).
        self.asks: queue.Queue[Any] = queue.Queue()

    def take(self, saved: tuple[Any, ...]) -> None:
        """Hold the baton, with the driver as the item `saved` left it."""
        self.lock.acquire()
        self.driver.restore(saved)

    @contextmanager
    def released(self) -> Iterator[None]:
        saved = self.driver.save()
        self.lock.release()
        try:
            yield
        finally:
            clock = self.driver.r.clock
            done = clock.monotonic()
            self.take(saved)
            self.driver.lag += clock.monotonic() - done
