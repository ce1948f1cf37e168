"""`run` steps with a target, against a real sshd on loopback: output, exit codes,
streaming, timeouts, connection reuse and the journal."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from sshd import Cluster, remote_alive, target_yaml

from engine.executors.base import Cancel, Invocation, NullSink
from engine.fleet.ssh import SshExecutor, SshOptions
from engine.language.inventory import Host

pytestmark = pytest.mark.integration


def runbook(targets: str, steps: str, extra: str = "") -> str:
    return f"""\
kind: runbook
version: 1
id: ssh-test
title: SSH test
defaults: {{timeout: 30s}}
{extra}
targets:
{targets}
detection:
{steps}
"""


def test_a_step_runs_on_every_host_with_per_host_results(cluster: Cluster, live: Callable) -> None:
    """stdout, stderr and exit code of each host land in steps.<id>.hosts and the journal."""
    run = live(runbook(f"  web: {target_yaml(cluster)}",
                       "  - id: who\n    target: web\n    run: echo out-$(id -un); echo err >&2; exit 0\n"))
    assert run.result.outcome == "resolved"
    hosts = run.step("who")["hosts"]
    assert list(hosts) == cluster.hosts
    for result in hosts.values():
        assert result["status"] == "ok" and result["exit_code"] == 0
        assert result["stdout"] == f"out-{cluster.user}\n" and result["stderr"] == "err\n"
    finished = run.events("host.finished")
    assert sorted(e["host"] for e in finished) == sorted(cluster.hosts)
    assert finished[-1]["done"] == finished[-1]["total"] == len(cluster.hosts)
    for host in cluster.hosts:
        assert f"{host}: out-{cluster.user}" in run.console


def test_one_host_gives_the_step_its_stdout_and_exit_code(cluster: Cluster, live: Callable) -> None:
    """With a single host, `stdout`, `outputs` and `expect` work as for a local command."""
    run = live(runbook(f"  box: {target_yaml(cluster, cluster.hosts[:1])}",
                       "  - id: pct\n    target: box\n    run: echo 97\n"
                       "    outputs: {pct: '{{ stdout | int }}'}\n    expect: outputs.pct > 90\n"
                       "  - id: use\n    run: echo {{ steps.pct.outputs.pct }} {{ steps.pct.exit_code }}\n"))
    assert run.result.outcome == "resolved"
    assert run.step("pct")["outputs"] == {"pct": 97}
    assert run.step("use")["stdout"] == "97 0\n"


def test_exit_codes_stdin_and_env_behave_as_locally(cluster: Cluster, live: Callable) -> None:
    """exit_codes accepts 3, stdin is fed to the command, env is set remotely."""
    steps = """\
  - id: inactive
    target: box
    run: exit 3
    exit_codes: [0, 3]
  - id: feed
    target: box
    run: cat; echo " $GREETING"
    stdin: "from stdin"
    env: {GREETING: "hello world; $(not run)"}
  - id: missing
    target: box
    run: no-such-command-here
    continue_on_error: true
