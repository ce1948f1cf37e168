"""Simulation benchmark: drills run unattended on the virtual clock (issue 14 item 4, and
issue 12's condition that simulation does not get slower than before blocks).

  a. simulated steps per second in one process: a 200-step scenario (commands with
     templated output, answers from scripted people, random durations, expectations,
     conditions), trials run one after another in a fresh process per turn, CPU time;
     in turns with the same probe on the engine of BASELINE (f90f63e: the commit before
     blocks landed), so the ratio is a same-run one.
  b. `runbook test --trials 1000` of a 20-step scenario, the whole command: what the
     trials add over one trial (the issue's figure), with `--jobs 1` and on every CPU;
     and the baseline's command.

  c. instructions per simulated step (valgrind's callgrind, when installed: the figure
     the load does not move), this tree and the baseline: the probe of (a) with
     INSTRUCTION_TRIALS trials less the same with none, hash seed fixed. Where they go:
     bench/profile_simulate.py.

Target from the issue: at least 50,000 simulated steps per second; and not slower than
the baseline. BENCH_SIM_BASELINE names another baseline commit.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from bench import _instructions
from bench._timing import (
    CommandFailed,
    Context,
    Target,
    Timing,
    command_env,
    fmt_seconds,
    load_average,
    machine,
    machine_line,
    print_tables,
    time_interleaved,
    write_json,
)

DESCRIPTION = "simulated steps per second: one process, every CPU, and against f90f63e (before blocks)"
BIG, SMALL, TRIALS = 200, 20, 1000
PAIR = 2  # one-process commands run at once: what sharing the machine costs, without any split
PROBE_TRIALS = 20  # trials of the 200-step scenario in each turn of (a)
TARGET = 50_000
BASELINE = os.environ.get("BENCH_SIM_BASELINE", "f90f63e")
PROBE = Path(__file__).resolve().parent / "_sim_probe.py"
INSTRUCTION_TRIALS = 3  # trials of the 200-step scenario counted in (c)


def scenario_pair(steps: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A runbook of `steps` steps across the four phases, and a scenario answering it."""
    phases: dict[str, list[dict[str, Any]]] = {"detection": [], "triage": [], "remediation": [], "recovery": []}
    responses: list[dict[str, Any]] = []
    people: dict[str, Any] = {}
    names = list(phases)
    for i in range(steps):
        phase, sid = names[min(i * 4 // steps, 3)], f"s{i}"
        if i % 20 == 5:
            phases[phase].append({"id": sid, "manual": "Check the dashboard for {{ inputs.host }}",
                                  "ask": {"ok": {"choices": ["yes", "no"]}}})
            people[sid] = {"answers": {"ok": "yes"}, "after": {"median": "30s", "p90": "2m"}}
            continue
        step: dict[str, Any] = {"id": sid, "title": f"Step {i}", "run": f"check --host {{{{ inputs.host }}}} --n {i}",
                                "outputs": {"value": "{{ stdout | int }}"}}
        if i % 10 == 3:
            step["expect"] = "outputs.value >= 0"
        if i % 25 == 7:
            step["when"] = "inputs.threshold > 10"
        phases[phase].append(step)
        responses.append({"step": sid, "stdout": "{{ state.n }}",
                          "duration": "2s" if i % 3 else {"min": "1s", "max": "5s"}})
    runbook = {"kind": "runbook", "version": 1, "id": f"sim-{steps}", "title": f"Simulated {steps} steps",
               "inputs": {"host": {"type": "string"}, "threshold": {"type": "integer", "default": 50}},
               "defaults": {"timeout": "60s"}, **phases}
    scenario = {"kind": "scenario", "version": 1, "id": f"sim-{steps}", "title": f"{steps} simulated steps",
                "runbook": f"runbook-{steps}.yaml", "inputs": {"host": "db-1"}, "state": {"n": 5},
                "responses": responses, "participants": people, "objectives": {"outcome": "resolved"}}
    return runbook, scenario


def _write(work: Path, steps: int) -> Path:
    runbook, scenario = scenario_pair(steps)
    (work / f"runbook-{steps}.yaml").write_text(yaml.safe_dump(runbook, sort_keys=False))
    path = work / f"scenario-{steps}.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def _baseline_tree(ctx: Context) -> Path | None:
    """The engine of BASELINE (and its schemas), extracted once under bench/out/."""
    dest = ctx.out_dir / f"baseline-{BASELINE}"
    if (dest / "engine").is_dir():
        return dest
    archive = subprocess.run(["git", "-C", str(ctx.root), "archive", BASELINE, "engine", "schemas"],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        print(f"  no baseline: git archive {BASELINE} failed: {archive.stderr.decode(errors='replace').strip()}")
        return None
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def _probe(ctx: Context, tree: Path | None, scenario: Path, trials: int) -> float:
    """Simulated steps per CPU second of `trials` trials in one process (this tree, or `tree`)."""
    env = command_env()
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    proc = subprocess.run([str(ctx.project("python")), str(PROBE), str(scenario), str(trials)],
                          cwd=tree or ctx.root, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise CommandFailed(f"{PROBE.name} ({tree or 'this tree'}) exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    figures = json.loads(proc.stdout.splitlines()[-1])
    expected = (tree or ctx.root) / "engine"
    if not figures["engine"].startswith(str(expected)):
        raise CommandFailed(f"{PROBE.name} measured {figures['engine']}, not {expected}")
    return float(figures["steps"] / figures["cpu"])


def _per_step(ctx: Context, tree: Path | None, scenario: Path) -> float:
    """Instructions per simulated step of the probe (this tree, or `tree`), by callgrind."""
    env = {"PYTHONHASHSEED": "0", **({"PYTHONPATH": str(tree)} if tree is not None else {})}
    probe = [str(ctx.project("python")), str(PROBE), str(scenario)]
    counts = [_instructions.instructions([*probe, str(n)], tree or ctx.root, env) for n in (0, INSTRUCTION_TRIALS)]
    return (counts[1] - counts[0]) / (INSTRUCTION_TRIALS * BIG)


def _in_process(ctx: Context, scenario: Path, baseline: Path | None, turns: int) -> tuple[list[float], list[float]]:
    """Steps per CPU second in one process: this tree and the baseline, in turns."""
    ours: list[float] = []
    theirs: list[float] = []
    print(f"  in one process, {PROBE_TRIALS} trials of the {BIG}-step scenario a turn, {turns} turns ",
          end="", flush=True)
    for _ in range(turns):
        ours.append(_probe(ctx, None, scenario, PROBE_TRIALS))
        if baseline is not None:
            theirs.append(_probe(ctx, baseline, scenario, PROBE_TRIALS))
        print(".", end="", flush=True)
    print()
    return ours, theirs


def _commands(ctx: Context, small: Path, baseline: Path | None, runs: int) -> list[Timing]:
    """`runbook test` of the small scenario: one trial, TRIALS in one process, TRIALS over
    every CPU, and the baseline's TRIALS; in turns."""
    test = [str(ctx.project("runbook")), "test", str(small), "--trials"]
    timings = [Timing("--trials 1", [*test, "1"], runs),
               Timing(f"--trials {TRIALS} --jobs 1", [*test, str(TRIALS), "--jobs", "1"], runs),
               Timing(f"--trials {TRIALS} (every CPU)", [*test, str(TRIALS)], runs),
               Timing(f"--trials {TRIALS} --jobs 1, {PAIR} at once", _at_once([*test, str(TRIALS), "--jobs", "1"]),
                      runs)]
    if baseline is not None:
        timings.append(Timing(f"{BASELINE}: --trials {TRIALS}", ["env", f"PYTHONPATH={baseline}",
                              str(ctx.project("python")), "-m", "engine", "test", str(small), "--trials",
                              str(TRIALS)], runs))
    time_interleaved(timings, cwd=small.parent)
    return timings


def _at_once(command: list[str]) -> list[str]:
    """A shell running PAIR copies of `command` at the same time (their CPU is counted
    when the shell, which waits for them, is)."""
    one = " ".join(shlex.quote(c) for c in command) + " >/dev/null"
    return ["sh", "-c", " & ".join([one] * PAIR) + " & wait"]


def _how(t: Timing, one: Timing, added: int) -> str:
    """Wall and CPU medians, and the steps per CPU second the trials added (all processes)."""
    return (f"wall {fmt_seconds(t.median)}, CPU {fmt_seconds(t.cpu_median)} (1 trial: {fmt_seconds(one.median)}, "
            f"{fmt_seconds(one.cpu_median)}): {added / max(t.cpu_median - one.cpu_median, 1e-9):,.0f} steps/CPU s")


def _split_rows(one: Timing, serial: Timing, every: Timing, pair: Timing) -> list[list[str]]:
    """What spreading the trials over every CPU costs, per turn (same-run ratios): the CPU
    the trials add on every CPU against with --jobs 1, and the wall they add against the
    ideal split (--jobs 1's added wall divided by the CPUs); beside it, what PAIR one-process
    commands at once cost against one alone (the machine's share: caches, memory, the host)."""
    jobs = min(_cpus(), 8)
    turns = list(zip(one.samples, serial.samples, every.samples, pair.samples, strict=True))
    cpu = [(e.cpu - o.cpu) / max(s.cpu - o.cpu, 1e-9) for o, s, e, _ in turns]
    wall = [(e.wall - o.wall) / max((s.wall - o.wall) / jobs, 1e-9) for o, s, e, _ in turns]
    shared = [(p.cpu / PAIR - o.cpu) / max(s.cpu - o.cpu, 1e-9) for o, s, _, p in turns]
    return [["the split: trials' CPU on every CPU / --jobs 1", f"{statistics.median(cpu):.3f}x",
             f"{min(cpu):.3f} - {max(cpu):.3f}x",
             f"trials' wall against an ideal split over {jobs} CPUs: {statistics.median(wall):.3f}x "
             f"({min(wall):.2f} - {max(wall):.2f}x)"],
            [f"no split: trials' CPU of {PAIR} --jobs 1 commands at once / one alone",
             f"{statistics.median(shared):.3f}x", f"{min(shared):.3f} - {max(shared):.3f}x",
             "what running at once costs by itself, split or not"]]


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _spread(values: list[float]) -> str:
    return f"{min(values):,.0f} - {max(values):,.0f}" if values else "-"


def run(ctx: Context) -> bool:
    info = machine(ctx)
    turns = ctx.runs or 5
    baseline = _baseline_tree(ctx)
    with tempfile.TemporaryDirectory(prefix="bench-sim-") as tmp:
        work = Path(tmp)
        big, small = _write(work, BIG), _write(work, SMALL)
        ours, theirs = _in_process(ctx, big, baseline, turns)
        counted = {label: _per_step(ctx, tree, big) for label, tree in (("this", None), (BASELINE, baseline))
                   if _instructions.available() and (tree is not None or label == "this")}
        one, serial, every, pair, *base = _commands(ctx, small, baseline, turns)
    added = (TRIALS - 1) * SMALL  # the figure: what TRIALS trials add over one
    serial_rate = added / max(serial.median - one.median, 1e-9)
    every_rate = added / max(every.median - one.median, 1e-9)
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    rows = [[f"{BIG}-step scenario, one process (CPU time)", f"{statistics.median(ours):,.0f} steps/s",
             _spread(ours), f"{turns} turns x {PROBE_TRIALS * BIG:,} steps"]]
    if theirs:
        rows.append([f"the same, {BASELINE} (before blocks)", f"{statistics.median(theirs):,.0f} steps/s",
                     _spread(theirs), f"ratio this/{BASELINE} per turn {min(ratios):.2f}-{max(ratios):.2f}x"])
    if counted:
        then = counted.get(BASELINE)
        rows.append([f"instructions per simulated step ({BIG} steps, callgrind)", f"{counted['this'] / 1e3:,.1f}k",
                     "-", f"{BASELINE}: {then / 1e3:,.1f}k ({counted['this'] / then:.2f}x)" if then else
                     f"{INSTRUCTION_TRIALS} trials less none"])
    for label, t, rate in ((f"--trials {TRIALS} --jobs 1 ({SMALL} steps)", serial, serial_rate),
                           (f"--trials {TRIALS}, every CPU", every, every_rate)):
        rows.append([label, f"{rate:,.0f} steps/s", f"{fmt_seconds(min(t.walls))} - {fmt_seconds(max(t.walls))}",
                     _how(t, one, added)])
    rows.extend(_split_rows(one, serial, every, pair))
    for t in base:
        rows.append([t.label, f"{added / max(t.median - one.median, 1e-9):,.0f} steps/s",
                     f"{fmt_seconds(min(t.walls))} - {fmt_seconds(max(t.walls))}", _how(t, one, added)])
    targets = [Target("simulated steps/s, one process", statistics.median(ours), TARGET, below=False,
                      unit=" steps/s"),
               Target(f"simulated steps/s, --trials {TRIALS} on every CPU", every_rate, TARGET, below=False,
                      unit=" steps/s")]
    if ratios:
        targets.append(Target(f"steps/s against {BASELINE} (same run, median of turns)", statistics.median(ratios),
                              1.0, below=False, unit="x"))
    info["load_average_after"] = load_average()
    write_json(ctx.out_dir / "simulate.json", {
        "benchmark": "simulate", "machine": info, "in_process": {"this": ours, "baseline": theirs, "ratios": ratios},
        "instructions_per_step": counted,
        "commands": [t.summary() for t in (one, serial, every, pair, *base)], "targets": [t.row() for t in targets]})
    print_tables(["measurement", "median", "spread over turns", "how"], rows, targets,
                 heading=machine_line("Simulation", info))
    return all(t.met for t in targets)
