"""Where connection settings come from, against a real sshd: ~/.ssh/config (a file in
tmp, never the real one), ProxyJump through a second sshd, ssh-agent, inventories."""

from __future__ import annotations

import os
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sshd import Cluster

from engine.executors.base import Cancel, Invocation, NullSink
from engine.fleet.ssh import SshExecutor, SshOptions
from engine.language.inventory import Host

pytestmark = pytest.mark.integration


def runbook(targets: str, run: str = "echo $(id -un)@ok") -> str:
    return f"""\
kind: runbook
version: 1
id: config
title: Config
defaults: {{timeout: 30s}}
targets:
{targets}
detection:
  - id: check
    target: t
    run: {run}
"""


def ssh_config(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_an_ssh_config_alias_gives_address_port_user_and_key(cluster: Cluster, live: Callable,
                                                             tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """`hosts: [db]` reaches the HostName, Port, User and IdentityFile of `Host db`."""
    config = ssh_config(tmp_path / "ssh_config", f"""\
        Host db
          HostName {cluster.hosts[2]}
          Port {cluster.port}
          User {cluster.user}
          IdentityFile {cluster.client_key}
        Host *
          ConnectTimeout 5
        """)
    monkeypatch.setenv("RUNBOOK_SSH_CONFIG", str(config))
    run = live(runbook("  t: {hosts: [db]}"))
    assert run.result.outcome == "resolved", run.console
    assert run.step("check")["hosts"]["db"]["stdout"] == f"{cluster.user}@ok\n"
    assert "db: " in run.console  # the host is shown by its name, not its address


def test_the_default_user_config_file_is_read(cluster: Cluster, live: Callable, ssh_env: Path) -> None:
    """Without RUNBOOK_SSH_CONFIG, ~/.ssh/config (HOME is a temporary directory here) applies."""
    (ssh_env / ".ssh").mkdir()
    ssh_config(ssh_env / ".ssh" / "config", f"""\
        Host web-*
          HostName {cluster.hosts[3]}
          Port {cluster.port}
          User {cluster.user}
          IdentityFile {cluster.client_key}
        """)
    run = live(runbook("  t: {hosts: [web-1]}"))
    assert run.result.outcome == "resolved", run.console


@pytest.fixture
def jump_pair(make_cluster: Callable) -> tuple[Cluster, Cluster]:
    """A jump host and a target behind it, trusting the same client key."""
    jump: Cluster = make_cluster(1, block=5)
    target: Cluster = make_cluster(1, block=6, client_key=jump.client_key)
    known = target.directory / "known_hosts"
    known.write_text(jump.host_key_line(jump.hosts[0]) + "\n" + target.host_key_line(target.hosts[0]) + "\n")
    return jump, target


def _jump_config(tmp_path: Path, jump: Cluster, target: Cluster) -> Path:
    return ssh_config(tmp_path / "ssh_config", f"""\
        Host bastion
          HostName {jump.hosts[0]}
          Port {jump.port}
          User {jump.user}
          IdentityFile {jump.client_key}
        Host inner
          HostName {target.hosts[0]}
          Port {target.port}
          User {target.user}
          IdentityFile {jump.client_key}
          ProxyJump bastion
        """)


def test_proxy_jump_reaches_a_host_through_a_bastion(jump_pair: tuple[Cluster, Cluster], live: Callable,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ProxyJump (one hop): the target connection runs inside a channel of the bastion's."""
    jump, target = jump_pair
    monkeypatch.setenv("RUNBOOK_SSH_CONFIG", str(_jump_config(tmp_path, jump, target)))
    monkeypatch.setenv("RUNBOOK_KNOWN_HOSTS", str(target.directory / "known_hosts"))
    run = live(runbook("  t: {hosts: [inner]}"))
    assert run.result.outcome == "resolved", run.console
    pool = run.services.remote.fanout.executor.pool
    assert pool.opened == 2  # the bastion, then the target through it


def test_proxy_jump_fails_clearly_when_the_bastion_refuses_forwarding(
        make_cluster: Callable, live: Callable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Proof the target is reached through the jump: no forwarding there, no connection."""
    jump: Cluster = make_cluster(1, block=7, extra=["AllowTcpForwarding no"])
    target: Cluster = make_cluster(1, block=8, client_key=jump.client_key)
    known = target.directory / "known_hosts"
    known.write_text(jump.host_key_line(jump.hosts[0]) + "\n" + target.host_key_line(target.hosts[0]) + "\n")
    monkeypatch.setenv("RUNBOOK_SSH_CONFIG", str(_jump_config(tmp_path, jump, target)))
    monkeypatch.setenv("RUNBOOK_KNOWN_HOSTS", str(known))
    run = live(runbook("  t: {hosts: [inner]}"))
    result = run.step("check")["hosts"]["inner"]
    assert result["status"] == "unreachable"
    assert f"through {jump.user}@{jump.hosts[0]}:{jump.port}" in result["error"]


def test_proxy_jump_from_the_target_definition(jump_pair: tuple[Cluster, Cluster], live: Callable,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """`proxy_jump: user@host:port` on the target itself. The target's identity_file is
    for the target only (as in OpenSSH), so the bastion's key comes from ssh config."""
    jump, target = jump_pair
    monkeypatch.setenv("RUNBOOK_KNOWN_HOSTS", str(target.directory / "known_hosts"))
    config = target.directory / "jump_config"
    config.write_text(f"Host {jump.hosts[0]}\n  IdentityFile {jump.client_key}\n")
    monkeypatch.setenv("RUNBOOK_SSH_CONFIG", str(config))
    spec = (f"{{hosts: ['{target.hosts[0]}'], port: {target.port}, user: {target.user}, "
            f"identity_file: '{jump.client_key}', proxy_jump: '{jump.user}@{jump.hosts[0]}:{jump.port}'}}")
    run = live(runbook(f"  t: {spec}"))
    assert run.result.outcome == "resolved", run.console


@pytest.fixture
def agent(tmp_path: Path, cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An ssh-agent holding the cluster's client key."""
    sock = str(tmp_path / "agent.sock")
    proc = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            subprocess.run(["sleep", "0.01"], check=True)
        env = dict(os.environ, SSH_AUTH_SOCK=sock)
        subprocess.run(["ssh-add", "-q", str(cluster.client_key)], env=env, check=True, capture_output=True)
        monkeypatch.setenv("SSH_AUTH_SOCK", sock)
        yield sock
    finally:
        proc.terminate()
        proc.wait()


def test_keys_from_the_ssh_agent(cluster: Cluster, live: Callable, agent: str) -> None:
    """No identity file anywhere: the agent's key logs in."""
    spec = f"{{hosts: ['{cluster.hosts[4]}'], port: {cluster.port}, user: {cluster.user}}}"
    run = live(runbook(f"  t: {spec}"))
    assert run.result.outcome == "resolved", run.console


def test_password_auth_is_never_prompted(cluster: Cluster, ssh_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No key, password_env names an unset variable: auth fails at once, saying why."""
    monkeypatch.delenv("OPS_SSH_PASSWORD", raising=False)
    ex = SshExecutor(lambda t, n: Host(n, user=cluster.user, port=cluster.port, password_env="OPS_SSH_PASSWORD"),
                     SshOptions(known_hosts=(cluster.directory / "known_hosts",)))
    try:
        result = ex.run(Invocation("s", "run", "true", host=cluster.hosts[0]), NullSink(), Cancel())
    finally:
        ex.close()
    assert result.extra["status"] == "auth_failed"
    assert "$OPS_SSH_PASSWORD is not set" in (result.error or "")


def test_a_group_target_from_an_ansible_inventory(cluster: Cluster, live: Callable, tmp_path: Path) -> None:
    """`group: web` with an Ansible INI inventory: names, addresses, port, user and key from it."""
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(textwrap.dedent(f"""\
        [web]
        web-a ansible_host={cluster.hosts[0]}
        web-b ansible_host={cluster.hosts[1]}

        [web:vars]
        ansible_port={cluster.port}
        ansible_user={cluster.user}
        ansible_ssh_private_key_file={cluster.client_key}
        """))
    run = live(runbook("  t: {group: web}"), inventory=str(inventory))
    assert run.result.outcome == "resolved", run.console
    assert list(run.step("check")["hosts"]) == ["web-a", "web-b"]


def test_a_group_target_from_runbook_inventory_via_the_environment(cluster: Cluster, live: Callable,
                                                                   tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """RUNBOOK_INVENTORY names this project's inventory format."""
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(textwrap.dedent(f"""\
        kind: inventory
        vars: {{port: {cluster.port}, user: {cluster.user}, identity_file: "{cluster.client_key}"}}
        groups:
          db:
            hosts:
              db-1: {{address: "{cluster.hosts[5]}"}}
        """))
    monkeypatch.setenv("RUNBOOK_INVENTORY", str(inventory))
    run = live(runbook("  t: {group: db}"))
    assert run.result.outcome == "resolved", run.console
    assert run.step("check")["hosts"]["db-1"]["status"] == "ok"


# -- resolution only (no connection) ---------------------------------------------------------


def _endpoint(config: Path, host: Host) -> object:
    from engine.fleet._ssh_config import SshConfig

    return SshConfig(SshOptions(config_file=config)).endpoint(host)


def test_config_fills_only_what_the_target_and_inventory_leave_unset(tmp_path: Path) -> None:
    config = ssh_config(tmp_path / "config", """\
        Host db-*
          HostName %h.internal
          User dbadmin
          Port 2200
          IdentityFile ~/.ssh/db_key
          HostKeyAlias db-cluster
          UserKnownHostsFile ~/extra_known_hosts
        """)
    ep = _endpoint(config, Host("db-1", user="ops", identity_file="/keys/explicit"))
    assert (ep.address, ep.port, ep.user) == ("db-1.internal", 2200, "ops")  # type: ignore[attr-defined]
    assert ep.identity_files == ("/keys/explicit", os.path.expanduser("~/.ssh/db_key"))  # type: ignore[attr-defined]
    assert ep.known_name == "db-cluster"  # type: ignore[attr-defined]
    assert ep.known_hosts == (os.path.expanduser("~/extra_known_hosts"),)  # type: ignore[attr-defined]


def test_proxy_jump_chains_and_none(tmp_path: Path) -> None:
    """`ProxyJump a,b`: the target goes through b, which goes through a; `none` disables it."""
    config = ssh_config(tmp_path / "config", """\
        Host direct
          ProxyJump none
        Host *
          ProxyJump first@a:2201,b
        """)
    ep = _endpoint(config, Host("target"))
    assert ep.jump.address == "b" and ep.jump.jump.describe() == "first@a:2201"  # type: ignore[attr-defined]
    assert ep.jump.jump.jump is None  # type: ignore[attr-defined]
    assert _endpoint(config, Host("direct")).jump is None  # type: ignore[attr-defined]
    explicit = _endpoint(config, Host("x", proxy_jump="ops@j:2022")).jump  # type: ignore[attr-defined]
    assert (explicit.user, explicit.address, explicit.port) == ("ops", "j", 2022)
    assert explicit.jump.address == "b"  # `Host *` applies to the jump host too, as in OpenSSH


def test_known_hosts_names_use_brackets_for_other_ports(tmp_path: Path) -> None:
    config = ssh_config(tmp_path / "config", "Host *\n  User u\n")
    assert _endpoint(config, Host("h", port=22)).known_name == "h"  # type: ignore[attr-defined]
    assert _endpoint(config, Host("h", port=2222)).known_name == "[h]:2222"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("config", "imported"), [("Host *\n  User u\n", False),
                                                  ("Match exec \"true\"\n  User fromexec\n", True)])
def test_invoke_is_imported_only_for_match_exec(tmp_path: Path, config: str, imported: bool) -> None:
    """paramiko pulls in invoke (and unittest.mock, ~0.2 s) only to run `Match exec`."""
    import sys

    path = ssh_config(tmp_path / "config", config)
    code = ("import sys\nfrom pathlib import Path\nfrom engine.fleet._ssh_config import SshConfig, SshOptions\n"
            "from engine.language.inventory import Host\n"
            f"ep = SshConfig(SshOptions(config_file=Path({str(path)!r}))).endpoint(Host('h'))\n"
            "print(ep.user, 'invoke' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1] == str(imported)
    if imported:
        assert out[0] == "fromexec"
