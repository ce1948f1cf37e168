"""Lint rules for this project's inventories (`kind: inventory`): every child group exists,
no group contains itself, addresses are host names or IP addresses, host ranges expand.

The schema has checked the shape; this module reads the schema-valid data once into
typed entries with the data path each came from, so every finding has its place.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cached_property
from typing import Any, NamedTuple

from .diagnostics import Diagnostic
from .loader import Document
from .rules import ERROR, DataPath, Finding, did_you_mean, rule, run_rules

_IMPLICIT_GROUPS = ("all", "ungrouped")
# RFC 1123 host names (and the underscores real inventories use), or an IP address.
_LABEL = r"[A-Za-z0-9_][A-Za-z0-9_-]{0,62}"
_HOST_NAME = re.compile(rf"^(?=.{{1,253}}\.?$){_LABEL}(?:\.{_LABEL})*\.?$")


class Entry(NamedTuple):
    """A name written in the inventory, and where (`key`: the name is a mapping key)."""

    name: str
    path: DataPath
    key: bool


class InventoryCheck:
    """What the inventory rules look at, read once per file from schema-valid data."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.data: dict[str, Any] = doc.data

    @cached_property
    def groups(self) -> dict[str, dict[str, Any]]:
        return {str(k): (v or {}) for k, v in (self.data.get("groups") or {}).items()}

    @cached_property
    def children(self) -> dict[str, list[Entry]]:
        """Group -> the child groups it names, in order."""
        return {name: list(_entries(spec.get("children"), ("groups", name, "children")))
                for name, spec in self.groups.items()}

    def hosts(self) -> Iterator[tuple[Entry, dict[str, Any]]]:
        """Every host written by name, with its own settings ({} for a bare name)."""
        for name, settings in (self.data.get("hosts") or {}).items():
            yield Entry(str(name), ("hosts", name), True), settings or {}
        for group, spec in self.groups.items():
            for entry in _entries(spec.get("hosts"), ("groups", group, "hosts")):
                settings = spec["hosts"].get(entry.name) if isinstance(spec.get("hosts"), dict) else None
                yield entry, settings or {}

    def settings(self) -> Iterator[tuple[DataPath, dict[str, Any]]]:
        """Every mapping of variables (top-level, groups', hosts') with its path."""
        yield ("vars",), self.data.get("vars") or {}
        for group, spec in self.groups.items():
            yield ("groups", group, "vars"), spec.get("vars") or {}
        for entry, settings in self.hosts():
            yield entry.path, settings


def _entries(value: Any, path: DataPath) -> Iterator[Entry]:
    if isinstance(value, dict):
        yield from (Entry(str(k), (*path, k), True) for k in value)
    elif isinstance(value, list):
        yield from (Entry(str(v), (*path, i), False) for i, v in enumerate(value))


def lint_inventory(doc: Document) -> tuple[Any, list[Diagnostic]]:
    """Every inventory rule's findings, and the Inventory when it builds."""
    from ._inventory_formats import Own
    from .inventory import InventoryError

    diags = run_rules("inventory", InventoryCheck(doc), doc)
    try:
        return Own(doc.file).build(doc.data), diags
    except InventoryError:
        return None, diags  # a finding above says where


@rule("RB301", "unknown-child-group", ERROR,
      "A child group nobody defines is empty: its parent silently misses the hosts meant for it.",
      kind="inventory")
def _unknown_children(c: InventoryCheck) -> Iterator[Finding]:
    known = set(c.groups) | set(_IMPLICIT_GROUPS)
    for parent, entries in c.children.items():
        for child in entries:
            if child.name not in known:
                yield Finding(child.path, f"group '{parent}' names child group '{child.name}', which is not "
                                          f"defined under groups{did_you_mean(child.name, c.groups)}",
                              key=child.key)


@rule("RB302", "group-cycle", ERROR,
      "A group that is its own descendant through `children` makes membership meaningless.",
      kind="inventory")
def _group_cycles(c: InventoryCheck) -> Iterator[Finding]:
    reported: set[str] = set()
    for start in c.children:
        chain = _cycle(c.children, [start], set())
        if chain is None or chain[0] in reported:
            continue
        reported.update(chain)
        closing = next(e for e in c.children[chain[-2]] if e.name == chain[-1])
        yield Finding(closing.path, f"group '{chain[0]}' contains itself: {' -> '.join(chain)}", key=closing.key)


def _cycle(children: dict[str, list[Entry]], chain: list[str], seen: set[str]) -> list[str] | None:
    """A path from chain[0] back to itself; `seen`: groups already explored from chain[0]."""
    for child in children.get(chain[-1], ()):
        if child.name == chain[0]:
            return [*chain, child.name]
        if child.name not in seen:
            seen.add(child.name)
            found = _cycle(children, [*chain, child.name], seen)
            if found is not None:
                return found
    return None


@rule("RB303", "bad-address", ERROR,
      "An `address` is a host name or an IP address; a port, a user or a URL in it never connects.",
      kind="inventory")
def _bad_addresses(c: InventoryCheck) -> Iterator[Finding]:
    for path, settings in c.settings():
        address = settings.get("address") if isinstance(settings, dict) else None
        if isinstance(address, str):
            problem = address_problem(address)
            if problem:
                yield Finding((*path, "address"), f"address {address!r} is not a host name or IP address: {problem}")


def address_problem(address: str) -> str | None:
    """Why `address` is not something to connect to; None when it is."""
    import ipaddress

    text = address.strip("[]") if address.startswith("[") else address
    try:
        ipaddress.ip_address(text)
        return None
    except ValueError:
        pass
    if _HOST_NAME.match(address):
        return None
    if "://" in address:
        return "write the host alone, not a URL"
    if "@" in address:
        return "a user goes in `user:`"
    if re.fullmatch(r"[^:\s]+:[0-9]+", address):
        return "a port goes in `port:`"
    return "use letters, digits, dots, dashes and underscores, or an IP address"


@rule("RB304", "bad-host-range", ERROR,
      "A host range such as `web[01:20]` must expand to at least one host.", kind="inventory")
def _bad_ranges(c: InventoryCheck) -> Iterator[Finding]:
    from ._inventory_formats import expand_range
    from .inventory import InventoryError

    for entry, _ in c.hosts():
        if "[" in entry.name:
            try:
                expand_range(entry.name)
            except InventoryError as exc:
                yield Finding(entry.path, f"{exc.message.split(': ', 1)[-1]}: a range runs from the first to "
                                          "the last, both numbers ([01:20]) or both single letters ([a:f])",
                              key=entry.key)
