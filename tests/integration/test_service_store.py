"""The store on a real SQLite file and a real PostgreSQL: migrations, runs, leases (no run
is ever claimed twice, an expired lease is taken over, the old owner is fenced off),
the journal's records and logs exported byte for byte, questions that requeue a run."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from postgres import PgCluster
from sqlalchemy import inspect, text

from engine.errors import UsageError
from engine.service.store import (
    LeaseLost,
    LogChunk,
    NewQuestion,
    NewRun,
    RunQuery,
    Store,
    StoreError,
    migrations,
    tables,
)
from engine.service.store.database import connect, database_url


def _new(store: Store, n: int = 1, **kw: object) -> list[str]:
    return [store.enqueue(NewRun("demo", "/rb/demo.yaml", {"n": i}, **kw)).id for i in range(n)]  # type: ignore[arg-type]


@pytest.fixture
def store(database: str) -> Store:
    s = Store.open(database, patience=5)
    yield s
    s.close()


def test_migrations_make_exactly_the_tables_the_code_queries(database: str) -> None:
    """An empty database is migrated to the latest version; its tables and columns are
    those of tables.py, and opening it again applies nothing."""
    Store.open(database).close()
    engine = connect(database_url(database))
    with engine.connect() as conn:
        assert migrations.current_version(conn) == migrations.LATEST
        found = {t: {c["name"] for c in inspect(conn).get_columns(t)} for t in inspect(conn).get_table_names()}
    expected = {t.name: {c.name for c in t.columns} for t in tables.metadata.sorted_tables}
    assert found == expected
    assert migrations.migrate(engine) == []
    engine.dispose()


def test_processes_starting_at_once_migrate_once(database: str) -> None:
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            Store.open(database).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    engine = connect(database_url(database))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM schema_version")).scalar_one() == migrations.LATEST
    engine.dispose()


def test_a_database_newer_than_the_engine_is_refused(database: str) -> None:
    Store.open(database).close()
    engine = connect(database_url(database))
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO schema_version VALUES (999, 'from the future', 0)"))
    engine.dispose()
    with pytest.raises(StoreError, match="schema is version 999, newer than this engine knows"):
        Store.open(database)


def test_runs_stored_before_modes_existed_are_live(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Step 5 adds runs.mode to a database made by step 4, with a run in it: that run is
    live; a run queued after it keeps the mode it was given, and lists filter by it."""
    monkeypatch.setattr(migrations, "STEPS", migrations.STEPS[:4])
    monkeypatch.setattr(migrations, "LATEST", 4)
    engine = connect(database_url(database))
    assert migrations.migrate(engine) == [1, 2, 3, 4]
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO runs (id, runbook, file, inputs, secrets, answers, pool, origin, status, "
                          "claims, last_seq, created_at) VALUES ('old-1', 'demo', '/rb/demo.yaml', '{}', '[]', "
                          "'{}', '{}', 'alert', 'finished', 1, 9, 1.0)"))
    engine.dispose()
    monkeypatch.undo()
    store = Store.open(database, patience=5)
    try:
        old = store.run("old-1")
        assert old is not None and old.mode == "live" and old.to_dict()["mode"] == "live"
        drill = store.enqueue(NewRun("demo", "/rb/demo.yaml", mode="drill"))
        assert drill.mode == "drill"
        assert [r.id for r in store.find_runs(RunQuery(mode="drill"))] == [drill.id]
        assert [r.id for r in store.find_runs(RunQuery(mode="live"))] == ["old-1"]
    finally:
        store.close()
    with pytest.raises(UsageError, match="a run's mode is one of live, dry-run, drill, not 'rehearsal'"):
        NewRun("demo", "/rb/demo.yaml", mode="rehearsal")


def _writer_and_reader(database: str) -> tuple[Store, Store]:
    """A store to write with and one to read with: on PostgreSQL two (a reader is woken
    by another process's write through LISTEN/NOTIFY), on SQLite the same one."""
    writer = Store.open(database, patience=5)
    return writer, writer if database.startswith("sqlite") else Store.open(database, patience=5)


def _close(writer: Store, reader: Store) -> None:
    reader.close()
    if reader is not writer:
        writer.close()


