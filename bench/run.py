"""Benchmark dispatcher: `python bench/run.py [NAME...]` runs the named benchmarks (all by default).

A benchmark is a module `bench/NAME.py` registered in BENCHMARKS, with a DESCRIPTION
string and `run(ctx: Context) -> bool` (True when every target is met). It prints its
own tables and writes bench/out/NAME.json.

Exit status: 0 when every target is met, 1 when a target is missed, 2 when a
benchmark could not run (a command failed, files did not validate, a tool is missing).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `import bench...` work
    sys.path.insert(0, str(ROOT))

from bench._timing import CommandFailed, Context  # noqa: E402

# name -> module; add new benchmarks here (live run, SSH fan-out, simulation, ...)
BENCHMARKS: dict[str, str] = {
    "validate": "bench.validate",
    "fanout": "bench.fanout",
    "stats": "bench.stats",
    "coverage": "bench.coverage",
    "live": "bench.live",
    "simulate": "bench.simulate",
    "fleet": "bench.fleet",
    "startup": "bench.startup",
    "kube": "bench.kube",
    "promql": "bench.promql",
    "service": "bench.service",
    "intake": "bench.intake",
    "console": "bench.console",
}


def _module(name: str) -> ModuleType:
    return importlib.import_module(BENCHMARKS[name])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Run the runbook-engine benchmarks.")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--runs", type=int, help="timed runs per measurement (default: per benchmark)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return parser


def _run_one(name: str, ctx: Context) -> int:
    print(f"== {name}: {_module(name).DESCRIPTION}")
    try:
        met = bool(_module(name).run(ctx))
    except CommandFailed as exc:
        print(f"\n{name}: could not run: {exc}", file=sys.stderr)
        return 2
    return 0 if met else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        for name in BENCHMARKS:
            print(f"{name:<12} {_module(name).DESCRIPTION}")
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        _parser().error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    if args.runs is not None and args.runs < 1:
        _parser().error("--runs must be at least 1")
    ctx = Context(runs=args.runs)
    codes = [_run_one(name, ctx) for name in args.names or list(BENCHMARKS)]
    return max(codes, default=0)


if __name__ == "__main__":
    sys.exit(main())
