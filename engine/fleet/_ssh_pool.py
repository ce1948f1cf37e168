"""SSH connections for the SSH executor: whether a host's key is the one we know, who we
log in as, and one open connection per host, reused by every step of the run.

- KnownHosts (_known_hosts.py): the user's known_hosts and the project's; unknown keys are
  refused unless --accept-new-host-keys (then recorded, like OpenSSH's `accept-new`); a
  changed key is always refused.
- Authentication: identity files, then the ssh-agent, then a password only when the
  target names an environment variable holding one. Nothing ever prompts.
- SshPool: opens connections lazily (TCP_NODELAY; a jump host through a direct-tcpip
  channel), with keepalives, and closes them all at the end. Between commands at most
  MAX_IDLE connections stay open, the least recently used closing first: each open
  connection is a paramiko thread (waking ten times a second), a socket and two sshd
  processes on its host, so a 1,000-host fan-out must not keep them all.
"""

from __future__ import annotations

import os
import socket
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._known_hosts import KnownHosts, fingerprint
from ._ssh_config import ConnectFailed, Endpoint, SshOptions, load_paramiko

if TYPE_CHECKING:
    import paramiko

DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")
MAX_IDLE = 64  # connections kept open with no command on them
_RSA_ALGS = ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa")


class KeyCache:
    """Private keys, parsed once per run (parsing costs more than using them)."""

    def __init__(self) -> None:
        self._keys: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, path: str) -> tuple[Any, str]:
        """(key, "") or (None, why it cannot be used)."""
        with self._lock:
            if path not in self._keys:
                self._keys[path] = _load_key(path)
            found = self._keys[path]
        return (None, found) if isinstance(found, str) else (found, "")


def _load_key(path: str) -> Any:
    paramiko = load_paramiko()
    if not os.path.isfile(path):
        return "not found"
    try:
        return paramiko.PKey.from_path(path)
    except paramiko.PasswordRequiredException:
        return "encrypted: load it into ssh-agent"
    except (paramiko.SSHException, OSError, ValueError) as exc:
        return f"unreadable: {exc}"


def authenticate(transport: paramiko.Transport, ep: Endpoint, keys: KeyCache, use_agent: bool) -> None:
    """Keys, then the agent, then a password only if the target names one. Never prompts."""
    paramiko = load_paramiko()
    tried: list[str] = []
    explicit = list(ep.identity_files)
    files = explicit or [os.path.expanduser(f"~/.ssh/{name}") for name in DEFAULT_KEYS]
    for path in files:
        key, why = keys.get(path)
        if key is None:
            if explicit:
                tried.append(f"{path} ({why})")
            continue
        if _try(transport, lambda k=key: transport.auth_publickey(ep.user, k), tried, path, paramiko):
            return
    if use_agent and os.environ.get("SSH_AUTH_SOCK") and _agent(transport, ep, tried, paramiko):
        return
    if ep.password_env:
        secret = os.environ.get(ep.password_env)
        if secret is None:
            tried.append(f"password (${ep.password_env} is not set)")
        elif _try(transport, lambda: transport.auth_password(ep.user, secret), tried, "password", paramiko):
            return
    hint = "" if ep.password_env else "; password authentication is used only when the target sets password_env"
    raise ConnectFailed("auth_failed", f"authentication as {ep.user} on {ep.name} ({ep.address}:{ep.port}) "
                                       f"was rejected (tried: {', '.join(tried) or 'no key found'}){hint}")


def _agent(transport: paramiko.Transport, ep: Endpoint, tried: list[str], paramiko: Any) -> bool:
    agent = paramiko.Agent()
    try:
        for key in agent.get_keys():
            name = f"agent key {fingerprint(key)}"
            if _try(transport, lambda k=key: transport.auth_publickey(ep.user, k), tried, name, paramiko):
                return True
        if not agent.get_keys():
            tried.append("ssh-agent (no keys)")
        return False
    finally:
        agent.close()


def _try(transport: paramiko.Transport, attempt: Any, tried: list[str], label: str, paramiko: Any) -> bool:
    try:
        attempt()
    except paramiko.BadAuthenticationType as exc:
        tried.append(f"{label} (server allows only {', '.join(exc.allowed_types)})")
        return False
    except paramiko.AuthenticationException:
        tried.append(label)
        return False
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise ConnectFailed("unreachable", f"connection closed during authentication: {exc}") from None
    return transport.is_authenticated()


@dataclass
class Connection:
    """One authenticated SSH connection (and the jump connection it goes through)."""

    endpoint: Endpoint
    transport: Any
    via: Connection | None = None
    login_shell: str | None = None  # $SHELL on the host, learnt from the first command
    users: int = 0  # commands running on it (SshPool.get ... release)
    closed: bool = False  # by the pool: its jump connection was released then

    @property
    def active(self) -> bool:
        return bool(self.transport.is_active())

    def open_session(self, timeout: float) -> Any:
        return self.transport.open_session(timeout=timeout)

    def close(self) -> None:
        self.transport.close()


