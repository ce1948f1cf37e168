"""Journals for the report tests, made the way users make them: drills of the shipped
scenarios on the virtual clock, live local runs of small runbooks (real processes), a
run killed mid-step, and fan-out journals written record by record.

conftest.py offers them as the session fixtures `live`, `crashed`, `drills` and `fanout`;
the browser tests call `journals()` themselves. Each kind is made once per session, and
test_report_journals.py checks that each journal is what it claims.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import ROOT

HOSTILE = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>"

LIVE_OK = """\
kind: runbook
version: 1
id: live-ok
title: Local service check
summary: Retries, a question, approvals per item, an include and a message.
defaults: {timeout: 30s}
roles: [incident_commander, responder]
detection:
  - id: probe
    run: echo 97
    outputs: {pct: "{{ stdout | int }}"}
    expect: outputs.pct >= 90
triage:
  - id: flaky
    title: Fails once, then works
    run: "test -f flag || { touch flag; echo 'first try failed' >&2; exit 1; }"
    retries: {attempts: 3, delay: 200ms}
  - id: assess
    role: responder
    manual: What is filling the disk?
    ask:
      cause: {choices: [logs, data]}
remediation:
  - id: clean
    run: "echo cleaning {{ item }}"
    for_each: [a, b, c]
    confirm: {message: "Clean?", role: incident_commander}
  - id: sub
    include: {runbook: child.yaml}
  - id: tell
    notify: {channel: ops, message: "cleaned"}
recovery:
  - id: verify
    run: echo 50
    until: stdout | int < 90
    every: 1s
    timeout: 10s
"""

CHILD = """\
kind: runbook
version: 1
id: child
title: Child checks
defaults: {timeout: 30s}
detection:
  - id: c1
    run: "true"
    expect: exit_code == 0
recovery:
  - id: c2
    run: sleep 0.1
    until: exit_code == 0
    every: 1s
    timeout: 5s
"""

LIVE_FAIL = """\
kind: runbook
version: 1
id: live-fail
title: Failing remediation with rollback
defaults: {timeout: 30s}
detection:
  - id: probe
    run: echo yes
    expect: exit_code == 0
triage:
  - id: look
    run: echo looking
remediation:
  - id: change
    run: echo changed
    rollback:
      - id: undo_change
        run: echo undone
  - id: tell_ops
    notify: {channel: ops, message: "changing things", required: true}
    continue_on_error: true
  - id: broken
    run: "echo 'boom: disk quota exceeded' >&2; exit 3"
    retries: {attempts: 2, delay: 100ms}
recovery:
  - id: verify
    run: "true"
    expect: exit_code == 0
"""

# A closed port: the webhook is refused at once (one attempt), so the message is "not delivered".
CHANNELS = """\
kind: channels
channels:
  ops: {type: webhook, url: "http://127.0.0.1:9/hook", retries: 1}
"""

LIVE_HOSTILE = f"""\
kind: runbook
version: 1
id: live-hostile
title: "Hostile output {HOSTILE}"
defaults: {{timeout: 30s}}
detection:
  - id: probe
    title: "Step title {HOSTILE}"
    run: "printf '%s\\\\n' \\"$MSG\\" ; printf '%s\\\\n' \\"$MSG\\" >&2"
    env: {{MSG: "{HOSTILE} a|b `tick`"}}
    expect: exit_code == 0
triage:
  - id: ask
    manual: "Answer with markup"
    ask:
      note: {{type: text}}
recovery:
  - id: verify
    run: "true"
    expect: exit_code == 0
"""

CRASH = """\
kind: runbook
version: 1
id: crash-me
title: A run that is killed mid-step
defaults: {timeout: 60s}
detection:
  - id: probe
    run: echo ok
    expect: exit_code == 0
remediation:
  - id: slow
    title: Takes far too long
    run: sleep 30
recovery:
  - id: verify
    run: "true"
    expect: exit_code == 0
