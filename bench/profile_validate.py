"""Where `runbook validate` spends its time: for whoever optimises the engine.

    .venv/bin/python bench/profile_validate.py [--count N] [--top N]

1. cProfile of `runbook validate --jobs 1 DIR` over the generated runbooks (one process,
   the real console script), top functions by cumulative and by self time; the raw
   profile is saved as bench/out/validate.prof (open it with snakeviz or pstats).
2. Per-file split between YAML loading, schema validation, model building and lint,
   measured in this process with the engine's own functions (one cold pass, as in a
   real run: caches start empty; one-time set-up is timed apart), then again with the
   template-analysis cache cleared before every file (no template shared between files).
3. Start-up: `python -X importtime` of `runbook validate FILE`, by package and by module,
   and the wall clock of an empty interpreter, `runbook --version` and the validation.

Subprocesses run with the bytecode cache of the benchmarks (see _timing.py).
"""

from __future__ import annotations

import argparse
import pstats
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `import bench...` work
    sys.path.insert(0, str(ROOT))

from bench._timing import Context, command_env, fmt_seconds, text_table, time_command  # noqa: E402
from bench.generate import generate_runbooks  # noqa: E402

_THIRD_PARTY = frozenset({"jinja2", "click", "yaml", "markupsafe", "jsonschema", "paramiko"})
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")


# -- 1. cProfile ------------------------------------------------------------------------------


def profile_cli(ctx: Context, directory: Path, top: int) -> None:
    out = ctx.out_dir / "validate.prof"
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [str(ctx.project("python")), "-m", "cProfile", "-o", str(out), str(ctx.project("runbook")),
               "validate", "--jobs", "1", str(directory)]
    subprocess.run(command, cwd=ctx.root, env=command_env(), check=True, capture_output=True)
    stats = pstats.Stats(str(out))
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"\n== cProfile: runbook validate --jobs 1 ({total:.2f} s under the profiler; saved {out.name})")
    for key, title in (("cumulative", "by cumulative time"), ("tottime", "by self time")):
        print(f"\n-- top {top} {title}")
        print(text_table(["cumulative", "self", "calls", "function"], _rows(stats, key, top, total)))


def _rows(stats: pstats.Stats, key: str, top: int, total: float) -> list[list[str]]:
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    index = 3 if key == "cumulative" else 2
    ranked = sorted(table.items(), key=lambda kv: kv[1][index], reverse=True)[:top]
    rows = []
    for (file, line, name), (_, calls, tottime, cumtime, _) in ranked:
        where = f"{_short_path(file)}:{line}({name})" if line else name
        rows.append([f"{cumtime:6.3f} s {cumtime / total:4.0%}", f"{tottime:6.3f} s {tottime / total:4.0%}",
                     str(calls), where])
    return rows


def _short_path(file: str) -> str:
    for marker in ("/site-packages/", "/lib/python3"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file.replace(str(ROOT) + "/", "")


# -- 2. stages ------------------------------------------------------------------------------


def stage_split(files: list[Path]) -> None:
    start = time.perf_counter()
    from engine.language import validation

    validation._warm_up()  # the engine does this before forking workers: schemas, Jinja env
    setup = time.perf_counter() - start
    totals = _stages(files)
    print(f"\n== per-file split over {len(files)} files, one process, cold caches "
          f"(one-time set-up: imports, schema compile, Jinja env: {fmt_seconds(setup)})")
    _print_stages(totals, len(files))
    worst = _stages(files, forget=True)
    print("\n-- the same with the template-analysis cache cleared before each file (every template "
          "new: an upper bound for a corpus without shared templates)")
    _print_stages(worst, len(files))


def _stages(files: list[Path], *, forget: bool = False) -> dict[str, float]:
    from engine.language import builder, lint, schema
    from engine.language.loader import load_file
    from engine.templates import templating

    clear = getattr(getattr(templating, "_analyze", None), "cache_clear", lambda: None)
    totals: dict[str, float] = defaultdict(float)
    for path in files:
        if forget:
            clear()
        doc = _timed(totals, "YAML load (loader.load_file)", load_file, path)
        _timed(totals, "schema (schema.validate)", schema.validate, doc)
        runbook = _timed(totals, "model (builder.build_runbook)", builder.build_runbook, doc)
        _timed(totals, "lint (lint.lint_runbook)", lint.lint_runbook, doc, runbook)
    return totals


def _print_stages(totals: dict[str, float], count: int) -> None:
    whole = sum(totals.values())
    rows = [[stage, f"{1e6 * t / count:,.0f} us", f"{t / whole:.0%}", fmt_seconds(t)]
            for stage, t in totals.items()]
    rows.append(["total", f"{1e6 * whole / count:,.0f} us", "100%", fmt_seconds(whole)])
    print(text_table(["stage", "per file", "share", f"all {count}"], rows))


def _timed(totals: dict[str, float], stage: str, func: Callable[..., Any], *args: Any) -> Any:
    start = time.perf_counter()
    result = func(*args)
    totals[stage] += time.perf_counter() - start
    return result


# -- 3. start-up ----------------------------------------------------------------------------


def startup(ctx: Context, file: Path, top: int) -> None:
    validate = [str(ctx.project("runbook")), "validate", str(file)]
    subprocess.run(validate, cwd=ctx.root, env=command_env(), capture_output=True, check=True)  # fill the cache
    command = [str(ctx.project("python")), "-X", "importtime", *validate]
    proc = subprocess.run(command, cwd=ctx.root, env=command_env(), capture_output=True, text=True, check=True)
    modules = [m for m in map(_IMPORT_LINE.match, proc.stderr.splitlines()) if m]
    total = sum(int(m[1]) for m in modules)
    print(f"\n== start-up: python -X importtime runbook validate FILE: {len(modules)} modules, "
          f"{total / 1000:.0f} ms of imports")
    by_package: dict[str, int] = defaultdict(int)
    for m in modules:
        by_package[_package(m[4])] += int(m[1])
    ranked = sorted(by_package.items(), key=lambda kv: kv[1], reverse=True)[:top]
    print(text_table(["package", "self ms (sum)"], [[p, f"{us / 1000:.1f}"] for p, us in ranked]))
    heavy = sorted(modules, key=lambda m: int(m[1]), reverse=True)[:top]
    print()
    print(text_table(["module", "self ms", "cumulative ms"],
                     [[m[4], f"{int(m[1]) / 1000:.1f}", f"{int(m[2]) / 1000:.1f}"] for m in heavy]))
    _startup_walls(ctx, file)


def _package(module: str) -> str:
    root = module.split(".")[0]
    if root == "engine":
        return module  # engine modules one by one: that is where the work is
    return root if root in _THIRD_PARTY else f"stdlib/other ({root})"


def _startup_walls(ctx: Context, file: Path) -> None:
    print("\n-- wall clock, median of 11 runs")
    runs = [
        ("python -c pass (venv interpreter)", [str(ctx.project("python")), "-c", "pass"]),
        ("runbook --version", [str(ctx.project("runbook")), "--version"]),
        ("runbook validate FILE", [str(ctx.project("runbook")), "validate", str(file)]),
    ]
    for label, command in runs:
        time_command(label, command, 11)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Profile `runbook validate` on generated runbooks.")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    ctx = Context()
    with tempfile.TemporaryDirectory(prefix="runbook-profile-") as tmp:
        files = generate_runbooks(tmp, args.count, args.seed)
        profile_cli(ctx, Path(tmp), args.top)
        stage_split(files)
        typical = sorted(files, key=lambda p: (p.stat().st_size, p.name))[len(files) // 2]
        startup(ctx, typical, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
