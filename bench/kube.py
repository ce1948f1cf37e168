"""Kubernetes fan-out benchmark: one step on the 20 pods of a `pods:` target.

No cluster can run here: `kubectl` is a stand-in, a /bin/sh script on PATH that answers
`config get-contexts` and `get pods` from a file and runs an exec'd command on this
machine (so each call costs a shell's start, not a cluster's round trip). What is
measured is therefore the engine's own cost around kubectl, not a cluster's. Measured in
the same run, as wall-clock time of whole commands (median after a warm-up, commands
taking turns):

  a. `runbook run` of a one-step runbook on the 20 pods, `parallel: 1` (one after another)
  b. the same with `parallel: 20`
  c. the floor: a shell script making the calls a person would make, one after another:
     `kubectl get pods`, then 20 `kubectl exec POD -- /bin/sh -c true`
  d. `runbook run` of one local step (`true`): the engine's start-up

The fan-out's overhead over the bare calls is a - c; without start-up, a - c - d, and per
pod that over 20. Target: under 15 ms per pod (listing, the pid line, the journal and
the console of each pod); the figure is for the note, the target a guard.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from bench._timing import (
    TIMING_HEADERS,
    Context,
    Target,
    Timing,
    fmt_seconds,
    load_average,
    machine,
    machine_line,
    print_tables,
    time_interleaved,
    timing_cells,
    write_json,
)

DESCRIPTION = "runbook run on 20 pods through a stand-in kubectl vs 20 sequential stand-in calls"
PODS = 20
RUNS = 7
PER_POD_LIMIT = 0.015

STAND_IN = """#!/bin/sh
# kubectl stand-in for the benchmark: answers from files, runs exec'd commands here.
for a in "$@"; do
  case "$a" in
    config) cat "{contexts}"; exit 0 ;;
    get) cat "{pods}"; exit 0 ;;
    exec) while [ "$1" != "--" ]; do shift; done; shift; exec "$@" ;;
  esac
done
echo "stand-in: unknown call: $*" >&2
exit 2
"""


def _pods_json() -> dict[str, Any]:
    items = [{"metadata": {"name": f"web-{i:02d}", "namespace": "shop", "labels": {"app": "web"}},
              "status": {"phase": "Running"}} for i in range(PODS)]
    return {"apiVersion": "v1", "kind": "List", "items": items}


def _runbook(parallel: int) -> dict[str, Any]:
    target = {"pods": {"context": "bench", "namespace": "shop", "selector": "app=web"}, "parallel": parallel}
    return {"kind": "runbook", "version": 1, "id": f"kube-{parallel}", "title": f"{PODS} pods, parallel {parallel}",
            "defaults": {"timeout": "30s"}, "targets": {"web": target},
            "remediation": [{"id": "touch", "target": "web", "run": "true"}]}


def _files(work: Path) -> None:
    import json

    (work / "bin").mkdir()
    (work / "pods.json").write_text(json.dumps(_pods_json()))
    (work / "contexts.txt").write_text("bench\n")
    (work / "kubeconfig").write_text("apiVersion: v1\nkind: Config\n")
    script = work / "bin" / "kubectl"
    script.write_text(STAND_IN.format(contexts=work / "contexts.txt", pods=work / "pods.json"))
    script.chmod(0o755)
    for parallel in (1, PODS):
        (work / f"rb{parallel}.yaml").write_text(yaml.safe_dump(_runbook(parallel), sort_keys=False))
    local = {"kind": "runbook", "version": 1, "id": "local-1", "title": "one local step",
             "remediation": [{"id": "touch", "run": "true"}]}
    (work / "local.yaml").write_text(yaml.safe_dump(local, sort_keys=False))
    calls = ["kubectl --context=bench get pods --namespace=shop --selector=app=web --output=json >/dev/null"]
    calls += [f"kubectl --context=bench exec --namespace=shop web-{i:02d} -- /bin/sh -c true" for i in range(PODS)]
    (work / "floor.sh").write_text("set -e\n" + "\n".join(calls) + "\n")


@contextmanager
def _environment(work: Path) -> Iterator[None]:
    """The stand-in first on PATH, its kubeconfig, and runs kept in the work folder."""
    saved = {k: os.environ.get(k) for k in ("PATH", "KUBECONFIG", "RUNBOOK_HOME")}
    os.environ.update(PATH=f"{work / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                      KUBECONFIG=str(work / "kubeconfig"), RUNBOOK_HOME=str(work / ".runbook"))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _measure(ctx: Context, work: Path) -> dict[str, Timing]:
    runs = ctx.runs or RUNS
    runbook = str(ctx.project("runbook"))
    timings = {
        "seq": Timing("pods, parallel 1", [runbook, "run", str(work / "rb1.yaml"), "--yes"], runs),
        "par": Timing(f"pods, parallel {PODS}", [runbook, "run", str(work / f"rb{PODS}.yaml"), "--yes"], runs),
        "floor": Timing("bare calls", ["/bin/sh", str(work / "floor.sh")], runs),
        "local": Timing("one local step", [runbook, "run", str(work / "local.yaml"), "--yes"], runs),
    }
    time_interleaved(list(timings.values()), cwd=work)
    return timings


def _figures(t: dict[str, Timing]) -> dict[str, float]:
    over = t["seq"].median - t["floor"].median
    return {"overhead_s": over, "overhead_without_startup_s": over - t["local"].median,
            "per_pod_s": (over - t["local"].median) / PODS}


_ROWS = (
    ("seq", f"`runbook run`, 1 step on {PODS} pods, parallel 1"),
    ("par", f"`runbook run`, 1 step on {PODS} pods, parallel {PODS}"),
    ("floor", f"bare stand-in calls: `get pods` + {PODS} `exec`, one after another (floor)"),
    ("local", "`runbook run`, 1 local step (start-up)"),
)


def run(ctx: Context) -> bool:
    info = machine(ctx)
    with tempfile.TemporaryDirectory(prefix="bench-kube-") as tmp:
        work = Path(tmp)
        _files(work)
        with _environment(work):
            t = _measure(ctx, work)
    info["load_average_after"] = load_average()
    f = _figures(t)
    targets = [Target(f"fan-out overhead per pod, start-up excluded ({PODS} pods)", f["per_pod_s"],
                      PER_POD_LIMIT)]
    rows = [[what, *timing_cells(t[key])] for key, what in _ROWS]
    note = (f"overhead over the bare calls: {fmt_seconds(f['overhead_s'])} in all, "
            f"{fmt_seconds(f['overhead_without_startup_s'])} without start-up; the stand-in is a shell "
            "script, not a cluster")
    print_tables(["what", *TIMING_HEADERS], rows, targets, heading=machine_line("Kubernetes fan-out", info),
                 note=note)
    write_json(ctx.out_dir / "kube.json", {"benchmark": "kube", "machine": info, "pods": PODS,
                                           "timings": {k: x.summary() for k, x in t.items()}, "figures": f,
                                           "targets": [{"name": x.name, "limit": x.limit, "measured": x.measured,
                                                        "verdict": x.verdict} for x in targets]})
    return all(x.met for x in targets)
