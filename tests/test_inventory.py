"""Inventories (this project's YAML, Ansible INI and YAML) and target resolution."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.commands import cli
from engine.fleet.hosts import Resolver, TargetError, parse_host_entry
from engine.language.inventory import (
    Host,
    InventoryError,
    expand,
    load_inventory,
    parse_inventory,
)
from engine.language.model import Target

OWN = """\
kind: inventory
version: 1
vars: {user: ops, region: eu}
hosts:
  db-1: {address: 10.0.1.5, user: postgres}
groups:
  web:
    hosts:
      web-1: {address: 10.0.0.11}
      web-2: {address: 10.0.0.12, port: 2222}
    vars: {user: deploy, identity_file: ~/.ssh/web}
  databases:
    hosts: [db-1]
    children: [replicas]
  replicas:
    hosts:
      db-2: {address: 10.0.1.6, proxy_jump: bastion, connect_timeout: 5s}
"""

INI = """\
# comment
mail.example.com

[web]
web[01:03] ansible_port=2222
db1 ansible_host=10.0.0.5 ansible_ssh_common_args='-o ProxyJump=jump.example.com'

[web:vars]
ansible_user=deploy
ansible_ssh_private_key_file=/keys/deploy

[prod:children]
web

[prod:vars]
ansible_user=prod
env="production"
"""

ANSIBLE_YAML = """\
all:
  vars: {ansible_user: base}
  hosts:
    lonely.example.com:
  children:
    prod:
      vars: {ansible_user: prod, ansible_port: 2200}
      children:
        webservers:
          vars: {ansible_user: web}
          hosts:
            www[a:c].example.com:
            special: {ansible_host: 192.0.2.9, ansible_port: 22022}
        dbservers:
          hosts:
            pg-1: {ansible_ssh_private_key_file: /keys/pg, ansible_ssh_common_args: "-J admin@bastion:2222"}
"""


def test_own_format_groups_children_and_vars() -> None:
    """Groups list their hosts and their children's; group vars beat `vars`, host settings beat both."""
    inv = parse_inventory(OWN, "inv.yaml")
    assert inv.format == "runbook"
    assert inv.members("web") == ["web-1", "web-2"]
    assert inv.members("databases") == ["db-1", "db-2"]
    assert inv.members("all") == ["db-1", "web-1", "web-2", "db-2"]
    assert inv.host("web-2") == Host("web-2", "10.0.0.12", 2222, "deploy", "~/.ssh/web",
                                     vars=inv.host("web-2").vars)
    assert inv.host("db-1").user == "postgres" and inv.host("db-1").address == "10.0.1.5"
    db2 = inv.host("db-2")
    assert (db2.proxy_jump, db2.connect_timeout, db2.user) == ("bastion", 5.0, "ops")
    assert inv.vars_of("web-1")["region"] == "eu"


def test_own_format_rejects_unknown_keys_naming_them() -> None:
    """A typo is an error with the place, not a silently ignored key."""
    with pytest.raises(InventoryError, match=r"groups\.web: unknown key\(s\): host"):
        parse_inventory("kind: inventory\ngroups:\n  web: {host: [a]}\n", "inv.yaml")
    with pytest.raises(InventoryError, match="port 70000 is out of range"):
        parse_inventory("kind: inventory\nhosts:\n  a: {port: 70000}\n", "inv.yaml").host("a")


def test_ansible_ini_groups_ranges_children_and_precedence() -> None:
    """Ranges expand, :children nest, a child group's vars beat its parent's, host vars beat both."""
    inv = parse_inventory(INI, "hosts.ini")
    assert inv.format == "ansible-ini"
    assert inv.members("web") == ["web01", "web02", "web03", "db1"]
    assert inv.members("prod") == inv.members("web")
    assert inv.members("ungrouped") == ["mail.example.com"]
    assert inv.members("all") == ["mail.example.com", "web01", "web02", "web03", "db1"]
    web02 = inv.host("web02")
    assert (web02.port, web02.user, web02.identity_file) == (2222, "deploy", "/keys/deploy")
    db1 = inv.host("db1")
    assert (db1.address, db1.proxy_jump) == ("10.0.0.5", "jump.example.com")
    assert inv.vars_of("web01")["env"] == "production"
    assert inv.host("mail.example.com") == Host("mail.example.com", vars=inv.host("mail.example.com").vars)


def test_ansible_ini_errors_name_the_line() -> None:
    with pytest.raises(InventoryError, match=r"hosts.ini:2: expected key=value"):
        parse_inventory("[web]\nweb1 port\n", "hosts.ini")
    with pytest.raises(InventoryError, match=r"hosts.ini:1: unknown section type :child"):
        parse_inventory("[web:child]\nx\n", "hosts.ini")


