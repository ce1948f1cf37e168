"""Real and virtual clocks. The runner never calls `time` directly, so a drill on a
virtual clock runs a 45-minute scenario in milliseconds, deterministically."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (wall time, or virtual time)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""

    def sleep(self, seconds: float) -> None:
        """Wait; a virtual clock advances instead."""

    @property
    def virtual(self) -> bool: ...


class RealClock:
    """Wall time. `sleep` can be cut short by `wake()` (Ctrl-C, trainer controls)."""

    virtual = False

    def __init__(self) -> None:
        self._wake = threading.Event()

    # The C functions themselves: a run reads the clock about eight times a step (each
    # event's stamp, the step's duration), and a method around each was a Python call.
    now = staticmethod(time.time)
    monotonic = staticmethod(time.monotonic)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._wake.wait(seconds)
            self._wake.clear()

    def wake(self) -> None:
        self._wake.set()


@dataclass(order=True)
class _Timer:
    """An action due at a virtual time (ordered by when, then by when it was set)."""

    at: float
    seq: int
    action: Callable[[], None] = field(compare=False)


class VirtualClock:
    """Simulated time: `sleep` jumps forward and fires timers that fall due on the way."""

    virtual = True

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._start = start
        self._t = 0.0
        self._timers: list[_Timer] = []
        self._seq = itertools.count()
        self._woken = False

    def now(self) -> float:
        return self._start + self._t

    def monotonic(self) -> float:
        return self._t

    def sleep(self, seconds: float) -> None:
        t = self._t + seconds if seconds > 0 else self._t
        timers = self._timers
        if timers and timers[0].at <= t:
            self.advance_to(t)
            return
        # No timer falls due on the way (most sleeps): advance_to's work without its call.
        self._woken = False
        self._t = t

    def advance_to(self, t: float) -> None:
        self._woken = False
        while self._timers and self._timers[0].at <= t:
            timer = heapq.heappop(self._timers)
            self._t = max(self._t, timer.at)
            timer.action()
            if self._woken:
                return  # a timer cut the wait short (a hand-off): time stops where it fired
        self._t = max(self._t, t)

    def wake(self) -> None:
        """End the sleep in progress at the current time (called from a timer's action)."""
        self._woken = True

    def rewind_to(self, t: float) -> None:
        """Turn time back to `t`: items of a block that run at once are simulated one
        after another, each from the time it would have started (engine/run/_items.py)."""
        self._t = t

    def call_at(self, t: float, action: Callable[[], None]) -> None:
        """Run `action` when monotonic time reaches `t` (during a later sleep)."""
        heapq.heappush(self._timers, _Timer(t, next(self._seq), action))

    def next_timer(self) -> float | None:
        return self._timers[0].at if self._timers else None


class Timers:
    """Calls actions when a clock reaches given times, from a background thread.

    For real and drill clocks: injected events and escalations must fire while the
    main thread waits for a person at a prompt. (A VirtualClock has `call_at` itself.)
    """

    def __init__(self, clock: Clock, tick: float = 0.05) -> None:
        self.clock, self.tick = clock, tick
        self._timers: list[_Timer] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.errors: list[Exception] = []  # what failing actions raised

    def call_at(self, t: float, action: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._timers, _Timer(t, next(self._seq), action))
            self._cond.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="runbook-timers", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                due = self._timers and self._timers[0].at <= self.clock.monotonic()
                timer = heapq.heappop(self._timers) if due else None
                if timer is None:
                    self._cond.wait(self.tick)
                    continue
            try:
                timer.action()
            except Exception as exc:  # one failing action must not stop every later timer
                self.errors.append(exc)


class DrillClock(RealClock):
    """Real time for people; simulated waits (command durations, `wait` steps) take
    1/speed of their length but count in full, and the trainer can pause time."""

    SLICE = 0.05  # longest real wait before simulated time is brought up to date

    def __init__(self, speed: float = 1.0) -> None:
        super().__init__()
        self.speed = max(speed, 0.001)
        self._origin = time.monotonic()
        self._epoch = time.time()
        self._skipped = 0.0
        self._paused_at: float | None = None
        self._paused_total = 0.0
        self._sleep_lock = threading.Lock()
        self._sleepers = 0  # waits under way (several when a block's items run at once)
        self._mark = 0.0  # the real time up to which waits have skipped simulated time

    def monotonic(self) -> float:
        return self._active() + self._skipped

    def now(self) -> float:
        return self._epoch + self.monotonic()

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` of simulated time: 1/speed of it in real time, not counting pauses.

        Simulated time advances in slices of at most SLICE real seconds, so timers see it
        as it goes (an event half-way through a long wait fires half-way), a pause holds
        the wait, and a wake-up counts only the simulated time that really passed. Waits
        at once (items of a block running at once) share the time they skip: it runs
        `speed` times faster while anyone waits, not once more for each.
        """
        if seconds <= 0:
            return
        left = seconds / self.speed  # real, unpaused seconds still to wait
        with self._sleep_lock:
            self._account()
            self._sleepers += 1
        try:
            while left > 1e-6:
                before = self._active()
                woken = self._wake.wait(min(left, self.SLICE))
                left -= self._active() - before
                with self._sleep_lock:
                    self._account()
                if woken:
                    break
        finally:
            with self._sleep_lock:
                self._account()
                self._sleepers -= 1
        self._wake.clear()

    def _account(self) -> None:
        """Skip simulated time for the real time that passed while someone waited."""
        now = self._active()
        if self._sleepers:
            self._skipped += (now - self._mark) * (self.speed - 1)
        self._mark = now

    def _active(self) -> float:
        """Real seconds since the start, less the paused time."""
        now = time.monotonic() if self._paused_at is None else self._paused_at
        return now - self._origin - self._paused_total

    @property
    def paused(self) -> bool:
        return self._paused_at is not None

    def pause(self) -> None:
        if self._paused_at is None:
            self._paused_at = time.monotonic()

    def resume(self) -> None:
        if self._paused_at is not None:
            self._paused_total += time.monotonic() - self._paused_at
            self._paused_at = None
