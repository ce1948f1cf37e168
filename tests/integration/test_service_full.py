"""The database full: the store's files on a real, tiny filesystem (a tmpfs mounted for the
test) that fills up, under a real `runbook serve`. SQLite keeps its file there; PostgreSQL
a tablespace the store's database lives in. Intake answers 503 while nothing can be written
(Alertmanager retries a 5xx), nothing is half-written (every delivery the service took has
its run, no run is without its delivery, the store reads back whole), and once there is
room again the same notification is taken whole."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hookkit import alertmanager, am_alert, bearer, encode, post, serving, stop, write_service
from postgres import PgCluster, wait_for

from engine.service.store import NewRun, Store
from engine.service.worker import Worker, WorkerOptions

pytestmark = pytest.mark.integration


@contextmanager
def tiny_filesystem(size: str, owner: str | None = None) -> Iterator[Path]:
    """A tmpfs of `size` mounted on a new directory (as root), unmounted after."""
    place = Path(tempfile.mkdtemp(prefix="runbook-full-"))
    options = f"size={size},mode=0700"
    if owner is not None:
        entry = pwd.getpwnam(owner)
        options += f",uid={entry.pw_uid},gid={entry.pw_gid}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(place)], check=True, capture_output=True)
    try:
        yield place
    finally:
        subprocess.run(["umount", "-l", str(place)], check=False, capture_output=True)
        place.rmdir()


def fill(place: Path) -> Path:
    """Take every byte left on the filesystem; the file that holds them."""
    filler = place / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    os.chown(filler, place.stat().st_uid, place.stat().st_gid)
    return filler


def _alert(n: int) -> bytes:
    """A notification of its own alert, with a large annotation (so the store needs new pages)."""
    alert = am_alert(f"db-{n}")
    alert["annotations"]["description"] = f"{n}:" + "x" * 200_000
    return encode(alertmanager(alert, group_key=f'{{}}:{{alertname="DiskFull",n="{n}"}}'))


def _post_until_refused(base: str, first: int) -> tuple[list[int], int, dict[str, Any]]:
    """Post new notifications until one is refused; the accepted numbers, the refused one, its answer."""
    accepted = []
    for n in range(first, first + 200):
        status, answer = post(f"{base}/hooks/am", _alert(n), bearer())
        if status == 503:
            return accepted, n, answer
        assert status == 202, (status, answer)
        accepted.append(n)
    raise AssertionError("the full filesystem never refused a delivery")


def _consistent(database: str, accepted: int) -> None:
    """Each delivery taken has its run, and each run its delivery; the store reads back whole."""
    store = Store.open(database)
    try:
        assert store.deliveries() == {"accepted": accepted}
        runs = store.runs(limit=1000)
        assert len(runs) == accepted and all(r.status == "queued" for r in runs)
        assert {r.alert["labels"]["instance"] for r in runs if r.alert} == {f"db-{n}" for n in range(accepted)}
        assert {a.run_id for a in store.alerts(limit=1000)} == {r.id for r in runs}
    finally:
        store.close()


def _fills_and_recovers(base: str, place: Path, database: str) -> None:
    status, answer = post(f"{base}/hooks/am", _alert(0), bearer())
    assert status == 202 and answer["alerts"][0]["action"] == "queued", answer
    filler = fill(place)
    accepted, refused, answer = _post_until_refused(base, 1)
    assert "the database is full" in answer["error"], answer
    _consistent(database, 1 + len(accepted))
    filler.unlink()  # room again: Alertmanager's retry of the refused notification is taken whole
    status, answer = post(f"{base}/hooks/am", _alert(refused), bearer())
    assert status == 202 and answer["alerts"][0]["action"] == "queued", answer
    _consistent(database, 2 + len(accepted))  # (refused is the next after the accepted ones)


def test_sqlite_on_a_full_filesystem_answers_503_and_recovers(tmp_path: Path) -> None:
    config, home = write_service(tmp_path), tmp_path / "home"
    with tiny_filesystem("3m") as place:
        database = f"sqlite:///{place}/service.db"
        with serving(config, home, "--database", database, "--no-workers") as (base, proc):
            _fills_and_recovers(base, place, database)
            log = stop(proc, home)
    assert "the database is full" in log and "Traceback" not in log


def test_postgresql_with_a_full_tablespace_answers_503_and_recovers(tmp_path: Path, postgres: PgCluster) -> None:
    config, home = write_service(tmp_path), tmp_path / "home"
    with tiny_filesystem("24m", owner="postgres") as place:
        postgres.sql(f"CREATE TABLESPACE tiny LOCATION '{place}'")
        try:
            postgres.sql("CREATE DATABASE full_store TABLESPACE tiny")
            database = postgres.url("full_store")
            with serving(config, home, "--database", database, "--no-workers") as (base, proc):
                _fills_and_recovers(base, place, database)
                log = stop(proc, home)
        finally:
            postgres.sql("DROP DATABASE IF EXISTS full_store WITH (FORCE)")
            postgres.sql("DROP TABLESPACE IF EXISTS tiny")
    assert "the database is full" in log and "Traceback" not in log


# `long` waits for the test to fill the disk (it creates `started`, then waits for `go`), so
# the store fails during `long`, which may be run again, never during `after`, which may not:
# a run stopped in `after` rightly waits for a person on its way back (an earlier version of
# this test filled the disk after `sleep 2`, and a slow machine reached `after` first). Its
# output, 600 kB that no compression shrinks, is more than any free space in the tables.
RUNBOOK = """\
kind: runbook
version: 1
id: writes
title: Writes
remediation:
  - id: long
    idempotent: true
    run: "touch {started}; until [ -e {go} ]; do sleep 0.05; done; head -c 450000 /dev/urandom | base64"
  - id: after
    run: "seq 1 20000"