class SshPool:
    """One connection per endpoint, opened on first use, reused by the run's later steps
    while it is among the `max_idle` most recently used of those with no command on them."""

    def __init__(self, options: SshOptions, max_idle: int | None = None) -> None:
        self.options = options
        self.known = KnownHosts(options)
        self.keys = KeyCache()
        self.max_idle = MAX_IDLE if max_idle is None else max_idle
        self._conns: dict[tuple[Any, ...], Connection] = {}  # every open connection
        self._idle: OrderedDict[tuple[Any, ...], Connection] = OrderedDict()  # unused ones, oldest first
        self._locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._lock = threading.Lock()
        self.opened = 0  # connections opened so far (the benchmark checks reuse)

    def get(self, ep: Endpoint) -> Connection:
        """The open connection to `ep`, opening (or reopening a dead) one if needed; it is
        in use (never closed as idle) until `release`."""
        with self._lock:
            lock = self._locks.setdefault(ep.key, threading.Lock())
        with lock:
            with self._lock:
                conn = self._conns.get(ep.key)
                if conn is not None and conn.active:
                    return self._take(conn)
            if conn is not None:
                self.discard(conn)
            conn = self._open(ep)
            with self._lock:
                self._conns[ep.key] = conn
                self.opened += 1
                return self._take(conn)

    def _take(self, conn: Connection) -> Connection:
        conn.users += 1
        self._idle.pop(conn.endpoint.key, None)
        return conn

    def release(self, conn: Connection) -> None:
        """The command on `conn` is over: keep it for later steps, closing the least
        recently used idle connection beyond `max_idle`."""
        with self._lock:
            conn.users -= 1
            key = conn.endpoint.key
            if conn.users > 0 or self._conns.get(key) is not conn:
                return
            self._idle[key] = conn
            evicted = []
            while len(self._idle) > self.max_idle:
                old_key, old = self._idle.popitem(last=False)
                del self._conns[old_key]
                evicted.append(old)
        for old in evicted:
            self._close(old)

    def discard(self, conn: Connection) -> None:
        with self._lock:
            if self._conns.get(conn.endpoint.key) is conn:
                del self._conns[conn.endpoint.key]
                self._idle.pop(conn.endpoint.key, None)
        self._close(conn)

    def close(self) -> None:
        with self._lock:
            conns = list(self._conns.values())
            self._conns.clear()
            self._idle.clear()
        for conn in sorted(conns, key=lambda c: c.via is None):  # through-jump connections first
            self._close(conn)

    def _close(self, conn: Connection) -> None:
        """Close `conn` once; the jump connection it went through is no longer in use by it."""
        with self._lock:
            first, conn.closed = not conn.closed, True
        if not first:
            return
        conn.close()
        if conn.via is not None:
            self.release(conn.via)

    def _open(self, ep: Endpoint) -> Connection:
        """A new connection; the jump connection it goes through stays in use while it is open."""
        via = self.get(ep.jump) if ep.jump is not None else None
        try:
            sock = self._socket(ep, via)
            try:
                transport = self._handshake(ep, sock)
            except BaseException:
                sock.close()
                raise
        except BaseException:
            if via is not None:
                self.release(via)
            raise
        return Connection(ep, transport, via)

    def _socket(self, ep: Endpoint, via: Connection | None) -> Any:
        if via is not None:
            try:
                return via.transport.open_channel("direct-tcpip", (ep.address, ep.port), ("127.0.0.1", 0),
                                                  timeout=ep.connect_timeout)
            except Exception as exc:
                raise ConnectFailed("unreachable", f"cannot reach {ep.address}:{ep.port} through "
                                                   f"{via.endpoint.describe()}: {exc}") from None
        if ep.proxy_command:
            return load_paramiko().ProxyCommand(ep.proxy_command)
        return tcp_connect(ep)

    def _handshake(self, ep: Endpoint, sock: Any) -> Any:
        paramiko = load_paramiko()
        transport = paramiko.Transport(sock)
        transport.banner_timeout = transport.handshake_timeout = transport.auth_timeout = ep.connect_timeout
        _prefer(transport, self.known.known_types(ep))
        try:
            try:
                transport.start_client(timeout=ep.connect_timeout)
                if not getattr(transport, "initial_kex_done", True):  # start_client's timeout returns quietly
                    raise paramiko.SSHException(f"no key exchange within {ep.connect_timeout:g}s (connect_timeout)")
                key = transport.get_remote_server_key()
            except (paramiko.SSHException, EOFError, OSError) as exc:
                raise ConnectFailed("unreachable", f"SSH handshake with {ep.address}:{ep.port} failed: "
                                                   f"{exc or type(exc).__name__}") from None
            self.known.verify(ep, key)
            authenticate(transport, ep, self.keys, self.options.use_agent)
        except BaseException:
            transport.close()
            raise
        transport.set_keepalive(ep.keepalive)
        return transport


def _prefer(transport: Any, known: list[str]) -> None:
    """Ask for a host key of a type we already know (as OpenSSH does), so a host with
    several keys is checked against the one in known_hosts."""
    if not known:
        return
    options = transport.get_security_options()
    wanted = [alg for kind in known for alg in (_RSA_ALGS if kind == "ssh-rsa" else (kind,))]
    current = list(options.key_types)
    first = [a for a in wanted if a in current]
    if first:
        options.key_types = first + [a for a in current if a not in first]


def tcp_connect(ep: Endpoint) -> socket.socket:
    """A TCP connection with TCP_NODELAY: SSH's small packets otherwise wait on Nagle
    (it more than halves the time to connect)."""
    try:
        sock = socket.create_connection((ep.address, ep.port), timeout=ep.connect_timeout)
    except socket.gaierror as exc:
        raise ConnectFailed("unreachable", f"cannot resolve {ep.address}: {exc.strerror}") from None
    except TimeoutError:
        raise ConnectFailed("unreachable", f"no answer from {ep.address}:{ep.port} within "
                                           f"{ep.connect_timeout:g}s (connect_timeout)") from None
    except ConnectionRefusedError:
        raise ConnectFailed("unreachable", f"connection to {ep.address}:{ep.port} refused "
                                           "(is sshd running there?)") from None
    except OSError as exc:
        raise ConnectFailed("unreachable", f"cannot connect to {ep.address}:{ep.port}: "
                                           f"{exc.strerror or exc}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
