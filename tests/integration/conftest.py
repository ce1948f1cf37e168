"""Fixtures of the integration tests: a real OpenSSH server on loopback (see sshd.py), a
workspace to run `runbook` in, and a marker that finds (and kills) leftover processes
(see livekit.py).

A missing /usr/sbin/sshd fails these tests (never a skip): `make test` installs
openssh-server when run as root.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from livekit import Workspace, kill_leftovers, sleep_marker
from postgres import PgCluster
from sshd import Cluster, addresses

SHARED_HOSTS = 6


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """Six hosts (127.0.0.2-7) served by one sshd, with a known_hosts file naming them all.
    Tests must not break it: faults get their own cluster (`make_cluster`)."""
    c = Cluster.create(addresses(SHARED_HOSTS)).start()
    c.known_hosts()
    try:
        yield c
    finally:
        c.destroy()


@pytest.fixture
def make_cluster() -> Iterator[Callable[..., Cluster]]:
    """Private clusters for tests that stop, kill or re-key their servers."""
    made: list[Cluster] = []

    def make(count: int = 1, first: int = 2, block: int = 1, **kwargs: Any) -> Cluster:
        hosts = [f"127.0.{block}.{n}" for n in range(first, first + count)]
        c = Cluster.create(hosts, **kwargs).start()
        c.known_hosts()
        made.append(c)
        return c

    yield make
    for c in made:
        c.destroy()


@pytest.fixture
def ssh_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cluster: Cluster) -> Path:
    """No trace of the real ~/.ssh: HOME is a temporary directory, no agent, and the
    project known_hosts is the cluster's."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("RUNBOOK_HOME", str(tmp_path / ".runbook"))
    monkeypatch.setenv("RUNBOOK_KNOWN_HOSTS", str(cluster.directory / "known_hosts"))
    monkeypatch.delenv("RUNBOOK_INVENTORY", raising=False)
    monkeypatch.delenv("RUNBOOK_SSH_CONFIG", raising=False)
    return home


@dataclass
class LiveRun:
    result: Any
    run_dir: Path
    console: str
    services: Any = None
    records: list[dict[str, Any]] = field(default_factory=list)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("event") == name]

    def step(self, step_id: str) -> dict[str, Any]:
        return next(r for r in self.events("step.finished") if r["step"] == step_id)


@pytest.fixture
def live(tmp_path: Path, ssh_env: Path) -> Callable[..., LiveRun]:
    """Run a runbook (YAML text) for real, in this process: journal, console, SSH."""
    from engine.language.validation import load_runbook
    from engine.run.inputs import resolve
    from engine.run.journal import read_journal
    from engine.run.session import LiveOptions, run_live

    counter = iter(range(1000))

    def run(text: str, *, inputs: dict[str, Any] | None = None, **options: Any) -> LiveRun:
        path = tmp_path / f"runbook-{next(counter)}.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        runbook = load_runbook(path)
        resolved = resolve(runbook, from_file=inputs or {}, environ={})
        stream = io.StringIO()
        seen: dict[str, Any] = {}
        opts = LiveOptions(runs_dir=tmp_path / "runs", stream=stream, install_signals=False, yes=True,
                           extra_services=lambda s: seen.setdefault("services", s), **options)
        result, run_dir = run_live(runbook, resolved.values, opts, secrets=tuple(resolved.secrets))
        return LiveRun(result, run_dir, stream.getvalue(), seen.get("services"),
                       read_journal(run_dir).records)

    return run


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


@pytest.fixture
def marker() -> Iterator[str]:
    value = sleep_marker()
    yield value
    kill_leftovers(value)


# -- the service's databases (see postgres.py) ---------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[PgCluster]:
    """One real PostgreSQL cluster for the session; each test gets a database of its own."""
    c = PgCluster.create().start()
    try:
        yield c
    finally:
        c.destroy()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty store's URL: the same test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/service.db"
    cluster: PgCluster = request.getfixturevalue("postgres")
    return cluster.new_database(f"t{abs(hash(request.node.nodeid)):x}")


@pytest.fixture
def store(database: str) -> Iterator[Any]:
    """An open store on `database` (SQLite, then PostgreSQL), closed after."""
    from engine.service.store import Store

    s = Store.open(database, patience=20)
    yield s
    s.close()
