"""SSH fan-out benchmark: one step running `true` on 50 hosts, against a real sshd.

The 50 "hosts" are loopback addresses 127.0.0.2-51 served by four sshd processes on
one port (tests/integration/sshd.py starts them, with generated keys and a /bin/sh
test user). Measured in the same run, as wall-clock time of whole commands (median
after a warm-up, commands taking turns):

  a. `runbook run` of a one-step runbook whose target has the 50 hosts, parallel 50
  b. the floor: a bare paramiko script, connect + exec `true` + close on the 50 hosts
     with 50 threads (TCP_NODELAY; no host key check, no journal, no console)
  c. `ansible -f 50 all -m command -a true -c paramiko` (Ansible's paramiko plugin)
  d. the same with OpenSSH (`-c ssh`), ControlMaster/ControlPersist off
  e. `runbook run` of 1 and of 200 steps (`true`) on one host: the per-step cost once
     the connection is open, (T200 - T1) / 199; and sshd's log must show that the
     200-step run logged in once.

Ansible, and paramiko for its plugin, live in .venv-bench only. Targets from the
issue: a at most 1.3x b; c and d at least 5x slower than a; e under 5 ms per step,
one connection.
"""

from __future__ import annotations

import os
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._timing import (
    ROOT,
    TIMING_HEADERS,
    Context,
    Target,
    Timing,
    fmt_seconds,
    load_average,
    machine,
    machine_line,
    print_tables,
    run_once,
    time_interleaved,
    timing_cells,
    write_json,
)

sys.path.insert(0, str(ROOT / "tests" / "integration"))
from sshd import Cluster, addresses

DESCRIPTION = "runbook run on 50 SSH hosts vs a bare paramiko floor and Ansible; per-step cost on one host"
HOSTS = 50
STEPS = 200
RUNS_OURS = 9  # per measurement of ours and of the floor (about a second each)
RUNS_STEPS = 9  # the per-step figure is a difference of two medians: it needs more runs
RUNS_ANSIBLE = 3  # Ansible over OpenSSH takes ~20 s per run here


FLOOR = '''\
"""The floor: what 50 parallel SSH commands cost with paramiko and nothing else."""
import socket, sys, threading
import paramiko

hosts, port, user, keyfile = sys.argv[1].split(","), int(sys.argv[2]), sys.argv[3], sys.argv[4]
key = paramiko.Ed25519Key.from_private_key_file(keyfile)
failed = []

def one(host):
    try:
        sock = socket.create_connection((host, port), 10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport = paramiko.Transport(sock)
        transport.start_client(timeout=10)
        transport.auth_publickey(user, key)
        channel = transport.open_session()
        channel.exec_command("true")
        if channel.recv_exit_status() != 0:
            failed.append(host)
        transport.close()
    except Exception as exc:
        failed.append(f"{host}: {exc}")

threads = [threading.Thread(target=one, args=(h,)) for h in hosts]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("\\n".join(failed))
sys.exit(1 if failed else 0)
'''


def run(ctx: Context) -> bool:
    """Start the sshd cluster, measure, print the tables, write bench/out/fanout.json."""
    _require(ctx)
    before = load_average()
    cluster = Cluster.create(addresses(HOSTS)).start()
    try:
        with tempfile.TemporaryDirectory(prefix="runbook-bench-fanout-") as tmp:
            work = Path(tmp)
            with _environment(cluster, work):
                setup = _files(work, cluster)
                logins = _logins_for_many_steps(ctx, setup)
                timings = _measure(ctx, setup)
    finally:
        cluster.destroy()
    info = {**machine(ctx), "load_average": before, "load_average_after": load_average()}
    targets = _targets(timings, logins)
    results = _results(ctx, info, timings, targets, logins)
    _report(results, timings, targets)
    write_json(ctx.out_dir / "fanout.json", results)
    print(f"\n  results written to {(ctx.out_dir / 'fanout.json').relative_to(ctx.root)}")
    return all(t.met for t in targets)


def _require(ctx: Context) -> None:
    missing = [tool for tool in ("ansible",) if not ctx.baseline(tool).exists()]
    if missing or not (ctx.root / ".venv-bench" / "bin" / "python").exists():
        raise SystemExit(f"{ctx.baseline('ansible')} is missing: run `make bench`, or "
                         ".venv-bench/bin/pip install ansible-core paramiko")


