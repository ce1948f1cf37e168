"""Live-run benchmark: a runbook of 500 local steps each running `true`.

Measured in the same run, as wall-clock time of whole commands (median after a
warm-up, commands taking turns):

  a. `runbook run` of the 500-step runbook, and of a 1-step one (the difference, over
     499, is the cost of a step; the rest is start-up). Journaled and fsynced as always
     (one durable barrier before each command), and again with RUNBOOK_JOURNAL_FSYNC=0
     to show the engine's own cost apart from the disk's.
  b. the floor: a Python loop of 500 `subprocess.run(['true'])` (and of 1); and the
     durable floor (issue 14): the same loop writing one journal-sized line to a file and
     fsyncing it before each command, what any engine that keeps our crash-safety
     promise must pay.
  c. Chaos Toolkit: an experiment of 500 process actions (`chaos --no-version-check run`),
     and of 1.
  d. Ansible: `ansible-playbook`, connection local, 500 `command: true` tasks, and 1
     (one run each: about a quarter of a second per task).
  e. peak memory of `runbook run` while a step prints 1 GiB.
  f. instructions per step (callgrind, bench/_instructions.py: the engine's process and the
     durable floor's, 500 steps less 1, over 499; the kernel's work and the commands'
     own processes left out): what the engine's code costs a step, whatever the load.
  g. system calls per step (`strace -c`, when strace is installed; the same two processes,
     500 steps less 1, over 499): what a step asks of the kernel.

Chaos Toolkit and Ansible live in .venv-bench only; BENCH_LIVE_PEERS=0 leaves them out
(a quick look at the engine against its floors). Targets from the issues: the engine's
own work per step (engine minus durable floor, per step) at most 0.15 ms; total at
most 1.25x the durable floor (issue 14); at least 200x faster per step than Ansible;
`runbook run` start-up under 100 ms; 1 GiB of output with peak RSS under 100 MB.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from bench import _instructions
from bench._timing import (
    Context,
    Target,
    Timing,
    command_env,
    fmt_seconds,
    load_average,
    machine,
    print_tables,
    time_interleaved,
    write_json,
)

DESCRIPTION = "runbook run of 500 `true` steps vs a subprocess loop, Chaos Toolkit and Ansible"
STEPS = 500
RUNS = 7


# The durable floor: one line the size of a step.started record, written and fsynced
# before each command, as the engine's journal barrier does.
_DURABLE = '''import os, subprocess
fd = os.open({path!r}, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
line = b'{{"event": "step.started", "ts": "2026-12-04T23:00:00.000000Z", "step": "s0"}}' + b' ' * 120 + b'\\n'
for _ in range({n}):
    os.write(fd, line)
    os.fsync(fd)
    subprocess.run(['true'])
'''


def _peers() -> bool:
    return os.environ.get("BENCH_LIVE_PEERS", "1") != "0"


def _runbook(n: int) -> dict[str, Any]:
    steps = [{"id": f"s{i}", "run": "true"} for i in range(n)]
    return {"kind": "runbook", "version": 1, "id": f"bench-{n}", "title": f"{n} steps of true",
            "defaults": {"timeout": "30s"}, "remediation": steps}


def _files(work: Path) -> None:
    for n in (1, STEPS):
        (work / f"rb{n}.yaml").write_text(yaml.safe_dump(_runbook(n), sort_keys=False))
        (work / f"floor{n}.py").write_text(f"import subprocess\nfor _ in range({n}):\n    subprocess.run(['true'])\n")
        (work / f"durable{n}.py").write_text(_DURABLE.format(n=n, path=str(work / "durable.jsonl")))
        method = [{"type": "action", "name": f"true-{i}", "provider": {"type": "process", "path": "true"}}
                  for i in range(n)]
        experiment = {"version": "1.0.0", "title": f"{n} actions", "description": "bench", "method": method}
        (work / f"ctk{n}.json").write_text(json.dumps(experiment))
        play = [{"hosts": "localhost", "gather_facts": False,
                 "tasks": [{"command": "true"} for _ in range(n)]}]
        (work / f"play{n}.yml").write_text(yaml.safe_dump(play))
    big = {"kind": "runbook", "version": 1, "id": "big", "title": "1 GiB of output",
           "defaults": {"timeout": "5m"}, "remediation": [{"id": "flood", "run": "head -c 1073741824 /dev/zero"}]}
    (work / "big.yaml").write_text(yaml.safe_dump(big))


def _commands(ctx: Context, work: Path) -> dict[str, list[str]]:
    runbook, py = str(ctx.project("runbook")), str(ctx.project("python"))
    out: dict[str, list[str]] = {}
    for n in (1, STEPS):
        out[f"engine{n}"] = [runbook, "run", str(work / f"rb{n}.yaml"), "--non-interactive", "-q",
                             "--runs-dir", str(work / "runs")]
        out[f"nosync{n}"] = ["env", "RUNBOOK_JOURNAL_FSYNC=0", *out[f"engine{n}"]]
        out[f"floor{n}"] = [py, str(work / f"floor{n}.py")]
        out[f"durable{n}"] = [py, str(work / f"durable{n}.py")]
        out[f"ctk{n}"] = [str(ctx.baseline("chaos")), "--no-version-check", "run", "--journal-path",
                          str(work / "ctk-journal.json"), str(work / f"ctk{n}.json")]
        out[f"ansible{n}"] = ["env", "ANSIBLE_RETRY_FILES_ENABLED=0", "ANSIBLE_NOCOLOR=1",
                              str(ctx.baseline("ansible-playbook")), "-i", "localhost,", "-c", "local",
                              "-e", f"ansible_python_interpreter={ctx.baseline('python')}",
                              str(work / f"play{n}.yml")]
    return out


def _measure(ctx: Context, work: Path) -> dict[str, Timing]:
    cmds = _commands(ctx, work)
    runs = ctx.runs or RUNS
    names = ["engine500", "durable500", "engine1", "durable1", "nosync500", "nosync1", "floor500", "floor1"]
    fast = [Timing(name, cmds[name], runs) for name in names + (["ctk500", "ctk1"] if _peers() else [])]
    time_interleaved(fast, cwd=work)
    slow = [Timing(name, cmds[name], 1) for name in (("ansible500", "ansible1") if _peers() else ())]
    if slow:
        time_interleaved(slow, warmup=0, cwd=work)
    return {t.label: t for t in [*fast, *slow]}


def _peak_rss_mb(ctx: Context, work: Path) -> float:
    """Peak RSS of `runbook run` while its step prints 1 GiB (a fresh process tree)."""
    script = ("import resource, subprocess, sys\n"
              "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
              "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    proc = subprocess.run([str(ctx.project("python")), "-c", script, str(ctx.project("runbook")), "run",
                           str(work / "big.yaml"), "--non-interactive", "-q", "--runs-dir", str(work / "runs")],
                          capture_output=True, text=True, env=command_env(), check=True)
    return int(proc.stdout.strip()) / 1024


def _instructions_per_step(ctx: Context, work: Path) -> dict[str, float]:
    """Instructions per step of the engine's process and of the durable floor's."""
    cmds = _commands(ctx, work)
    count = {name: _instructions.instructions(cmds[name], work) for name in
             ("engine1", f"engine{STEPS}", "durable1", f"durable{STEPS}")}
    engine = (count[f"engine{STEPS}"] - count["engine1"]) / (STEPS - 1)
    durable = (count[f"durable{STEPS}"] - count["durable1"]) / (STEPS - 1)
    return {"engine_instructions_per_step": engine, "durable_instructions_per_step": durable,
            "engine_startup_instructions": count["engine1"] - engine}


def _syscalls(command: list[str], work: Path) -> int:
    """System calls the command's own process makes (strace -c; its children not traced)."""
    out = work / "strace.txt"
    subprocess.run(["strace", "-c", "-o", str(out), *command], cwd=work, env=command_env(),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    total = next(line for line in out.read_text().splitlines() if line.rstrip().endswith(" total"))
    return int(total.split()[3])  # % time, seconds, usecs/call, calls, [errors,] total


def _syscalls_per_step(ctx: Context, work: Path) -> dict[str, float]:
    """System calls per step of the engine's process and of the durable floor's."""
    cmds = _commands(ctx, work)
    count = {name: _syscalls(cmds[name], work) for name in ("engine1", f"engine{STEPS}", "durable1",
                                                            f"durable{STEPS}")}
    return {"engine_syscalls_per_step": (count[f"engine{STEPS}"] - count["engine1"]) / (STEPS - 1),
            "durable_syscalls_per_step": (count[f"durable{STEPS}"] - count["durable1"]) / (STEPS - 1)}


def _figures(t: dict[str, Timing]) -> dict[str, float]:
    def slope(name: str) -> float:
        return (t[f"{name}{STEPS}"].median - t[f"{name}1"].median) / (STEPS - 1)

    def cpu_slope(name: str) -> float:
        return (t[f"{name}{STEPS}"].cpu_median - t[f"{name}1"].cpu_median) / (STEPS - 1)

    floor, durable = slope("floor"), slope("durable")
    turns = [e / d for e, d in zip(t[f"engine{STEPS}"].walls, t[f"durable{STEPS}"].walls, strict=True)]
    cpu_turns = [e.cpu / d.cpu for e, d in zip(t[f"engine{STEPS}"].samples, t[f"durable{STEPS}"].samples,
                                                strict=True)]
    f = {
        "floor_per_step": floor, "durable_per_step": durable, "engine_per_step": slope("engine"),
        "nosync_per_step": slope("nosync"),
        "engine_overhead": slope("engine") - floor, "nosync_overhead": slope("nosync") - floor,
        "engine_own_work": slope("engine") - durable,
        "engine_startup": t["engine1"].median - slope("engine"),
        "nosync_startup": t["nosync1"].median - slope("nosync"),
        "total_vs_floor": t[f"engine{STEPS}"].median / t[f"floor{STEPS}"].median,
        "total_vs_durable": t[f"engine{STEPS}"].median / t[f"durable{STEPS}"].median,
        "total_vs_durable_min": min(turns), "total_vs_durable_max": max(turns),
        "cpu_vs_durable": t[f"engine{STEPS}"].cpu_median / t[f"durable{STEPS}"].cpu_median,
        "cpu_vs_durable_min": min(cpu_turns), "cpu_vs_durable_max": max(cpu_turns),
        "engine_own_cpu": cpu_slope("engine") - cpu_slope("durable"),
        "nosync_total_vs_floor": t[f"nosync{STEPS}"].median / t[f"floor{STEPS}"].median,
    }
    if "ctk1" in t:
        f.update(ctk_per_step=slope("ctk"), ctk_overhead=slope("ctk") - floor,
                 ctk_startup=t["ctk1"].median - slope("ctk"),
                 ctk_total_vs_floor=t[f"ctk{STEPS}"].median / t[f"floor{STEPS}"].median)
    if "ansible1" in t:
        f.update(ansible_per_task=slope("ansible"), ansible_vs_engine_per_step=slope("ansible") / slope("engine"))
    return f


def _targets(f: dict[str, float], rss: float) -> list[Target]:
    ms = 1000.0
    found = [
        Target("engine's own work per step (over the durable floor)", f["engine_own_work"] * ms, 0.15,
               unit=" ms"),
        Target(f"{STEPS} steps: runbook run / durable floor", f["total_vs_durable"], 1.25 + 1e-9, unit="x"),
        # The same two in CPU time (user + system, children included): a busy disk sets
        # both commands' wall times and can hide the engine; the CPU it spends cannot.
        Target("engine's own CPU per step (over the durable floor)", f["engine_own_cpu"] * ms, 0.15, unit=" ms"),
        Target(f"{STEPS} steps, CPU: runbook run / durable floor", f["cpu_vs_durable"], 1.25 + 1e-9, unit="x"),
        Target("runbook run start-up", f["engine_startup"] * ms, 100, unit=" ms"),
        Target("peak RSS with 1 GiB of output", rss, 100, unit=" MB"),
    ]
    if "ansible_vs_engine_per_step" in f:
        found.insert(2, Target("Ansible per task / runbook run per step", f["ansible_vs_engine_per_step"], 200,
                               below=False, unit="x"))
    return found


@contextlib.contextmanager
def _own_locks(work: Path) -> Iterator[None]:
    """Run locks in the benchmark's own directory: run locks are machine-wide, and another
    run of a runbook with the same id (another benchmark, someone's test) would make a
    measured run refuse to start."""
    before = os.environ.get("RUNBOOK_LOCK_DIR")
    os.environ["RUNBOOK_LOCK_DIR"] = str(work / "locks")  # command_env() hands it to every command
    try:
        yield
    finally:
        if before is None:
            del os.environ["RUNBOOK_LOCK_DIR"]
        else:
            os.environ["RUNBOOK_LOCK_DIR"] = before


def run(ctx: Context) -> bool:
    for tool in ("chaos", "ansible-playbook") if _peers() else ():
        if not ctx.baseline(tool).exists():
            raise SystemExit(f"{ctx.baseline(tool)} is missing: run `make bench`")
    info = machine(ctx)
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp, _own_locks(Path(tmp)):
        work = Path(tmp)
        _files(work)
        timings = _measure(ctx, work)
        rss = _peak_rss_mb(ctx, work)
        counts = _instructions_per_step(ctx, work) if _instructions.available() else {}
        if shutil.which("strace") is not None:
            counts.update(_syscalls_per_step(ctx, work))
    figures = {**_figures(timings), **counts}
    targets = _targets(figures, rss)
    info["load_average_after"] = load_average()
    results = {"benchmark": "live", "machine": info, "figures": figures, "peak_rss_mb": rss,
               "timings": {k: v.summary() for k, v in timings.items()},
               "targets": [dict(zip(("target", "goal", "measured", "verdict"), t.row(), strict=True))
                           for t in targets]}
    _report(timings, figures, rss, targets)
    write_json(ctx.out_dir / "live.json", results)
    return all(t.met for t in targets)


def _ms(value: float) -> str:
    return f"{value * 1000:.3f} ms"


def _report(t: dict[str, Timing], f: dict[str, float], rss: float, targets: list[Target]) -> None:
    headers = ["measurement", f"{STEPS} steps", "1 step", "per step", "over the floor", "start-up", "total vs floor"]

    def row(label: str, key: str, over: str, start: str, total: str) -> list[str]:
        return [label, fmt_seconds(t[f"{key}{STEPS}"].median), fmt_seconds(t[f"{key}1"].median),
                _ms(f[f"{key}_per_step"]), over, start, total]

    rows = [
        row("runbook run (durable journal)", "engine", _ms(f["engine_overhead"]), fmt_seconds(f["engine_startup"]),
            f"{f['total_vs_floor']:.2f}x"),
        row("runbook run (RUNBOOK_JOURNAL_FSYNC=0)", "nosync", _ms(f["nosync_overhead"]),
            fmt_seconds(f["nosync_startup"]), f"{f['nosync_total_vs_floor']:.2f}x"),
        row("floor: subprocess.run loop", "floor", "-", "-", "1.00x"),
        row("durable floor: fsynced line + subprocess.run", "durable", "-", "-", "-"),
    ]
    if "ctk_per_step" in f:
        rows.append(row("Chaos Toolkit", "ctk", _ms(f["ctk_overhead"]), fmt_seconds(f["ctk_startup"]),
                        f"{f['ctk_total_vs_floor']:.2f}x"))
    if "ansible_per_task" in f:
        rows.append(["Ansible (1 run each)", fmt_seconds(t[f"ansible{STEPS}"].median),
                     fmt_seconds(t["ansible1"].median), _ms(f["ansible_per_task"]), "-", "-", "-"])
    note = (f"runbook run / durable floor at {STEPS} steps: {f['total_vs_durable']:.2f}x of medians (per turn "
            f"{f['total_vs_durable_min']:.2f}x - {f['total_vs_durable_max']:.2f}x), CPU {f['cpu_vs_durable']:.2f}x "
            f"(per turn {f['cpu_vs_durable_min']:.2f}x - {f['cpu_vs_durable_max']:.2f}x), load average "
            f"{os.getloadavg()[0]:.1f}; "
            f"engine's own work {f['engine_own_work'] * 1000:.3f} ms per step; "
            f"peak RSS of runbook run while a step prints 1 GiB: {rss:.0f} MB")
    if "engine_instructions_per_step" in f:
        note += (f"; instructions per step (callgrind): engine {f['engine_instructions_per_step'] / 1e3:.0f} k, "
                 f"durable floor {f['durable_instructions_per_step'] / 1e3:.0f} k "
                 f"({f['engine_instructions_per_step'] / f['durable_instructions_per_step']:.1f}x); "
                 f"start-up {f['engine_startup_instructions'] / 1e6:.0f} M")
    if "engine_syscalls_per_step" in f:
        note += (f"; system calls per step (strace -c): engine {f['engine_syscalls_per_step']:.1f}, "
                 f"durable floor {f['durable_syscalls_per_step']:.1f}")
    print_tables(headers, rows, targets, note=note)
