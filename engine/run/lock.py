"""Run locks: two live runs of one runbook on the same hosts never run at once.

The lock is a file held with flock(). The kernel drops a flock when its process dies,
so a lock left by a crashed run is detected as stale and taken over, while the file
still says which run held it.

Locks live in one directory for the whole machine (`lock_dir`), never beside a run's
journal: two runs of one runbook with different `--runs-dir`, homes or working
directories still exclude each other.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.executors.timestamps import iso

from .digest import sha256  # CPython's own: hashlib would load OpenSSL first (2 ms)


class LockHeld(EngineError):
    """Another live run holds the lock; the message names it."""

    exit_code = 4


class LockError(EngineError):
    """The lock file cannot be created (an unwritable or misplaced runbook home)."""

    exit_code = 3


def lock_dir(environ: dict[str, str] | None = None) -> Path:
    """Where run locks live on this machine: $RUNBOOK_LOCK_DIR, else /run/lock/runbook (the
    system's place for lock files, shared by every user), else runbook-locks in the
    temporary directory."""
    env = os.environ if environ is None else environ
    if env.get("RUNBOOK_LOCK_DIR"):
        return Path(env["RUNBOOK_LOCK_DIR"])
    system = Path("/run/lock")
    if system.is_dir() and os.access(system, os.W_OK | os.X_OK):
        return system / "runbook"
    import tempfile

    return Path(tempfile.gettempdir()) / "runbook-locks"


def _shared_dir(directory: Path) -> None:
    """Create the lock directory so every user's runs can lock in it (sticky, as /tmp)."""
    if directory.is_dir():
        return
    directory.mkdir(parents=True, exist_ok=True)
    if directory.parent in (Path("/run/lock"), Path("/tmp")) or directory.name == "runbook-locks":
        try:
            os.chmod(directory, 0o1777)
        except OSError:
            pass  # another user made it first: theirs is shared already


class RunLock:
    def __init__(self, directory: str | os.PathLike[str], runbook_id: str, hosts: Iterable[str]) -> None:
        names = sorted(set(hosts)) or ["localhost"]
        digest = sha256("\n".join(names).encode()).hexdigest()[:12]
        self.path = Path(directory) / f"{runbook_id}-{digest}.lock"
        self.hosts = names
        self._fd: int | None = None
        self.took_over: dict[str, Any] | None = None

    def acquire(self, run_id: str, started_at: float | None = None) -> None:
        try:
            _shared_dir(self.path.parent)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LockError(f"cannot take the run lock {self.path}: {exc.strerror or exc} "
                            "(set RUNBOOK_LOCK_DIR to a directory every operator can write)") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise LockHeld(_held_message(holder, self.hosts)) from None
        previous = _read(fd)
        self.took_over = previous or None  # a file but no flock: its run died
        # uname's node name is what gethostname() returns, without importing socket at start-up
        info = {"run_id": run_id, "pid": os.getpid(), "host": os.uname().nodename,
                "started_at": started_at or time.time(), "hosts": self.hosts}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except OSError as exc:  # a full disk: say which file, as for the journal
            os.close(fd)
            raise LockError(f"cannot write the run lock {self.path}: {exc.strerror or exc}") from None
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 65536, 0)
        info = json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _held_message(holder: dict[str, Any], hosts: list[str]) -> str:
    started = holder.get("started_at")
    when = iso(started) if isinstance(started, (int, float)) else "unknown time"
    return (
        f"another run of this runbook on {', '.join(hosts)} is in progress: "
        f"run {holder.get('run_id', '?')} (pid {holder.get('pid', '?')} on "
        f"{holder.get('host', '?')}, started {when})"
    )