@contextmanager
def _environment(cluster: Cluster, work: Path) -> Iterator[None]:
    """Every measured command sees a scratch HOME (no ~/.ssh of the machine) and the
    cluster's host keys; Ansible checks no host keys (it would otherwise prompt)."""
    home = work / "home"
    home.mkdir()
    changes = {
        "HOME": str(home), "RUNBOOK_KNOWN_HOSTS": str(cluster.directory / "known_hosts"),
        "RUNBOOK_HOME": str(work / ".runbook"), "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3", "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o ControlPersist=no", "ANSIBLE_NOCOLOR": "1",
    }
    saved = {k: os.environ.get(k) for k in [*changes, "SSH_AUTH_SOCK", "RUNBOOK_INVENTORY"]}
    os.environ.update(changes)
    os.environ.pop("SSH_AUTH_SOCK", None)  # keys come from files, for everyone alike
    os.environ.pop("RUNBOOK_INVENTORY", None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass(frozen=True)
class Setup:
    """The files of one benchmark run, and the floor's arguments."""

    work: Path
    cluster: Cluster

    def path(self, name: str) -> Path:
        return self.work / name

    def floor_args(self) -> list[str]:
        c = self.cluster
        return [",".join(c.hosts), str(c.port), c.user, str(c.client_key)]


def _files(work: Path, c: Cluster) -> Setup:
    c.known_hosts()
    target = (f"{{hosts: [{', '.join(c.hosts)}], user: {c.user}, port: {c.port}, "
              f"identity_file: '{c.client_key}', parallel: {HOSTS}}}")
    one = f"{{hosts: ['{c.hosts[0]}'], user: {c.user}, port: {c.port}, identity_file: '{c.client_key}'}}"
    _runbook(work / "fanout.yaml", target, 1)
    _runbook(work / "steps1.yaml", one, 1)
    _runbook(work / f"steps{STEPS}.yaml", one, STEPS)
    (work / "floor.py").write_text(FLOOR, encoding="utf-8")
    lines = ["[fleet]"] + [f"h{i:02d} ansible_host={h}" for i, h in enumerate(c.hosts, 1)] + [
        "[fleet:vars]", f"ansible_port={c.port}", f"ansible_user={c.user}",
        f"ansible_ssh_private_key_file={c.client_key}"]
    (work / "hosts.ini").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Setup(work, c)


def _runbook(path: Path, target: str, steps: int) -> Path:
    body = "".join(f"  - id: s{i}\n    target: fleet\n    run: 'true'\n" for i in range(steps))
    path.write_text(textwrap.dedent(f"""\
        kind: runbook
        version: 1
        id: bench-fanout
        title: Fan-out benchmark
        defaults: {{timeout: 60s}}
        targets:
          fleet: {target}
        detection:
        """) + body, encoding="utf-8")
    return path


def _ours(ctx: Context, setup: Setup, runbook: str) -> list[str]:
    return [str(ctx.project("runbook")), "run", str(setup.path(runbook)), "--runs-dir", str(setup.path("runs")),
            "-q", "--non-interactive"]


def _logins_for_many_steps(ctx: Context, setup: Setup) -> int:
    """How often the 200-step run logged in, as sshd's log says: once, if connections are reused."""
    c = setup.cluster
    log = c.server_of(c.hosts[0]).log
    before = log.read_text(errors="replace").count("Accepted publickey")
    print(f"  {STEPS} steps on one host log in once ...", end="", flush=True)
    run_once(_ours(ctx, setup, f"steps{STEPS}.yaml"))
    logins = log.read_text(errors="replace").count("Accepted publickey") - before
    print(f" {logins} login(s)")
    return logins


def _measure(ctx: Context, setup: Setup) -> dict[str, Timing]:
    """Ours against the floor in turns, then the per-step runs, then Ansible's two plugins."""
    def runs(default: int) -> int:
        return ctx.runs or default

    ansible = [str(ctx.baseline("ansible")), "-i", str(setup.path("hosts.ini")), "-f", str(HOSTS), "fleet",
               "-m", "command", "-a", "true"]
    fan = {
        "ours": Timing(f"runbook run ({HOSTS} hosts)", _ours(ctx, setup, "fanout.yaml"), runs(RUNS_OURS)),
        "floor": Timing("paramiko floor", [str(ctx.project("python")), str(setup.path("floor.py")),
                                           *setup.floor_args()], runs(RUNS_OURS)),
    }
    steps = {
        "steps1": Timing("runbook run (1 step, 1 host)", _ours(ctx, setup, "steps1.yaml"), runs(RUNS_STEPS)),
        "steps_many": Timing(f"runbook run ({STEPS} steps, 1 host)", _ours(ctx, setup, f"steps{STEPS}.yaml"),
                             runs(RUNS_STEPS)),
    }
    baselines = {
        "ansible_paramiko": Timing("ansible -c paramiko", [*ansible, "-c", "paramiko"], runs(RUNS_ANSIBLE)),
        "ansible_ssh": Timing("ansible -c ssh", [*ansible, "-c", "ssh"], runs(RUNS_ANSIBLE)),
    }
    time_interleaved(list(fan.values()))
    time_interleaved(list(steps.values()))
    time_interleaved(list(baselines.values()))
    return {**fan, **steps, **baselines}


def _per_step(t: dict[str, Timing]) -> float:
    return (t["steps_many"].median - t["steps1"].median) / (STEPS - 1)


def _ratios(t: dict[str, Timing]) -> dict[str, float]:
    ours = t["ours"].median
    return {"ours_vs_floor": ours / t["floor"].median,
            "ansible_paramiko_vs_ours": t["ansible_paramiko"].median / ours,
            "ansible_ssh_vs_ours": t["ansible_ssh"].median / ours}


def _targets(t: dict[str, Timing], logins: int) -> list[Target]:
    r = _ratios(t)
    return [
        Target(f"{HOSTS} hosts: runbook run / paramiko floor", r["ours_vs_floor"], 1.3 + 1e-9, unit="x"),
        Target("ansible -c paramiko / runbook run", r["ansible_paramiko_vs_ours"], 5.0, below=False, unit="x"),
        Target("ansible -c ssh / runbook run", r["ansible_ssh_vs_ours"], 5.0, below=False, unit="x"),
        Target(f"per-step cost on an open connection ({STEPS} steps)", _per_step(t), 0.005),
        Target(f"logins for {STEPS} steps on one host", float(logins), 1.5, unit=""),
    ]


def _results(ctx: Context, info: dict[str, Any], t: dict[str, Timing], targets: list[Target],
             logins: int) -> dict[str, Any]:
    return {
        "benchmark": "fanout",
        "machine": info,
        "hosts": HOSTS,
        "ansible_version": _first_line([str(ctx.baseline("ansible")), "--version"]),
        "timings": {key: timing.summary() for key, timing in t.items()},
        "ratios": _ratios(t),
        "per_step_s": _per_step(t),
        "logins_for_many_steps": logins,
        "targets": [{"name": x.name, "limit": x.limit, "measured": x.measured,
                     "goal": "below" if x.below else "at least", "verdict": x.verdict} for x in targets],
    }


def _first_line(command: list[str]) -> str:
    import subprocess

    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    return (proc.stdout.strip().splitlines() or ["unknown"])[0]


# -- report -------------------------------------------------------------------------------------

_ROWS = (  # key, what, compared with
    ("ours", f"`runbook run`, 1 step on {HOSTS} hosts (parallel {HOSTS})", None),
    ("floor", f"bare paramiko, connect + exec + close, {HOSTS} threads (floor)", "ours"),
    ("ansible_paramiko", f"`ansible -f {HOSTS} -m command -a true -c paramiko`", "ours"),
    ("ansible_ssh", f"`ansible -f {HOSTS} -m command -a true -c ssh` (ControlPersist off)", "ours"),
    ("steps1", "`runbook run`, 1 step on 1 host", None),
    ("steps_many", f"`runbook run`, {STEPS} steps on 1 host", None),
)


def _figure_rows(t: dict[str, Timing]) -> list[list[str]]:
    return [[what, *timing_cells(t[key]), f"{t[key].median / t[other].median:.2f}x" if other else ""]
            for key, what, other in _ROWS]


def _report(results: dict[str, Any], t: dict[str, Timing], targets: list[Target]) -> None:
    print_tables(["measurement", *TIMING_HEADERS, "time vs runbook run"], _figure_rows(t), targets,
                 heading=machine_line("Fan-out", results["machine"], results["ansible_version"]),
                 note=f"per step on an open connection: {fmt_seconds(results['per_step_s'])}; "
                      f"logins for {STEPS} steps: {results['logins_for_many_steps']}")
