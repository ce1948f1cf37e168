"""Inventories: the hosts and groups a runbook's `group:` targets name, read from a file.

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
the SSH executor connects. Which hosts a step's `target` means is decided in
engine/fleet/hosts.py; this module only reads files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ._inventory_formats import AnsibleYaml, Ini, Own, expand_range
from ._inventory_model import SETTINGS, Group, Host, Inventory, InventoryError
from .loader import LoadError, load_value, read_text

__all__ = ["ENV", "SETTINGS", "Group", "Host", "Inventory", "InventoryError", "expand", "inventory_from_data",
           "inventory_groups", "load_inventory", "parse_inventory"]

ENV = "RUNBOOK_INVENTORY"  # names the inventory when --inventory does not


def load_inventory(path: str | os.PathLike[str]) -> Inventory:
    """Read an inventory file in any of the three formats, under the runbook loader's
    limits (a regular file, its size, nesting, aliases, numbers): an inventory is a file
    like any other a run is handed."""
    file = os.fspath(path)
    try:
        text = read_text(file)
    except LoadError as exc:
        raise InventoryError(f"cannot read inventory {file}: {exc.diagnostic.message}") from None
    return parse_inventory(text, file)


def parse_inventory(text: str, file: str = "<inventory>") -> Inventory:
    """An inventory from text: INI when the first line opens a [section], else YAML."""
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


def inventory_from_data(data: Mapping[str, Any], file: str) -> Inventory:
    """An inventory in this project's format given as data (`groups`, `hosts`, `vars`), as a
    scenario's inline `inventory:` gives it; `file` names where it was written."""
    return Own(file).build({"kind": "inventory", **data})


def expand(pattern: str, file: str = "<inventory>") -> list[str]:
    """Ansible host ranges: `web[01:03]` -> web01, web02, web03; `db-[a:c]`; `[1:9:2]`."""
    return expand_range(pattern, file)


def inventory_groups(path: str | os.PathLike[str]) -> frozenset[str]:
    """Group names of an inventory file (for `runbook validate --inventory`)."""
    return load_inventory(path).group_names()