"""


def _runbook_cmd(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "engine", *map(str, args)]


def _run(workdir: Path, runbook: str, runs: Path, *extra: str) -> Path:
    """A live run of `runbook` (a file in workdir) as a real process; its run directory."""
    before = set(runs.iterdir()) if runs.exists() else set()
    done = subprocess.run(_runbook_cmd("run", workdir / runbook, "--non-interactive", "--yes", "-q",
                                       "--runs-dir", runs, *extra),
                          cwd=workdir, capture_output=True, text=True, timeout=120)
    made = sorted(set(runs.iterdir()) - before)
    assert len(made) == 1, (done.returncode, done.stdout, done.stderr)
    return made[0]


def make_live(base: Path) -> dict[str, Path]:
    work = base / "work"
    work.mkdir()
    for name, text in (("live-ok.yaml", LIVE_OK), ("child.yaml", CHILD), ("live-fail.yaml", LIVE_FAIL),
                       ("channels.yaml", CHANNELS), ("live-hostile.yaml", LIVE_HOSTILE)):
        (work / name).write_text(text, encoding="utf-8")
    runs = base / "runs"
    return {
        "ok": _run(work, "live-ok.yaml", runs, "--answer", "assess.cause=logs", "--as", "alice:incident_commander"),
        "fail": _run(work, "live-fail.yaml", runs, "--channels", str(work / "channels.yaml")),
        "hostile": _run(work, "live-hostile.yaml", runs, "--answer", f"ask.note={HOSTILE}"),
    }


def make_crashed(base: Path) -> dict[str, Path]:
    """A run killed (SIGKILL) while a step runs, and a copy whose last line is torn."""
    (base / "crash.yaml").write_text(CRASH, encoding="utf-8")
    runs = base / "runs"
    proc = subprocess.Popen(_runbook_cmd("run", base / "crash.yaml", "--non-interactive", "--yes", "-q",
                                         "--runs-dir", runs), cwd=base, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        # Killed once the step's command runs: its process group is journaled (step.process)
        # as it starts, so that record is the last one, whatever the machine's load.
        _wait_for(lambda: any('"event": "step.process", "step": "slow"' in p.read_text()
                              for p in runs.glob("*/journal.jsonl")))
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    [killed] = [p.parent for p in runs.glob("*/journal.jsonl")]
    torn = base / "torn"
    shutil.copytree(killed, torn)
    with open(torn / "journal.jsonl", "a", encoding="utf-8") as handle:
        handle.write('{"seq": 99, "t": "2026-01-01T00:00:0')  # the engine died mid-write
    return {"killed": killed, "torn": torn}


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("timed out waiting for the run to reach its slow step")


def make_drills(base: Path) -> dict[str, Path]:
    """Every shipped scenario, unattended on the virtual clock (`runbook test --runs-dir`)."""
    from engine.simulation.suite import run_suite, scenario_files

    run_suite(scenario_files([str(ROOT / "scenarios")]), runs_dir=base)
    return {p.name: p for p in sorted(base.iterdir()) if (p / "journal.jsonl").is_file()}


def _rec(seq: int, elapsed: float, event: str, **fields: Any) -> dict[str, Any]:
    return {"seq": seq, "t": f"2026-03-01T10:00:{int(elapsed):02d}.000Z", "elapsed": elapsed, "event": event,
            **fields}


def fanout_records(*, host_events: bool) -> list[dict[str, Any]]:
    """A live run whose `restart` step fans out to three hosts; web-3 fails."""
    hosts = {"web-1": ("ok", 0, 2.0, None), "web-2": ("ok", 0, 4.0, None),
             "web-3": ("failed", 1, 1.5, "exit code 1")}
    recs = [
        _rec(1, 0.0, "run.started", run_id="fan-1", runbook="rolling-restart", title="Rolling restart",
             file="/nowhere/rolling.yaml", mode="live", inputs={}, participants=[], scenario=None, incident={}),
        _rec(2, 0.0, "phase.started", phase="remediation"),
        _rec(3, 0.0, "step.started", step="restart", phase="remediation", kind="run", title="Restart the app",
             command="systemctl restart app", target="web", hosts=list(hosts), role=None, rollback_of=None,
             item=None),
    ]
    seq = 4
    if host_events:
        for host, (status, code, duration, error) in hosts.items():
            recs.append(_rec(seq, duration + 0.5, "host.finished", step="restart", host=host, status=status,
                             exit_code=code, duration=duration, error=error))
            seq += 1
    recs += [
        _rec(seq, 4.5, "step.finished", step="restart", phase="remediation", kind="run", status="failed",
             duration=4.5, attempts=1, exit_code=None, error="1 of 3 host(s) failed: web-3",
             hosts={h: {"status": s, "exit_code": c, "duration": d, "error": e} for h, (s, c, d, e) in hosts.items()}),
        _rec(seq + 1, 4.5, "phase.finished", phase="remediation", status="failed", duration=4.5),
        _rec(seq + 2, 4.5, "run.finished", outcome="failed", duration=4.5, reason="1 of 3 host(s) failed: web-3",
             failed_step="restart", error="1 of 3 host(s) failed: web-3", phases={}),
    ]
    return recs


def make_fanout(base: Path) -> dict[str, Path]:
    out = {}
    for name, events in (("with-host-events", True), ("without-host-events", False)):
        run_dir = base / name
        run_dir.mkdir()
        lines = [json.dumps(r) for r in fanout_records(host_events=events)]
        (run_dir / "journal.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        out[name] = run_dir
    return out


LONG_COMMAND = ("curl -sS --fail -H 'Accept: application/json' https://api.internal.example.org/v1/namespaces/"
                "production/deployments/frontend-web-application/status?watch=false&timeoutSeconds=30 | jq -r "
                "'.items[] | select(.status.phase != \"Running\") | .metadata.name' | xargs -r kubectl delete pod")
UNBROKEN = "/opt/tools/" + "x" * 260  # no space, no hyphen: nothing a browser would break at


def crowded_records() -> list[dict[str, Any]]:
    """A 47-minute run that crowds every part of the page: long commands and outputs with
    nowhere to break, long step ids, hosts with long names, and 24 markers, most of them in
    bunches (12 at t=5m: more than a column holds) and two at the very end."""
    recs: list[dict[str, Any]] = []

    def emit(elapsed: float, event: str, **fields: Any) -> None:
        recs.append({"seq": len(recs) + 1, "t": f"2026-03-01T10:{int(elapsed // 60):02d}:{int(elapsed % 60):02d}.000Z",
                     "elapsed": elapsed, "event": event, **fields})

    emit(0.0, "run.started", run_id="crowded-1", runbook="crowded", title="A crowded page", file="/x/crowded.yaml",
         mode="live", inputs={}, participants=[], scenario=None, incident={})
    steps = [("detection", "check_every_frontend_deployment_status_in_production", LONG_COMMAND, 0.0, 300.0),
             ("triage", "collect", UNBROKEN, 300.0, 900.0),
             ("remediation", "restart_the_frontend_pods_one_by_one_with_a_long_name", "echo " + UNBROKEN, 900.0,
              2400.0),
             ("recovery", "verify", LONG_COMMAND, 2400.0, 2820.0)]
    for phase, step, command, start, end in steps:
        emit(start, "phase.started", phase=phase)
        emit(start, "step.started", step=step, phase=phase, kind="run", command=command, title="A title " * 12)
        if phase == "remediation":
            for i, host in enumerate(("frontend-web-application-0001.production.eu-west-1.internal.example.org",
                                      "web-2")):
                emit(end - 10 + i, "host.finished", step=step, host=host, status="ok" if i else "failed",
                     exit_code=i ^ 1, duration=end - start - 20, error=None if i else "exit code 1 " + UNBROKEN)
        emit(end, "step.finished", step=step, phase=phase, kind="run", status="ok", duration=end - start,
             attempts=1, exit_code=0, stdout=UNBROKEN, stderr="error: " + UNBROKEN, error=None)
        emit(end, "phase.finished", phase=phase, status="ok", duration=end - start)
    for at, count in ((60.0, 1), (62.0, 2), (300.0, 12), (301.0, 3), (1500.0, 4), (2820.0, 2)):
        for i in range(count):
            emit(at, "notify.sent", channel="status-" + "long" * 8, purpose="update", ok=True,
                 message=f"update {i} at {at:g}s: " + UNBROKEN)
    recs.sort(key=lambda r: (r["elapsed"], r["seq"]))
    for seq, rec in enumerate(recs, 1):
        rec["seq"] = seq
    emit(2820.0, "run.finished", outcome="resolved", duration=2820.0, reason=None, phases={})
    return recs


def make_crowded(base: Path) -> dict[str, Path]:
    run_dir = base / "crowded"
    run_dir.mkdir()
    (run_dir / "journal.jsonl").write_text("\n".join(json.dumps(r) for r in crowded_records()) + "\n",
                                           encoding="utf-8")
    return {"crowded": run_dir}


_MAKERS: dict[str, Callable[[Path], dict[str, Path]]] = {
    "live": make_live, "crashed": make_crashed, "drills": make_drills, "fanout": make_fanout,
    "crowded": make_crowded,
}
_CACHE: dict[str, dict[str, Path]] = {}


def journals(factory: pytest.TempPathFactory, kind: str) -> dict[str, Path]:
    """Run directories of one kind, made once per test session."""
    if kind not in _CACHE:
        _CACHE[kind] = _MAKERS[kind](factory.mktemp(kind))
    return _CACHE[kind]