"""


@contextmanager
def _full_store(kind: str, postgres: Any) -> Iterator[tuple[Path, str]]:
    """A store on a tiny filesystem: SQLite's file, or a PostgreSQL database in a tablespace there."""
    if kind == "sqlite":
        with tiny_filesystem("3m") as place:
            yield place, f"sqlite:///{place}/service.db"
        return
    with tiny_filesystem("24m", owner="postgres") as place:
        postgres.sql(f"CREATE TABLESPACE tiny_runs LOCATION '{place}'")
        try:
            postgres.sql("CREATE DATABASE full_runs TABLESPACE tiny_runs")
            yield place, postgres.url("full_runs")
        finally:
            postgres.sql("DROP DATABASE IF EXISTS full_runs WITH (FORCE)")
            postgres.sql("DROP TABLESPACE IF EXISTS tiny_runs")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_run_whose_journal_cannot_be_written_goes_on_once_there_is_room(
        tmp_path: Path, kind: str, request: pytest.FixtureRequest) -> None:
    """The disk fills during a step: the worker stops the run (nothing torn: the journal is
    the records the store took), and once there is room hands it back to the queue; it
    goes on from its journal on the same worker (no other is there to take it over)."""
    started, go = tmp_path / "started", tmp_path / "go"
    (tmp_path / "writes.yaml").write_text(RUNBOOK.format(started=started, go=go), encoding="utf-8")
    postgres = request.getfixturevalue("postgres") if kind == "postgresql" else None
    with _full_store(kind, postgres) as (place, database):
        store = Store.open(database, patience=3)
        run_id = store.enqueue(NewRun("writes", str(tmp_path / "writes.yaml"), {})).id
        worker = Worker(store, WorkerOptions(slots=1, lease=3.0, poll=0.2, scratch=tmp_path / "scratch")).start()
        try:
            wait_for(started.exists, 60, "step long to start")
            filler = fill(place)
            go.touch()
            wait_for(lambda: any(what.startswith("lost") for _, what in worker.done), 60, "the run to stop")
            filler.unlink()
            wait_for(lambda: (r := store.run(run_id)) is not None and r.status == "finished", 90, "the run to end",
                     state=lambda: store.run(run_id))
        finally:
            worker.stop()
        run = store.run(run_id)
        records = [json.loads(line) for line in store.records(run_id)]
        store.close()
    assert run is not None and run.outcome == "resolved", run
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))  # gapless: nothing half-written
    assert [r["event"] for r in records].count("run.finished") == 1
    assert [r["step"] for r in records if r["event"] == "step.finished" and r["status"] == "ok"] == ["long", "after"]
