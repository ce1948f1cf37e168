"""Fleet benchmark: one `true` fanned out to 100, 300 and 1,000 SSH hosts, `parallel: 100`.

The hosts are loopback addresses 127.0.x.y (127.0.0.2 ... 127.0.3.233), served by real
sshd processes listening on all of them: 16 addresses per sshd (its limit), 63 of them
on one port, each with `MaxStartups 300:30:400` and `MaxSessions 200` as a large site
sets them (tests/integration/sshd.py). Measured in the same run, per fleet size, in turns:

  a. `runbook run` of a one-step runbook whose target lists the hosts, `parallel: 100`
     (host keys checked against known_hosts, journal fsynced, console)
  b. the floor: a bare paramiko script, 100 worker threads taking hosts from a queue,
     connect (TCP_NODELAY) + auth + exec `true` + close; no host key check, no journal
  c. `ansible -f 100 fleet -m raw -a true` (Ansible's cheapest way to run a command:
     no module copied; OpenSSH, one cold connection per host), in .venv-bench only

Every run's whole process tree is sampled from /proc (bench/_tree.py): peak memory (PSS,
so forked workers' shared pages count once), threads and open descriptors.

Targets (issue 14): a at most 1.2x b, c at least 5x a, a's tree under 200 MB, time linear
in hosts / parallel (the CPU per added host from 300 to 1,000 at most 1.25x that from
100 to 300: CPU time, because wall time on a shared machine moves with its load; the
wall-clock figures per added host are printed beside), and threads and descriptors
bounded (at 1,000 hosts at most 1.25x what they are at 300: held per host, they would
grow 3.3x).
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._timing import (
    ROOT,
    Context,
    Sample,
    Target,
    fmt_seconds,
    load_average,
    machine,
    machine_line,
    print_tables,
    write_json,
)
from bench._tree import Peaks, run_watched

sys.path.insert(0, str(ROOT / "tests" / "integration"))
from sshd import Cluster, addresses

DESCRIPTION = "one `true` on 100, 300 and 1,000 SSH hosts (parallel 100) vs a paramiko floor and Ansible"
SIZES = (100, 300, 1000)
PARALLEL = 100
RUNS = 5  # ours and the floor, per size
RUNS_ANSIBLE = 2  # Ansible takes about a minute per run at 1,000 hosts
MEMORY_MB = 200
# Bounded: a resource held per host would grow 3.3x from 300 to 1,000 hosts; one bounded by
# `parallel` and the pool's idle connections stays put, give or take the threads that are
# still exiting (a closed transport's ends at its next 0.1 s tick) when a sample is taken.
BOUNDED = 1.25

FLOOR = '''\
"""The floor: one `true` on every host with paramiko and nothing else, N at a time."""
import queue, socket, sys, threading
import paramiko

hosts = open(sys.argv[1]).read().split()
port, user, keyfile, workers = int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
key = paramiko.Ed25519Key.from_private_key_file(keyfile)
todo = queue.SimpleQueue()
for host in hosts:
    todo.put(host)
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

def worker():
    while True:
        try:
            host = todo.get_nowait()
        except queue.Empty:
            return
        one(host)

threads = [threading.Thread(target=worker) for _ in range(min(workers, len(hosts)))]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("\\n".join(failed))
sys.exit(1 if failed else 0)
'''


@dataclass
class Measure:
    """One command measured several times: wall/CPU samples and the tree's peaks."""

    label: str
    command: list[str]
    runs: int
    samples: list[Sample] = field(default_factory=list)
    peaks: list[Peaks] = field(default_factory=list)

    @property
    def walls(self) -> list[float]:
        return [s.wall for s in self.samples]

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def peak(self) -> Peaks:
        out = Peaks()
        for p in self.peaks:
            out = out.max(p)
        return out

    def once(self) -> None:
        watched = run_watched(self.command)
        self.samples.append(watched.sample)
        self.peaks.append(watched.peaks)

    def summary(self) -> dict[str, Any]:
        return {"label": self.label, "runs": len(self.samples), "median_s": self.median,
                "min_s": min(self.walls), "max_s": max(self.walls), "samples_s": self.walls,
                "cpu_samples_s": [s.cpu for s in self.samples], "peaks": [vars(p) for p in self.peaks]}


def in_turns(measures: list[Measure], warmup: bool = True) -> None:
    """One warm-up each (unless `warmup` is off), then the runs in turns (a, b, a, b, ...)."""
    print(f"  {' | '.join(m.label for m in measures)}: {int(warmup)} warm-up + "
          f"{'/'.join(str(m.runs) for m in measures)} runs, in turns ", end="", flush=True)
    for m in measures:
        if warmup:
            run_watched(m.command)
    for turn in range(max(m.runs for m in measures)):
        for m in measures:
            if turn < m.runs:
                m.once()
        print(".", end="", flush=True)
    print(" " + ", ".join(f"{m.label} {fmt_seconds(m.median)}" for m in measures))


