"""The engine's own work per step of a live run, in one process: `runbook run` of a runbook
of N local steps through the console script's entry point, with the local executor
swapped for one that returns at once (so only the engine's work is left: loading and
checking the steps, events, journal lines, console), the journal not fsynced.

    .venv/bin/python bench/profile_live.py            # CPU per step, best of 5
    .venv/bin/python bench/profile_live.py --profile  # and where it goes (cProfile)

Per step = (CPU of N steps - CPU of 1 step) / (N - 1). Issue 14 asks for at most 0.15 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
STEPS = 500


def _runbook(path: Path, n: int) -> Path:
    steps = [{"id": f"s{i}", "run": "true"} for i in range(n)]
    path.write_text(yaml.safe_dump({"kind": "runbook", "version": 1, "id": f"bench-{n}", "title": "t",
                                    "defaults": {"timeout": "30s"}, "remediation": steps}, sort_keys=False))
    return path


def _instant_executor() -> None:
    from engine.executors import local
    from engine.executors.base import Result

    def run(self: Any, inv: Any, sink: Any, cancel: Any) -> Result:
        sink.process_started(os.getpid(), None)
        return Result(command=inv.command, host=None, stdout="", stderr="", exit_code=0,
                      started_at=time.time(), duration=0.0, ok=True, error=None)

    local.LocalExecutor.run = run  # type: ignore[method-assign]


def _cpu_of_run(book: Path, runs: Path) -> float:
    from engine.cli.entry import main

    sys.argv = ["runbook", "run", str(book), "--non-interactive", "-q", "--runs-dir", str(runs)]
    start = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
        main()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", action="store_true", help="print where the N-step run spends its time")
    args = parser.parse_args()
    os.environ["RUNBOOK_JOURNAL_FSYNC"] = "0"
    sys.path.insert(0, str(ROOT))
    _instant_executor()
    with tempfile.TemporaryDirectory(prefix="bench-profile-live-") as tmp:
        work = Path(tmp)
        one, many = _runbook(work / "one.yaml", 1), _runbook(work / "many.yaml", STEPS)
        _cpu_of_run(one, work / "runs")  # imports, caches
        best_one = min(_cpu_of_run(one, work / "runs") for _ in range(5))
        best_many = min(_cpu_of_run(many, work / "runs") for _ in range(5))
        print(f"{STEPS} steps {best_many * 1e3:.1f} ms, 1 step {best_one * 1e3:.1f} ms of CPU (best of 5): "
              f"{(best_many - best_one) / (STEPS - 1) * 1e3:.3f} ms per step of the engine's own work")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            _cpu_of_run(many, work / "runs")
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
