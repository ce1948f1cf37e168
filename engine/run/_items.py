"""A block's items running at once (`parallel: N`, `serial: N|P%` on a block with
`for_each`), as hosts run a step: `serial` cuts the items into rolling batches (a batch
starts when the one before has ended), `parallel` is how many run at once (within a
batch; without it, the whole batch). Each item runs its steps in order.

One writer: each item runs in a thread of its own, but the threads take turns driving
the run (Baton, _driver.py): the run's state, the journal's events and the driver are
used by one thread at a time, and a thread lets go only while it waits for a command, a
request or a sleep, so the items' commands run at the same time. Making the run state,
the driver and every step kind safe for threads would touch all of them; waiting is
where the time goes.

`max_failures` counts failed items as it counts failed hosts: once more have failed, no
new item starts, the items running finish, and the block fails. Ctrl-C sets the run's
cancel, which every running command and sleep obeys. On the virtual clock (`runbook
test`) the items of a batch run one after another, each from the time its slot frees,
and the block ends when the last would have: the drill's time is the parallel time.
"""

from __future__ import annotations

import heapq
import queue
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from engine.executors.base import Cancel, Executor, Invocation, OutputSink, Result
from engine.language.model import Step

from ._driver import Baton, Driver
from ._output import StepStreams
from .attempt import StepStop
from .services import HostsOutcome, Remote
from .state import StepRecord

if TYPE_CHECKING:  # a run without items at once does not load the fan-out
    from engine.fleet.fanout import Policy

# Runs item n (its `when`, then its steps) and returns its record: _for_each's guarded.
RunItem = Callable[[int], StepRecord]
# What the for_each does with an item's end: False when no new item may start.
Ended = Callable[[int, StepRecord, "StepStop | None"], bool]


def width(step: Step, total: int) -> int:
    """How many items of a block run at once: `parallel`, else a `serial` batch's size,
    else one (a block's items run one at a time unless it says otherwise)."""
    if step.kind != "block" or (step.parallel is None and step.serial is None):
        return 1
    return step.parallel or max((len(b) for b in batches(step, total)), default=1)


def batches(step: Step, total: int) -> list[list[int]]:
    """The items' indices in `serial` batches (one batch without it), cut as hosts are."""
    from engine.fleet.fanout import Policy

    cut = Policy(serial=step.serial).batches([str(i) for i in range(total)]) if total else []
    return [[int(i) for i in batch] for batch in cut]


def run_items(d: Driver, step: Step, total: int, run: RunItem, ended: Ended) -> None:
    """Every item, `parallel` at a time in `serial` batches, until `ended` says stop."""
    each = step.parallel or total or 1
    if getattr(d.r.clock, "virtual", False):
        _simulated(d, step, total, run, ended, each)
        return
    if d.baton is not None:  # a block inside an item running at once: the items share its baton
        _batches(d, step, total, run, ended, each)
        return
    baton = d.baton = Baton(d)
    baton.lock.acquire()
    services = d.r.services
    d.r.services = replace(services, local=_Waiting(services.local, d), http=_Waiting(services.http, d),
                           remote=_WaitingRemote(services.remote, d) if services.remote is not None else None,
                           prompter=_MainPrompter(services.prompter, baton))
    try:
        _batches(d, step, total, run, ended, each)
    finally:
        # A SIGTERM meanwhile put a prompter that answers no in place of ours: keep it.
        prompter = d.r.services.prompter
        d.r.services = services if isinstance(prompter, _MainPrompter) else replace(services, prompter=prompter)
        baton.lock.release()
        d.baton = None


def within_items(d: Driver) -> bool:
    """Whether this run is a runbook included by an item running at once: its own blocks
    run their items one at a time (their turns are the including run's)."""
    return d.baton is None and isinstance(d.r.services.local, _Waiting)


def _batches(d: Driver, step: Step, total: int, run: RunItem, ended: Ended, each: int) -> None:
    for batch in batches(step, total):
        if not _batch(d, batch, min(each, len(batch)), run, ended):
            break


