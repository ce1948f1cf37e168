"""Coverage benchmark: `runbook coverage` over 1,000 runbooks, 10,000 journals and 50
Prometheus rule files.

Generates 1,000 runbooks (bench/generate.py, fixed seed), 10,000 realistic journals
(engine.reporting.synthetic: phases, steps with output tails up to 4 KiB, approvals,
retries, notifications, some failed and some torn), each made a run of one of the
generated runbooks (its run.started names it and carries its digest, as runs write it;
a third are scenario tests, a third drills, a third live runs), and 50 rule files (half
rule groups, half Kubernetes PrometheusRule resources) defining the runbooks' alerts and
as many more without a runbook. Then measures, in turns, wall-clock and CPU time (median
after a warm-up; CPU of the process tree) of:

  a. `runbook coverage RUNBOOKS --journals DIR --rules RULES`: text, start-up included,
     with its caches as a user has them from the run before (runbook outlines, and what
     each unchanged journal exercised)
  b. the same with `-f json`
  c. the same with RUNBOOK_NO_CACHE=1: every runbook parsed, every journal read
  d. the floor: one Python process reading the same journal bytes, nothing parsed

Target from the issue: a under 5 s on this machine.
"""

from __future__ import annotations

import random
import re
import tempfile
from pathlib import Path

from bench._timing import (
    TIMING_HEADERS,
    Context,
    Target,
    Timing,
    check_command,
    load_average,
    machine,
    machine_line,
    print_tables,
    time_interleaved,
    timing_cells,
    write_json,
)

DESCRIPTION = "runbook coverage over 1,000 runbooks, 10,000 journals, 50 rule files"
RUNBOOKS, JOURNALS, RULE_FILES = 1000, 10000, 50
SEED = 7
RUNS = 3  # a full turn of the four commands takes about 15 s on a quiet machine
LIMIT = 5.0
_ID = re.compile(r"^id: (\S+)$", re.M)
_ALERTS = re.compile(r"^alerts: \[(.*)\]$", re.M)


def _runbooks(directory: Path) -> list[tuple[str, list[str]]]:
    """The generated runbooks' ids and alerts."""
    from bench.generate import generate_runbooks

    out = []
    for path in generate_runbooks(directory, RUNBOOKS, SEED):
        text = path.read_text(encoding="utf-8")
        ident = _ID.search(text)
        alerts = _ALERTS.search(text)
        out.append((ident.group(1) if ident else path.stem,
                    [a.strip() for a in alerts.group(1).split(",")] if alerts else []))
    return out


def _digests(directory: Path) -> dict[str, str | None]:
    """Each generated runbook's digest, as a run of it journals it (its includes too)."""
    from engine.reporting.catalog import load_catalog

    return {rb.id: rb.digest for rb in load_catalog([directory], use_cache=False).runbooks}


def _journals(directory: Path, ids: list[str], digests: dict[str, str | None]) -> int:
    from engine.reporting.synthetic import generate_journals

    size = 0
    modes = ("test", "drill", "live")
    for index, path in enumerate(generate_journals(directory, JOURNALS, SEED)):
        text = path.read_text(encoding="utf-8")
        first, rest = text.split("\n", 1)
        ident = ids[index % len(ids)]
        first = re.sub(r'"runbook": "[^"]*"', f'"runbook": "{ident}"', first)
        first = re.sub(r'"mode": "[^"]*"', f'"mode": "{modes[index % 3]}"', first)
        first = first[:-1] + f', "digest": "{digests.get(ident) or ""}"}}'  # the field runs write last
        path.write_text(first + "\n" + rest, encoding="utf-8")
        size += len(text)
    return size


_FLOOR = ("import os, sys\n"
          "for folder, _, files in os.walk(sys.argv[1]):\n"
          "    if 'journal.jsonl' in files:\n"
          "        with open(os.path.join(folder, 'journal.jsonl'), 'rb') as handle:\n"
          "            handle.read()\n")


