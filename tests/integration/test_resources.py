"""A live run under resource pressure: the run directory's disk fills up, and a step
prints a gibibyte of output."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from livekit import (
    RUNBOOK_BIN,
    Workspace,
    assert_clean_failure_output,
    complete_journal,
    events,
    finished_step,
    runbook_text,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 300 KiB tmpfs (CI runs as root; this test must not be skipped there)."""
    assert os.geteuid() == 0, "mounting a small tmpfs needs root (CI runs as root)"
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_stops_the_run_with_rollbacks_and_a_whole_journal(tmp_path: Path, small_disk: Path) -> None:
    ws = Workspace(tmp_path)
    ws.write("live.yaml", runbook_text("""\
        remediation:
          - id: prepare
            run: echo prepared
            rollback:
              - {id: undo_prepare, run: "echo undone > undone.txt"}
          - id: flood
            run: "head -c 2000000 /dev/zero | tr '\\\\0' x"
          - id: after
            run: touch after.txt
        """))
    done = ws.run("run", "live.yaml", "--quiet", "--runs-dir", small_disk / "runs")
    assert done.code == 1, done.text
    assert_clean_failure_output(done)
    assert "is full (writing logs/flood.stdout.log): stopped before the next action" in done.out
    assert "■ outcome: failed at step after" in done.out
    assert "warning: step output not saved: logs/flood.stdout.log: No space left on device" in done.out
    assert not (tmp_path / "after.txt").exists()
    assert (tmp_path / "undone.txt").exists()  # rollbacks still ran, and are journaled
    records = complete_journal(ws.only_run(small_disk / "runs"))
    assert finished_step(records, "flood")["status"] == "ok"  # the command itself succeeded
    assert "journal: the disk of" in finished_step(records, "after")["error"]
    assert events(records, "rollback.finished")[0]["status"] == "ok"
    assert records[-1]["outcome"] == "failed"


def test_a_gibibyte_of_output_streams_through_in_bounded_memory(tmp_path: Path) -> None:
    """The engine keeps only a tail in memory: peak RSS stays under 100 MB while the
    console and the step's log receive all of it."""
    ws = Workspace(tmp_path)
    ws.write("live.yaml", runbook_text("""\
        remediation:
          - id: flood
            run: "head -c 1G /dev/zero"
            timeout: 5m
        """))
    # A child python runs `runbook` and reports its peak RSS: RUSAGE_CHILDREN of that
    # child counts only `runbook` (and the tiny `head`), nothing else of this test run.
    measure = ("import resource, subprocess, sys\n"
               "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
               "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    proc = subprocess.run([sys.executable, "-c", measure, str(RUNBOOK_BIN), "run", "live.yaml"],
                          cwd=tmp_path, env=ws.env, capture_output=True, text=True, timeout=300)
    run_dir = ws.only_run()
    log = run_dir / "logs" / "flood.stdout.log"
    try:
        code, peak_kib = map(int, proc.stdout.split())
        assert code == 0, proc.stderr
        assert peak_kib < 100 * 1000 * 1000 / 1024, f"peak RSS {peak_kib} KiB"
        assert log.stat().st_size == 1 << 30
        step = finished_step(complete_journal(run_dir), "flood")
        assert step["truncated"] and len(step["stdout"]) <= 4096
    finally:
        log.unlink(missing_ok=True)  # pytest keeps temporary directories: do not keep 1 GiB


def test_a_disk_already_full_at_start_is_a_journal_error_naming_the_path(tmp_path: Path, small_disk: Path) -> None:
    """Exit 3, the path in the message, and no empty journal or run directory left behind."""
    with open(small_disk / "filler", "wb", buffering=0) as filler:
        try:
            while filler.write(b"\0" * 4096):
                pass
        except OSError:
            pass
    ws = Workspace(tmp_path)
    ws.write("live.yaml", runbook_text("""\
        triage:
          - {id: never, run: touch never.txt}
        """))
    done = ws.run("run", "live.yaml", "--runs-dir", small_disk / "runs")
    assert done.code == 3, done.text
    assert_clean_failure_output(done)
    assert f"cannot open the journal {small_disk / 'runs'}" in done.err and "No space left on device" in done.err
    assert not (tmp_path / "never.txt").exists()
    assert not list((small_disk / "runs").glob("*/journal.jsonl"))
    done = ws.run("run", "live.yaml", "--runs-dir", small_disk / "runs",
                  env={"RUNBOOK_LOCK_DIR": str(small_disk / "locks")})
    assert done.code == 3 and "cannot write the run lock" in done.err, done.text  # the lock on the full disk
