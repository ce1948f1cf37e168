"""A real OpenSSH server on loopback addresses, for the SSH tests and the fan-out benchmark.

Each "host" is an address of 127.0.0.0/8 (127.0.0.2, 127.0.0.3, ...): every one reaches
`lo`. One sshd takes at most 16 ListenAddress lines, so a cluster runs one sshd per 16
addresses, all on the same port, sharing a host key. Keys are generated into a temporary
directory with ssh-keygen; logins use a dedicated account whose shell is /bin/sh (root's
shell start-up is slow here), created on first use when we are root.

Plain Python, no pytest: bench/fanout.py uses it too. See /work/shared/notes/ssh-testing.md.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SSHD = "/usr/sbin/sshd"
TEST_USER = "rbssh"
MAX_LISTEN = 16  # sshd: "Too many listen sockets" beyond this


class SshdUnavailable(RuntimeError):
    """No sshd binary (or no way to run it): the SSH tests cannot run, and must fail."""


def require_sshd() -> None:
    if not os.access(SSHD, os.X_OK):
        raise SshdUnavailable(f"{SSHD} is missing: install openssh-server "
                              "(`make test` does it as root: apt-get install -y openssh-server)")


def test_user() -> str:
    """The account tests log in as: a dedicated /bin/sh user when root, else ourselves."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", TEST_USER], check=True, capture_output=True)
    # A fresh account is locked under `UsePAM no` until it has a (non-)password.
    subprocess.run(["usermod", "-p", "*", TEST_USER], check=True, capture_output=True)
    return TEST_USER


def keygen(path: Path, comment: str = "runbook-test") -> Path:
    """An ed25519 key pair without passphrase at `path` (and path.pub)."""
    for stale in (path, path.with_suffix(".pub")):
        stale.unlink(missing_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True)
    path.chmod(0o600)
    return path


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def addresses(count: int, first: int = 2) -> list[str]:
    """`count` loopback addresses from 127.0.0.<first> on (distinct hosts for the tests)."""
    return [f"127.0.{(n >> 8) & 255}.{n & 255}" for n in range(first, first + count)]


