"""What goes wrong with the store, in words a person can act on: a bad --database is a
usage error, a transient failure is retried (and the wait is said once, not hidden),
a lasting one names its cause."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from click.testing import CliRunner
from sqlalchemy.exc import OperationalError

from engine.cli.commands import cli
from engine.service.store import StoreError, StoreUnavailable
from engine.service.store.failures import retrying


def _failing(message: str, times: int) -> Callable[[], str]:
    calls = {"n": 0}

    def action() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise OperationalError("INSERT ...", {}, Exception(message))
        return "done"
    return action


def test_a_transient_failure_is_retried_and_the_wait_said_once(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="runbook.store"):
        assert retrying(_failing("database is locked", 3), "queue the run", patience=60, sleep=lambda _: None) == "done"
    assert [r.getMessage() for r in caplog.records] == [
        "the store cannot queue the run: database is locked: trying again for up to 60 s"]


def test_a_store_that_stays_away_is_unavailable_after_its_patience() -> None:
    now = {"t": 0.0}

    def sleep(seconds: float) -> None:
        now["t"] += seconds

    with pytest.raises(StoreUnavailable, match=r"cannot queue the run: database is locked \(still failing after 5 s\)"):
        retrying(_failing("database is locked", 10_000), "queue the run", patience=5, sleep=sleep,
                 clock=lambda: now["t"])


def test_a_lasting_failure_names_its_cause_at_once() -> None:
    with pytest.raises(StoreError, match="the store cannot queue the run: the database is full"):
        retrying(_failing("database or disk is full", 1), "queue the run", patience=60, sleep=lambda _: None)


@pytest.mark.parametrize("url", ["mysql://x/y", "postgresql+asyncpg://x/y", "service.db"])
def test_a_database_url_we_cannot_use_is_a_usage_error(url: str) -> None:
    result = CliRunner().invoke(cli, ["worker", "--database", url])
    assert result.exit_code == 2, result.output
    assert "expected postgresql://USER@HOST:PORT/NAME or sqlite:///PATH" in result.output
