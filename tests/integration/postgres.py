"""A real PostgreSQL (Debian's postgresql package) for the service tests and benchmarks:
a throwaway cluster made with initdb in a temporary directory, served on a free loopback
port, stopped and removed after.

initdb and the server refuse to run as root: as root they run as the `postgres` user the
package creates (the directory is handed to it); otherwise as ourselves. Trust
authentication on 127.0.0.1 only. Plain Python, no pytest: bench/service.py uses it too.
See /work/shared/notes/real-components.md.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "runbook"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries: the service tests cannot run, and must fail."""


def bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise PostgresUnavailable("PostgreSQL is not installed: `make test` installs it as root "
                                  "(apt-get install -y postgresql)")
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@dataclass
class PgCluster:
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @classmethod
    def create(cls) -> PgCluster:
        root = Path(tempfile.mkdtemp(prefix="runbook-pg-"))
        cluster = cls(root, free_port())
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(root, entry.pw_uid, entry.pw_gid)
        os.chmod(root, 0o755)
        subprocess.run(_as_owner([str(bindir() / "initdb"), "-D", str(cluster.data), "-A", "trust", "-U", SUPERUSER,
                                  "--no-sync", "-E", "UTF8", "--locale", "C"]),
                       check=True, capture_output=True, text=True)
        with open(cluster.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\nfsync = on\nmax_connections = 200\nshared_buffers = 64MB\n")
        return cluster

    def _ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        return subprocess.run(_as_owner([str(bindir() / "pg_ctl"), "-D", str(self.data), "-o", options,
                                         "-l", str(self.root / "server.log"), "-w", "-t", "60", *args]),
                              check=True, capture_output=True, text=True)

    def start(self) -> PgCluster:
        self._ctl("start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "stop")

    def restart(self) -> None:
        """Stop (fast: every session is cut) and start again on the same port."""
        self.stop()
        self.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> str:
        result = subprocess.run([str(bindir() / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER,
                                 "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", statement],
                                check=True, capture_output=True, text=True)
        return result.stdout.strip()

    def new_database(self, name: str) -> str:
        """A fresh, empty database; its URL."""
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)


def wait_for(predicate: object, timeout: float, what: str, poll: float = 0.05,
             state: Callable[[], object] | None = None) -> None:
    """Poll `predicate()` until true; AssertionError naming `what` after `timeout` s, and
    what `state()` says then (so a timeout says where things stood, not only that they stalled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(poll)
    seen = f"; then: {state()}" if state is not None else ""
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{seen}")
