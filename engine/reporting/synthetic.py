"""Synthetic journals for benchmarks and tests of `runbook stats` and reports.

Each journal looks like a real one: run.started, phases, steps with output tails of a
few kilobytes, prompts, approvals, retries, notifications, run.finished; some runs
fail, some crash (no run.finished, a torn last line). Runs are spread over months and
get faster over time, so the trend has something to find. Deterministic for a seed.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from engine.run.journal import JOURNAL

RUNBOOKS = (("disk-full", "disk-full-log-storm"), ("service-down", "service-down-oom-start-limit"),
            ("queue-backlog", None), ("tls-cert-expiry", "tls-cert-expiry-timer-disabled"),
            ("postgres-replication-lag", None))
PHASES = ("detection", "triage", "remediation", "recovery")
EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass
class _Writer:
    lines: list[str]
    start: datetime
    now: float = 0.0
    seq: int = 0

    def emit(self, event: str, **fields: Any) -> None:
        self.seq += 1
        stamp = self.start + timedelta(seconds=self.now)
        record = {"seq": self.seq, "t": stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z",
                  "elapsed": round(self.now, 3), "event": event, **fields}
        self.lines.append(json.dumps(record, ensure_ascii=False))


def _outputs(seed: int) -> list[str]:
    """A pool of command outputs, 0 to 4 KiB (the journal's tail limit)."""
    rng = random.Random(seed)
    words = ("ok", "disk", "/var/log/app.log", "ERROR", "timeout", "200", "restarted", "GiB", "pid=1234")
    pool = []
    for size in (0, 40, 400, 1500, 4096) * 4:
        lines = [" ".join(rng.choice(words) for _ in range(8)) for _ in range(size // 40 + 1)]
        pool.append("\n".join(lines)[:size])
    return pool


_POOL = _outputs(0)


def _output(rng: random.Random) -> str:
    return rng.choice(_POOL)


def _step(w: _Writer, rng: random.Random, phase: str, index: int, speed: float) -> bool:
    """One step; False if it failed (the run stops)."""
    step = f"{phase[:3]}_{index}"
    kind = rng.choice(("run", "run", "run", "http", "manual"))
    w.emit("step.started", step=step, phase=phase, kind=kind, title=f"Step {index} of {phase}",
           command="df -h /var" if kind == "run" else None, target="box" if kind == "run" else None,
           hosts=["db-1"] if kind == "run" else [], role="responder", rollback_of=None, item=None)
    duration = rng.uniform(0.5, 30.0) * speed
    if kind == "manual":
        waited = rng.uniform(10.0, 120.0) * speed
        w.now += waited
        w.emit("prompt.answered", step=step, answers={"cause": "logs"}, by="alice", role="responder", waited=waited)
        duration = waited
    elif rng.random() < 0.1:
        w.now += duration / 2
        w.emit("step.attempt", step=step, attempt=1, ok=False, exit_code=1, error="exit code 1", duration=duration / 2,
               next_in=5.0, polling=False, stdout="", stderr=_output(rng)[:1024])
        w.now += 5.0
    w.now += duration
    failed = rng.random() < 0.01
    w.emit("step.finished", step=step, phase=phase, kind=kind, status="failed" if failed else "ok", duration=duration,
           attempts=1, exit_code=1 if failed else 0, error="exit code 1" if failed else None, reason=None,
           stdout=_output(rng), stderr="", truncated=False, outputs={}, answers={}, status_code=None,
           hosts={"db-1": {"status": "ok", "exit_code": 0, "duration": duration}} if kind == "run" else {},
           items=[], vars={}, logs=[], rollback_of=None)
    return not failed


def journal_lines(index: int, rng: random.Random, runbook: str, scenario: str | None, progress: float) -> list[str]:
    """The lines of one synthetic run; `progress` (0..1, oldest to newest) makes later runs faster."""
    start = EPOCH + timedelta(days=180 * progress, minutes=rng.randint(0, 1440))
    w = _Writer([], start)
    speed = 1.5 - progress  # later runs take less time
    w.emit("run.started", run_id=f"run-{index:05d}", runbook=runbook, title=runbook.replace("-", " "),
           file=f"/srv/runbooks/{runbook}.yaml", mode="drill" if scenario else "live", inputs={"host": "db-1"},
           participants=[{"name": "alice", "role": "responder"}], pid=0, hostname="", version="0.1.0",
           resumed_from=None, scenario=scenario, incident={"impact": None, "urgency": None, "priority": None})
    crash = rng.random() < 0.03
    for phase in PHASES:
        w.emit("phase.started", phase=phase)
        ok = all(_step(w, rng, phase, i, speed) for i in range(rng.randint(2, 5)))
        if crash and phase == "remediation":
            return w.lines + ['{"seq": 999, "t": "2026-01-01T00:0']  # torn mid-write
        w.emit("notify.sent", channel="status", message=f"{runbook}: phase {phase}", ok=True, error=None, step=None,
               purpose="update")
        w.emit("phase.finished", phase=phase, status="ok" if ok else "failed", duration=1.0)
        if not ok:
            w.emit("run.finished", outcome="failed", duration=w.now, reason="exit code 1", failed_step=None,
                   error="exit code 1", phases={})
            return w.lines
    w.emit("run.finished", outcome="resolved", duration=w.now, reason="", failed_step=None, error=None, phases={})
    return w.lines


def generate_journals(directory: str | Path, count: int, seed: int = 7) -> list[Path]:
    """Write `count` run directories with a journal each under `directory`."""
    rng = random.Random(seed)
    root = Path(directory)
    paths = []
    for index in range(count):
        runbook, scenario = RUNBOOKS[index % len(RUNBOOKS)]
        run_dir = root / f"run-{index:05d}"
        run_dir.mkdir(parents=True, exist_ok=True)
        lines = journal_lines(index, rng, runbook, scenario, index / max(count - 1, 1))
        path = run_dir / JOURNAL
        path.write_text("\n".join(lines) + ("" if lines[-1].endswith("0") and '"seq": 999' in lines[-1] else "\n"),
                        encoding="utf-8")
        paths.append(path)
    return paths
