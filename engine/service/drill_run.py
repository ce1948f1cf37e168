"""A drill room's drill, carried out by a worker: the scenario's simulated world and the
runbook on a `DrillClock`, as `runbook drill` runs them, with the room's people at the
prompts and the trainer's controls coming through the store.

The drill holds its lease while people think (no parking: its simulated world and clock
live here, and the heartbeat keeps the lease). A drill taken over by another worker (its
worker died) cannot go on, since its world is gone with it: it ends `failed`, saying so,
and the trainer starts the game day again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from engine.errors import EngineError
from engine.executors.prompts import (
    Answer,
    ApprovalReply,
    ApprovalRequest,
    Participant,
    Question,
)
from engine.language.scenario import Scenario
from engine.run.clock import DrillClock
from engine.run.events import ClockControl, HintShown, InjectFired
from engine.run.runner import Runner
from engine.simulation.drill import DrillSetup, run_scenario
from engine.simulation.guard import own_records
from engine.simulation.world import World

from .drill_room import ACK, load_pair
from .execution import Execution
from .journal import StoreJournal
from .prompts import APPROVAL, APPROVAL_FIELDS, ASK, _field_dict
from .store.rooms import ControlRow, PromptRow, RoomRow, Rooms

log = logging.getLogger("runbook.worker")
POLL = 0.2  # seconds between looks at the store for answers and controls
TAKEN_OVER = ("a drill's simulated world lives in the worker that started it, which stopped: "
              "start the game day again")


@dataclass
class Controls:
    """Applies the room's controls to the running drill, from a thread of its own, so a
    pause or an inject reaches the drill while everyone thinks."""

    rooms: Rooms
    room: RoomRow
    scenario: Scenario
    clock: DrillClock
    runner: Runner | None = None
    world: World | None = None
    ended: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)

    def ready(self, runner: Runner, world: World) -> None:
        self.runner, self.world = runner, world

    def run(self) -> None:
        while not self._stop.wait(POLL):
            try:
                taken = self.rooms.take_controls(self.room.id)
            except EngineError as exc:
                log.warning("drill %s: cannot read its controls: %s", self.room.id, exc)
                continue
            for control in taken:
                self.apply(control)

    def stop(self) -> None:
        self._stop.set()

    def apply(self, control: ControlRow) -> None:
        """One control, journaled with who gave it."""
        if self.runner is None or self.world is None:
            return
        emit, verb, arg = self.runner.bus.emit, control.verb, control.arg
        if verb == "hint":
            emit(HintShown(arg, self.scenario.hints.get(arg) or "The scenario has no hint for this step.",
                           control.by))
            return
        emit(ClockControl(f"{verb} {arg}".strip(), control.by))
        if verb == "pause":
            self.clock.pause()
        elif verb == "resume":
            self.clock.resume()
        elif verb == "speed":
            self.clock.speed = max(float(arg), 0.001)
        elif verb == "inject" and arg.isdigit():
            self.world.fire(self.scenario.events[int(arg) - 1], manual=True)
        elif verb == "inject":
            emit(InjectFired(-1, self.clock.monotonic(), arg, "info", {}, True))
        elif verb == "end":
            self.ended.set()
            self.runner.interrupt(hard=True, reason=f"ended by the trainer {control.by}")


@dataclass
class RoomPrompter:
    """The drill's prompter: each question, approval and the page is stored as a prompt of
    the room, and the drill waits (on its clock) until the participant holding its role
    answers, or the trainer ends the drill."""

    rooms: Rooms
    room_id: str
    clock: DrillClock
    controls: Controls
    stopped: Callable[[], bool]
    interactive: bool = True

    def ask(self, question: Question) -> Answer:
        fields = tuple(_field_dict(f) for f in question.fields)
        found, waited = self._wait(question.step, ASK, question.text or question.title, fields, question.role)
        return Answer(dict(found.answer or {}), found.answered_by, question.role or self._role(found), waited)

    def approve(self, request: ApprovalRequest) -> ApprovalReply:
        found, waited = self._wait(request.step, APPROVAL, request.message, APPROVAL_FIELDS, request.role)
        values = found.answer or {}
        return ApprovalReply(bool(values.get("approved")), found.answered_by, request.role or self._role(found),
                             waited, str(values.get("reason") or ""))

    def confirm_rollback(self, steps: int) -> bool:
        return True

    def acknowledge(self) -> tuple[str | None, str | None, float]:
        found, waited = self._wait(ACK, ACK, "The page: take it to start.", (), None)
        return found.answered_by, self._role(found), waited

    def _wait(self, step: str, kind: str, text: str, fields: Any, role: str | None) -> tuple[PromptRow, float]:
        with own_records():
            prompt_id = self.rooms.ask(self.room_id, step, kind, text, fields, role)
        start = self.clock.monotonic()
        while not (self.controls.ended.wait(POLL) or self.stopped() or self._cancelled()):
            with own_records():
                found = self.rooms.prompt(prompt_id)
            if found is not None and found.status == "answered":
                return found, max(self.clock.monotonic() - start, 0.0)
        raise KeyboardInterrupt  # how a prompt is cut short: the runner was told why

    def _cancelled(self) -> bool:
        """The runner was told to stop from elsewhere (an abort from the console)."""
        runner = self.controls.runner
        return runner is not None and runner.cancel.is_set()

    def _role(self, prompt: PromptRow) -> str | None:
        with own_records():
            members = self.rooms.members(self.room_id)
        return next((m.role for m in members if m.person == prompt.answered_by), None)


class _Recorded:
    """The store journal as a drill's observer: written outside the drill's guard (the
    database is the drill's own record, even when it is a connection away)."""

    def __init__(self, journal: StoreJournal) -> None:
        self.journal = journal
        self.wants_output = journal.wants_output
        self.log_errors = journal.log_errors

    def on_event(self, event: Any, stamp: Any) -> None:
        with own_records():
            self.journal.on_event(event, stamp)

    def barrier(self) -> None:
        with own_records():
            self.journal.barrier()

    def close(self) -> None:
        with own_records():
            self.journal.close()


class DrillExecution(Execution):
    """A claimed run that is a drill room's drill."""

    room: RoomRow | None = None

    def carry_out(self) -> str:
        rooms = Rooms(self.store)
        room = rooms.get(self.room.id) if self.room is not None else None
        if room is None:  # never run live: a drill's commands are the simulated world's
            return self.failed("a drill runs only from a drill room, and no room holds this run")
        try:
            if self.claim.takeover:
                return self.failed(TAKEN_OVER)
            return self._drill(rooms, room)
        except EngineError as exc:
            if self.journal is not None and self.journal.sealed is not None:
                return self._sealed(self.journal.sealed)
            return self.failed(str(exc))
        finally:
            rooms.end(room.id)

    def _drill(self, rooms: Rooms, room: RoomRow) -> str:
        scenario, runbook = load_pair(room.scenario)
        clock = DrillClock(room.speed)
        with self._lock:
            self.journal = StoreJournal(self.store, self.run.id, self.worker, on_lost=self._interrupt)
        controls = Controls(rooms, room, scenario, clock)
        prompter = RoomPrompter(rooms, room.id, clock, controls, lambda: self.stopped is not None)
        people = tuple(Participant(m.person, m.role) for m in rooms.members(room.id))
        setup = DrillSetup(clock=clock, prompter=prompter, acknowledge=prompter.acknowledge,
                           observers=[_Recorded(self.journal)], mode="drill", run_id=self.run.id,
                           participants=people, speed=room.speed, ready=self._ready(controls))
        with _running(controls):
            drill = run_scenario(scenario, runbook, setup)
        self.journal.close()
        return self._end(drill.result)

    def _sealed(self, why: str) -> str:
        """Handed over by a draining worker: a drill cannot go on elsewhere (its world is
        here), so it ends now, saying why, rather than wait in the queue for nobody."""
        if self.handed_over:
            return self.failed(f"{why}; {TAKEN_OVER}")
        return super()._sealed(why)

    def _ready(self, controls: Controls) -> Callable[[Runner, World], None]:
        def ready(runner: Runner, world: World) -> None:
            self.runner = runner
            controls.ready(runner, world)
            if self.stopped is not None:
                runner.interrupt(hard=True, reason=self.stopped)
        return ready


@contextmanager
def _running(controls: Controls) -> Iterator[None]:
    thread = threading.Thread(target=controls.run, name=f"drill-{controls.room.id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        controls.stop()
        thread.join()


def execution_for(base: Execution) -> Execution:
    """`base` as a drill's execution when its run is a drill (mode `drill`), else itself.
    A drill is never carried out live: one that is no room's ends failed, saying so."""
    if base.run.mode != "drill":
        return base
    drill = DrillExecution(base.store, base.claim, base.worker, base.scratch, on_question=base.on_question)
    drill.room = Rooms(base.store).of_run(base.run.id)
    return drill