def test_ansible_ini_without_sections_is_read_as_ungrouped_hosts() -> None:
    inv = parse_inventory("alpha ansible_port=2201\nbeta\n", "hosts")
    assert inv.members("all") == ["alpha", "beta"] and inv.host("alpha").port == 2201


def test_ansible_yaml_children_and_vars() -> None:
    """Nested children, `all` vars, host ranges and per-host connection variables."""
    inv = parse_inventory(ANSIBLE_YAML, "hosts.yml")
    assert inv.format == "ansible-yaml"
    assert inv.members("webservers") == ["wwwa.example.com", "wwwb.example.com", "wwwc.example.com", "special"]
    assert inv.members("prod") == [*inv.members("webservers"), "pg-1"]
    assert inv.host("wwwb.example.com").user == "web" and inv.host("wwwb.example.com").port == 2200
    special = inv.host("special")
    assert (special.address, special.port, special.user) == ("192.0.2.9", 22022, "web")
    pg = inv.host("pg-1")
    assert (pg.user, pg.identity_file, pg.proxy_jump) == ("prod", "/keys/pg", "admin@bastion:2222")
    assert inv.host("lonely.example.com").user == "base"
    assert {"all", "ungrouped", "prod", "webservers", "dbservers"} <= inv.group_names()


def test_ansible_yaml_rejects_a_group_with_unknown_keys() -> None:
    with pytest.raises(InventoryError, match=r"all: unknown key\(s\) host"):
        parse_inventory("all:\n  host: {a: null}\n", "hosts.yml")


def test_host_ranges() -> None:
    assert expand("web[01:03]") == ["web01", "web02", "web03"]
    assert expand("db-[a:c]") == ["db-a", "db-b", "db-c"]
    assert expand("n[1:9:4]") == ["n1", "n5", "n9"]
    assert expand("r[1:2]-[a:b]") == ["r1-a", "r1-b", "r2-a", "r2-b"]
    with pytest.raises(InventoryError):
        expand("x[ab:c]")


@pytest.mark.parametrize("pattern", ["web[1:10000000]", "w[1:200]-[1:200]", "x[" + "9" * 5000 + ":1]",
                                     "x[1:9:0]", "x[1:99999999999999999999]"])
def test_a_host_range_too_large_or_malformed_is_refused_before_it_is_listed(pattern: str) -> None:
    """Ten million hosts from one line (or a bound past Python's digit limit, or a zero
    step) is an inventory error naming the pattern, not gigabytes of names or a crash."""
    with pytest.raises(InventoryError, match=r"stands for more than 10000 hosts|bad host range") as err:
        expand(pattern)
    assert repr(pattern[:30]) in str(err.value) or pattern[:30] in str(err.value)
    assert len(expand("w[1:100]-[1:100]")) == 10_000  # as many as allowed


def test_host_entries_with_user_and_port() -> None:
    assert parse_host_entry("db-1") == ("db-1", None, None)
    assert parse_host_entry("ops@db-1:2222") == ("db-1", "ops", 2222)
    assert parse_host_entry("[2001:db8::1]:22") == ("2001:db8::1", None, 22)
    assert parse_host_entry("2001:db8::1") == ("2001:db8::1", None, None)


def test_unreadable_inventory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="cannot read inventory"):
        load_inventory(tmp_path / "missing.ini")


@pytest.mark.parametrize(("text", "expected"), [
    ("all:\n  vars: {n: " + "9" * 5000 + "}\n", "not a valid int"),
    ("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(f"{k}: &{k} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
     for p, k in zip("abcdefgh", "bcdefghi", strict=True)), "alias"),
    ("all: " + "[" * 200 + "]" * 200 + "\n", "deeper than"),
])
def test_a_hostile_inventory_is_refused_under_the_loaders_limits(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InventoryError, match=expected):
        load_inventory(path)


def test_an_inventory_past_the_size_limit_or_not_a_file_is_not_read(tmp_path: Path) -> None:
    big = tmp_path / "big.ini"
    big.write_text("[web]\n" + "web-1\n" * 300_000, encoding="utf-8")
    with pytest.raises(InventoryError, match="larger than"):
        load_inventory(big)
    fifo = tmp_path / "fifo.ini"
    os.mkfifo(fifo)
    with pytest.raises(InventoryError, match="not a regular file"):
        load_inventory(fifo)


# -- resolving targets ---------------------------------------------------------------------


