"""Statistics benchmark: `runbook stats` over 2,000 journals.

Generates 2,000 realistic journals (engine.reporting.synthetic, fixed seed: drills and
live runs of five runbooks over six months, output tails up to 4 KiB, some failed and
some crashed with a torn last line) into a temporary directory, then measures the
wall-clock time (median after a warm-up) of:

  a. `runbook stats DIR`: the text table over the 2,000 journals, start-up included
  b. `runbook stats DIR -f html -o FILE`: the same with the HTML page and its charts

Target from the issue: "thousands of journals quickly", taken as a under 3 s here.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

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

DESCRIPTION = "runbook stats over 2,000 journals (text and HTML)"
COUNT = 2000
SEED = 7
RUNS = 7
LIMIT = 3.0


def _corpus(directory: Path) -> dict[str, Any]:
    from engine.reporting.synthetic import generate_journals

    paths = generate_journals(directory, COUNT, SEED)
    sizes = sorted(p.stat().st_size for p in paths)
    lines = sum(p.read_bytes().count(b"\n") for p in paths)
    return {"journals": len(paths), "seed": SEED, "bytes": sum(sizes), "median_bytes": sizes[len(sizes) // 2],
            "lines": lines}


def _stats(ctx: Context, *args: str | Path) -> list[str]:
    return [str(ctx.project("runbook")), "stats", *map(str, args)]


def run(ctx: Context) -> bool:
    """Measure, print the tables, write bench/out/stats.json; True if the target is met."""
    info = machine(ctx)
    with tempfile.TemporaryDirectory(prefix="runbook-bench-stats-") as tmp:
        journals = Path(tmp) / "runs"
        corpus = _corpus(journals)
        print(f"  generated {corpus['journals']} journals ({corpus['bytes'] / 1e6:.0f} MB, "
              f"{corpus['lines']:,} lines, seed {SEED}) in {journals}")
        check_command("runbook stats DIR exits 0", _stats(ctx, journals))
        timings = {
            "text": Timing("runbook stats DIR", _stats(ctx, journals), ctx.runs or RUNS),
            "html": Timing("runbook stats -f html", _stats(ctx, journals, "-f", "html", "-o", Path(tmp) / "s.html"),
                           ctx.runs or RUNS),
        }
        time_interleaved(list(timings.values()))
    info["load_average_after"] = load_average()
    targets = [Target(f"{COUNT:,} journals, text, wall clock", timings["text"].median, LIMIT),
               Target(f"{COUNT:,} journals, HTML, wall clock", timings["html"].median, LIMIT)]
    results = {"benchmark": "stats", "machine": info, "corpus": corpus,
               "timings": {k: t.summary() for k, t in timings.items()},
               "targets": [{"name": x.name, "limit": x.limit, "measured": x.measured, "goal": "below",
                            "verdict": x.verdict} for x in targets]}
    _report(results, timings, targets)
    write_json(ctx.out_dir / "stats.json", results)
    print(f"\n  results written to {(ctx.out_dir / 'stats.json').relative_to(ctx.root)}")
    return all(t.met for t in targets)


def _report(results: dict[str, Any], timings: dict[str, Timing], targets: list[Target]) -> None:
    corpus = results["corpus"]
    rows = [[t.label, *timing_cells(t), f"{t.median / COUNT * 1e6:.0f} us"] for t in timings.values()]
    print_tables(["measurement", *TIMING_HEADERS, "per journal"], rows, targets,
                 heading=machine_line("Stats", results["machine"]),
                 lead=(f"Corpus: {corpus['journals']:,} journals, {corpus['bytes'] / 1e6:.0f} MB, "
                       f"{corpus['lines']:,} lines (median journal {corpus['median_bytes'] / 1e3:.0f} kB), "
                       f"seed {corpus['seed']}."))
