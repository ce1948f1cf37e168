"""Where an SSH host really is: a host's settings (inventory, target) completed from
~/.ssh/config (Host aliases, HostName, Port, User, IdentityFile, ProxyJump with one or
more hops, HostKeyAlias, UserKnownHostsFile, ...), and paramiko, imported on first use.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.home import home

if TYPE_CHECKING:
    from engine.language.inventory import Host

DEFAULT_CONNECT_TIMEOUT = 10.0
KEEPALIVE = 15
MAX_JUMPS = 5


class ConnectFailed(Exception):
    """No connection to a host: `status` is unreachable, auth_failed or host_key."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


_configured = False
_importing = threading.Lock()
_MATCH_EXEC = re.compile(r"^\s*match\b.*\bexec\b", re.IGNORECASE | re.MULTILINE)


def load_paramiko(*, match_exec: bool = False) -> Any:
    """Import paramiko on first use, and keep its transport threads off the console:
    their errors reach us as exceptions; logged tracebacks would only confuse.

    paramiko imports `invoke` (and with it unittest.mock: ~0.2 s, two thirds of the
    import) only to run `Match exec` lines of ssh_config; it is left out unless the
    config has one (`match_exec`)."""
    global _configured
    with _importing:
        if not _configured:
            _import(match_exec)
            _configured = True
    import paramiko

    return paramiko


def _import(match_exec: bool) -> None:
    import logging
    import sys

    block = not match_exec and "invoke" not in sys.modules and "paramiko" not in sys.modules
    if block:
        sys.modules["invoke"] = None  # type: ignore[assignment]  # `import invoke` -> ImportError
    try:
        import paramiko  # noqa: F401
    finally:
        if block:
            del sys.modules["invoke"]
    log = logging.getLogger("paramiko")
    log.propagate = False
    log.addHandler(logging.NullHandler())
    log.setLevel(logging.CRITICAL + 1)  # no record is even created, so none can leak a secret


def transport_errors() -> tuple[type[BaseException], ...]:
    """What a broken connection raises (evaluated only when something was raised)."""
    return (load_paramiko().SSHException, EOFError, OSError)


@dataclass(frozen=True)
class SshOptions:
    """Where SSH settings come from; tests point every path into a temporary directory."""

    config_file: Path | None = None  # ~/.ssh/config when it exists
    known_hosts: tuple[Path, ...] = ()  # read, in order
    write_known_hosts: Path | None = None  # where --accept-new-host-keys records keys
    accept_new: bool = False
    use_agent: bool = True
    keepalive: int = KEEPALIVE

    @classmethod
    def from_env(cls, *, accept_new: bool = False, environ: Any = None) -> SshOptions:
        """Defaults: ~/.ssh/config and ~/.ssh/known_hosts, plus the project's known_hosts
        ($RUNBOOK_KNOWN_HOSTS, else $RUNBOOK_HOME/known_hosts or .runbook/known_hosts)."""
        env = os.environ if environ is None else environ
        ssh_dir = Path(os.path.expanduser("~/.ssh"))
        config = env.get("RUNBOOK_SSH_CONFIG")
        config_path = Path(config) if config else ssh_dir / "config"
        user_known = ssh_dir / "known_hosts"
        explicit = env.get("RUNBOOK_KNOWN_HOSTS")
        project = Path(explicit) if explicit else home(env) / "known_hosts"
        return cls(config_path if config != "none" and config_path.is_file() else None,
                   (user_known, project), project if explicit else user_known, accept_new)


