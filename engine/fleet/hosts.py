"""Hosts of a target: which hosts a step's `target` means (its `group:` read from the
inventory, its templated `hosts:` rendered and split), and how to reach each one.

The inventory file itself (formats, variables, connection settings) is read by
engine/language/inventory.py; this module decides, for one run, which hosts a step runs on.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from engine.errors import TemplateError
from engine.language.inventory import ENV, SETTINGS, Host, Inventory, InventoryError, load_inventory
from engine.language.model import Target

__all__ = ["Resolver", "TargetError", "decided_later", "host_entries", "parse_host_entry", "rendered_group"]

_SPLIT = re.compile(r"[\s,]+")


class TargetError(TemplateError):
    """A target that resolves to no hosts: the step fails with this message."""


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

    reads_environment = True  # no inventory given: $RUNBOOK_INVENTORY's (a drill's resolver reads none)

    def __init__(self, inventory: str | os.PathLike[str] | None = None) -> None:
        self.path = (os.fspath(inventory) if inventory else
                     os.environ.get(ENV) or None if self.reads_environment else None)
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
            for member in self._group(name, rendered_group(name, target, ctx)):
                hosts.setdefault(member, self._with_inventory(Host(member), target))
        for i, template in enumerate(target.hosts):
            for entry in host_entries(template, ctx, f"targets.{name}.hosts[{i}]"):
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
            later = decided_later(runbook.targets[name])
            if later:
                return [later]
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


def host_entries(template: str, ctx: Mapping[str, Any], where: object) -> list[str]:
    """A `hosts:` entry rendered: one expression giving a list (`{{ steps.find_lbs.outputs.hosts }}`)
    gives its items; text is split at commas and blanks (`"a, b c"` is three hosts)."""
    from engine.templates import templating

    value = templating.render_value(template, ctx, where=where)
    if isinstance(value, (list, tuple)):
        words = [str(v).strip() for v in value if v is not None]
    else:
        words = _SPLIT.split(str(value)) if value is not None else []
    return [word for word in words if word]


def decided_later(target: Target) -> str | None:
    """For a dry-run: `decided at run time (...)` when the target's hosts or group come
    from earlier steps' results (`{{ steps.find_lbs.outputs.hosts }}`)."""
    from engine.templates import templating

    later = [t.strip() for t in (*target.hosts, target.group or "") if "steps" in templating.analyze(t).names]
    return f"decided at run time ({', '.join(later)})" if later else None


def rendered_group(name: str, target: Target, ctx: Mapping[str, Any]) -> str:
    """The target's `group:`, its template rendered (`{{ inputs.tier }}-lbs`)."""
    from engine.templates import templating

    group = target.group or ""
    if not templating.has_template(group):
        return group
    rendered = templating.render(group, ctx, where=f"targets.{name}.group").strip()
    if not rendered:
        raise TargetError(f"target '{name}': group `{group}` rendered empty", where=f"targets.{name}.group")
    return rendered