def test_a_reader_of_the_journal_is_woken_by_a_write_not_a_poll(database: str) -> None:
    """A reader waiting on a run's journal wakes when a record is written: by this
    process's store, or (PostgreSQL) by another process's, through LISTEN/NOTIFY. The
    wait's timeout is far longer than the test: True means it was woken."""
    writer, reader = _writer_and_reader(database)
    [run_id] = _new(writer)
    writer.claim("w1", {}, 60)
    done = threading.Event()

    def write() -> None:  # until the reader has woken: its listener may start after a first write
        seq = 0
        while not done.is_set() and seq < 100:
            seq += 1
            writer.append(run_id, "w1", [(seq, "run.started", f'{{"seq":{seq}}}')])
            done.wait(0.3)

    async def read() -> bool:
        ticket = reader.journal_ticket(run_id)
        assert reader.records(run_id) == []
        threading.Thread(target=write).start()
        try:
            return await reader.wait_for_journal(run_id, ticket, 120)
        finally:
            done.set()

    try:
        assert asyncio.run(read()) is True
        assert reader.records(run_id)[0] == '{"seq":1}'
        ticket = reader.journal_ticket(run_id)
        writer.finish(run_id, "w1", "resolved")
        assert asyncio.run(reader.wait_for_journal(run_id, ticket, 120)) is True
    finally:
        _close(writer, reader)


def test_a_reader_of_a_waiting_run_is_woken_by_its_escalation_and_its_end(database: str) -> None:
    """A run parked for a person gets records with no worker holding it (an escalation
    fired while it waits, escalation.py) and may end there: both wake the readers of its
    journal (the console's live run page), as a worker's append does. Before, neither
    woke anybody: the page showed the escalation at its next poll."""
    writer, reader = _writer_and_reader(database)
    [run_id] = _new(writer)
    writer.claim("w1", {}, 60)
    writer.append(run_id, "w1", [(1, "run.started", '{"seq":1}')])
    writer.park(run_id, "w1", NewQuestion("restart", "interrupted", "run it again?"))
    done = threading.Event()

    def escalate() -> None:  # until the reader has woken: its listener may start after a first write
        seq = 1
        while not done.is_set() and seq < 100:
            assert writer.append_waiting(run_id, seq, [(seq + 1, "escalation", f'{{"seq":{seq + 1}}}')])
            seq += 1
            done.wait(0.3)

    async def read(start: bool) -> bool:
        ticket = reader.journal_ticket(run_id)
        if start:
            threading.Thread(target=escalate).start()
        try:
            return await reader.wait_for_journal(run_id, ticket, 20)
        finally:
            done.set()

    try:
        assert asyncio.run(read(start=True)) is True
        last = len(reader.records(run_id))
        ticket = reader.journal_ticket(run_id)
        threading.Timer(0.2, writer.end_waiting, (run_id, last, [(last + 1, "run.finished", "{}")],
                                                  "escalated", "handed to the dba team")).start()
        assert asyncio.run(reader.wait_for_journal(run_id, ticket, 20)) is True
        run = reader.run(run_id)
        assert run is not None and (run.status, run.outcome) == ("finished", "escalated")
    finally:
        _close(writer, reader)


def test_a_run_goes_from_queued_to_finished_through_one_lease(store: Store) -> None:
    [run_id] = _new(store, secrets=("n",))
    claim = store.claim("w1", {}, 30)
    assert claim is not None and claim.run.id == run_id and not claim.takeover
    assert claim.run.status == "running" and claim.run.lease_owner == "w1"
    assert store.claim("w2", {}, 30) is None  # nothing else queued
    assert store.heartbeat(run_id, "w1", 30)
    store.finish(run_id, "w1", "resolved")
    run = store.run(run_id)
    assert run is not None and (run.status, run.outcome, run.lease_owner) == ("finished", "resolved", None)
    assert run.inputs == {"n": "***"}  # a secret input is not kept once the run has ended


def test_no_run_is_claimed_twice_by_workers_racing(store: Store) -> None:
    ids = set(_new(store, 60))
    got: list[str] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (claim := store.claim(name, {}, 60)) is not None:
            with lock:
                got.append(claim.run.id)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(ids)