@dataclass
class Sshd:
    """One sshd process listening on some addresses of a shared directory and port."""

    directory: Path
    name: str
    listen: Sequence[str]
    port: int
    host_key: Path
    authorized_keys: Path
    extra: Sequence[str] = ()
    proc: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.directory / f"{self.name}.conf"

    @property
    def log(self) -> Path:
        return self.directory / f"{self.name}.log"

    def write_config(self) -> None:
        # sshd keeps the first value of a keyword: the test's own settings go first.
        lines = [*self.extra, *(f"ListenAddress {a}:{self.port}" for a in self.listen),
            f"HostKey {self.host_key}",
            f"AuthorizedKeysFile {self.authorized_keys}",
            f"PidFile {self.directory / (self.name + '.pid')}",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PubkeyAuthentication yes",
            "UsePAM no", "StrictModes no", "UseDNS no", "PermitRootLogin yes",
            "MaxStartups 300:30:400", "MaxSessions 200", "MaxAuthTries 10",
            "ClientAliveInterval 0", "LogLevel INFO", "AllowTcpForwarding yes", "PrintMotd no",
            "Subsystem sftp internal-sftp",  # Ansible copies its modules over SFTP
        ]
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def start(self, timeout: float = 10.0) -> None:
        self.spawn()
        self.wait_ready(timeout)

    def spawn(self) -> None:
        """Start the listener without waiting for it (see wait_ready)."""
        require_sshd()
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.write_config()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stdout=log,
                                         stderr=log, stdin=subprocess.DEVNULL)

    def wait_ready(self, timeout: float = 10.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd {self.name} exited {self.proc.returncode}:\n{self.tail()}")
            if all(_accepts(a, self.port) for a in self.listen):
                return
            time.sleep(0.01)
        raise RuntimeError(f"sshd {self.name} did not listen within {timeout}s:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM the listener (sessions in progress keep their own processes)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill_all(self) -> None:
        """SIGKILL the listener and every session process it started: a crashed server."""
        proc = self.proc
        if proc is None:
            return
        self.kill_sessions()
        _kill(proc.pid, signal.SIGKILL)
        proc.wait()
        self.proc = None

    def kill_sessions(self) -> None:
        """SIGKILL every connection's processes, keeping the listener: dropped connections.
        Waits until the listener has reaped them (no zombie is left to an init that may
        not reap)."""
        proc = self.proc
        if proc is None:
            return
        tree = _descendants(proc.pid)
        for pid in tree:
            _kill(pid, signal.SIGKILL)
        direct = [pid for pid in tree if _parent(pid) == proc.pid]
        deadline = time.monotonic() + 2
        while any(_parent(pid) == proc.pid for pid in direct) and time.monotonic() < deadline:
            time.sleep(0.01)


def _accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.2):
            return True
    except OSError:
        return False


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return int(data[data.rfind(b")") + 2:].split()[1])


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        ppid = int(data[data.rfind(b")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


@dataclass
class Cluster:
    """sshd processes on `hosts` loopback addresses and one port, with keys and known_hosts."""

    directory: Path
    hosts: list[str]
    port: int
    user: str
    client_key: Path
    host_key: Path
    servers: list[Sshd] = field(default_factory=list)

    @classmethod
    def create(cls, hosts: Sequence[str], *, directory: Path | None = None, port: int | None = None,
               extra: Sequence[str] = (), client_key: Path | None = None, per_server: int = MAX_LISTEN) -> Cluster:
        """Keys and configs for `hosts`, `per_server` addresses per sshd process; `client_key`
        lets several clusters trust one key."""
        require_sshd()
        base = directory or Path(tempfile.mkdtemp(prefix="runbook-sshd-"))
        base.chmod(0o755)  # the login user reads authorized_keys from here
        user = test_user()
        client_key = client_key or keygen(base / "id_ed25519", "runbook-client")
        host_key = keygen(base / "ssh_host_ed25519_key", "runbook-host")
        auth = base / "authorized_keys"
        auth.write_text(client_key.with_suffix(".pub").read_text(), encoding="utf-8")
        auth.chmod(0o644)
        cluster = cls(base, list(hosts), port or free_port(hosts[0]), user, client_key, host_key)
        per_server = min(per_server, MAX_LISTEN)
        for i in range(0, len(hosts), per_server):
            cluster.servers.append(Sshd(base, f"sshd{i // per_server}", hosts[i:i + per_server],
                                        cluster.port, host_key, auth, extra))
        return cluster

    def start(self) -> Cluster:
        """Every sshd at once, then wait for all (a 1,000-host cluster is 63 of them)."""
        try:
            for server in self.servers:
                server.spawn()
            for server in self.servers:
                server.wait_ready()
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def server_of(self, host: str) -> Sshd:
        return next(s for s in self.servers if host in s.listen)

    def host_key_line(self, host: str, key: Path | None = None) -> str:
        kind, blob = (key or self.host_key).with_suffix(".pub").read_text().split()[:2]
        name = host if self.port == 22 else f"[{host}]:{self.port}"
        return f"{name} {kind} {blob}"

    def known_hosts(self, path: Path | None = None, hosts: Sequence[str] | None = None) -> Path:
        """A known_hosts file naming every host (or `hosts`) with the current host key."""
        target = path or self.directory / "known_hosts"
        lines = [self.host_key_line(h) for h in (self.hosts if hosts is None else hosts)]
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return target

    def new_host_key(self, host: str) -> Path:
        """Give `host` its own freshly generated host key (restarting its sshd): a changed key."""
        server = self.server_of(host)
        server.stop()
        server.host_key = keygen(self.directory / f"host_key_{server.name}_{time.monotonic_ns()}")
        server.start()
        return server.host_key


def target_yaml(c: Cluster, hosts: Sequence[str] | None = None, **extra: object) -> str:
    """A `targets:` entry (flow YAML) reaching `hosts` (default: all) of cluster `c` with its key."""
    settings: dict[str, object] = {"hosts": list(hosts) if hosts is not None else c.hosts, "user": c.user,
                                   "port": c.port, "identity_file": str(c.client_key), **extra}
    parts = []
    for key, value in settings.items():
        if isinstance(value, list):
            shown = "[" + ", ".join(f'"{v}"' for v in value) + "]"
        else:
            shown = f'"{value}"' if isinstance(value, str) else str(value)
        parts.append(f"{key}: {shown}")
    return "{" + ", ".join(parts) + "}"


def remote_alive(pattern: str) -> bool:
    """Whether a process whose command line contains `pattern` runs (the 'remote' host is
    this machine)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat", "rb") as handle:
                state = handle.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if pattern in cmdline and state != b"Z":
            return True
    return False