def _rules(directory: Path, runbooks: list[tuple[str, list[str]]]) -> int:
    rng = random.Random(SEED)
    directory.mkdir(parents=True)
    alerts = [a for _, names in runbooks for a in names] + [f"Orphan{n}" for n in range(500)]
    rng.shuffle(alerts)
    count = 0
    for index in range(RULE_FILES):
        mine = alerts[index::RULE_FILES]
        rules = "".join(f"      - alert: {a}\n        expr: up == 0\n        for: 5m\n"
                        f"        annotations: {{summary: \"{a} fired\"}}\n" for a in mine)
        body = f"groups:\n  - name: group-{index}\n    rules:\n{rules}"
        if index % 2:
            body = (f"apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata: {{name: r{index}}}\n"
                    "spec:\n" + "".join(f"  {line}\n" for line in body.splitlines()))
        (directory / f"rules-{index:02d}.yaml").write_text(body, encoding="utf-8")
        count += len(mine)
    return count


def _coverage(ctx: Context, root: Path, *args: str, cache: bool = True) -> list[str]:
    """The command, with a runbook home of its own (its caches are the benchmark's)."""
    env = ["env", f"RUNBOOK_HOME={root / 'home'}", *([] if cache else ["RUNBOOK_NO_CACHE=1"])]
    return [*env, str(ctx.project("runbook")), "coverage", str(root / "runbooks"), "--journals", str(root / "runs"),
            "--rules", str(root / "rules"), *args]


def run(ctx: Context) -> bool:
    """Measure, print the tables, write bench/out/coverage.json; True if the target is met."""
    info = machine(ctx)
    with tempfile.TemporaryDirectory(prefix="runbook-bench-coverage-") as tmp:
        root = Path(tmp)
        runbooks = _runbooks(root / "runbooks")
        size = _journals(root / "runs", [ident for ident, _ in runbooks], _digests(root / "runbooks"))
        rules = _rules(root / "rules", runbooks)
        corpus = {"runbooks": RUNBOOKS, "journals": JOURNALS, "journal_bytes": size, "rule_files": RULE_FILES,
                  "alert_rules": rules, "seed": SEED}
        print(f"  generated {RUNBOOKS} runbooks, {JOURNALS} journals ({size / 1e6:.0f} MB), "
              f"{RULE_FILES} rule files ({rules} alerts) in {root}")
        check_command("runbook coverage exits 0", _coverage(ctx, root))
        runs = ctx.runs or RUNS
        timings = {"text": Timing("runbook coverage", _coverage(ctx, root), runs),
                   "json": Timing("runbook coverage -f json", _coverage(ctx, root, "-f", "json"), runs),
                   "no_cache": Timing("runbook coverage, RUNBOOK_NO_CACHE=1", _coverage(ctx, root, cache=False), runs),
                   "floor": Timing("floor: read the journals' bytes",
                                   [str(ctx.project("python")), "-c", _FLOOR, str(root / "runs")], runs)}
        time_interleaved(list(timings.values()))
    info["load_average_after"] = load_average()
    targets = [Target("1,000 runbooks, 10,000 journals, 50 rule files, wall clock", timings["text"].median, LIMIT)]
    floor = timings["floor"]
    ratios = {k: {"wall": t.median / floor.median, "cpu": t.cpu_median / max(floor.cpu_median, 1e-9)}
              for k, t in timings.items() if k != "floor"}
    results = {"benchmark": "coverage", "machine": info, "corpus": corpus,
               "timings": {k: t.summary() for k, t in timings.items()}, "ratio_to_floor": ratios,
               "targets": [{"name": x.name, "limit": x.limit, "measured": x.measured, "goal": "below",
                            "verdict": x.verdict} for x in targets]}
    print_tables(["measurement", *TIMING_HEADERS], [[t.label, *timing_cells(t)] for t in timings.values()], targets,
                 heading=machine_line("Coverage", info),
                 lead=f"Corpus: {RUNBOOKS:,} runbooks, {JOURNALS:,} journals ({size / 1e6:.0f} MB), "
                      f"{RULE_FILES} rule files with {rules:,} alerts, seed {SEED}.",
                 note="Against the floor (reading the same journal bytes), median wall / CPU: " + "; ".join(
                     f"{timings[k].label} {r['wall']:.1f}x / {r['cpu']:.1f}x" for k, r in ratios.items()))
    write_json(ctx.out_dir / "coverage.json", results)
    print(f"\n  results written to {(ctx.out_dir / 'coverage.json').relative_to(ctx.root)}")
    return all(t.met for t in targets)