"""
    run = live(runbook(f"  box: {target_yaml(cluster, cluster.hosts[:1])}", steps))
    assert run.step("inactive")["status"] == "ok" and run.step("inactive")["exit_code"] == 3
    assert run.step("feed")["stdout"] == "from stdin hello world; $(not run)\n"
    missing = run.step("missing")
    assert missing["status"] == "failed" and missing["exit_code"] == 127
    assert missing["error"] == "command not found"


def test_one_connection_per_host_is_reused_across_steps(cluster: Cluster, live: Callable) -> None:
    """Twenty steps on two hosts open two connections, closed when the run ends."""
    steps = "".join(f"  - id: s{i}\n    target: two\n    run: 'true'\n" for i in range(20))
    run = live(runbook(f"  two: {target_yaml(cluster, cluster.hosts[:2])}", steps))
    assert run.result.outcome == "resolved"
    pool = run.services.remote.fanout.executor.pool
    assert pool.opened == 2
    assert pool._conns == {}  # closed at the end of the run


def test_a_timed_out_remote_command_is_killed_with_its_children(cluster: Cluster, live: Callable) -> None:
    """On timeout the remote process group gets SIGTERM: nothing is left running."""
    marker = "31.4159"
    steps = f"  - id: slow\n    target: box\n    timeout: 1s\n    run: sleep {marker} & sleep {marker}; wait\n"
    t0 = time.monotonic()
    run = live(runbook(f"  box: {target_yaml(cluster, cluster.hosts[:1])}", steps))
    assert time.monotonic() - t0 < 8
    slow = run.step("slow")
    host = slow["hosts"][cluster.hosts[0]]
    assert host["status"] == "timed_out" and slow["error"].startswith("timed out after 1s")
    deadline = time.monotonic() + 3
    while remote_alive(f"sleep {marker}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not remote_alive(f"sleep {marker}")


def test_cancel_stops_the_remote_command(cluster: Cluster) -> None:
    """Cancel (Ctrl-C) ends the step as aborted and signals the remote group."""
    import threading

    ex = SshExecutor(lambda t, n: Host(n, user=cluster.user, port=cluster.port,
                                       identity_file=str(cluster.client_key)),
                     SshOptions(known_hosts=(cluster.directory / "known_hosts",)))
    cancel = Cancel()
    threading.Timer(0.5, cancel.set).start()
    try:
        result = ex.run(Invocation("s", "run", "sleep 27.1828", host=cluster.hosts[1]), NullSink(), cancel)
    finally:
        ex.close()
    assert result.cancelled and result.extra["status"] == "aborted"
    deadline = time.monotonic() + 3
    while remote_alive("sleep 27.1828") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not remote_alive("sleep 27.1828")


def test_very_large_output_streams_and_keeps_a_bounded_tail(cluster: Cluster, live: Callable) -> None:
    """20 MB on stdout: the step completes, memory keeps the last 1 MB, logs get everything."""
    steps = "  - id: big\n    target: box\n    run: head -c 20000000 /dev/zero | tr '\\0' x; echo END\n"
    t0 = time.monotonic()
    run = live(runbook(f"  box: {target_yaml(cluster, cluster.hosts[:1])}", steps), show_output=False)
    assert time.monotonic() - t0 < 20
    big = run.step("big")
    assert big["status"] == "ok" and big["truncated"]
    assert big["stdout"].endswith("xxxEND\n")
    log = run.run_dir / big["logs"][0]
    assert log.stat().st_size == 20000004


def test_secrets_are_masked_in_remote_output_and_errors(cluster: Cluster, live: Callable) -> None:
    """A secret input echoed by the remote command never reaches the console or journal."""
    extra = "inputs:\n  token: {type: string, secret: true, default: s3cr3t-value}\n"
    steps = "  - id: leak\n    target: box\n    run: echo {{ inputs.token }}; exit 1\n"
    run = live(runbook(f"  box: {target_yaml(cluster, cluster.hosts[:1])}", steps, extra))
    journal = (run.run_dir / "journal.jsonl").read_text()
    assert "s3cr3t-value" not in run.console and "s3cr3t-value" not in journal
    assert "***" in run.step("leak")["stdout"]


def test_rollback_of_a_remote_step_runs_on_its_hosts(cluster: Cluster, live: Callable) -> None:
    """A failed run undoes the completed remote step on each of its hosts."""
    steps = """\
  - id: change
    target: web
    run: echo changed
    rollback:
      - {id: undo, target: web, run: echo undone-$(id -un)}
  - id: breaks
    run: exit 1