@dataclass(frozen=True)
class Endpoint:
    """Everything needed to open one connection."""

    name: str  # the host's name, for messages
    address: str
    port: int
    user: str
    identity_files: tuple[str, ...] = ()
    password_env: str | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    jump: Endpoint | None = None
    proxy_command: str | None = None
    key_alias: str | None = None
    known_hosts: tuple[str, ...] = ()
    keepalive: int = KEEPALIVE

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.user, self.address, self.port, self.jump.key if self.jump else None, self.proxy_command)

    @property
    def known_name(self) -> str:
        """The name of this host in known_hosts, as OpenSSH writes it."""
        base = self.key_alias or self.address
        return base if self.port == 22 or self.key_alias else f"[{base}]:{self.port}"

    def describe(self) -> str:
        via = f" via {self.jump.describe()}" if self.jump else ""
        return f"{self.user}@{self.address}:{self.port}{via}"


class SshConfig:
    """~/.ssh/config, read once; `endpoint` completes a host's settings from it."""

    def __init__(self, options: SshOptions) -> None:
        self.options = options
        self._config: Any = None
        self._lock = threading.Lock()

    def lookup(self, name: str) -> dict[str, Any]:
        if self.options.config_file is None:
            return {}
        with self._lock:
            if self._config is None:
                self._config = self._parse(self.options.config_file)
        try:
            return dict(self._config.lookup(name))
        except Exception as exc:  # a Match exec that fails, a bad token: say where
            raise ConnectFailed("unreachable", f"{self.options.config_file}: {exc}") from None

    @staticmethod
    def _parse(path: Path) -> Any:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ConnectFailed("unreachable", f"cannot read {path}: {exc.strerror or exc}") from None
        paramiko = load_paramiko(match_exec=bool(_MATCH_EXEC.search(text)))
        return paramiko.SSHConfig.from_text(text)

    def endpoint(self, host: Host, trail: tuple[str, ...] = ()) -> Endpoint:
        """`trail`: the hosts this one is a jump host for (a config loop must not recurse)."""
        cfg = self.lookup(host.address or host.name)
        address = host.address or cfg.get("hostname") or host.name
        timeout = host.connect_timeout or _float(cfg.get("connecttimeout")) or DEFAULT_CONNECT_TIMEOUT
        identity = ([host.identity_file] if host.identity_file else []) + list(cfg.get("identityfile", []))
        jump_spec = host.proxy_jump or cfg.get("proxyjump")
        if not host.proxy_jump and jump_spec and _loops(jump_spec, (*trail, host.name)):
            jump_spec = None  # e.g. `Host *` + ProxyJump also matching the jump host itself
        jump = self._jump(jump_spec, (*trail, host.name)) if jump_spec and jump_spec != "none" else None
        known = tuple(os.path.expanduser(p) for p in str(cfg.get("userknownhostsfile", "")).split() if p)
        proxy = cfg.get("proxycommand") if jump is None and cfg.get("proxycommand") != "none" else None
        return Endpoint(
            host.name, address, int(host.port or cfg.get("port") or 22),
            host.user or cfg.get("user") or _local_user(),
            tuple(os.path.expanduser(p) for p in identity), host.password_env, timeout, jump, proxy,
            cfg.get("hostkeyalias"), known, int(cfg.get("serveraliveinterval") or self.options.keepalive))

    def _jump(self, spec: str, trail: tuple[str, ...]) -> Endpoint:
        """`ProxyJump a,b`: reach b through a; the target is then reached through b."""
        from engine.language.inventory import Host

        from .hosts import parse_host_entry

        if len(trail) > MAX_JUMPS:
            raise ConnectFailed("unreachable", f"ProxyJump chain longer than {MAX_JUMPS} hops: {spec}")
        *before, last = [hop.strip() for hop in spec.split(",")]
        name, user, port = parse_host_entry(last)
        hop = Host(name, user=user, port=port, proxy_jump=",".join(before) or None)
        return self.endpoint(hop, trail)


def _loops(spec: str, trail: tuple[str, ...]) -> bool:
    from .hosts import parse_host_entry

    return any(parse_host_entry(hop.strip())[0] in trail for hop in spec.split(","))


def _local_user() -> str:
    import getpass

    return getpass.getuser()


def _float(value: Any) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
