"""A sampling profiler of every thread of this process, for servers whose work is spread
over an event loop and a thread pool (cProfile sees one thread; py-spy is not installed).

Every INTERVAL seconds a daemon thread reads `sys._current_frames()` and counts, for each
thread that is not waiting, the function on top (self) and every function on its stack
(inclusive). A thread whose innermost Python function is a known wait (a Condition's
wait, select, a queue's get, a socket's recv ...) is left out. One blocked in C code
called from another function (a lock taken with `with`, a commit's fsync, a database
round trip) counts as busy in that function: read a large self share there as waiting.

    sampler = Sampler.start()
    ...
    sampler.stop().write(path)
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

INTERVAL = 0.002
# Functions a thread sits in while it waits: a sample whose top is one of these is idle.
IDLE = frozenset({"wait", "select", "poll", "_worker", "get", "acquire", "sleep", "accept", "recv_into", "recv",
                  "_recv", "epoll", "run_forever", "_run_once", "read", "readinto", "control", "_poll"})


def _where(frame: FrameType) -> str:
    code = frame.f_code
    return f"{Path(code.co_filename).name}:{code.co_firstlineno} {code.co_name}"


@dataclass
class Sampler:
    """Counts of samples per function, self and inclusive, over every busy thread."""

    own: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @classmethod
    def start(cls) -> Sampler:
        sampler = cls()
        sampler._thread = threading.Thread(target=sampler._loop, name="sampler", daemon=True)
        sampler._thread.start()
        return sampler

    def _loop(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(INTERVAL):
            for ident, frame in sys._current_frames().items():
                if ident != me and frame.f_code.co_name not in IDLE:
                    self._count(frame)

    def _count(self, frame: FrameType) -> None:
        self.samples += 1
        self.own[_where(frame)] += 1
        seen: set[str] = set()
        walk: FrameType | None = frame
        while walk is not None:
            name = _where(walk)
            if name not in seen:  # a recursive function counts once per sample
                seen.add(name)
                self.inclusive[name] += 1
            walk = walk.f_back

    def stop(self) -> Sampler:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self

    def write(self, path: Path, top: int = 60) -> None:
        """The busiest functions, self and inclusive, as shares of the busy samples."""
        total = max(self.samples, 1)
        lines = [f"{self.samples} busy samples every {INTERVAL * 1e3:g} ms ({time.strftime('%H:%M:%S')})", "",
                 "self:"]
        lines += [f"  {n / total:6.1%}  {name}" for name, n in self.own.most_common(top)]
        lines += ["", "inclusive:"]
        lines += [f"  {n / total:6.1%}  {name}" for name, n in self.inclusive.most_common(top)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
