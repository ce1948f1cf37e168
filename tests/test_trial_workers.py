"""Trials spread over forked workers (engine.simulation._spread and _workers): a worker
that dies or fails gives a clear error and never a hang, none is left behind, and Ctrl-C
stops them all with no traceback and no journal line cut in half."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from simkit import ROOT, load_pair, write_pair
from test_trials import RANDOM, RUNBOOK

from engine.errors import EngineError
from engine.simulation._spread import CHUNK, TrialPlan, spread
from engine.simulation.drill import DrillRun

PATIENCE = 120.0  # seconds before a test calls a spread hung (it takes well under one)


def _children() -> set[int]:
    """This process's child processes (those of its main thread)."""
    pid = os.getpid()
    return {int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def _spread_all(tmp_path: Path, keep: Callable[[DrillRun], Any], trials: int = 3 * CHUNK) -> list[Any]:
    """Every kept value of a spread over two workers, or what it raised; fails if it hangs."""
    scenario, runbook = load_pair(tmp_path, RUNBOOK, RANDOM)
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(list(spread(TrialPlan(scenario, runbook, 0, trials), keep, jobs=2)))
        except BaseException as exc:  # handed to the test
            outcome.append(exc)

    before = _children()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(PATIENCE)
    assert not thread.is_alive(), "the spread hung"
    assert _children() <= before, "a worker was left behind"
    return outcome


def test_a_worker_killed_in_the_middle_gives_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    parent, seen = os.getpid(), []

    def killed(run: DrillRun) -> int:
        if _in_a_worker_s_second_chunk(parent, seen):
            os.kill(os.getpid(), signal.SIGKILL)
        return os.getpid()

    [raised] = _spread_all(tmp_path, killed)
    assert isinstance(raised, EngineError)
    assert re.fullmatch(r"a worker process running trials \(pid \d+\) was killed by SIGKILL; the trials stopped",
                        str(raised))


def test_a_worker_that_exits_says_with_what_status(tmp_path: Path) -> None:
    parent, seen = os.getpid(), []

    def exits(run: DrillRun) -> int:
        if _in_a_worker_s_second_chunk(parent, seen):
            os._exit(3)
        return 1

    [raised] = _spread_all(tmp_path, exits)
    assert isinstance(raised, EngineError) and "exited with status 3" in str(raised)


def test_what_a_worker_cannot_send_back_is_an_engine_error_naming_why(tmp_path: Path) -> None:
    [raised] = _spread_all(tmp_path, lambda run: threading.Lock())
    assert isinstance(raised, EngineError)
    assert re.search(r"\(pid \d+\) failed: TypeError: cannot pickle '_thread.lock' object", str(raised))


def test_workers_end_with_the_spread_even_when_it_is_left_early(tmp_path: Path) -> None:
    scenario, runbook = load_pair(tmp_path, RUNBOOK, RANDOM)
    before = _children()
    trials = spread(TrialPlan(scenario, runbook, 0, 20 * CHUNK), lambda run: os.getpid(), jobs=2)
    assert next(trials) != os.getpid()
    trials.close()  # the caller stopped reading: the workers are stopped and waited for
    assert _children() <= before


def test_a_worker_that_cannot_be_started_is_an_engine_error_and_the_others_stop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    forks: list[int] = []
    real = os.fork

    def second_fails() -> int:
        if forks:
            raise BlockingIOError(errno.EAGAIN, os.strerror(errno.EAGAIN))
        forks.append(1)
        return real()

    monkeypatch.setattr(os, "fork", second_fails)
    [raised] = _spread_all(tmp_path, lambda run: 1)
    assert isinstance(raised, EngineError)
    assert str(raised) == ("cannot start a worker process for the trials (Resource temporarily unavailable); "
                           "--jobs 1 runs them in this one")


def test_a_trial_that_raises_leaves_no_worker_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.simulation._spread as spread_module

    real = spread_module.run_scenario

    def one_fails(scenario, runbook, setup):  # type: ignore[no-untyped-def]
        if setup.seed == CHUNK + 5:  # in the second chunk, in a worker, then here
            raise EngineError("step fix: the world broke")
        return real(scenario, runbook, setup)

    monkeypatch.setattr(spread_module, "run_scenario", one_fails)
    [raised] = _spread_all(tmp_path, lambda run: 1, trials=20 * CHUNK)
    assert isinstance(raised, EngineError) and str(raised) == "step fix: the world broke"


def _in_a_worker_s_second_chunk(parent: int, seen: list[int]) -> bool:
    """Whether this trial is a worker's first of its second chunk (of three chunks over two
    workers, one runs two). `seen` counts a worker's trials: each has its own copy."""
    if os.getpid() == parent:
        return False
    seen.append(1)
    return len(seen) == CHUNK + 1


# -- Ctrl-C --------------------------------------------------------------------------------------


@pytest.mark.parametrize("whom", ["group", "parent"])
def test_ctrl_c_stops_every_worker_with_no_traceback_and_whole_journal_lines(tmp_path: Path, whom: str) -> None:
    """Ctrl-C in a terminal reaches the whole process group; `kill -INT` the command
    alone: either way the workers stop within a trial and are waited for."""
    _, sc = write_pair(tmp_path, RUNBOOK, RANDOM)
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "engine", "test", os.fspath(sc), "--trials", "100000", "--jobs", "2",
               "--runs-dir", os.fspath(runs)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=_interruptible)
    try:
        _wait_for(lambda: len(list(runs.glob("sc/trial-*"))) > 4 * CHUNK, proc)
        if whom == "group":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            os.kill(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=PATIENCE)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "Traceback" not in err and "interrupted" in err, err
    with pytest.raises(ProcessLookupError):  # nobody is left in the command's process group
        os.killpg(proc.pid, 0)
    for journal in runs.glob("sc/trial-*/journal.jsonl"):
        for line in journal.read_text().splitlines():
            json.loads(line)


def _interruptible() -> None:
    # The command starts with Ctrl-C's default, as a shell at a terminal starts it: a
    # process started in the background by a non-interactive shell (`make test &`, some CI
    # runners) ignores SIGINT, every process it starts inherits that, and a command that
    # keeps an ignored SIGINT ignored (as `runbook test` does, rightly) would run on.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the trials never started"
        time.sleep(0.05)
