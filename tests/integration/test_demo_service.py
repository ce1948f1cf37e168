"""`make demo`'s service part (demo/service.py) keeps working: a real `runbook serve`, a real
Alertmanager-shaped webhook, a worker removing a real stale lock file."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
from support import ROOT


def test_the_service_demo_resolves_the_stale_lock_and_ignores_the_duplicate() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "demo" / "service.py")], capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(sent): 202" in done.stdout and '"action":"queued"' in done.stdout
    assert 'sent again, as an HA pair of Alertmanagers does): 200 {"delivery":2,"duplicate_of":1' in done.stdout
    assert ": resolved; the lock file is gone" in done.stdout
    assert "outcome **resolved**" in done.stdout and "drained and exited 0" in done.stdout
    assert "Traceback" not in done.stderr


def test_the_demo_sends_the_same_bytes_again_when_a_second_passes_between_its_posts(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The alert's startsAt (to the second) is part of the dedup key: the demo made the
    payload again for its second post, and when a second passed between them (a loaded
    machine) the service rightly saw a new notification and the demo test failed."""
    spec = importlib.util.spec_from_file_location("demo_service", ROOT / "demo" / "service.py")
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    stamps = iter(f"2026-01-01T00:00:{s:02d}Z" for s in range(60))  # a second later at every call
    monkeypatch.setattr(demo, "three_hours_ago", lambda: next(stamps))
    assert demo.main() == 0
    assert 'sent again, as an HA pair of Alertmanagers does): 200 {"delivery":2,"duplicate_of":1' \
        in capsys.readouterr().out
