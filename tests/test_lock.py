"""engine.run.lock: one live run per runbook and set of hosts; a dead holder's lock is taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from engine.run.lock import LockError, LockHeld, RunLock, lock_dir


def test_a_second_lock_on_the_same_runbook_and_hosts_fails_naming_the_holder(tmp_path: Path) -> None:
    with RunLock(tmp_path, "disk-full", ["db-1"]) as first:
        first.acquire("run-A", started_at=1_767_225_600.0)
        with pytest.raises(LockHeld) as info:
            RunLock(tmp_path, "disk-full", ["db-1"]).acquire("run-B")
    message = str(info.value)
    assert message.startswith("another run of this runbook on db-1 is in progress: run run-A")
    assert f"(pid {os.getpid()} on " in message and "started 2026-01-01T00:00:00.000Z" in message
    assert info.value.exit_code == 4


def test_the_host_order_and_duplicates_do_not_matter(tmp_path: Path) -> None:
    with RunLock(tmp_path, "rb", ["b", "a", "a"]) as first:
        first.acquire("run-A")
        with pytest.raises(LockHeld, match="on a, b is in progress"):
            RunLock(tmp_path, "rb", ["a", "b"]).acquire("run-B")


def test_the_lock_file_is_named_by_the_sha256_of_its_hosts_as_every_version_names_it(tmp_path: Path) -> None:
    # Runs of engines of other versions must meet at the same file.
    import hashlib

    digest = hashlib.sha256(b"a\nb").hexdigest()[:12]
    assert RunLock(tmp_path, "rb", ["b", "a"]).path == tmp_path / f"rb-{digest}.lock"


def test_other_hosts_or_another_runbook_do_not_conflict(tmp_path: Path) -> None:
    with RunLock(tmp_path, "rb", ["db-1"]) as first:
        first.acquire("run-A")
        with RunLock(tmp_path, "rb", ["db-2"]) as other_host, RunLock(tmp_path, "other", ["db-1"]) as other_book:
            other_host.acquire("run-B")
            other_book.acquire("run-C")


def test_a_released_lock_can_be_taken_again_and_is_not_a_takeover(tmp_path: Path) -> None:
    lock = RunLock(tmp_path, "rb", [])
    lock.acquire("run-A")
    lock.release()
    again = RunLock(tmp_path, "rb", [])
    again.acquire("run-B")
    assert again.took_over is None
    assert json.loads(again.path.read_text())["run_id"] == "run-B"
    again.release()


def test_a_runbook_without_hosts_locks_localhost(tmp_path: Path) -> None:
    with RunLock(tmp_path, "rb", []) as lock:
        lock.acquire("run-A")
        with pytest.raises(LockHeld, match="on localhost"):
            RunLock(tmp_path, "rb", ["localhost"]).acquire("run-B")


def test_the_lock_of_a_killed_holder_is_taken_over(tmp_path: Path) -> None:
    """The kernel drops a flock when its process dies: the lock is stale, not held."""
    script = textwrap.dedent(f"""\
        import sys, time
        sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
        from engine.run.lock import RunLock
        RunLock({str(tmp_path)!r}, "rb", ["db-1"]).acquire("run-dead")
        print("locked", flush=True)
        time.sleep(60)
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with pytest.raises(LockHeld, match="run run-dead"):
            RunLock(tmp_path, "rb", ["db-1"]).acquire("run-B")
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        with RunLock(tmp_path, "rb", ["db-1"]) as lock:
            lock.acquire("run-B")
            assert lock.took_over is not None and lock.took_over["run_id"] == "run-dead"
            assert lock.took_over["pid"] == holder.pid
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_the_lock_file_names_the_run_its_pid_and_hosts(tmp_path: Path) -> None:
    before = time.time()
    with RunLock(tmp_path, "rb", ["db-1"]) as lock:
        lock.acquire("run-A")
        info = json.loads(lock.path.read_text())
    assert info["run_id"] == "run-A" and info["pid"] == os.getpid() and info["hosts"] == ["db-1"]
    assert info["started_at"] >= before


def test_a_lock_that_cannot_be_created_is_an_engine_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(LockError, match=r"cannot take the run lock .*Not a directory") as info:
        RunLock(tmp_path / "file" / "locks", "rb", []).acquire("run-A")
    assert info.value.exit_code == 3


def test_locks_live_in_one_directory_for_the_machine(tmp_path: Path) -> None:
    """Not beside a run's journal: $RUNBOOK_LOCK_DIR, else /run/lock/runbook (or the temp dir)."""
    assert lock_dir({"RUNBOOK_LOCK_DIR": str(tmp_path)}) == tmp_path
    default = lock_dir({"RUNBOOK_HOME": str(tmp_path / "home")})
    assert default in (Path("/run/lock/runbook"), Path(tempfile.gettempdir()) / "runbook-locks")
