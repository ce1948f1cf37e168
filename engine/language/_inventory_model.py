"""The shape every inventory is read into, whatever its format: groups (`Group`), the
hosts' variables merged as Ansible merges them (`Inventory.vars_of`), and each host's
connection settings (`Host`). The formats that build one are in _inventory_formats.py;
engine/language/inventory.py is the public face.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from engine.errors import UsageError

from .duration import parse_duration
from .model import empty_map, frozen_map

SETTINGS = ("address", "port", "user", "identity_file", "password_env", "proxy_jump", "connect_timeout")
OWN_KEYS = {k: k for k in SETTINGS}
ANSIBLE_KEYS = {
    "ansible_host": "address", "ansible_ssh_host": "address", "ansible_port": "port",
    "ansible_ssh_port": "port", "ansible_user": "user", "ansible_ssh_user": "user",
    "ansible_ssh_private_key_file": "identity_file", "ansible_private_key_file": "identity_file",
    "ansible_ssh_common_args": "_ssh_args", "ansible_ssh_extra_args": "_ssh_args",
}


class InventoryError(UsageError):
    """An inventory file that cannot be read or makes no sense (exit code 2)."""


@dataclass(frozen=True, slots=True)
class Host:
    """One host of a target: its name (shown everywhere) and how to connect to it."""

    name: str
    address: str | None = None  # None: the name (or HostName from ~/.ssh/config)
    port: int | None = None
    user: str | None = None
    identity_file: str | None = None
    password_env: str | None = None
    proxy_jump: str | None = None
    connect_timeout: float | None = None
    vars: Mapping[str, Any] = field(default_factory=empty_map)

    def describe(self) -> str:
        """`user@address:port` with what is known before ~/.ssh/config is read."""
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        via = f" via {self.proxy_jump}" if self.proxy_jump else ""
        return f"{user}{self.address or self.name}{port}{via}"


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    hosts: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=empty_map)


@dataclass(frozen=True)
class Inventory:
    """Groups and hosts of one inventory file, whatever its format."""

    file: str
    format: str
    groups: Mapping[str, Group]
    host_vars: Mapping[str, Mapping[str, Any]]
    keys: Mapping[str, str] = field(default_factory=lambda: OWN_KEYS)

    def group_names(self) -> frozenset[str]:
        return frozenset(self.groups)

    def members(self, group: str) -> list[str]:
        """Hosts of a group and of its children, recursively, in file order, once each."""
        seen: dict[str, None] = {}
        for name in self._walk(group, set()):
            seen.setdefault(name)
        return list(seen)

    def _walk(self, group: str, visiting: set[str]) -> Iterator[str]:
        if group in visiting or group not in self.groups:
            return
        visiting.add(group)
        g = self.groups[group]
        yield from g.hosts
        for child in g.children:
            yield from self._walk(child, visiting)

    def vars_of(self, host: str) -> dict[str, Any]:
        """The host's variables: `all`, then its groups parents first, then its own."""
        merged: dict[str, Any] = {}
        for group in self._membership.get(host, ()):
            merged.update(self.groups[group].vars)
        merged.update(self.host_vars.get(host, {}))
        return merged

    @cached_property
    def _membership(self) -> dict[str, list[str]]:
        """host -> its groups in merge order (computed once: inventories can be large)."""
        depth = self._depths()
        out: dict[str, list[str]] = {}
        for name in sorted(self.groups, key=lambda g: (depth.get(g, 1), g)):
            for host in self.members(name):
                out.setdefault(host, []).append(name)
        return out

    def _depths(self) -> dict[str, int]:
        depth = {"all": 0}
        todo = ["all"]
        while todo:
            parent = todo.pop(0)
            for child in self.groups[parent].children if parent in self.groups else ():
                if child not in depth:
                    depth[child] = depth[parent] + 1
                    todo.append(child)
        return depth

    def host(self, name: str) -> Host:
        """Connection settings of a host from its merged variables (unknown host: just the name)."""
        if name not in self._membership:
            return Host(name)
        values = self.vars_of(name)
        settings: dict[str, Any] = {}
        for var, key in self.keys.items():
            if var in values and values[var] is not None:
                settings.setdefault(key, values[var])
        jump = _jump_from_args(str(settings.pop("_ssh_args", "")))
        if jump and "proxy_jump" not in settings:
            settings["proxy_jump"] = jump
        return _host(name, settings, frozen_map(values), f"{self.file}: host {name}")


def _host(name: str, settings: Mapping[str, Any], variables: Mapping[str, Any], where: str) -> Host:
    try:
        port = int(settings["port"]) if settings.get("port") is not None else None
        timeout = settings.get("connect_timeout")
        seconds = (parse_duration(timeout) if isinstance(timeout, str) else float(timeout)) \
            if timeout is not None else None
    except (TypeError, ValueError) as exc:
        raise InventoryError(f"{where}: {exc}") from None
    if port is not None and not 0 < port < 65536:
        raise InventoryError(f"{where}: port {port} is out of range")
    text = {k: str(settings[k]) for k in ("address", "user", "identity_file", "password_env", "proxy_jump")
            if settings.get(k) is not None}
    return Host(name, port=port, connect_timeout=seconds, vars=variables, **text)


def _jump_from_args(args: str) -> str | None:
    """A ProxyJump hidden in Ansible's ssh arguments: `-J host` or `-o ProxyJump=host`."""
    try:
        words = shlex.split(args)
    except ValueError:
        return None
    for i, word in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if word == "-J" and nxt:
            return nxt
        option = nxt if word == "-o" else (word[2:] if word.startswith("-o") else "")
        key, _, value = option.replace(" ", "=", 1).partition("=")
        if key.lower() == "proxyjump" and value:
            return value
    return None
