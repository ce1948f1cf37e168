"""How many statements a worker's journal costs on a real PostgreSQL: every record a run
writes is a transaction, each statement a round trip to a server that, on a busy machine,
must first be scheduled (bench/service.py: about 25 transactions per five-step run)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from postgres import PgCluster
from sqlalchemy import event

from engine.service.store import NewRun, Store


@pytest.fixture
def store(postgres: PgCluster, request: pytest.FixtureRequest) -> Iterator[Store]:
    s = Store.open(postgres.new_database(f"rt{abs(hash(request.node.nodeid)):x}"), patience=5)
    yield s
    s.close()


def _statements(store: Store) -> list[str]:
    seen: list[str] = []

    def executed(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split())[:42])

    event.listen(store.engine, "before_cursor_execute", executed)
    return seen


def test_a_journal_record_is_fenced_stored_and_announced_in_one_statement(store: Store) -> None:
    run_id = store.enqueue(NewRun("demo", "/rb/demo.yaml")).id
    store.claim("w1", {}, 30)
    seen = _statements(store)
    store.append(run_id, "w1", [(1, "run.started", '{"seq":1}')])
    # The transaction begins and leaves its sync to the durable commits in one round trip.
    assert seen[0] == "BEGIN; SET LOCAL synchronous_commit TO off", seen
    assert len(seen) == 2 and seen[1].startswith("WITH held AS (UPDATE runs"), seen
    seen.clear()
    store.append(run_id, "w1", [], durable=True)  # a barrier with nothing new: a durable commit, nobody woken
    assert seen[0] == "BEGIN" and not [s for s in seen if "pg_notify" in s], seen
    assert store.records(run_id) == ['{"seq":1}']


def test_records_written_in_one_statement_are_kept_byte_for_byte_and_fenced(store: Store) -> None:
    from engine.service.store import LeaseLost

    run_id = store.enqueue(NewRun("demo", "/rb/demo.yaml")).id
    store.claim("w1", {}, 30)
    one = [(1, "run.started", '{"seq":1,"text":"a \\"quoted\\" \\\\ line"}')]
    several = [(2, "phase.started", '{"seq":2,"phase":"ñ"}'), (3, "step.started", '{"seq":3,"step":"{x}"}')]
    store.append(run_id, "w1", one)
    store.append(run_id, "w1", several)
    assert store.records(run_id) == [line for _, _, line in one + several]
    run = store.run(run_id)
    assert run is not None and run.last_seq == 3
    for lines in ([(4, "step.finished", "{}")], [(4, "step.finished", "{}"), (5, "run.finished", "{}")]):
        with pytest.raises(LeaseLost):
            store.append(run_id, "w2", lines)  # w2 never held it: nothing is written
    assert len(store.records(run_id)) == 3


def _delivery(key: str) -> Any:
    from engine.service.store import NewAlert, NewDelivery

    alert = NewAlert(occurrence=f"occ-{key}", fingerprint=f"fp-{key}", name="DiskFull", status="firing",
                     route="disk", run=NewRun("disk-full", "/rb/disk-full.yaml"))
    return NewDelivery("am", b'{"k": 1}', {}, dedup_key=f"dedup-{key}", alerts=(alert,))


def test_a_repeated_notification_costs_two_statements(store: Store) -> None:
    first = store.receive(_delivery("db-1"))
    seen = _statements(store)
    again = store.receive(_delivery("db-1"))
    assert again.duplicate_of == first.delivery
    assert len(seen) == 3, seen  # BEGIN; raw body + dedup key + the first's id in one; the duplicate's mark


def test_a_new_alert_is_written_once_with_its_outcome_and_its_run(database: str) -> None:
    """A new alert's outcome is decided as its row is written: one insert holds its action
    and run and makes the once_within lookup; nothing reads it back or updates it; on
    PostgreSQL its run is queued by the same statement (the delivery: three round trips)."""
    from dataclasses import replace

    store = Store.open(database, patience=5)
    try:
        seen: list[str] = []
        event.listen(store.engine, "before_cursor_execute", lambda c, cur, statement, *a: seen.append(statement))
        delivery = _delivery("db-3")
        throttled = replace(delivery.alerts[0], label_key="disk-db-3", once_within=60.0)
        outcome = store.receive(replace(delivery, alerts=(throttled,))).alerts[0]
        assert outcome.action == "queued" and outcome.run_id is not None
        if database.startswith("postgresql"):
            assert len(seen) == 3 and seen[0] == "BEGIN", seen
            assert "INSERT INTO alerts" in seen[2] and "INSERT INTO runs" in seen[2], seen
        else:
            inserts = [" ".join(s.split()[:3]) for s in seen if s.startswith("INSERT")]
            assert not [s for s in seen if s.startswith(("SELECT", "UPDATE"))], seen
            assert [i for i in inserts if i.endswith(("alerts", "runs"))] == ["INSERT INTO alerts", "INSERT INTO runs"]
        alert = store.alerts()[0]
        run = store.run(outcome.run_id)
        assert (alert.run_id, alert.action) == (outcome.run_id, outcome.detail) and run is not None
        assert (run.status, run.runbook, run.file) == ("queued", "disk-full", "/rb/disk-full.yaml")
    finally:
        store.close()


def test_a_throttled_alert_takes_the_earlier_run_and_queues_none(database: str) -> None:
    from dataclasses import replace

    store = Store.open(database, patience=5)
    try:
        first = _delivery("db-4")
        again = replace(first, dedup_key="dedup-db-4-again",
                        alerts=(replace(first.alerts[0], occurrence="occ-db-4-again"),))
        throttled = [replace(d, alerts=(replace(d.alerts[0], label_key="disk-db-4", once_within=60.0),))
                     for d in (first, again)]
        queued = store.receive(throttled[0]).alerts[0]
        outcome = store.receive(throttled[1]).alerts[0]
        assert outcome.action == "throttled" and outcome.run_id == queued.run_id
        assert outcome.detail == (f"route disk started run {queued.run_id} for the same labels within once_within "
                                  "(60s): no run")
        assert [a.action for a in store.alerts()] == [outcome.detail, queued.detail]
        assert [r.id for r in store.runs()] == [queued.run_id]
    finally:
        store.close()


def test_a_key_taken_while_the_statement_waits_is_looked_up_again(store: Store) -> None:
    """The first delivery's lookup sees the key as it was when the statement began: a key
    that another transaction commits while this one waits on it is read afresh (or, if the
    receive began after the commit, found at once: the answer is the same)."""
    import threading

    from sqlalchemy import insert

    from engine.service.store import tables

    holder = store.engine.connect()
    holder.begin()
    holder.execute(insert(tables.delivery_keys).values(key="dedup-db-2", delivery_id=4242))  # not committed yet
    answer: list[Any] = []
    waiting = threading.Thread(target=lambda: answer.append(store.receive(_delivery("db-2"))))
    waiting.start()
    waiting.join(1.0)  # the receive waits on the uncommitted key
    holder.commit()
    holder.close()
    waiting.join(60)
    assert answer and answer[0].duplicate_of == 4242
