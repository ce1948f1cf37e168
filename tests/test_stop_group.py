"""engine.executors.local.stop_group: a step's command is over only when nothing of it runs."""

from __future__ import annotations

import signal

import pytest

from engine.executors import local


def test_stop_group_returns_only_once_a_killed_group_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL is delivered asynchronously: a killed process may still run for a moment, and
    the step must not end (nor its test look for leftovers) before it is gone."""
    sent: list[int] = []
    alive_checks = iter([True] * 3 + [False])  # after SIGKILL: still running for three looks
    monkeypatch.setattr(local, "KILL_GRACE", 0.05)
    monkeypatch.setattr(local, "_signal_group", lambda pgid, sig: sent.append(sig) or True)

    def alive(pgid: int) -> bool:
        if signal.SIGKILL not in sent:
            return True
        return next(alive_checks)

    monkeypatch.setattr(local, "group_alive", alive)
    local.stop_group(4242)
    assert sent == [signal.SIGTERM, signal.SIGKILL]
    assert next(alive_checks, "drained") == "drained"  # it kept looking until the group was gone
