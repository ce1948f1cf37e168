"""A `block:` step: its steps run in order as one step. With `for_each`, the driver runs
the block once per item (_for_each.py: one item at a time, or several at once with
`parallel`/`serial` in _items.py; `max_failures` items may fail as hosts may); each
time, this runs the steps inside with the item's `item` and `index`. Every step inside
is an ordinary step of the run: `steps.<id>` is its last run and, in a block with
`for_each`, `steps.<id>.items` its run for each item (in the items' order).

A stop inside the block (a failure, Ctrl-C, a refusal, an `end:` step) ends the block;
the block's record says how, and the stop is left to the runner (`Driver.stop`), which
ends the run with it once the block is recorded (unless `continue_on_error` lets a
failure pass).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from engine.language.duration import format_duration
from engine.language.model import BlockSpec, Step

from ._driver import Driver
from .attempt import Attempt, StepStop
from .state import StepRecord

LOOP_NAMES = ("item", "index", "_shown")  # what an item of the block's for_each gives its steps


def block(d: Driver, step: Step, sid: str, spec: BlockSpec[Step], number: int, extra: dict[str, Any],
          timeout: float | None) -> Attempt:
    """The block's steps in order (once, or for the item in `extra`)."""
    looped = step.for_each is not None
    index = extra.get("index") if looped else None
    saved = d.scope, d.within, d.ran
    if looped:
        d.scope = {**d.scope, **{k: extra[k] for k in LOOP_NAMES if k in extra}}
        d.ran = {}
    d.within = (sid, index)
    try:
        if spec.background:
            from ._background import with_helpers  # a run without helpers reads none of their code

            return with_helpers(d, sid, step, spec.background, extra,
                                lambda alive: run_steps(d, spec.steps, step.timeout, alive))
        return run_steps(d, spec.steps, step.timeout)
    finally:
        ran = d.ran or {}
        d.scope, d.within, d.ran = saved
        if looped:
            _collect(d, spec, index or 0, extra.get("item"), ran, extra.get("_items"))
            if d.ran is not None:
                d.ran.update(ran)  # an outer block's item ran them too


def run_steps(d: Driver, steps: tuple[Step, ...], timeout: float | None = None,
              alive: Callable[[], str | None] | None = None) -> Attempt:
    """Steps of a block or a branch, in order; the first stop ends them (see `stopped`).
    A block's `timeout` bounds each step's own (a command is stopped when it is up) and
    keeps the next step from starting; `alive` says after each step whether a background
    helper of the block has died (which fails the block)."""
    saved = d.deadline
    if timeout is not None:
        mine = d.r.clock.monotonic() + timeout
        d.deadline = mine if saved is None else min(saved, mine)
    try:
        for inner in steps:
            if d.deadline is not None and d.r.clock.monotonic() >= d.deadline:
                whose = f"the block's timeout ({format_duration(timeout)})" if timeout else "the timeout of a block"
                return Attempt(False, f"{whose} passed before step {inner.id} could start")
            try:
                d.r.step(inner)
            except StepStop as stop:
                return stopped(d, stop)
            died = alive() if alive is not None else None
            if died is not None:
                return Attempt(False, f"{died} (after step {inner.id})")
        return Attempt(True)
    finally:
        d.deadline = saved


def stopped(d: Driver, stop: StepStop) -> Attempt:
    """How a stop inside a block ends the block; the runner ends the run with the stop."""
    d.stop = stop
    # Name the inner step, unless its own reason already starts by naming it ("step ask waits
    # for a person …" read "step ask: step ask waits …").
    named = not stop.step or stop.reason.startswith((f"step {stop.step} ", f"step {stop.step}:"))
    where = "" if named else f"step {stop.step}: "
    if stop.outcome == "failed":
        return Attempt(False, f"{where}{stop.reason}")
    if stop.outcome == "aborted":
        return Attempt(False, stop.reason, cancelled=True)
    if stop.outcome == "refused":
        return Attempt(False, f"{where}{stop.reason}", refused=True)
    if stop.outcome == "not_confirmed":
        return Attempt(False, f"{where}{stop.reason}", expect_false=True)
    return Attempt(True)  # the run ends as a step inside decided (`end:`, a hand-off): the block did its part


def nested(steps: tuple[Step, ...]) -> Iterator[Step]:
    """The steps of a block and every step inside them."""
    for step in steps:
        yield step
        yield from step.inner()


def _collect(d: Driver, spec: BlockSpec[Step], index: int, item: Any, ran: dict[str, StepRecord],
             runs: dict[str, dict[int, dict[str, Any]]] | None) -> None:
    """After an item: each step that ran for it keeps that run in its `items`, in the
    items' order whatever order they ended in (items may run at once), so that
    `steps.<id>.items[n]` is its run for item n. `runs` holds this pass's item runs."""
    state = d.r.state
    runs = {} if runs is None else runs
    for inner in nested(spec.steps):
        rec = ran.get(inner.id)
        if rec is None or inner.for_each is not None:
            continue  # did not run for this item (or its items are its own for_each's)
        mine = runs.setdefault(inner.id, {})
        mine[index] = {"index": index, "item": item, **{k: v for k, v in rec.view().items() if k != "items"}}
        rec.items = [mine[i] for i in sorted(mine)]
        state.record(rec)
