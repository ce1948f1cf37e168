"""Live-run benchmark: a runbook of 500 local steps each running `true`.

Measured in the same run, as wall-clock time of whole commands (median after a
warm-up, commands taking turns):

  a. `runbook run` of the 500-step runbook, and of a 1-step one (the difference, over
     499, is the cost of a step; the rest is start-up). Journaled and fsynced as always
     (one durable barrier before each command), and again with RUNBOOK_JOURNAL_FSYNC=0
     to show the engine's own cost apart from the disk's.
  b. the floor: a Python loop of 500 `subprocess.run(['true'])` (and of 1).
  c. Chaos Toolkit: an experiment of 500 process actions (`chaos --no-version-check run`),
     and of 1.
  d. Ansible: `ansible-playbook`, connection local, 500 `command: true` tasks, and 1
     (one run each: about a quarter of a second per task).
  e. peak memory of `runbook run` while a step prints 1 GiB.

Chaos Toolkit and Ansible live in .venv-bench only. Targets from the issue: engine
overhead per step (engine minus floor, per step) under 0.1 ms; total at most 1.2x the
floor; at least 200x faster per step than Ansible; `runbook run` start-up under
100 ms; 1 GiB of output with peak RSS under 100 MB.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

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


def _runbook(n: int) -> dict[str, Any]:
    steps = [{"id": f"s{i}", "run": "true"} for i in range(n)]
    return {"kind": "runbook", "version": 1, "id": f"bench-{n}", "title": f"{n} steps of true",
            "defaults": {"timeout": "30s"}, "remediation": steps}


def _files(work: Path) -> None:
    for n in (1, STEPS):
        (work / f"rb{n}.yaml").write_text(yaml.safe_dump(_runbook(n), sort_keys=False))
        (work / f"floor{n}.py").write_text(f"import subprocess\nfor _ in range({n}):\n    subprocess.run(['true'])\n")
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
    fast = [Timing(name, cmds[name], runs) for name in
            ("engine500", "engine1", "nosync500", "nosync1", "floor500", "floor1", "ctk500", "ctk1")]
    time_interleaved(fast, cwd=work)
    slow = [Timing(name, cmds[name], 1) for name in ("ansible500", "ansible1")]
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


def _figures(t: dict[str, Timing]) -> dict[str, float]:
    def slope(name: str) -> float:
        return (t[f"{name}{STEPS}"].median - t[f"{name}1"].median) / (STEPS - 1)

    floor = slope("floor")
    return {
        "floor_per_step": floor, "engine_per_step": slope("engine"), "nosync_per_step": slope("nosync"),
        "ctk_per_step": slope("ctk"), "ansible_per_task": slope("ansible"),
        "engine_overhead": slope("engine") - floor, "nosync_overhead": slope("nosync") - floor,
        "ctk_overhead": slope("ctk") - floor,
        "engine_startup": t["engine1"].median - slope("engine"),
        "nosync_startup": t["nosync1"].median - slope("nosync"),
        "ctk_startup": t["ctk1"].median - slope("ctk"),
        "total_vs_floor": t[f"engine{STEPS}"].median / t[f"floor{STEPS}"].median,
        "nosync_total_vs_floor": t[f"nosync{STEPS}"].median / t[f"floor{STEPS}"].median,
        "ctk_total_vs_floor": t[f"ctk{STEPS}"].median / t[f"floor{STEPS}"].median,
        "ansible_vs_engine_per_step": slope("ansible") / slope("engine"),
    }


def _targets(f: dict[str, float], rss: float) -> list[Target]:
    ms = 1000.0
    return [
        Target("engine overhead per step (durable journal)", f["engine_overhead"] * ms, 0.1, unit=" ms"),
        Target("engine overhead per step (journal not fsynced)", f["nosync_overhead"] * ms, 0.1, unit=" ms"),
        Target(f"{STEPS} steps: runbook run / floor", f["total_vs_floor"], 1.2 + 1e-9, unit="x"),
        Target("Ansible per task / runbook run per step", f["ansible_vs_engine_per_step"], 200, below=False, unit="x"),
        Target("runbook run start-up", f["engine_startup"] * ms, 100, unit=" ms"),
        Target("peak RSS with 1 GiB of output", rss, 100, unit=" MB"),
    ]


def run(ctx: Context) -> bool:
    for tool in ("chaos", "ansible-playbook"):
        if not ctx.baseline(tool).exists():
            raise SystemExit(f"{ctx.baseline(tool)} is missing: run `make bench`")
    info = machine(ctx)
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        work = Path(tmp)
        _files(work)
        timings = _measure(ctx, work)
        rss = _peak_rss_mb(ctx, work)
    figures = _figures(timings)
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
    rows = [
        ["runbook run (durable journal)", fmt_seconds(t[f"engine{STEPS}"].median), fmt_seconds(t["engine1"].median),
         _ms(f["engine_per_step"]), _ms(f["engine_overhead"]), fmt_seconds(f["engine_startup"]),
         f"{f['total_vs_floor']:.2f}x"],
        ["runbook run (RUNBOOK_JOURNAL_FSYNC=0)", fmt_seconds(t[f"nosync{STEPS}"].median),
         fmt_seconds(t["nosync1"].median), _ms(f["nosync_per_step"]), _ms(f["nosync_overhead"]),
         fmt_seconds(f["nosync_startup"]), f"{f['nosync_total_vs_floor']:.2f}x"],
        ["floor: subprocess.run loop", fmt_seconds(t[f"floor{STEPS}"].median), fmt_seconds(t["floor1"].median),
         _ms(f["floor_per_step"]), "-", "-", "1.00x"],
        ["Chaos Toolkit", fmt_seconds(t[f"ctk{STEPS}"].median), fmt_seconds(t["ctk1"].median),
         _ms(f["ctk_per_step"]), _ms(f["ctk_overhead"]), fmt_seconds(f["ctk_startup"]),
         f"{f['ctk_total_vs_floor']:.2f}x"],
        ["Ansible (1 run each)", fmt_seconds(t[f"ansible{STEPS}"].median), fmt_seconds(t["ansible1"].median),
         _ms(f["ansible_per_task"]), "-", "-", "-"],
    ]
    print_tables(headers, rows, targets, note=f"peak RSS of runbook run while a step prints 1 GiB: {rss:.0f} MB")
