"""Events as journal records: the compiled record()/stamped() of every event class, and
the key times folded from records whatever a damaged journal holds."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from engine.run.events import EVENT_TYPES, Event, PhaseStarted
from engine.run.metrics import timings


def _sample(cls: type[Event]) -> Event:
    """An instance with every field set to a value of its own (defaults left as they are)."""
    values: dict[str, Any] = {}
    for number, f in enumerate(dataclasses.fields(cls)):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            values[f.name] = f"{f.name}-{number}"
    return cls(**values)


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_stamped_is_the_stamp_then_the_record_in_the_same_order(name: str) -> None:
    event = _sample(EVENT_TYPES[name])
    stamped = event.stamped(7, 1700000000.25, 12.5)
    expected = {"seq": 7, "t": 1700000000.25, "elapsed": 12.5, "event": name, **event.record()}
    assert stamped == expected
    assert list(stamped) == list(expected)
    assert stamped is not event.stamped(7, 1700000000.25, 12.5)  # a fresh dict each time


def test_key_times_read_a_damaged_step_record_as_before() -> None:
    """Odd values (a number for a step id, text for a duration, a bool for attempts, no
    status) are read as the report always read them, never as the engine's fast path."""
    records: list[dict[str, Any]] = [
        {"seq": 1, "elapsed": 0.0, "event": "step.started", "step": 5, "phase": "triage"},
        {"seq": 2, "elapsed": "3.5", "event": "step.finished", "step": 5, "duration": "2.5",
         "attempts": True, "kind": None},
        {"seq": 3, "elapsed": 4.0, "event": "step.started", "step": "s", "phase": "triage"},
        {"seq": 4, "elapsed": 5.0, "event": "step.finished", "step": "s", "status": "ok", "kind": "run",
         "duration": math.inf, "attempts": 2.0},
    ]
    t = timings(records)
    odd, plain = t.steps["5"], t.steps["s"]
    assert (odd.status, odd.kind, odd.duration, odd.attempts, odd.finished) == ("None", "", 2.5, 0, 3.5)
    assert (plain.status, plain.kind, plain.duration, plain.attempts) == ("ok", "run", 0.0, 2)
    assert t.last_elapsed == 5.0


def test_the_bus_looks_its_observers_barriers_up_once() -> None:
    """A step's barrier before its command calls the observers' barriers, found when the
    bus was made, not looked up again each time (a drill's key times have none)."""
    from engine.run.bus import EventBus
    from engine.run.clock import VirtualClock

    class Watcher:
        lookups = 0

        def on_event(self, event: Any, stamp: Any) -> None:
            return None

        def __getattr__(self, name: str) -> Any:
            if name == "barrier":
                Watcher.lookups += 1
            raise AttributeError(name)

    class Durable:
        synced = 0

        def on_event(self, event: Any, stamp: Any) -> None:
            return None

        def barrier(self) -> None:
            Durable.synced += 1

    bus = EventBus(VirtualClock(), [Watcher(), Durable()])
    for _ in range(3):
        bus.barrier()
    assert (Watcher.lookups, Durable.synced) == (1, 3)


def test_the_bus_binds_each_observer_s_on_event_once_not_at_every_event() -> None:
    """Every event goes to every observer: their on_event is looked up when the bus is
    made, not again at each of a step's events; each still gets every event, in order."""
    from engine.run.bus import EventBus
    from engine.run.clock import VirtualClock

    seen: list[tuple[str, int]] = []

    class Counted:
        lookups = 0

        def __init__(self, name: str) -> None:
            self.name = name

        def __getattribute__(self, attr: str) -> Any:
            if attr == "on_event":
                Counted.lookups += 1
            return object.__getattribute__(self, attr)

        def on_event(self, event: Any, stamp: Any) -> None:
            seen.append((object.__getattribute__(self, "name"), stamp.seq))

    bus = EventBus(VirtualClock(), [Counted("journal"), Counted("console")])
    for _ in range(3):
        bus.emit(PhaseStarted(phase="triage"))
    assert Counted.lookups == 2
    assert seen == [("journal", 1), ("console", 1), ("journal", 2), ("console", 2), ("journal", 3), ("console", 3)]


def test_importing_the_events_lists_no_class_fields_and_reading_a_record_back_still_takes_only_its_fields() -> None:
    """A live run reads no record back: the field names from_record keeps are listed at
    its first record of a class, not for all 28 classes at every start."""
    from pathlib import Path

    from engine.run import events

    code = compile(Path(events.__file__).read_text(encoding="utf-8"), events.__file__, "exec")
    made: dict[str, Any] = {"__name__": "engine.run.events", "__package__": "engine.run"}
    exec(code, made)
    assert made["_FIELDS"] == {}
    record = {"seq": 1, "t": 0.0, "elapsed": 0.0, "event": "phase.finished", "phase": "detection",
              "status": "ok", "duration": 1.5, "unknown": "dropped"}
    assert made["from_record"](record) == made["PhaseFinished"]("detection", "ok", 1.5)
    assert made["_FIELDS"] == {made["PhaseFinished"]: ("phase", "status", "duration")}