def run(ctx: Context) -> bool:
    """Start 63 sshd processes for 1,000 addresses, measure each size, write bench/out/fleet.json."""
    _require(ctx)
    _raise_fd_limit()
    before = load_average()
    cluster = Cluster.create(addresses(max(SIZES))).start()
    try:
        with tempfile.TemporaryDirectory(prefix="runbook-bench-fleet-") as tmp, _environment(cluster, Path(tmp)):
            measures = {size: _measure(ctx, Path(tmp), cluster, size) for size in SIZES}
    finally:
        cluster.destroy()
    info = {**machine(ctx), "load_average": before, "load_average_after": load_average(),
            "sshd_processes": len(cluster.servers)}
    targets = _targets(measures)
    results = {"benchmark": "fleet", "machine": info, "parallel": PARALLEL,
               "sizes": {str(n): {k: m.summary() for k, m in ms.items()} for n, ms in measures.items()},
               "targets": [{"name": t.name, "limit": t.limit, "measured": t.measured, "verdict": t.verdict}
                           for t in targets]}
    _report(info, measures, targets)
    write_json(ctx.out_dir / "fleet.json", results)
    print(f"\n  results written to {(ctx.out_dir / 'fleet.json').relative_to(ctx.root)}")
    return all(t.met for t in targets)


def _require(ctx: Context) -> None:
    if not ctx.baseline("ansible").exists():
        raise SystemExit(f"{ctx.baseline('ansible')} is missing: run `make bench`, or "
                         ".venv-bench/bin/pip install ansible-core paramiko")


