"""Group commit: writes of one kind that arrive together share one transaction.

A durable commit costs a log sync (an fsync on SQLite with synchronous=FULL, a WAL flush
on PostgreSQL) whatever it holds, and on SQLite writers take turns anyway. So when
several threads bring a write at once, the first to get the turn (the leader) takes
every write waiting, up to `limit`, and commits them in one transaction, in the order
they came; the others find theirs done when their turn comes and return at once. Each
caller still returns only after the commit that holds its write: nothing is answered
before it is durable.

When the shared transaction fails (a full disk, a read-only database, a bug in one
write), nothing of it is kept and every write in it is done again on its own, with the
ordinary retries: each caller gets the answer or the error its own write would have got.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Slot(Generic[T, R]):
    item: T
    taken: bool = False  # a leader has it in its batch
    alone: bool = False  # the shared transaction failed: write it on its own
    result: R | None = None
    finished: threading.Event = field(default_factory=threading.Event)


@dataclass
class GroupCommit(Generic[T, R]):
    """`write_all(items)` commits items in one transaction and returns their results in
    order (raising when it cannot); `alone(item)` writes one item with retries. `lanes`
    batches may be written at once (1 where writers take turns anyway, as on SQLite;
    more where the database runs transactions side by side, as PostgreSQL does)."""

    write_all: Callable[[Sequence[T]], list[R]]
    alone: Callable[[T], R]
    lanes: int = 1
    limit: int = 64
    _pending: list[_Slot[T, R]] = field(default_factory=list)
    _mutex: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._lanes = threading.BoundedSemaphore(self.lanes)

    def submit(self, item: T) -> R:
        """The result of writing `item`, once it is committed (with others or alone)."""
        slot: _Slot[T, R] = _Slot(item)
        with self._mutex:
            self._pending.append(slot)
        while not slot.taken:
            with self._lanes:
                self._lead()
        slot.finished.wait()
        if slot.alone:
            return self.alone(item)
        return slot.result  # type: ignore[return-value]  # set before finished, alone False

    def _lead(self) -> None:
        with self._mutex:
            batch, self._pending = self._pending[:self.limit], self._pending[self.limit:]
            for slot in batch:
                slot.taken = True
        if not batch:
            return
        try:
            results = self.write_all([s.item for s in batch])
        except Exception:  # every write is done again alone, where its error is its own
            for slot in batch:
                slot.alone = True
                slot.finished.set()
            return
        for slot, result in zip(batch, results, strict=True):
            slot.result = result
            slot.finished.set()
