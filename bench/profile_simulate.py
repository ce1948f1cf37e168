"""Where a simulated step's work goes: Python bytecodes executed per step, by function
and by module, for trials of the simulation benchmark's scenario (bench/simulate.py).

    .venv/bin/python bench/profile_simulate.py              # 200-step scenario, as `runbook test` runs a trial
    .venv/bin/python bench/profile_simulate.py --steps 20   # the issue's 20-step scenario
    .venv/bin/python bench/profile_simulate.py --records    # with the records a lone drill keeps
    .venv/bin/python bench/profile_simulate.py --steps 20 --fixed   # a trial's fixed work, by function

Bytecodes are counted with sys.settrace's opcode events: exact and the same under any
load, and, unlike cProfile's times, not inflated for small functions by the profiler's
own cost. A simulated step runs about 90 machine instructions per bytecode, so the
counts rank what to cut; valgrind (bench/_instructions.py) gives the instructions.
Generated code (dataclass `__init__`s, events' `stamped`) is named by its class.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `import bench...` work
    sys.path.insert(0, str(ROOT))

from bench.simulate import _write  # noqa: E402


class _Counter:
    """Opcodes executed, by the function (file:line:name) that executed them."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()

    def trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        code = frame.f_code
        if code.co_filename == "<string>":  # generated: name it by the class it belongs to
            key = f"{type(frame.f_locals.get('self')).__name__}.{code.co_name}"
        else:
            key = f"{code.co_filename.replace(str(ROOT) + '/', '')}:{code.co_firstlineno}:{code.co_name}"
        counts = self.counts

        def local(frame: FrameType, event: str, arg: Any) -> Any:
            if event == "opcode":
                counts[key] += 1
            return local

        return local


def _profile(scenario_path: Path, trials: int, records: bool) -> tuple[_Counter, int]:
    from engine.language.validation import load_runbook, load_scenario
    from engine.run.digest import remembered
    from engine.simulation._spread import TrialPlan
    from engine.simulation.drill import DrillSetup, run_scenario
    from engine.simulation.trials import TrialResult

    scenario = load_scenario(str(scenario_path))
    runbook = load_runbook(scenario.runbook_path)
    steps = len(run_scenario(scenario, runbook).timings.steps)  # warm: templates compiled, modules imported
    plan = TrialPlan(scenario, runbook, 0, trials)
    counter = _Counter()
    with remembered():  # as trials run (engine/simulation/_spread.py)
        sys.settrace(counter.trace)
        try:
            for seed in range(trials):
                if records:  # a lone drill
                    run_scenario(scenario, runbook, DrillSetup(seed=seed))
                else:  # a trial of `runbook test --trials`, and what the estimate keeps of it
                    TrialResult.of(plan.run(seed))
        finally:
            sys.settrace(None)
    return counter, steps * trials


def _fixed(steps: int, trials: int, top: int) -> None:
    """Bytecodes a trial runs whatever its length (setup, phases, scoring), by function:
    each function's count per trial at `steps` and at ten times as many steps, the line
    through the two taken back to no steps."""
    per_trial: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="profile-sim-") as tmp:
        for length, runs in ((steps, trials), (steps * 10, max(trials // 5, 2))):
            counter, _ = _profile(_write(Path(tmp), length), runs, False)
            per_trial.append({key: count / runs for key, count in counter.counts.items()})
    small, large = per_trial
    fixed = {key: small.get(key, 0.0) - steps * (large.get(key, 0.0) - small.get(key, 0.0)) / (9 * steps)
             for key in {*small, *large}}
    print(f"{sum(fixed.values()):,.0f} bytecodes of a trial's fixed work ({sum(small.values()):,.0f} in a "
          f"{steps}-step trial)\n")
    for key, count in sorted(fixed.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {count:8.0f}  {key}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="steps of the scenario (default 200)")
    parser.add_argument("--trials", type=int, default=3, help="trials counted (default 3)")
    parser.add_argument("--records", action="store_true", help="keep the journal's records, as a lone drill does")
    parser.add_argument("--top", type=int, default=40, help="functions listed (default 40)")
    parser.add_argument("--fixed", action="store_true",
                        help="a trial's fixed work: each function's count fitted over --steps and ten times as many")
    args = parser.parse_args()
    if args.fixed:
        _fixed(args.steps, args.trials, args.top)
        return
    with tempfile.TemporaryDirectory(prefix="profile-sim-") as tmp:
        counter, steps = _profile(_write(Path(tmp), args.steps), args.trials, args.records)
    total = sum(counter.counts.values())
    modules: collections.Counter[str] = collections.Counter()
    for key, count in counter.counts.items():
        modules[key.split(":")[0] if ":" in key else "(generated)"] += count
    print(f"{total / steps:,.0f} bytecodes per simulated step ({args.steps}-step scenario, {args.trials} trials)\n")
    print("by module:")
    for name, count in modules.most_common(15):
        print(f"  {count / steps:8.1f}  {100 * count / total:5.1f}%  {name}")
    print("\nby function:")
    for name, count in counter.counts.most_common(args.top):
        print(f"  {count / steps:8.1f}  {100 * count / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