def _raise_fd_limit() -> None:
    """A thousand connections (and Ansible's hundred forks with their pipes) need more
    than the usual 1,024 descriptors: raise the soft limit to the hard one, for our children."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@contextmanager
def _environment(cluster: Cluster, work: Path) -> Iterator[None]:
    """A scratch HOME (no ~/.ssh of the machine), the cluster's host keys, keys from files."""
    home = work / "home"
    home.mkdir()
    changes = {
        "HOME": str(home), "RUNBOOK_KNOWN_HOSTS": str(cluster.known_hosts()),
        "RUNBOOK_HOME": str(work / ".runbook"), "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False", "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o ControlPersist=no -o UserKnownHostsFile=/dev/null",
    }
    saved = {k: os.environ.get(k) for k in [*changes, "SSH_AUTH_SOCK", "RUNBOOK_INVENTORY"]}
    os.environ.update(changes)
    os.environ.pop("SSH_AUTH_SOCK", None)
    os.environ.pop("RUNBOOK_INVENTORY", None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _measure(ctx: Context, work: Path, c: Cluster, size: int) -> dict[str, Measure]:
    hosts = c.hosts[:size]
    print(f"  -- {size} hosts")
    (work / f"hosts-{size}.txt").write_text("\n".join(hosts) + "\n", encoding="utf-8")
    (work / "floor.py").write_text(FLOOR, encoding="utf-8")
    runbook = _runbook(work / f"fleet-{size}.yaml", c, hosts)
    _inventory(work / f"hosts-{size}.ini", c, hosts)
    runs = ctx.runs or RUNS
    ours = Measure("runbook run", [str(ctx.project("runbook")), "run", str(runbook), "--runs-dir",
                                   str(work / "runs"), "-q", "--non-interactive"], runs)
    floor = Measure("paramiko floor", [str(ctx.project("python")), str(work / "floor.py"),
                                       str(work / f"hosts-{size}.txt"), str(c.port), c.user,
                                       str(c.client_key), str(PARALLEL)], runs)
    ansible = Measure("ansible -m raw", [str(ctx.baseline("ansible")), "-i", str(work / f"hosts-{size}.ini"),
                                         "-f", str(PARALLEL), "fleet", "-m", "raw", "-a", "true"],
                      min(runs, RUNS_ANSIBLE))
    in_turns([ours, floor])
    in_turns([ansible], warmup=size == SIZES[0])  # a warm-up of 1,000 hosts would take a minute
    return {"ours": ours, "floor": floor, "ansible": ansible}


def _runbook(path: Path, c: Cluster, hosts: list[str]) -> Path:
    path.write_text(textwrap.dedent(f"""\
        kind: runbook
        version: 1
        id: bench-fleet
        title: Fleet benchmark
        defaults: {{timeout: 120s}}
        targets:
          fleet:
            hosts: [{', '.join(hosts)}]
            user: {c.user}
            port: {c.port}
            identity_file: '{c.client_key}'
            parallel: {PARALLEL}
        detection:
          - id: everywhere
            target: fleet
            run: 'true'
        """), encoding="utf-8")
    return path


def _inventory(path: Path, c: Cluster, hosts: list[str]) -> None:
    lines = ["[fleet]", *(f"h{i:04d} ansible_host={h}" for i, h in enumerate(hosts, 1)), "[fleet:vars]",
             f"ansible_port={c.port}", f"ansible_user={c.user}", f"ansible_ssh_private_key_file={c.client_key}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# -- targets and report ---------------------------------------------------------------------------


def _spread(values: list[float]) -> str:
    return f"{min(values):.2f}x - {max(values):.2f}x"


def _paired(a: Measure, b: Measure) -> list[float]:
    """a/b per turn: the two ran back to back, so each pair saw the same machine."""
    return [x / y for x, y in zip(a.walls, b.walls, strict=False)]


def _extremes(a: Measure, b: Measure) -> list[float]:
    """a/b at its lowest and highest over all samples (a and b did not take turns)."""
    return [min(a.walls) / max(b.walls), max(a.walls) / min(b.walls)]


def _marginal(measures: dict[int, dict[str, Measure]], key: str, cpu: bool = False) -> tuple[float, float]:
    """Seconds (of wall clock, or of CPU) per added host, 100 -> 300 and 300 -> 1,000."""
    small, mid, large = SIZES

    def median(n: int) -> float:
        m = measures[n][key]
        return statistics.median(s.cpu for s in m.samples) if cpu else m.median

    return (median(mid) - median(small)) / (mid - small), (median(large) - median(mid)) / (large - mid)


def _targets(measures: dict[int, dict[str, Measure]]) -> list[Target]:
    out = []
    for n in SIZES:
        m = measures[n]
        out.append(Target(f"{n} hosts: runbook run / paramiko floor", m["ours"].median / m["floor"].median,
                          1.2 + 1e-9, unit="x"))
        out.append(Target(f"{n} hosts: ansible / runbook run", m["ansible"].median / m["ours"].median, 5.0,
                          below=False, unit="x"))
    largest, mid = measures[SIZES[-1]]["ours"].peak, measures[SIZES[1]]["ours"].peak
    before, after = _marginal(measures, "ours", cpu=True)
    out += [
        Target(f"{SIZES[-1]} hosts: peak memory of runbook run's tree (PSS)", largest.pss_mb, MEMORY_MB,
               unit=" MB"),
        Target("CPU per added host, 300->1000 / 100->300 (linear: ~1)", after / before, 1.25, unit="x"),
        Target(f"threads at {SIZES[-1]} hosts / at {SIZES[1]}", largest.threads / max(mid.threads, 1), BOUNDED,
               unit="x"),
        Target(f"descriptors at {SIZES[-1]} hosts / at {SIZES[1]}", largest.fds / max(mid.fds, 1), BOUNDED,
               unit="x"),
    ]
    return out


_ROWS = (("ours", "`runbook run`"), ("floor", "paramiko floor"), ("ansible", "`ansible -m raw`"))


def _rows(measures: dict[int, dict[str, Measure]]) -> list[list[str]]:
    rows = []
    for n in SIZES:
        m = measures[n]
        for key, what in _ROWS:
            x, p = m[key], m[key].peak
            vs = {"ours": "",
                  "floor": f"runbook run / floor {m['ours'].median / x.median:.2f}x "
                           f"(per turn {_spread(_paired(m['ours'], x))})",
                  "ansible": f"ansible / runbook run {x.median / m['ours'].median:.2f}x "
                             f"(extremes {_spread(_extremes(x, m['ours']))})"}[key]
            rows.append([str(n), what, str(len(x.walls)), fmt_seconds(x.median),
                         f"{fmt_seconds(min(x.walls))} - {fmt_seconds(max(x.walls))}",
                         fmt_seconds(statistics.median(s.cpu for s in x.samples)), vs,
                         f"{p.pss_mb:.0f} MB", str(p.threads), str(p.fds), str(p.processes)])
    return rows


HEADERS = ["hosts", "command", "runs", "median wall", "min - max", "median CPU", "ratio of medians (spread)",
           "peak PSS", "threads", "fds", "processes"]


def _report(info: dict[str, Any], measures: dict[int, dict[str, Measure]], targets: list[Target]) -> None:
    def per_host(key: str, cpu: bool) -> str:
        before, after = _marginal(measures, key, cpu)
        return f"{before * 1000:.1f} ms (100->300), {after * 1000:.1f} ms (300->1000)"

    note = (f"per added host, wall: runbook run {per_host('ours', False)}, floor {per_host('floor', False)}; "
            f"CPU: runbook run {per_host('ours', True)}, floor {per_host('floor', True)}; {PARALLEL} at a time")
    print_tables(HEADERS, _rows(measures), targets,
                 heading=machine_line("Fleet", info, f"{info['sshd_processes']} sshd processes"), note=note)
