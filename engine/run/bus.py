"""The event bus: stamps each event, masks its secrets, and hands it to every observer.

Split from engine/run/events.py, which holds what events are; this module is how they
travel from the runner to the journal and the console.
"""

from __future__ import annotations

import threading
from typing import Any

from .events import Event, Stamp
from .masking import Masker

_new = object.__new__


class EventBus:
    """Stamps events (seq, wall time, run-relative time), masks secrets, and hands
    them to every observer in order: the journal first, so it is written before the
    console shows anything."""

    def __init__(self, clock: Any, observers: list[Any], masker: Masker | None = None, *,
                 start_seq: int = 0, elapsed_offset: float = 0.0) -> None:
        self.clock = clock
        self.observers = observers
        self.masker = masker
        self.seq = start_seq
        self._origin = clock.monotonic() - elapsed_offset
        # Live output only matters to observers that show or store it (console, logs).
        self.wants_output = any(getattr(o, "wants_output", False) for o in observers)
        # Looked up once, not at each step's barrier before its command (a drill's key
        # times have none).
        self._barriers = tuple(b for b in (getattr(o, "barrier", None) for o in observers) if b is not None)
        # Bound once, not looked up on each observer at every event (three or more a step).
        self._on_event = tuple(o.on_event for o in observers)
        # Drills on a real clock fire injected events from a timer thread.
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        return self.clock.monotonic() - self._origin

    def emit(self, event: Event) -> Stamp | None:
        journaled = event.journaled
        if not journaled and not self.wants_output:
            return None
        masker = self.masker
        if masker is not None and masker._secrets:  # its __bool__, without the call (at every event)
            event = type(event)(**masker.data(event.record()))
        clock = self.clock
        lock = self._lock
        lock.acquire()  # not `with`: its __exit__ call with three Nones, at every event
        try:
            if journaled:
                self.seq += 1
            # Made without Stamp's generated __init__: a Python frame per event saved.
            stamp = _new(Stamp)
            stamp.seq, stamp.t, stamp.elapsed = self.seq, clock.now(), clock.monotonic() - self._origin
            for on_event in self._on_event:
                on_event(event, stamp)
        finally:
            lock.release()
        return stamp

    def barrier(self) -> None:
        """Before an external effect: make what was recorded durable."""
        for barrier in self._barriers:
            barrier()
