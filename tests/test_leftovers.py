"""engine.run.leftovers: a step's processes are found by the marks in their environment, here
(/proc) and with the shell scan sent to remote hosts, and stopped as a whole group."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from engine.executors.base import marks
from engine.run.leftovers import Leftover, Settler, Started, local_leftovers, parse_scan, scan_command


@pytest.fixture
def marked() -> Iterator[subprocess.Popen[bytes]]:
    """`sleep` in its own session, marked as step `work` of run `run-1`."""
    proc = subprocess.Popen(["sleep", "300"], env={**os.environ, **marks("run-1", "work")}, start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def test_the_shell_scan_finds_the_runs_processes_and_their_step(marked: subprocess.Popen[bytes]) -> None:
    out = subprocess.run(["/bin/sh", "-c", scan_command("run-1")], capture_output=True, text=True, check=True).stdout
    assert (marked.pid, "work") in parse_scan(out)
    other = subprocess.run(["/bin/sh", "-c", scan_command("run-2")], capture_output=True, text=True).stdout
    assert marked.pid not in [pgid for pgid, _ in parse_scan(other)]


def test_local_leftovers_are_the_marked_groups_of_interrupted_steps(marked: subprocess.Popen[bytes]) -> None:
    work = Started("work", None, (), ())
    assert local_leftovers("run-1", [work]) == [Leftover("work", marked.pid)]
    assert local_leftovers("run-1", [Started("other", None, (), ())]) == []
    assert local_leftovers("run-2", [work]) == []


def test_a_journaled_group_reused_by_an_unrelated_process_is_not_a_leftover() -> None:
    stranger = subprocess.Popen(["sleep", "300"], start_new_session=True)  # readable, and not marked
    try:
        assert local_leftovers("run-1", [Started("work", None, (), ((stranger.pid, None),))]) == []
    finally:
        stranger.kill()
        stranger.wait()


def test_stop_ends_the_whole_group(marked: subprocess.Popen[bytes]) -> None:
    settler = Settler("run-1", None)
    [leftover] = settler.find([Started("work", None, (), ())])
    assert settler.alive(leftover)
    settler.stop(leftover)
    marked.wait(10)
    assert not settler.alive(leftover)


def test_a_scan_line_of_a_zombie_or_garbage_is_ignored() -> None:
    assert parse_scan("S 12 work\nZ 13 work\nnonsense\nR x y\nS 14 a step with spaces\n") == [
        (12, "work"), (14, "a step with spaces")]
