"""Inventories and targets: which hosts a step's `target` means, and how to reach each one.

Three inventory formats, told apart by their content:

- this project's YAML (`kind: inventory`): `groups` with `hosts`, `children` and `vars`,
  an optional top-level `hosts` mapping of per-host settings and `vars` for every host;
  connection settings are the keys `address`, `port`, `user`, `identity_file`,
  `password_env`, `proxy_jump`, `connect_timeout`;
- Ansible YAML (`all: {hosts, children, vars}`) and Ansible INI (`[group]`,
  `[group:vars]`, `[group:children]`, host ranges such as `web[01:20]`), whose
  connection settings are `ansible_host`, `ansible_port`, `ansible_user`,
  `ansible_ssh_private_key_file` and a ProxyJump in `ansible_ssh_common_args`.

Variables merge as Ansible merges them: the `all` group, then groups from parents to
children (same depth: by name), then the host's own. A host has a name (shown
everywhere) and connection settings; what is still unset comes from ~/.ssh/config when
the SSH executor connects.
"""

from __future__ import annotations

import os
import re
import shlex
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from engine.errors import TemplateError, UsageError

from .duration import parse_duration
from .model import Target, empty_map, frozen_map

ENV = "RUNBOOK_INVENTORY"
SETTINGS = ("address", "port", "user", "identity_file", "password_env", "proxy_jump", "connect_timeout")
OWN_KEYS = {k: k for k in SETTINGS}
ANSIBLE_KEYS = {
    "ansible_host": "address", "ansible_ssh_host": "address", "ansible_port": "port",
    "ansible_ssh_port": "port", "ansible_user": "user", "ansible_ssh_user": "user",
    "ansible_ssh_private_key_file": "identity_file", "ansible_private_key_file": "identity_file",
    "ansible_ssh_common_args": "_ssh_args", "ansible_ssh_extra_args": "_ssh_args",
}
_SPLIT = re.compile(r"[\s,]+")


class InventoryError(UsageError):
    """An inventory file that cannot be read or makes no sense (exit code 2)."""


class TargetError(TemplateError):
    """A target that resolves to no hosts: the step fails with this message."""


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


# -- loading ------------------------------------------------------------------------------


def load_inventory(path: str | os.PathLike[str]) -> Inventory:
    """Read an inventory file in any of the three formats, under the runbook loader's
    limits (a regular file, its size, nesting, aliases, numbers): an inventory is a file
    like any other a run is handed."""
    from .loader import LoadError, read_text

    file = os.fspath(path)
    try:
        text = read_text(file)
    except LoadError as exc:
        raise InventoryError(f"cannot read inventory {file}: {exc.diagnostic.message}") from None
    return parse_inventory(text, file)


def parse_inventory(text: str, file: str = "<inventory>") -> Inventory:
    """An inventory from text: INI when the first line opens a [section], else YAML."""
    from ._inventory_formats import AnsibleYaml, Ini, Own
    from .loader import LoadError, load_value

    first = next((ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith(("#", ";"))),
                 "")
    data: Any = None
    if not first.startswith("["):
        try:
            data = load_value(text, file)
        except LoadError as exc:
            if exc.diagnostic.rule != "RB001":  # past a limit: refused, whatever the format
                d = exc.diagnostic
                raise InventoryError(f"{file}:{d.line}:{d.column}: {d.message}") from None
            try:
                return Ini(file).build(text)  # INI without a section header reads as broken YAML
            except InventoryError:
                d = exc.diagnostic
                raise InventoryError(f"{file}:{d.line}:{d.column}: neither a YAML nor an INI inventory: "
                                     f"{d.message}") from None
    if isinstance(data, Mapping):
        if data.get("kind") == "inventory":
            return Own(file).build(data)
        return AnsibleYaml(file).build(data)
    return Ini(file).build(text)


# -- targets -> hosts ---------------------------------------------------------------------


def parse_host_entry(text: str) -> tuple[str, str | None, int | None]:
    """`user@name:port` (each part optional; `[v6]:port`) -> (name, user, port)."""
    user, at, rest = text.rpartition("@")
    name, port = rest, None
    if rest.startswith("["):
        inner, _, after = rest[1:].partition("]")
        name = inner
        if after.startswith(":") and after[1:].isdigit():
            port = int(after[1:])
    elif rest.count(":") == 1:
        head, _, tail = rest.partition(":")
        if tail.isdigit():
            name, port = head, int(tail)
    return name, (user if at else None), port


