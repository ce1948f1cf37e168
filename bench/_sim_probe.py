"""One turn of the simulation benchmark, in a process of its own: `python _sim_probe.py
SCENARIO TRIALS` runs one untimed trial, then TRIALS seeded trials of the scenario in this
process, and prints JSON: simulated steps, CPU and wall seconds of the timed trials.

It uses only what every version of the engine has had (load_scenario, load_runbook,
run_scenario, DrillSetup), so the same probe measures this tree and a baseline tree put
first on PYTHONPATH.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    from engine.language.validation import load_runbook, load_scenario
    from engine.simulation.drill import DrillSetup, run_scenario

    path, trials = sys.argv[1], int(sys.argv[2])
    scenario = load_scenario(path)
    runbook = load_runbook(scenario.runbook_path)
    first = run_scenario(scenario, runbook)
    if first.result.outcome != "resolved":
        raise SystemExit(f"the benchmark scenario did not resolve: {first.result.reason}")
    steps = len(first.timings.steps)
    cpu, wall = time.process_time(), time.perf_counter()
    for seed in range(trials):
        run_scenario(scenario, runbook, DrillSetup(seed=seed))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    import engine

    print(json.dumps({"steps": steps * trials, "cpu": cpu, "wall": wall, "engine": engine.__file__}))


if __name__ == "__main__":
    main()