def test_a_worker_takes_only_runs_of_pools_it_is_in(store: Store) -> None:
    [eu] = _new(store, pool={"region": "eu"})
    [anywhere] = _new(store)
    claim = store.claim("us-1", {"region": "us"}, 30)
    assert claim is not None and claim.run.id == anywhere
    assert store.claim("us-1", {"region": "us"}, 30) is None
    claim = store.claim("eu-1", {"region": "eu", "zone": "a"}, 30)
    assert claim is not None and claim.run.id == eu


def test_an_expired_lease_is_taken_over_and_the_old_owner_is_fenced_off(store: Store) -> None:
    [run_id] = _new(store)
    store.claim("w1", {}, 0.2)
    store.append(run_id, "w1", [(1, "run.started", '{"seq":1}')])
    time.sleep(0.5)
    claim = store.claim("w2", {}, 30)
    assert claim is not None and claim.takeover and claim.previous_owner == "w1"
    assert not store.heartbeat(run_id, "w1", 30)
    with pytest.raises(LeaseLost):
        store.append(run_id, "w1", [(2, "phase.started", '{"seq":2}')])
    with pytest.raises(LeaseLost):
        store.finish(run_id, "w1", "resolved")
    assert store.records(run_id) == ['{"seq":1}']
    assert [a["what"] for a in store.audit_trail(run_id)] == ["lease.takeover"]


def test_the_journal_and_logs_export_as_a_cli_run_leaves_them(store: Store, tmp_path: Path) -> None:
    [run_id] = _new(store)
    store.claim("w1", {}, 30)
    lines = [(1, "run.started", '{"seq":1,"event":"run.started","é":"ü"}'), (2, "step.started", '{"seq":2}')]
    store.append(run_id, "w1", lines, [LogChunk("a.stdout.log", b"one\n\0two")])
    store.append(run_id, "w1", [(3, "step.finished", '{"seq":3}')], [LogChunk("a.stdout.log", b"\xff three\n")],
                 durable=True)
    store.append(run_id, "w1", lines[:1])  # a retry of a commit that went through: no duplicate, no error
    journal = store.export(run_id, tmp_path / "run")
    assert journal.read_bytes() == '{"seq":1,"event":"run.started","é":"ü"}\n{"seq":2}\n{"seq":3}\n'.encode()
    assert (tmp_path / "run" / "logs" / "a.stdout.log").read_bytes() == b"one\n\0two\xff three\n"
    with pytest.raises(StoreError, match="has no run nope"):
        store.export("nope", tmp_path / "x")


def test_a_run_waiting_for_a_person_goes_back_to_the_queue_once_answered(store: Store) -> None:
    [run_id] = _new(store)
    store.claim("w1", {}, 30)
    qid = store.park(run_id, "w1", NewQuestion("restart", "interrupted", "run it again?"))
    run = store.run(run_id)
    assert run is not None and run.status == "waiting" and run.lease_owner is None
    assert store.claim("w2", {}, 30) is None
    [question] = store.questions(run_id=run_id)
    assert (question.id, question.step, question.status) == (qid, "restart", "open")
    store.answer(qid, {"action": "rerun"}, "alice")
    with pytest.raises(UsageError, match="already answered"):
        store.answer(qid, {"action": "skip"}, "bob")
    claim = store.claim("w2", {}, 30)
    assert claim is not None and claim.run.id == run_id
    [answered] = store.questions(run_id=run_id, status="answered")
    assert answered.answer == {"action": "rerun"} and answered.answered_by == "alice"


def test_a_read_only_postgresql_is_a_clear_error_and_nothing_is_written(postgres: PgCluster) -> None:
    url = postgres.new_database("readonly_store")
    store = Store.open(url, patience=2)
    postgres.sql("ALTER DATABASE readonly_store SET default_transaction_read_only = on")
    store.engine.dispose()  # new sessions take the setting
    with pytest.raises(StoreError, match="the database is read-only"):
        store.enqueue(NewRun("demo", "/rb/demo.yaml"))
    assert store.runs() == []
    store.close()


def test_a_postgresql_restart_is_outlived_and_nothing_is_lost(postgres: PgCluster) -> None:
    """Connections the pool holds die with the server; the next write retries on a new one."""
    store = Store.open(postgres.new_database("restarted_store"), patience=30)
    before = store.enqueue(NewRun("demo", "/rb/demo.yaml")).id
    postgres.restart()
    after = store.enqueue(NewRun("demo", "/rb/demo.yaml")).id
    assert {r.id for r in store.runs()} == {before, after}
    store.close()
