"""`make demo`'s service part (demo/service.py) keeps working: a real `runbook serve`, a real
Alertmanager-shaped webhook, a worker removing a real stale lock file."""

from __future__ import annotations

import subprocess
import sys

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
