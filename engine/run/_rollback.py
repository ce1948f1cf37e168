"""Rollbacks: a run that ends failed, aborted or refused undoes what it did. The
`rollback:` steps of the steps that completed run, the most recent step's first. After
an abort they run on the operator's word (asked on a terminal; without one, as the
run's `rollback_on_abort` says); a second Ctrl-C skips them, or stops them where they are.
"""

from __future__ import annotations

from typing import Protocol

from engine.language.model import Step

from ._driver import RunView
from ._step import StepDriver
from .attempt import StepStop
from .events import RollbackFinished, RollbackStarted
from .state import StepRecord


class Undoing(RunView, Protocol):
    """What rolling back needs of the run (the Runner is one)."""

    completed: list[Step]  # the steps that succeeded, in the order they did
    driver: StepDriver
    hard_stop: bool  # a second Ctrl-C: no more rollbacks
    rollback_on_abort: bool


def roll_back(run: Undoing, outcome: str, reason: str) -> None:
    """Run the rollbacks of the completed steps, between rollback.started and .finished."""
    todo = [s for s in reversed(run.completed) if s.rollback]
    if not todo:
        return
    names = [f"{run.prefix}{s.id}" for s in todo]
    if outcome == "aborted" and not _wanted(run, len(todo)):
        run.bus.emit(RollbackStarted(f"{outcome}: {reason}", names))
        run.bus.emit(RollbackFinished("skipped", skipped=True))
        return
    run.cancel.clear()
    run.bus.emit(RollbackStarted(f"{outcome}: {reason}", names))
    status = "ok"
    for step in todo:
        for undo in step.rollback:
            if run.hard_stop:
                status = "interrupted"
                break
            try:
                rec = run.driver.execute(undo, rollback_of=f"{run.prefix}{step.id}")
            except StepStop as exc:
                rec = StepRecord(undo.id, status=exc.outcome, error=exc.reason)
            if rec.status != "ok":
                status = "failed"
    run.bus.emit(RollbackFinished(status))


def _wanted(run: Undoing, count: int) -> bool:
    """After an abort: whether to roll back (the operator says so on a terminal)."""
    if run.hard_stop or not run.rollback_on_abort:
        return False
    if not run.services.prompter.interactive:
        return True
    try:
        with run.asking():  # read again: SIGTERM swaps the prompter for one that asks nobody
            return run.services.prompter.confirm_rollback(count)
    except KeyboardInterrupt:
        run.hard_stop = True
        return False
