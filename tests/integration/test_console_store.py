"""The console's accounts in the store, on SQLite and on PostgreSQL: passwords kept as
scrypt hashes, sessions kept as hashes of their cookies, expiring, ended by a new password
and by signing out, each sign-in and failure on the audit trail."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import select

from engine.service.store import PersonRow
from engine.service.store.tables import audit, passwords, sessions

pytestmark = pytest.mark.integration


def _rows(store: Any, table: Any) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(table)))


def test_password_and_session_lifecycle(store: Any) -> None:
    store.set_people([PersonRow("alice", ("dba",)), PersonRow("bob")])
    assert store.set_password("alice", "correct horse battery")
    assert not store.set_password("nobody", "correct horse battery")
    kept = _rows(store, passwords)[0].hash
    assert kept.startswith("scrypt$32768$8$1$") and "correct horse" not in kept
    assert store.sign_in("alice", "wrong password!", 60, "10.0.0.7") is None
    assert store.sign_in("bob", "correct horse battery", 60) is None  # bob has no password
    cookie = store.sign_in("alice", "correct horse battery", 60, "10.0.0.7")
    seen = store.session(cookie)
    assert seen.person.name == "alice" and seen.person.roles == ("dba",) and len(seen.csrf) >= 40
    assert cookie not in {r.hash for r in _rows(store, sessions)}  # only its hash is kept
    store.sign_out(cookie, "10.0.0.7")
    assert store.session(cookie) is None
    trail = [(r.who, r.what) for r in _rows(store, audit) if r.what.startswith(("login", "logout"))]
    assert trail == [("alice", "login.failed"), ("bob", "login.failed"), ("alice", "login"), ("alice", "logout")]


def test_a_session_expires_and_a_new_password_ends_it(store: Any) -> None:
    store.set_people([PersonRow("alice")])
    store.set_password("alice", "correct horse battery")
    short = store.sign_in("alice", "correct horse battery", 1.0)
    long = store.sign_in("alice", "correct horse battery", 3600)
    time.sleep(1.5)
    assert store.session(short) is None and store.session(long) is not None
    store.set_password("alice", "another long password")
    assert store.session(long) is None
    assert store.sign_in("alice", "correct horse battery", 60) is None


def test_a_person_removed_from_the_config_cannot_sign_in(store: Any) -> None:
    store.set_people([PersonRow("alice")])
    store.set_password("alice", "correct horse battery")
    cookie = store.sign_in("alice", "correct horse battery", 3600)
    store.set_people([PersonRow("bob")])
    assert store.session(cookie) is None
    assert store.sign_in("alice", "correct horse battery", 60) is None


def test_failed_sign_ins_are_counted_by_account_and_by_address(store: Any) -> None:
    store.set_people([PersonRow("alice"), PersonRow("bob")])
    store.set_password("alice", "correct horse battery")
    for client in ("10.0.0.7", "10.0.0.7", "10.0.0.8"):
        assert store.sign_in("alice", "wrong password!", 60, client) is None
    assert store.sign_in("bob", "wrong password!", 60, "10.0.0.7") is None
    assert store.sign_in("alice", "correct horse battery", 60, "10.0.0.7") is not None  # not a failure
    ages = store.failed_sign_ins(900, who="alice")
    assert len(ages) == 3 and all(0 <= a < 900 for a in ages) and ages == sorted(ages)
    assert len(store.failed_sign_ins(900, address="10.0.0.7")) == 3
    assert len(store.failed_sign_ins(900, address="10.0.0.8", who="alice")) == 1
    assert len(store.failed_sign_ins(900, who="alice", limit=2)) == 2
    time.sleep(1.2)
    assert store.failed_sign_ins(1.0, who="alice") == []  # older than the window


def test_a_run_page_reads_only_the_records_written_since_it_last_looked(store: Any) -> None:
    """views.records_of keeps the parsed journal of the runs last shown and reads only
    what came after: the same records, in order, as a whole read; a damaged line dropped."""
    from engine.service import views
    from engine.service.store import NewRun

    run_id = store.enqueue(NewRun("demo", "/rb/demo.yaml")).id
    store.claim("w1", {}, 60)
    line = '{{"seq": {n}, "t": "2026-12-05T00:00:0{n}.000Z", "elapsed": 0.0, "event": "note", "text": "n{n}"}}'
    store.append(run_id, "w1", [(n, "note", line.format(n=n)) for n in (1, 2)])
    assert [r["text"] for r in views.records_of(store, run_id)] == ["n1", "n2"]
    store.append(run_id, "w1", [(3, "note", "{torn"), (4, "note", line.format(n=4))])
    seen = views.records_of(store, run_id)
    assert [r["text"] for r in seen] == ["n1", "n2", "n4"]
    assert views.records_of(store, run_id) == seen
    store.append(run_id, "w1", [(5, "note", line.format(n=5))])
    assert [r["text"] for r in views.records_of(store, run_id)] == ["n1", "n2", "n4", "n5"]