def _write(tmp_path: Path, text: str, name: str = "inventory.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_hosts_are_rendered_split_and_given_the_target_settings() -> None:
    """Templates render; one entry may hold several hosts; `user@host:port` wins over the target."""
    resolver = Resolver()
    target = Target("box", hosts=("{{ inputs.hosts }}", "root@extra:2200"), user="ops", port=22,
                    identity_file="/k", connect_timeout=3.0)
    names = resolver("box", target, {"inputs": {"hosts": "a, b\nc"}})
    assert names == ["a", "b", "c", "extra"]
    assert resolver.host("box", "a") == Host("a", None, 22, "ops", "/k", connect_timeout=3.0)
    assert resolver.host("box", "extra").user == "root" and resolver.host("box", "extra").port == 2200


def test_inventory_settings_beat_the_targets(tmp_path: Path) -> None:
    """As in Ansible, a host's inventory variables win over the play's (the target's) defaults."""
    path = _write(tmp_path, OWN)
    resolver = Resolver(path)
    names = resolver("web", Target("web", group="web", user="nobody", port=2200), {})
    assert names == ["web-1", "web-2"]
    assert resolver.host("web", "web-1").user == "deploy"
    assert resolver.host("web", "web-1").port == 2200  # the inventory sets no port for web-1
    assert resolver.host("web", "web-2").port == 2222


def test_the_inventory_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOK_INVENTORY", str(_write(tmp_path, INI, "hosts.ini")))
    assert Resolver()("t", Target("t", group="prod"), {}) == ["web01", "web02", "web03", "db1"]


def test_a_group_target_without_inventory_or_group_fails_clearly(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNBOOK_INVENTORY", raising=False)
    with pytest.raises(TargetError, match="no inventory was given: pass --inventory FILE"):
        Resolver()("web", Target("web", group="web"), {})
    with pytest.raises(TargetError, match=r"group 'webs' is not in the inventory .*\(groups: databases, replicas, web"):
        Resolver(_write(tmp_path, OWN))("web", Target("web", group="webs"), {})
    with pytest.raises(TargetError, match="has no hosts"):
        Resolver()("t", Target("t", hosts=("{{ inputs.none }}",)), {"inputs": {"none": " "}})


def test_an_unreadable_inventory_fails_the_step_that_needs_it(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match=r"cannot read inventory .*missing\.ini"):
        Resolver(tmp_path / "missing.ini")("web", Target("web", group="web"), {})


def test_listed_hosts_get_their_inventory_settings(tmp_path: Path) -> None:
    """A host named in `hosts:` that the inventory knows is reached as the inventory says."""
    resolver = Resolver(_write(tmp_path, OWN))
    assert resolver("db", Target("db", hosts=("db-1", "elsewhere")), {}) == ["db-1", "elsewhere"]
    assert resolver.host("db", "db-1").address == "10.0.1.5"
    assert resolver.host("db", "elsewhere") == Host("elsewhere")


# -- the command line ------------------------------------------------------------------------

RUNBOOK = """\
kind: runbook
version: 1
id: inv
title: Inventory
defaults: {timeout: 30s}
targets:
  web: {group: web, parallel: 5}
  gone: {group: gone}
detection:
  - id: check
    target: web
    max_failures: 25%
    run: uptime
recovery:
  - id: verify
    target: web
    run: uptime
    until: exit_code == 0
    every: 5s
    timeout: 1m
"""


def test_validate_with_an_inventory_flags_a_missing_group(tmp_path: Path) -> None:
    """RB104 names the group missing from the inventory; without one, groups are not checked."""
    book = _write(tmp_path, RUNBOOK, "book.yaml")
    inventory = _write(tmp_path, INI, "hosts.ini")
    runner = CliRunner()
    flagged = runner.invoke(cli, ["validate", str(book), "--inventory", str(inventory)])
    assert flagged.exit_code == 1
    assert "group 'gone' is not in the inventory [RB104]" in flagged.output
    assert runner.invoke(cli, ["validate", str(book)]).exit_code == 0
    env = runner.invoke(cli, ["validate", str(book)], env={"RUNBOOK_INVENTORY": str(inventory)})
    assert env.exit_code == 1
    missing = runner.invoke(cli, ["validate", str(book), "--inventory", str(tmp_path / "nope.ini")])
    assert missing.exit_code == 2 and "cannot read inventory" in missing.output


def test_dry_run_lists_hosts_per_target_without_connecting(tmp_path: Path) -> None:
    """Each target's hosts with how they would be reached, and each step's fan-out settings."""
    book = _write(tmp_path, RUNBOOK, "book.yaml")
    inventory = _write(tmp_path, INI, "hosts.ini")
    out = CliRunner().invoke(cli, ["run", str(book), "--dry-run", "--inventory", str(inventory)])
    assert out.exit_code == 0, out.output
    assert "target web: web01 (deploy@web01:2222), web02 (deploy@web02:2222)" in out.output
    assert "db1 (deploy@10.0.0.5 via jump.example.com)" in out.output
    assert "target gone: <error: group 'gone' is not in the inventory" in out.output
    assert "fan-out: parallel 5, max_failures 25%" in out.output
    assert "$ uptime" in out.output