def _batch(d: Driver, batch: list[int], each: int, run: RunItem, ended: Ended) -> bool:
    """One batch's items, `each` at a time; False when no more items may start."""
    baton = d.baton
    assert baton is not None
    done: queue.Queue[tuple[int, StepRecord | None, StepStop | None, BaseException | None]] = queue.Queue()
    waiting, running, going = list(batch), 0, True
    announced: dict[int, bool] = {}
    while running or (going and waiting):
        while going and waiting and running < each:
            _start(d, baton, waiting.pop(0), run, done, announced)
            running += 1
        with baton.released():
            index, rec, stop, error = _next(done, baton)
        running -= 1
        if error is not None:
            raise error
        assert rec is not None
        going = ended(index, rec, stop) and going
        d.announced = d.announced or announced.get(index, False)
    return going


def _next(done: queue.Queue[Any], baton: Baton) -> Any:
    """The next item to end; waits in short slices so that the main thread still takes
    its signals (Ctrl-C) while items run, and asks the items' questions meanwhile."""
    main = threading.current_thread() is threading.main_thread()
    while True:
        try:
            if main:
                _ask(baton)
            return done.get(timeout=0.05 if main else 0.2)
        except queue.Empty:
            continue
        except KeyboardInterrupt:
            continue  # the signal has set the run's cancel: the items stop on their own


def _ask(baton: Baton) -> None:
    """A question an item asks, asked on the main thread: the terminal's Ctrl-C reaches
    only that thread, so a prompt elsewhere could not be broken into."""
    try:
        call, answer = baton.asks.get_nowait()
    except queue.Empty:
        return
    try:
        answer.put((call(), None))
    except BaseException as exc:  # KeyboardInterrupt at the prompt: the item's step handles it
        answer.put((None, exc))


def _start(d: Driver, baton: Baton, index: int, run: RunItem, done: queue.Queue[Any],
           announced: dict[int, bool]) -> None:
    """Item `index` in a thread of its own, starting from the driver as it is now."""
    scope, within, deadline, _, ran, _, said, lag, started = d.save()
    start = (dict(scope), within, deadline, None, ran, StepStreams(), said, lag, started)

    def work() -> None:
        baton.take(start)
        try:
            rec = run(index)
            announced[index] = d.announced  # the block's step.started, emitted by this item
            done.put((index, rec, d.take_stop(), None))
        except BaseException as exc:  # a defect: the for_each raises it where it waits
            done.put((index, None, None, exc))
        finally:
            baton.lock.release()

    threading.Thread(target=work, name=f"item-{index}", daemon=True).start()


def _simulated(d: Driver, step: Step, total: int, run: RunItem, ended: Ended, each: int) -> None:
    """On the virtual clock: each item from the time a slot frees (items of a batch run
    one after another on the clock turned back), the block ending when the last would."""
    clock: Any = d.r.clock  # a VirtualClock
    for batch in batches(step, total):
        slots = [clock.monotonic()] * min(each, len(batch))
        going = True
        for index in batch:
            clock.rewind_to(heapq.heappop(slots))
            rec = run(index)
            heapq.heappush(slots, clock.monotonic())
            going = ended(index, rec, d.take_stop())
            if not going:
                break
        clock.advance_to(max(slots))
        if not going:
            return


class _Waiting:
    """An executor whose waits let other items drive the run meanwhile (see Baton)."""

    def __init__(self, inner: Executor, d: Driver) -> None:
        self.inner, self.d = inner, d

    def run(self, invocation: Invocation, sink: OutputSink, cancel: Cancel) -> Result:
        with self.d.released():
            return self.inner.run(invocation, sink, cancel)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class _MainPrompter:
    """The run's prompter, asking on the main thread for the items (see _ask); the item
    that asks keeps the baton meanwhile, as a step that asks does."""

    def __init__(self, inner: Any, baton: Baton) -> None:
        self.inner, self.baton = inner, baton

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if not callable(value) or threading.current_thread() is threading.main_thread():
            return value

        def on_main(*args: Any, **kwargs: Any) -> Any:
            answer: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue()
            self.baton.asks.put((lambda: value(*args, **kwargs), answer))
            result, error = answer.get()
            if error is not None:
                raise error
            return result

        return on_main


class _WaitingRemote:
    """The fan-out over hosts, waiting as _Waiting does."""

    def __init__(self, inner: Remote, d: Driver) -> None:
        self.inner, self.d = inner, d

    def execute(self, base: Invocation, hosts: Any, policy: Policy, sink: OutputSink, cancel: Cancel,
                on_host: Any = None) -> HostsOutcome:
        with self.d.released():
            return self.inner.execute(base, hosts, policy, sink, cancel, on_host)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
