"""A block's items at once (`parallel`, `serial` over items, `max_failures` counted over
them, issue 12 item 1): a real concurrency proof, batches and tolerated failures on the
virtual clock, the drill's time, the plan, and Ctrl-C in a terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from engine.cli.commands import cli
from engine.run.events import StepFinished
from engine.testing import ScriptedExecutor, run_text
from tests.test_runner import finished, runbook

# Each item waits for the other's marker file: one at a time, the first never ends.
MEET = """\
remediation:
  - id: each
    for_each: [a, b]
    parallel: 2
    block:
      - id: meet
        run: >-
          touch {dir}/{{{{ item }}}} && for i in $(seq 300);
          do test -e {dir}/{{{{ 'b' if item == 'a' else 'a' }}}} && exit 0; sleep 0.1; done; exit 1
      - {{id: say, run: "echo done {{{{ item }}}}"}}
  - id: after
    run: "echo {{{{ steps.meet.items | map(attribute='status') | join(',') }}}} {{{{ steps.say.items[1].stdout }}}}"
"""


def _journal(runs: Path) -> list[dict[str, object]]:
    [run] = list(runs.iterdir())
    return [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]


def test_the_items_of_a_parallel_block_run_at_once(tmp_path: Path) -> None:
    (tmp_path / "meet.yaml").write_text(runbook(MEET.format(dir=tmp_path)))
    runs = tmp_path / "runs"
    done = CliRunner().invoke(cli, ["run", "--yes", "--runs-dir", str(runs), str(tmp_path / "meet.yaml")])
    assert done.exit_code == 0, done.output
    assert "item 0: done a" in done.output and "item 1: done b" in done.output
    records = _journal(runs)
    after = [r for r in records if r["event"] == "step.finished" and r["step"] == "after"]
    assert after[0]["stdout"].split() == ["ok,ok", "done", "b"]
    meets = sorted(r["index"] for r in records if r["event"] == "step.finished" and r["step"] == "meet")
    assert meets == [0, 1]
    seqs = [r["seq"] for r in records]
    assert seqs == list(range(1, len(seqs) + 1))  # every event whole, one after another
    started = {(r["step"], r.get("index")) for r in records if r["event"] == "step.started"}
    assert {(r["step"], r.get("index")) for r in records if r["event"] == "step.finished"} <= started


def test_reports_fold_items_that_ran_at_once_under_their_block(tmp_path: Path) -> None:
    """The journal of items at once interleaves their steps: one bar per step still."""
    from engine.reporting.timeline import build_timeline

    (tmp_path / "meet.yaml").write_text(runbook(MEET.format(dir=tmp_path)))
    runs = tmp_path / "runs"
    done = CliRunner().invoke(cli, ["run", "--yes", "--runs-dir", str(runs), str(tmp_path / "meet.yaml")])
    assert done.exit_code == 0, done.output
    records = _journal(runs)
    meets = [r["event"] for r in records if r.get("step") == "meet" and r["event"] in ("step.started", "step.finished")]
    assert meets == ["step.started", "step.started", "step.finished", "step.finished"]  # interleaved
    bars = build_timeline(records).bars
    assert [b.step for b in bars] == ["each", "meet", "say", "after"]
    by = {b.step: b for b in bars}
    assert sorted((i.name, i.status) for i in by["meet"].items) == [("a", "ok"), ("b", "ok")]
    assert sorted(i.name for i in by["say"].items) == ["a", "b"]
    assert all(i.end >= i.start for i in by["each"].items) and len(by["each"].items) == 2


NESTED = """\
remediation:
  - id: outer
    for_each: [a, b]
    parallel: 2
    block:
      - id: inner
        for_each: [x, y]
        parallel: 2
        block:
          - id: leaf
            run: >-
              touch {dir}/m-$$ && for i in $(seq 300);
              do test $(ls {dir} | grep -c -- -) = 4 && exit 0; sleep 0.1; done; exit 1
