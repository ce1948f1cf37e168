"""Faults with a real sshd: each gives the right per-host status, a clear message,
rollbacks per policy and a complete journal."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sshd import Cluster, keygen, target_yaml

pytestmark = pytest.mark.integration

DEAD = "127.0.9.250"  # nothing listens there


def runbook(targets: str, steps: str) -> str:
    return f"""\
kind: runbook
version: 1
id: faults
title: Faults
defaults: {{timeout: 30s}}
targets:
{targets}
remediation:
  - id: prepare
    run: echo prepared
    rollback:
      - {{id: unprepare, run: echo unprepared}}
{steps}
"""


def complete(run: object) -> None:
    """The journal ends with run.finished and has a host.finished for every host result."""
    records = run.records  # type: ignore[attr-defined]
    assert records[0]["event"] == "run.started" and records[-1]["event"] == "run.finished"
    for finished in (r for r in records if r["event"] == "step.finished" and r["hosts"]):
        recorded = {r["host"] for r in records if r["event"] == "host.finished" and r["step"] == finished["step"]}
        ran = {h for h, v in finished["hosts"].items() if v["status"] != "not_run"}
        assert recorded == ran


def test_a_host_that_is_down_fails_alone_with_a_clear_message(cluster: Cluster, live: Callable) -> None:
    """Nothing listening: `unreachable`, connection refused; the other hosts still run; rollback runs."""
    steps = "  - id: check\n    target: web\n    run: echo up\n"
    run = live(runbook(f"  web: {target_yaml(cluster, [cluster.hosts[0], DEAD])}", steps))
    check = run.step("check")
    assert check["hosts"][cluster.hosts[0]]["status"] == "ok"
    dead = check["hosts"][DEAD]
    assert dead["status"] == "unreachable" and "refused" in dead["error"]
    assert run.result.outcome == "failed" and "1 of 2 host(s) failed" in check["error"]
    assert run.step("unprepare")["status"] == "ok"
    complete(run)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a hung host)."""
    server = socket.socket()
    server.bind((DEAD, 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for sock in [*held, server]:
        sock.close()


def test_connect_timeout_is_separate_from_the_command_timeout(cluster: Cluster, live: Callable,
                                                              silent_port: int, capfd: pytest.CaptureFixture[str],
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """A host that never answers fails after connect_timeout (1s), not the step's 30s,
    and paramiko prints nothing to the console."""
    target = f"{{hosts: ['{DEAD}'], port: {silent_port}, user: x, connect_timeout: 1s}}"
    t0 = time.monotonic()
    run = live(runbook(f"  hung: {target}", "  - id: check\n    target: hung\n    run: 'true'\n"))
    assert time.monotonic() - t0 < 6
    host = run.step("check")["hosts"][DEAD]
    assert host["status"] == "unreachable" and "handshake" in host["error"]
    err = capfd.readouterr().err
    assert "Traceback" not in err and "paramiko" not in err
    assert not [r for r in caplog.records if r.name.startswith("paramiko")]
    complete(run)


def test_refused_mid_fan_out_stops_new_hosts_after_max_failures(make_cluster: Callable,
                                                                live: Callable,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Two of four hosts go away between steps: their connections are reopened once and
    refused; after max_failures the step starts no new host; rollbacks run per host."""
    c: Cluster = make_cluster(4, per_server=2)
    monkeypatch.setenv("RUNBOOK_KNOWN_HOSTS", str(c.directory / "known_hosts"))
    first, second = c.servers
    order = [*second.listen, *first.listen]  # the hosts that will fail come first
    steps = """\
  - id: deploy
    target: fleet
    run: echo deployed
    rollback:
      - {id: undeploy, target: fleet, run: echo undeployed}
  - id: drop
    run: echo dropping
  - id: verify
    target: fleet
    parallel: 1
    max_failures: 1
    run: echo verified
"""
    # The second server dies (with its sessions) once `deploy` is done.
    import engine.executors.local as local_mod

    real_run = local_mod.LocalExecutor.run

    def local_run(self: object, invocation: object, sink: object, cancel: object) -> object:
        if getattr(invocation, "step", "") == "drop":
            second.kill_all()
        return real_run(self, invocation, sink, cancel)  # type: ignore[arg-type]

    monkeypatch.setattr(local_mod.LocalExecutor, "run", local_run)
    run = live(runbook(f"  fleet: {target_yaml(c, order)}", steps))
    verify = run.step("verify")["hosts"]
    assert [verify[h]["status"] for h in order] == ["unreachable", "unreachable", "not_run", "not_run"]
    assert "refused" in verify[order[0]]["error"]
    assert "2 not started" in run.step("verify")["error"]
    undeploy = run.step("undeploy")["hosts"]
    assert [undeploy[h]["status"] for h in order] == ["unreachable", "unreachable", "ok", "ok"]
    assert run.events("rollback.finished")[0]["status"] == "failed"
    complete(run)


def test_rejected_authentication_is_reported_per_host(cluster: Cluster, live: Callable, tmp_path: Path) -> None:
    """A key the server does not know: auth_failed, naming the user and what was tried."""
    wrong = keygen(tmp_path / "wrong_key")
    steps = "  - id: check\n    target: web\n    run: 'true'\n"
    run = live(runbook(f"  web: {target_yaml(cluster, cluster.hosts[:2], identity_file=str(wrong))}", steps))
    for host in cluster.hosts[:2]:
        result = run.step("check")["hosts"][host]
        assert result["status"] == "auth_failed"
        assert f"authentication as {cluster.user}" in result["error"] and str(wrong) in result["error"]
        assert "password_env" in result["error"]
    complete(run)


def _fingerprint(pub: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True, check=True).stdout
    return out.split()[1]


def test_unknown_host_key_is_refused_then_accepted_on_request(cluster: Cluster, live: Callable,
                                                               tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Unknown key: refused with its fingerprint and the way to accept it; with
    --accept-new-host-keys it is recorded, and later runs trust it."""
    known = tmp_path / "project_known_hosts"
    monkeypatch.setenv("RUNBOOK_KNOWN_HOSTS", str(known))
    text = runbook(f"  box: {target_yaml(cluster, cluster.hosts[:1])}",
                   "  - id: check\n    target: box\n    run: 'true'\n")
    refused = live(text)
    result = refused.step("check")["hosts"][cluster.hosts[0]]
    assert result["status"] == "host_key"
    assert _fingerprint(cluster.host_key.with_suffix(".pub")) in result["error"]
    assert "--accept-new-host-keys" in result["error"]
    assert not known.exists()
    accepted = live(text, accept_new_host_keys=True)
    assert accepted.result.outcome == "resolved"
    assert known.read_text().strip() == cluster.host_key_line(cluster.hosts[0])
    assert live(text).result.outcome == "resolved"


def test_a_changed_host_key_is_always_refused(make_cluster: Callable, live: Callable,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's key is regenerated between runs: refused loudly, even with accept-new."""
    c: Cluster = make_cluster(1, block=2)
    known = c.directory / "known_hosts"
    monkeypatch.setenv("RUNBOOK_KNOWN_HOSTS", str(known))
    text = runbook(f"  box: {target_yaml(c)}", "  - id: check\n    target: box\n    run: 'true'\n")
    assert live(text).result.outcome == "resolved"
    before = known.read_text()
    new_key = c.new_host_key(c.hosts[0])
    run = live(text, accept_new_host_keys=True)
    result = run.step("check")["hosts"][c.hosts[0]]
    assert result["status"] == "host_key" and "HOST KEY CHANGED" in result["error"]
    assert _fingerprint(new_key.with_suffix(".pub")) in result["error"]
    assert known.read_text() == before
    assert run.step("unprepare")["status"] == "ok"
    complete(run)


def test_sshd_killed_during_a_step_fails_the_host_and_rolls_back(make_cluster: Callable, live: Callable,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capfd: pytest.CaptureFixture[str]) -> None:
    """The server dies mid-command: the host is unreachable (the command may have partly
    run), the run fails, the local rollback still runs, and the journal is complete."""
    c: Cluster = make_cluster(1, block=3)
    monkeypatch.setenv("RUNBOOK_KNOWN_HOSTS", str(c.directory / "known_hosts"))
    server = c.servers[0]
    steps = "  - id: long\n    target: box\n    run: echo started; sleep 20\n"
    timer = threading.Timer(1.0, server.kill_all)
    timer.start()
    t0 = time.monotonic()
    try:
        run = live(runbook(f"  box: {target_yaml(c)}", steps))
    finally:
        timer.cancel()
    assert time.monotonic() - t0 < 10
    result = run.step("long")["hosts"][c.hosts[0]]
    assert result["status"] == "unreachable" and "lost while the command ran" in result["error"]
    assert result["stdout"] == "started\n"
    assert run.result.outcome == "failed" and run.step("unprepare")["status"] == "ok"
    assert "Traceback" not in capfd.readouterr().err
    complete(run)


def test_a_dropped_connection_is_reopened_once(make_cluster: Callable, live: Callable,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection drops between steps (sshd still up): the next step reconnects and runs."""
    c: Cluster = make_cluster(1, block=4)
    monkeypatch.setenv("RUNBOOK_KNOWN_HOSTS", str(c.directory / "known_hosts"))
    import engine.executors.local as local_mod

    real_run = local_mod.LocalExecutor.run

    def local_run(self: object, invocation: object, sink: object, cancel: object) -> object:
        if getattr(invocation, "step", "") == "drop":
            c.servers[0].kill_sessions()
        return real_run(self, invocation, sink, cancel)  # type: ignore[arg-type]

    monkeypatch.setattr(local_mod.LocalExecutor, "run", local_run)
    steps = ("  - id: one\n    target: box\n    run: echo one\n  - id: drop\n    run: 'true'\n"
             "  - id: two\n    target: box\n    run: echo two\n")
    run = live(runbook(f"  box: {target_yaml(c)}", steps))
    assert run.result.outcome == "resolved"
    assert run.step("two")["stdout"] == "two\n"
    assert run.services.remote.fanout.executor.pool.opened == 2
