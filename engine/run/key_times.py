"""Key times folded from a run's events as the bus hands them over: the same Timings that
metrics.timings() folds from the run's journal records afterwards.

A drill scores its run from these (every trial of an estimate does): reading the records
back after the run cost a tenth of a simulated step's work. There is one fold, not two:
the two events every step emits, and the phases', give their fields straight from the
event (what the engine made) to the same Collector methods the records' handlers call,
and every other event is folded from its record (`stamped()`, exactly what the journal holds).
"""

from __future__ import annotations

from typing import Any

from .events import PhaseFinished, PhaseStarted, Stamp, StepFinished, StepStarted
from .metrics import Collector, Timings


class KeyTimes:
    """An observer of the bus: Timings of the run so far (`result()` once it is over)."""

    wants_output = False

    def __init__(self) -> None:
        self._fold = Collector()

    def on_event(self, event: Any, stamp: Stamp) -> None:  # an Event: Any lets the step events' fields be read
        cls, e = type(event), event  # the classes are told apart by identity, the cheapest test
        if cls is StepFinished:  # a stamp's elapsed is the finite float the bus measured
            self._fold.finished(stamp.elapsed, e.step, e.phase, e.status, e.kind, e.duration, e.attempts, e.index,
                                e.error, e.rollback_of)
        elif cls is StepStarted:
            self._fold.started(stamp.elapsed, e.step, e.phase, e.role, e.rollback_of, e.index, e.item)
        elif cls is PhaseStarted:  # eight a run: their records were most of a trial's other folding
            self._fold.phase_started(stamp.elapsed, e.phase)
        elif cls is PhaseFinished:
            self._fold.phase_finished(stamp.elapsed, e.phase, e.status)
        elif event.journaled:
            self._fold.add(event.stamped(stamp.seq, stamp.t, stamp.elapsed))

    def result(self) -> Timings:
        """The run's Timings, as metrics.timings(records) gives them."""
        return self._fold.result()