class Resolver:
    """`Services.resolve_hosts`: a target -> host names, remembering how to reach each.

    The inventory (--inventory or $RUNBOOK_INVENTORY) is read on first use, so a run
    without `group:` targets never touches it. The SSH executor asks `host(target,
    name)` for the connection settings of a host it is about to run on.
    """

    def __init__(self, inventory: str | os.PathLike[str] | None = None) -> None:
        self.path = os.fspath(inventory) if inventory else os.environ.get(ENV) or None
        self._inventory: Inventory | None = None
        self._hosts: dict[tuple[str | None, str], Host] = {}
        self._lock = threading.Lock()

    @property
    def inventory(self) -> Inventory | None:
        """The inventory, read on first use; an unreadable one fails the step that needs it."""
        if self._inventory is None and self.path:
            try:
                self._inventory = load_inventory(self.path)
            except InventoryError as exc:
                raise TargetError(exc.message) from None
        return self._inventory

    def __call__(self, name: str, target: Target, ctx: Mapping[str, Any]) -> list[str]:
        hosts = self.resolve(name, target, ctx)
        with self._lock:
            for host in hosts:
                self._hosts[(name, host.name)] = host
        return [h.name for h in hosts]

    def host(self, target: str | None, name: str) -> Host:
        """The settings of a host resolved earlier (or of a bare name)."""
        with self._lock:
            found = self._hosts.get((target, name))
        return found if found is not None else self._with_inventory(Host(name), None)

    def resolve(self, name: str, target: Target, ctx: Mapping[str, Any]) -> list[Host]:
        """The hosts of a target with their connection settings; TargetError if there are none."""
        hosts: dict[str, Host] = {}
        if target.group is not None:
            for member in self._group(name, target.group):
                hosts.setdefault(member, self._with_inventory(Host(member), target))
        for i, template in enumerate(target.hosts):
            for entry in _entries(template, ctx, f"targets.{name}.hosts[{i}]"):
                host_name, user, port = parse_host_entry(entry)
                host = self._with_inventory(Host(host_name), target)
                hosts.setdefault(host_name, replace(host, user=user or host.user, port=port or host.port))
        if not hosts:
            raise TargetError(f"target '{name}' has no hosts", where=f"targets.{name}")
        return list(hosts.values())

    def plan_hosts(self, runbook: Any, inputs: Mapping[str, Any]) -> Callable[[str], list[str]]:
        """For a dry-run: each target's hosts with how they will be reached; nothing connects.
        Hosts computed from earlier steps' results are shown as not known yet."""
        ctx = {"inputs": dict(inputs), "vars": dict(runbook.vars),
               "runbook": {"id": runbook.id, "title": runbook.title}}

        def hosts_of(name: str) -> list[str]:
            try:
                hosts = self.resolve(name, runbook.targets[name], ctx)
            except TargetError as exc:
                return [f"<error: {exc.reason}>"]
            except TemplateError as exc:
                return [f"<known at run time: {exc.reason}>"]
            return [h.name if h.describe() == h.name else f"{h.name} ({h.describe()})" for h in hosts]

        return hosts_of

    def _group(self, target: str, group: str) -> list[str]:
        inventory = self.inventory
        if inventory is None:
            raise TargetError(f"target '{target}' uses group '{group}' but no inventory was given: "
                              f"pass --inventory FILE or set {ENV}", where=f"targets.{target}.group")
        if group not in inventory.groups:
            known = ", ".join(sorted(g for g in inventory.groups if g not in ("all", "ungrouped")))
            raise TargetError(f"group '{group}' is not in the inventory {inventory.file} "
                              f"(groups: {known or 'none'})", where=f"targets.{target}.group")
        members = inventory.members(group)
        if not members:
            raise TargetError(f"group '{group}' of the inventory {inventory.file} has no hosts",
                              where=f"targets.{target}.group")
        return members

    def _with_inventory(self, host: Host, target: Target | None) -> Host:
        """Inventory settings of the host, then the target's for what is still unset."""
        inventory = self.inventory
        known = inventory.host(host.name) if inventory is not None else host
        if target is None:
            return known
        return replace(known, **{k: getattr(target, k) for k in SETTINGS
                                 if k != "address" and getattr(known, k) is None})


def _entries(template: str, ctx: Mapping[str, Any], where: str) -> list[str]:
    from engine.templates import templating

    rendered = templating.render(template, ctx, where=where)
    return [word for word in _SPLIT.split(rendered) if word]


def expand(pattern: str, file: str = "<inventory>") -> list[str]:
    """Ansible host ranges: `web[01:03]` -> web01, web02, web03; `db-[a:c]`; `[1:9:2]`."""
    from ._inventory_formats import expand_range

    return expand_range(pattern, file)


def inventory_groups(path: str | os.PathLike[str]) -> frozenset[str]:
    """Group names of an inventory file (for `runbook validate --inventory`)."""
    return load_inventory(path).group_names()
