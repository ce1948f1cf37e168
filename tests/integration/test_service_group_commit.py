"""Deliveries that arrive together share a commit (store/_batches.py), on SQLite and on a
real PostgreSQL: fewer commits than deliveries, each answer what its own transaction
would have said (a repeat is a duplicate, one run per notification), and a delivery whose
write fails takes nobody else's with it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from engine.service.store import NewAlert, NewDelivery, NewRun, Received, Store


def _delivery(key: str, source: str = "am") -> NewDelivery:
    alert = NewAlert(occurrence=f"occ-{key}", fingerprint=f"fp-{key}", name="DiskFull", status="firing",
                     labels={"instance": key}, label_key=f"labels-{key}", route="disk",
                     run=NewRun("disk-full", "/rb/disk-full.yaml", {"host": key}, origin=f"alert:{key}"))
    return NewDelivery(source, b'{"key": "%s"}' % key.encode(), {"content-type": "application/json"},
                       dedup_key=f"dedup-{key}", alerts=(alert,))


@pytest.fixture
def store(database: str) -> Iterator[Store]:
    s = Store.open(database, patience=5)
    yield s
    s.close()


@contextmanager
def _held(store: Store) -> Iterator[Callable[[], None]]:
    """Every transaction that begins waits until release() is called: deliveries sent
    meanwhile pile up behind the ones already in a transaction, as under load."""
    gate = threading.Event()

    def hold(conn: Any) -> None:
        gate.wait(60)

    event.listen(store.engine, "begin", hold)
    try:
        yield gate.set
    finally:
        gate.set()
        event.remove(store.engine, "begin", hold)


def _commits(store: Store) -> list[int]:
    count = [0]

    def counted(conn: Any) -> None:
        count[0] += 1

    event.listen(store.engine, "commit", counted)
    return count


def _send(pool: ThreadPoolExecutor, store: Store, deliveries: list[NewDelivery]) -> list[Future[Received]]:
    futures = []
    for delivery in deliveries:
        futures.append(pool.submit(store.receive, delivery))
        time.sleep(0.02)  # in the order given (a pair's first copy first)
    time.sleep(1.0)  # let every sender reach the store before the held transactions go on
    return futures


def test_deliveries_arriving_together_share_a_commit_and_keep_their_answers(store: Store) -> None:
    keys = [f"db-{i}" for i in range(6)]
    deliveries = [_delivery(k) for k in keys for _ in range(2)]  # each notification twice: an HA pair
    commits = _commits(store)
    with ThreadPoolExecutor(len(deliveries)) as pool, _held(store) as release:
        futures = _send(pool, store, deliveries)
        release()
        answers = [f.result(60) for f in futures]
    assert commits[0] < len(deliveries), "every delivery was committed on its own"
    for pair in zip(answers[0::2], answers[1::2], strict=True):
        # Which copy is first is the database's word (on PostgreSQL they may commit side by side).
        [first], [repeat] = ([a for a in pair if a.duplicate_of is None], [a for a in pair if a.duplicate_of])
        assert [o.action for o in first.alerts] == ["queued"]
        assert repeat.duplicate_of == first.delivery
    assert sorted(r.inputs["host"] for r in store.runs()) == sorted(keys)
    assert store.deliveries() == {"accepted": 6, "duplicate": 6}


def test_a_delivery_that_cannot_be_written_takes_no_other_with_it(store: Store,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.service.store import _intake

    real = _intake.receive

    def receive(conn: Any, new: NewDelivery) -> Received:
        if new.source == "broken":
            raise RuntimeError("this delivery's write fails")
        return real(conn, new)

    monkeypatch.setattr(_intake, "receive", receive)
    deliveries = [_delivery(f"ok-{i}") for i in range(3)] + [_delivery("bad", "broken")] + \
        [_delivery(f"ok-{i}") for i in range(3, 8)]
    with ThreadPoolExecutor(len(deliveries)) as pool, _held(store) as release:
        futures = _send(pool, store, deliveries)
        release()
        outcomes = [f.exception(60) or f.result() for f in futures]
    assert isinstance(outcomes[3], RuntimeError)
    kept = [o for i, o in enumerate(outcomes) if i != 3]
    assert all(isinstance(o, Received) and o.duplicate_of is None for o in kept)
    assert store.deliveries() == {"accepted": 8}
    assert len(store.runs()) == 8


def test_a_lone_delivery_is_committed_at_once_by_its_own_thread(store: Store) -> None:
    """With nobody else writing, a delivery waits for no batch and no other thread: the
    thread that brought it begins, writes and commits its transaction, alone."""
    threads: list[tuple[str, int]] = []
    for name in ("begin", "commit"):
        event.listen(store.engine, name, lambda conn, name=name: threads.append((name, threading.get_ident())))
    received = store.receive(_delivery("db-lone"))
    assert [o.action for o in received.alerts] == ["queued"]
    assert threads == [("begin", threading.get_ident()), ("commit", threading.get_ident())]