"""


def test_blocks_with_items_at_once_nest_and_all_their_items_run_at_once(tmp_path: Path) -> None:
    """Each of the four leaves waits until all four have started (an inner block's items
    share the outer item's turns: a second baton released an unlocked lock)."""
    marks = tmp_path / "marks"
    marks.mkdir()
    (tmp_path / "nest.yaml").write_text(runbook(NESTED.format(dir=marks)))
    runs = tmp_path / "runs"
    done = CliRunner().invoke(cli, ["run", "--yes", "--runs-dir", str(runs), str(tmp_path / "nest.yaml")])
    assert done.exit_code == 0, done.output
    leaves = [r for r in _journal(runs) if r["event"] == "step.finished" and r["step"] == "leaf"]
    assert sorted(r["status"] for r in leaves) == ["ok"] * 4


ROLLOUT = """\
remediation:
  - id: each
    for_each: [n0, n1, n2, n3, n4, n5]
    serial: 2
    max_failures: 1
    block:
      - {id: check, run: "check {{ item }}"}
      - {id: settle, wait: 1m}
"""


def test_serial_batches_over_items_stop_starting_items_past_max_failures() -> None:
    executor = ScriptedExecutor({"check n0": "ok", "check n1": "ok", "check n2": 1, "check n3": 1})
    result, events = run_text(runbook(ROLLOUT), executor=executor)
    assert result.outcome == "failed"
    # n2 failing is tolerated, n3 is one too many: n4 and n5 never start.
    assert sorted(c.command for c in executor.calls) == ["check n0", "check n1", "check n2", "check n3"]
    block = finished(events)["each"]
    assert [i["status"] for i in block.items] == ["ok", "ok", "failed", "failed"]
    assert "item 3" in (block.error or "")
    # The first batch's two items settle together (1m, not 2m); the second's fail at once.
    assert 59 <= block.duration < 65


def test_on_the_virtual_clock_a_batch_takes_as_long_as_its_slowest_item() -> None:
    text = ROLLOUT.replace("    max_failures: 1\n", "").replace("serial: 2", "parallel: 3")
    result, events = run_text(runbook(text), executor=ScriptedExecutor({"check *": "ok"}))
    assert result.outcome == "resolved", result.reason
    block = finished(events)["each"]
    assert 119 <= block.duration < 125  # six items of 1m, three at a time: two rounds, not six
    checks = [e for e in events.named("step.finished") if isinstance(e, StepFinished) and e.step == "check"]
    assert sorted(e.index or 0 for e in checks) == [0, 1, 2, 3, 4, 5]


def test_the_plan_says_how_a_blocks_items_run() -> None:
    from engine.language.builder import build_runbook
    from engine.language.loader import load_text
    from engine.run.plan import build_plan, render_plan

    rb = build_runbook(load_text(runbook(ROLLOUT.replace("serial: 2", "serial: 2\n    parallel: 1")), "r.yaml"))
    assert "items in batches of 2, 1 at a time, up to 1 may fail" in render_plan(build_plan(rb, {}))


def test_the_graph_says_how_a_blocks_items_run(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(runbook(ROLLOUT))
    drawn = CliRunner().invoke(cli, ["graph", str(tmp_path / "r.yaml")])
    assert drawn.exit_code == 0, drawn.output
    assert '"each: for each item, in batches of 2"' in drawn.output


SLEEPERS = """\
remediation:
  - id: each
    for_each: [a, b]
    parallel: 2
    block:
      - {{id: nap, run: "touch {dir}/{{{{ item }}}} && sleep 60"}}
      - {{id: never, run: "echo never"}}
"""


def test_ctrl_c_in_a_terminal_stops_every_running_item(tmp_path: Path) -> None:
    (tmp_path / "nap.yaml").write_text(runbook(SLEEPERS.format(dir=tmp_path)))
    runs = tmp_path / "runs"
    argv = [sys.executable, "-m", "engine", "run", "--yes", "--runs-dir", str(runs), str(tmp_path / "nap.yaml")]
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, argv)
    output = b""
    deadline = time.monotonic() + 60
    while not ((tmp_path / "a").exists() and (tmp_path / "b").exists()) and time.monotonic() < deadline:
        output += _read(fd)
    time.sleep(0.5)
    os.write(fd, b"\x03")  # Ctrl-C, through the terminal
    t0 = time.monotonic()
    while time.monotonic() - t0 < 50:
        chunk = _read(fd)
        output += chunk
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            break
    else:
        os.kill(pid, 9)
        raise AssertionError(output.decode(errors="replace"))
    records = _journal(runs)
    naps = [r for r in records if r["event"] == "step.finished" and r["step"] == "nap"]
    assert sorted(r["status"] for r in naps) == ["aborted", "aborted"], output.decode(errors="replace")
    assert not [r for r in records if r.get("step") == "never"]
    assert records[-1]["event"] == "run.finished" and records[-1]["outcome"] == "aborted"
    assert time.monotonic() - t0 < 40  # the sleeps were stopped, not waited for (60 s)


def _read(fd: int) -> bytes:
    ready, _, _ = select.select([fd], [], [], 0.2)
    if not ready:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""


ASKERS = """\
remediation:
  - id: each
    for_each: [a, b]
    parallel: 2
    block:
      - {id: nap, run: "echo start {{ item }}"}
      - {id: go, run: "echo go {{ item }}", confirm: {message: "Go on with {{ item }}?"}}
"""


def test_items_at_once_ask_on_the_terminal_and_ctrl_c_breaks_into_their_prompt(tmp_path: Path) -> None:
    """The questions of items at once are asked on the main thread, where the terminal's
    Ctrl-C lands: a prompt in an item's thread could not be broken into."""
    (tmp_path / "ask.yaml").write_text(runbook(ASKERS))
    runs = tmp_path / "runs"
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-m", "engine", "run", "--runs-dir", str(runs),
                                  str(tmp_path / "ask.yaml")])
    output = _until(fd, b"?", b"")
    os.write(fd, b"y\r")  # the first item's approval
    output = _until(fd, b"?", output.replace(b"?", b"", 1))
    os.write(fd, b"\x03")  # Ctrl-C at the second's
    t0 = time.monotonic()
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        output += _read(fd)
        if time.monotonic() - t0 > 30:
            os.kill(pid, 9)
            raise AssertionError(output.decode(errors="replace"))
    gos = {r["index"]: r["status"] for r in _journal(runs) if r["event"] == "step.finished" and r["step"] == "go"}
    assert sorted(gos.values()) == ["aborted", "ok"], output.decode(errors="replace")


