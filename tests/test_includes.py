"""engine.language.includes: an include stays in the runbook's tree (or $RUNBOOK_INCLUDE_PATH), and a
cycle is a validate error, or a clean step failure when it reaches a run anyway (E8, E9)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.commands import cli
from engine.executors.notify import Notifier
from engine.executors.prompts import ScriptedPrompter
from engine.language.builder import build_runbook
from engine.language.includes import ENV
from engine.language.loader import load_file
from engine.language.validation import check_file, load_runbook
from engine.run.bus import EventBus
from engine.run.clock import VirtualClock
from engine.run.events import RunFinished, StepFinished
from engine.run.runner import Runner, RunResult
from engine.run.services import Services
from engine.testing import Recorder, ScriptedExecutor

RUNBOOK_BIN = str(Path(sys.executable).with_name("runbook"))
HEADER = "kind: runbook\nversion: 1\nid: {id}\ntitle: T\ndefaults: {{timeout: 30s}}\n"


def write(path: Path, body: str, rid: str = "main") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER.format(id=rid) + body, encoding="utf-8")
    return path


def rules(path: Path) -> list[tuple[int, int, str]]:
    return [(d.line, d.column, d.rule) for d in check_file(str(path)).diagnostics if d.is_error]


def test_a_directory_in_runbook_include_path_may_be_included(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = write(tmp_path / "shared" / "notify.yaml", "detection:\n  - {id: n, run: 'true'}\n", "notify")
    main = write(tmp_path / "team" / "main.yaml", f"detection:\n  - {{id: a, include: {shared}}}\n")
    monkeypatch.delenv(ENV, raising=False)
    assert rules(main) == [(7, 22, "RB130")]
    monkeypatch.setenv(ENV, f"/nonexistent{os.pathsep}{tmp_path / 'shared'}")
    assert rules(main) == []


def test_a_link_inside_the_tree_that_leads_outside_is_refused(tmp_path: Path) -> None:
    outside = write(tmp_path / "elsewhere" / "x.yaml", "detection:\n  - {id: n, run: 'true'}\n", "x")
    (tmp_path / "team").mkdir()
    (tmp_path / "team" / "link.yaml").symlink_to(outside)
    main = write(tmp_path / "team" / "main.yaml", "detection:\n  - {id: a, include: link.yaml}\n")
    assert rules(main) == [(7, 22, "RB130")]


def test_run_refuses_a_self_include_before_anything_runs(tmp_path: Path) -> None:
    """E8: a self-include passed validate and dry-run, then crashed a live run (RecursionError)."""
    main = write(tmp_path / "main.yaml", "detection:\n  - {id: again, include: main.yaml}\n")
    done = subprocess.run([RUNBOOK_BIN, "run", str(main), "--non-interactive", "--runs-dir", str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "includes this runbook itself [RB131]" in done.stderr
    assert "internal error" not in done.stderr and not (tmp_path / "runs").exists()
    dry = CliRunner().invoke(cli, ["run", str(main), "--dry-run"])
    assert dry.exit_code == 2 and "RB131" in dry.output


def _run_unchecked(path: Path) -> tuple[RunResult, Recorder]:
    """Run a runbook built without validation, as if its includes changed after it was checked."""
    book = build_runbook(load_file(path))
    clock = VirtualClock()
    executor = ScriptedExecutor({"*": "ok"})
    executor.clock = clock
    recorder = Recorder()
    services = Services(local=executor, http=executor, prompter=ScriptedPrompter(yes=True),
                        notifier=Notifier(console=lambda _: None), load_runbook=lambda p: build_runbook(load_file(p)))
    runner = Runner(book, {}, services=services, bus=EventBus(clock, [recorder]), clock=clock, run_id="t")
    return runner.run(), recorder


def _finished(recorder: Recorder) -> dict[str, StepFinished]:
    return {e.step: e for e in recorder.named("step.finished") if isinstance(e, StepFinished)}


def test_a_cycle_that_reaches_a_run_fails_the_include_step_and_the_run_ends(tmp_path: Path) -> None:
    write(tmp_path / "b.yaml", "detection:\n  - {id: back, include: main.yaml}\n", "b")
    main = write(tmp_path / "main.yaml", "detection:\n  - {id: first, run: 'true'}\n  - {id: go, include: b.yaml}\n")
    result, events = _run_unchecked(main)
    assert result.outcome == "failed"
    error = _finished(events)["go/back"].error or ""
    assert "an include cycle" in error and "main.yaml" in error
    assert events.named("run.finished") and isinstance(events.named("run.finished")[-1], RunFinished)


def test_an_include_outside_the_tree_that_reaches_a_run_fails_its_step(tmp_path: Path) -> None:
    main = write(tmp_path / "main.yaml", "detection:\n  - {id: leak, include: /etc/passwd}\n")
    result, events = _run_unchecked(main)
    assert result.outcome == "failed" and result.failed_step == "leak"
    assert "leads outside the runbook's tree" in (_finished(events)["leak"].error or "")


def test_validate_reads_an_included_file_again_once_it_changed(tmp_path: Path) -> None:
    child = write(tmp_path / "child.yaml", "inputs: {host: {type: string}}\ndetection:\n  - {id: n, run: 'true'}\n",
                  "child")
    main = write(tmp_path / "main.yaml", "detection:\n  - {id: a, include: {runbook: child.yaml, inputs: {host: x}}}\n")
    assert rules(main) == []
    write(child, "inputs: {name: {type: string}}\ndetection:\n  - {id: n, run: 'true'}\n  - {id: m, run: 'true'}\n",
          "child")
    assert {r for _, _, r in rules(main)} == {"RB133"}
    with pytest.raises(Exception, match="RB133"):
        load_runbook(main)


def test_an_included_runbook_reads_its_own_secret_and_it_is_masked_everywhere(tmp_path: Path) -> None:
    (tmp_path / "key.txt").write_text("child-key-31337\n")
    write(tmp_path / "child.yaml", "inputs:\n  key: {type: string, secret: true, file: key.txt}\n"
          "detection:\n  - {id: use, run: 'echo got {{ inputs.key }}'}\n", "child")
    main = write(tmp_path / "main.yaml", "detection:\n  - {id: go, include: child.yaml}\n")
    runs = tmp_path / "runs"
    done = subprocess.run([RUNBOOK_BIN, "run", str(main), "--non-interactive", "--yes", "--runs-dir", str(runs)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "got ***" in done.stdout and "31337" not in done.stdout + done.stderr
    written = [p for p in runs.rglob("*") if p.is_file()]
    assert written and not [p for p in written if b"31337" in p.read_bytes()]
