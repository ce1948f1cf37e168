"""Reading the three inventory formats into an Inventory (see engine/language/inventory.py)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from ._inventory_model import ANSIBLE_KEYS, OWN_KEYS, Group, Inventory, InventoryError
from .model import frozen_map

_RANGE = re.compile(r"\[([0-9a-zA-Z]+):([0-9a-zA-Z]+)(?::([0-9]+))?\]")


class _Builder:
    """Collects groups and host variables; formats fill it, `finish` adds all/ungrouped."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.hosts: dict[str, dict[str, Any]] = {}
        # Members in order, as dict keys: a group of 50,000 hosts is built in linear time.
        self.group_hosts: dict[str, dict[str, None]] = {}
        self.children: dict[str, list[str]] = {}
        self.group_vars: dict[str, dict[str, Any]] = {}

    def group(self, name: str) -> None:
        self.group_hosts.setdefault(name, {})
        self.children.setdefault(name, [])
        self.group_vars.setdefault(name, {})

    def add_host(self, group: str | None, name: str, variables: Mapping[str, Any] | None) -> None:
        for host in expand_range(name, self.file):
            self.hosts.setdefault(host, {}).update(variables or {})
            if group is not None:
                self.group(group)
                self.group_hosts[group].setdefault(host)

    def add_child(self, parent: str, child: str) -> None:
        self.group(parent)
        self.group(child)
        if child not in self.children[parent]:
            self.children[parent].append(child)

    def finish(self, fmt: str, keys: Mapping[str, str]) -> Inventory:
        self.group("all")
        self.group("ungrouped")
        grouped = {h for g, hs in self.group_hosts.items() if g not in ("all", "ungrouped") for h in hs}
        for host in self.hosts:
            if host not in grouped:
                self.group_hosts["ungrouped"].setdefault(host)
        tops = [g for g in self.group_hosts if g != "all" and not any(g in c for c in self.children.values())]
        for top in tops:
            self.add_child("all", top)
        self.group_hosts["all"] = dict.fromkeys([*self.group_hosts["all"], *self.hosts])
        groups = {name: Group(name, tuple(self.group_hosts[name]), tuple(self.children[name]),
                              frozen_map(self.group_vars[name])) for name in self.group_hosts}
        return Inventory(self.file, fmt, frozen_map(groups),
                         frozen_map({h: frozen_map(v) for h, v in self.hosts.items()}), keys)


# Hosts one pattern may stand for: far past a fleet written as one range, short of a
# pattern such as `web[1:10000000]` that would take gigabytes to list.
MAX_RANGE_HOSTS = 10_000


def expand_range(pattern: str, file: str = "<inventory>", budget: int = MAX_RANGE_HOSTS,
                 whole: str = "") -> list[str]:
    """Ansible host ranges: `web[01:03]` -> web01, web02, web03; `db-[a:c]`; `[1:9:2]`.
    A pattern standing for more than MAX_RANGE_HOSTS hosts is an error, found before
    any is listed."""
    match = _RANGE.search(pattern)
    if match is None:
        return [pattern]
    numbers, width = _range(match.group(1), match.group(2), match.group(3) or "1", pattern, file)
    if len(numbers) > budget:
        raise InventoryError(f"{file}: host range {(whole or pattern)!r} stands for more than {MAX_RANGE_HOSTS} "
                             "hosts: split it, or list the hosts")
    values = [chr(n) if width < 0 else str(n).zfill(width) for n in numbers]
    head, tail = pattern[:match.start()], pattern[match.end():]
    return [name for v in values
            for name in expand_range(head + v + tail, file, budget // len(values), whole or pattern)]


def _range(start: str, end: str, step_text: str, pattern: str, file: str) -> tuple[range, int]:
    """One `[start:end:step]` as numbers and a zero-padding width (-1: letters, as code points)."""
    step = int(step_text) if len(step_text) < 10 else 0
    if start.isdigit() and end.isdigit() and len(start) < 19 and len(end) < 19 and step >= 1:
        numbers, width = range(int(start), int(end) + 1, step), len(start) if start.startswith("0") else 0
    elif len(start) == 1 and len(end) == 1 and start.isalpha() and end.isalpha() and step >= 1:
        numbers, width = range(ord(start), ord(end) + 1, step), -1
    else:
        raise InventoryError(f"{file}: bad host range in {pattern!r}")
    if not numbers:
        raise InventoryError(f"{file}: empty host range in {pattern!r}")
    return numbers, width


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InventoryError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


class Own(_Builder):
    """`kind: inventory`: this project's format (see the README)."""

    def build(self, data: Mapping[str, Any]) -> Inventory:
        unknown = set(data) - {"kind", "version", "vars", "groups", "hosts"}
        if unknown:
            raise InventoryError(f"{self.file}: unknown top-level key(s): {', '.join(sorted(unknown))} "
                                 "(expected kind, version, vars, groups, hosts)")
        self.group("all")
        self.group_vars["all"].update(_mapping(data.get("vars"), f"{self.file}: vars"))
        for name, settings in _mapping(data.get("hosts"), f"{self.file}: hosts").items():
            self.add_host(None, str(name), _mapping(settings, f"{self.file}: hosts.{name}"))
        for name, spec in _mapping(data.get("groups"), f"{self.file}: groups").items():
            self._group(str(name), _mapping(spec, f"{self.file}: groups.{name}"))
        return self.finish("runbook", OWN_KEYS)

    def _group(self, name: str, spec: Mapping[str, Any]) -> None:
        where = f"{self.file}: groups.{name}"
        unknown = set(spec) - {"hosts", "children", "vars"}
        if unknown:
            raise InventoryError(f"{where}: unknown key(s): {', '.join(sorted(unknown))} "
                                 "(expected hosts, children, vars)")
        self.group(name)
        self.group_vars[name].update(_mapping(spec.get("vars"), f"{where}.vars"))
        hosts = spec.get("hosts") or []
        items = hosts.items() if isinstance(hosts, Mapping) else ((h, None) for h in _names(hosts, where))
        for host, settings in items:
            self.add_host(name, str(host), _mapping(settings, f"{where}.hosts.{host}"))
        for child in _names(spec.get("children") or [], f"{where}.children"):
            self.add_child(name, child)


def _names(value: Any, where: str) -> list[str]:
    if isinstance(value, Mapping):
        return [str(k) for k in value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int)) for v in value):
        return [str(v) for v in value]
    raise InventoryError(f"{where}: expected a list of names")


