"""Proof that a drill touches nothing real: while one runs, spawning a process or
opening a network connection raises instead of happening.

The simulated executors never try (that is the design); this audit hook is the
safety net that makes a mistake loud, and lets tests count attempts.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from engine.errors import EngineError

BLOCKED = ("subprocess.Popen", "os.posix_spawn", "os.system", "os.exec", "os.fork", "os.forkpty",
           "os.spawn", "pty.spawn", "socket.connect", "socket.sendto")


class RealEffectRefused(EngineError):
    """Something in a drill tried to act on the real world."""


_state = threading.local()
_installed = False
attempts: list[str] = []


# The first two letters of every blocked event. Once a drill has run, the hook hears every
# audit event of the process (a frozen Result or Invocation made in a step raises one as
# it is filled): most stop at this test, before the thread's state is read.
_HEADS = frozenset(name[:2] for name in BLOCKED)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event[:2] in _HEADS and event.startswith(BLOCKED) and getattr(_state, "active", False):
        attempts.append(event)
        raise RealEffectRefused(f"a drill may not act on the real world ({event} refused)")


def refuse() -> bool:
    """Refuse process spawns and network connections in this thread from now on, until
    restore(what it returned). Every trial of an estimate does; a pair of plain calls is
    cheaper than a `with` (whose __enter__ and __exit__ the interpreter enters from C)."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
    previous: bool = getattr(_state, "active", False)
    _state.active = True
    return previous


def restore(previous: bool) -> None:
    """Undo refuse(): `previous` is what it returned."""
    _state.active = previous


class no_real_effects:  # named as the function it was: `with no_real_effects():`
    """Refuse process spawns and network connections in this thread while active."""

    def __enter__(self) -> None:
        self._previous = refuse()

    def __exit__(self, *exc: object) -> None:
        restore(self._previous)


@contextmanager
def own_records() -> Iterator[None]:
    """Lift the refusal in this thread for a moment: a drill run by a service keeps its
    journal and its prompts in the service's database, which may be a connection away.
    That is the drill's own record, not an effect on the world it simulates."""
    previous = getattr(_state, "active", False)
    _state.active = False
    try:
        yield
    finally:
        _state.active = previous