def test_the_console_indents_a_blocks_steps_under_it() -> None:
    """Lines of steps inside a block (started, command, output, finished) are indented one
    level per block around them; the block's own lines are not."""
    import io

    from engine.run.console import Console

    out = io.StringIO()
    body = """\
    remediation:
      - id: outer
        block:
          - id: inner
            for_each: [a]
            block:
              - {id: leaf, run: "echo hi {{ item }}"}
    """
    run_text(runbook(body), executor=ScriptedExecutor({"echo *": "hi\n"}), observers=[Console(out, unicode=True)])
    lines = out.getvalue().splitlines()
    assert any(line.endswith("] ▶ outer") for line in lines), lines
    assert any("]   ▶ inner" in line for line in lines), lines
    assert any("]     ▶ leaf" in line for line in lines), lines
    assert "            $ echo hi a" in lines and "            │ hi" in lines
    assert any("]     ✓ leaf ok" in line for line in lines), lines


def test_an_items_steps_do_not_count_the_time_it_waited_for_its_turn() -> None:
    """A command done while another item holds the baton (asking someone, say): its
    step's duration is the command's, not the command's and the wait for its turn."""
    import threading

    from engine.run._driver import Baton, Driver
    from engine.run.clock import RealClock

    class Run:
        clock = RealClock()

    d = Driver.__new__(Driver)
    d.r, d.scope, d.within, d.deadline, d.stop, d.ran, d.streams, d.announced, d.lag = (
        Run(), {}, None, None, None, None, None, False, 0.0)
    baton = Baton(d)
    baton.lock.acquire()
    holder = threading.Timer(0.5, baton.lock.release)  # another item keeps the turn for 0.5 s
    with baton.released():
        baton.lock.acquire()  # it takes the turn as our command ends
        holder.start()
    assert 0.4 < d.lag < 5


def _until(fd: int, text: bytes, output: bytes) -> bytes:
    deadline = time.monotonic() + 60
    while text not in output and time.monotonic() < deadline:
        output += _read(fd)
    assert text in output, output.decode(errors="replace")
    return output