class AnsibleYaml(_Builder):
    """Ansible's YAML inventory: top-level groups, each with hosts, children and vars."""

    def build(self, data: Mapping[str, Any]) -> Inventory:
        for name, spec in data.items():
            self._group(str(name), spec, str(name))
        return self.finish("ansible-yaml", ANSIBLE_KEYS)

    def _group(self, name: str, spec: Any, where: str) -> None:
        spec = _mapping(spec, f"{self.file}: {where}")
        unknown = set(spec) - {"hosts", "children", "vars"}
        if unknown:
            raise InventoryError(f"{self.file}: {where}: unknown key(s) {', '.join(sorted(unknown))} "
                                 "(an Ansible group has hosts, children and vars)")
        self.group(name)
        self.group_vars[name].update(_mapping(spec.get("vars"), f"{self.file}: {where}.vars"))
        for host, variables in _mapping(spec.get("hosts"), f"{self.file}: {where}.hosts").items():
            self.add_host(name, str(host), _mapping(variables, f"{self.file}: {where}.hosts.{host}"))
        for child, child_spec in _mapping(spec.get("children"), f"{self.file}: {where}.children").items():
            self.add_child(name, str(child))
            self._group(str(child), child_spec, f"{where}.children.{child}")


class Ini(_Builder):
    """Ansible's INI inventory."""

    def build(self, text: str) -> Inventory:
        section, kind = "ungrouped", "hosts"
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            where = f"{self.file}:{number}"
            if line.startswith("["):
                section, kind = self._section(line, where)
            elif kind == "hosts":
                self._host_line(section, line, where)
            elif kind == "vars":
                key, sep, value = line.partition("=")
                if not sep:
                    raise InventoryError(f"{where}: expected key=value in [{section}:vars]")
                self.group_vars[section][key.strip()] = _unquote(value.strip())
            else:
                self.add_child(section, line.split()[0])
        return self.finish("ansible-ini", ANSIBLE_KEYS)

    def _section(self, line: str, where: str) -> tuple[str, str]:
        if not line.endswith("]"):
            raise InventoryError(f"{where}: unclosed section header {line!r}")
        name, _, kind = line[1:-1].strip().partition(":")
        if kind not in ("", "vars", "children"):
            raise InventoryError(f"{where}: unknown section type :{kind} (expected :vars or :children)")
        self.group(name)
        return name, kind or "hosts"

    def _host_line(self, group: str, line: str, where: str) -> None:
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise InventoryError(f"{where}: {exc}") from None
        variables: dict[str, Any] = {}
        for word in words[1:]:
            key, sep, value = word.partition("=")
            if not sep:
                raise InventoryError(f"{where}: expected key=value after the host name, got {word!r}")
            variables[key] = _literal(value)
        self.add_host(None if group == "ungrouped" else group, words[0], variables)
        if group == "ungrouped":
            self.group("ungrouped")


def _literal(value: str) -> Any:
    """Host-line values are Python literals where they parse (as in Ansible), else strings."""
    import ast

    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return value


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value
