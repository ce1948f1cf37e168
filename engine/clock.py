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

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._wake.wait(seconds)
            self._wake.clear()

    def wake(self) -> None:
        self._wake.set()


@dataclass(order=True)
class _Timer:
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

    def now(self) -> float:
        return self._start + self._t

    def monotonic(self) -> float:
        return self._t

    def sleep(self, seconds: float) -> None:
        self.advance_to(self._t + max(seconds, 0.0))

    def advance_to(self, t: float) -> None:
        while self._timers and self._timers[0].at <= t:
            timer = heapq.heappop(self._timers)
            self._t = max(self._t, timer.at)
            timer.action()
        self._t = max(self._t, t)

    def call_at(self, t: float, action: Callable[[], None]) -> None:
        """Run `action` when monotonic time reaches `t` (during a later sleep)."""
        heapq.heappush(self._timers, _Timer(t, next(self._seq), action))

    def next_timer(self) -> float | None:
        return self._timers[0].at if self._timers else None