"""
    run = live(runbook(f"  web: {target_yaml(cluster, cluster.hosts[:3])}", steps))
    assert run.result.outcome == "failed"
    undo = run.step("undo")
    assert undo["status"] == "ok" and len(undo["hosts"]) == 3
    names = [r["event"] for r in run.records]
    assert "rollback.finished" in names and names[-1] == "run.finished"


def test_paramiko_is_not_imported_for_a_local_run(tmp_path: object) -> None:
    """The local path stays fast: no target, no paramiko."""
    import subprocess
    import sys

    code = (
        "import sys, io, tempfile, pathlib\n"
        "from engine.language.validation import load_runbook\n"
        "from engine.run.session import LiveOptions, run_live\n"
        "d = pathlib.Path(tempfile.mkdtemp())\n"
        "p = d / 'r.yaml'\n"
        "p.write_text('kind: runbook\\nversion: 1\\nid: l\\ntitle: L\\ndetection:\\n  - {id: a, run: \"true\"}\\n')\n"
        "run_live(load_runbook(p), {}, LiveOptions(runs_dir=d / 'runs', stream=io.StringIO(),"
        " install_signals=False))\n"
        "print('paramiko' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_commands_run_under_bin_sh_and_inline_when_that_is_the_login_shell(cluster: Cluster) -> None:
    """The first command learns the login shell; as it is /bin/sh, later ones skip the extra exec."""
    from engine.fleet.ssh import remote_command

    inv = Invocation("s", "run", "echo $0", env={"A": "b c"})
    assert remote_command(inv).endswith("export A='b c'; exec /bin/sh -c 'echo $0'")
    assert remote_command(inv, "/bin/sh").endswith("export A='b c'; echo $0")
    assert "exec" in remote_command(inv, "/bin/bash")
    ex = SshExecutor(lambda t, n: Host(n, user=cluster.user, port=cluster.port,
                                       identity_file=str(cluster.client_key)),
                     SshOptions(known_hosts=(cluster.directory / "known_hosts",)))
    try:
        first = ex.run(Invocation("s", "run", "echo $A", host=cluster.hosts[0], env={"A": "x"}), NullSink(), Cancel())
        (conn,) = ex.pool._conns.values()
        second = ex.run(Invocation("s", "run", "echo $A", host=cluster.hosts[0], env={"A": "y"}), NullSink(), Cancel())
    finally:
        ex.close()
    assert conn.login_shell == "/bin/sh"
    assert (first.stdout, second.stdout) == ("x\n", "y\n")


def test_idle_connections_beyond_the_pools_bound_are_closed(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fan-out over more hosts than the pool keeps idle leaves only the most recently used
    connections open (each is a thread, a socket and sshd processes): bounded whatever the
    fleet size. A later command on a kept host reuses its connection; on another, reconnects."""
    from engine.fleet import _ssh_pool
    from engine.fleet.fanout import FanOut, Policy

    monkeypatch.setattr(_ssh_pool, "MAX_IDLE", 2)
    ex = SshExecutor(lambda t, n: Host(n, user=cluster.user, port=cluster.port,
                                       identity_file=str(cluster.client_key)),
                     SshOptions(known_hosts=(cluster.directory / "known_hosts",)))
    finished: list[str] = []
    try:
        out = FanOut(ex).execute(Invocation("s", "run", "true"), cluster.hosts, Policy(parallel=3), NullSink(),
                                 Cancel(), on_host=lambda hr, _: finished.append(hr.host))
        assert out.ok and ex.pool.opened == len(cluster.hosts)
        kept = sorted(conn.endpoint.address for conn in ex.pool._conns.values())
        assert kept == sorted(finished[-2:])
        deadline = time.monotonic() + 10  # a closed transport's thread ends at its next 0.1 s tick
        while _transport_threads() > 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _transport_threads() == 2
        ex.run(Invocation("s", "run", "true", host=kept[0]), NullSink(), Cancel())
        assert ex.pool.opened == len(cluster.hosts)
        ex.run(Invocation("s", "run", "true", host=finished[0]), NullSink(), Cancel())
        assert ex.pool.opened == len(cluster.hosts) + 1 and len(ex.pool._conns) == 2
    finally:
        ex.close()


def _transport_threads() -> int:
    import threading

    return sum(1 for t in threading.enumerate() if type(t).__name__ == "Transport")
