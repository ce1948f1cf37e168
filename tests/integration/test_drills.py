"""Drills as people and CI run them, in real processes: `runbook drill` driven through a
pseudo-terminal (answers typed, a hint asked, Ctrl-C, trainer controls, --speed,
--scripted), `runbook test` proving it spawns nothing and writes the same journal twice,
and the record-and-replay round trip of a real local run."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

RUNBOOK_BIN = str(Path(sys.executable).parent / "runbook")
# Make the pseudo-terminal the controlling terminal of the command, so Ctrl-C typed
# into it reaches the command as SIGINT, as in a real terminal.
WITH_CTTY = ("import fcntl, os, sys, termios; os.setsid(); fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
             "os.execv(sys.argv[1], sys.argv[1:])")


class Terminal:
    """A command on a real pseudo-terminal: read what it shows, type into it."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        master, slave = pty.openpty()
        self.proc = subprocess.Popen([sys.executable, "-c", WITH_CTTY, *args], stdin=slave, stdout=slave,
                                     stderr=slave, cwd=cwd, env={**os.environ, **(env or {})}, close_fds=True)
        os.close(slave)
        self.fd = master
        self.pending = ""
        self.seen = ""

    def expect(self, pattern: str, timeout: float = 20.0) -> str:
        """Wait for `pattern`; the text up to and including it."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.pending)
            if found:
                text, self.pending = self.pending[: found.end()], self.pending[found.end():]
                return text
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(f"never saw {pattern!r}; the terminal showed:\n{self.seen}")

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], min(timeout, 0.2))
        if not ready:
            return self.proc.poll() is None or timeout > 0.2
        try:
            data = os.read(self.fd, 65536).decode("utf-8", errors="replace")
        except OSError:  # the command exited and the terminal closed
            return False
        self.pending += data
        self.seen += data
        return True

    def type(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\r")

    def ctrl_c(self) -> None:
        os.write(self.fd, b"\x03")

    def wait(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._read(0.1)  # keep draining, so the command never blocks on a full terminal
        code = self.proc.wait(max(deadline - time.monotonic(), 0.1))
        os.close(self.fd)
        return code


RUNBOOK = """\
kind: runbook
version: 1
id: disk
title: Disk full
defaults: {timeout: 10m}
roles: [incident_commander, responder]
detection:
  - {id: usage, run: df /var, outputs: {pct: "{{ stdout | int }}"}, expect: outputs.pct > 90}
triage:
  - id: assess
    role: responder
    manual: What is filling /var?
    ask:
      cause: {prompt: Cause, choices: [logs, data]}
remediation:
  - id: compress
    when: steps.assess.answers.cause == 'logs'
    run: gzip /var/log/big.log
    confirm: Compress the big log?
recovery:
  - {id: verify, run: df /var, until: stdout | int < 90, every: 10s, timeout: 5m}
"""
SCENARIO = """\
kind: scenario
version: 1
id: disk-drill
title: Log storm on db-1
runbook: rb.yaml
briefing: "03:12. DiskUsageHigh db-1 /var 96%."
state: {pct: 96}
responses:
  - {step: usage, stdout: "{{ state.pct }}", duration: USAGE_TIME}
  - {step: compress, duration: 30s, set: {pct: 60}}
  - {step: verify, stdout: "{{ state.pct }}", duration: 1s}
events:
  - {at: 20m, message: "Second page: /var at 99%", set: {pct: 99}}
participants:
  assess: {answers: {cause: logs}, after: 30s}
  compress: {approve: true, after: 5s}
hints:
  assess: Which directory grew in the last hour?
objectives:
  outcome: resolved
  time_to_recover: 10m
"""


def write_drill(folder: Path, usage_time: str = "10s") -> Path:
    (folder / "rb.yaml").write_text(RUNBOOK, encoding="utf-8")
    scenario = folder / "sc.yaml"
    scenario.write_text(SCENARIO.replace("USAGE_TIME", usage_time), encoding="utf-8")
    return scenario


def journal_of(runs: Path) -> list[dict[str, Any]]:
    (run_dir,) = runs.iterdir()
    return [json.loads(line) for line in (run_dir / "journal.jsonl").read_text(encoding="utf-8").splitlines()]


def events(records: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in records if r["event"] == name]


def drill_terminal(tmp_path: Path, *extra: str, usage_time: str = "10s", speed: str = "100") -> Terminal:
    write_drill(tmp_path, usage_time)
    return Terminal([RUNBOOK_BIN, "drill", "sc.yaml", "--participant", "alice:responder", "--speed", speed,
                     "--runs-dir", "runs", "--no-color", *extra], tmp_path)


# -- the interactive drill ---------------------------------------------------------------------


def test_an_interactive_drill_is_played_at_the_terminal_with_a_hint(tmp_path: Path) -> None:
    term = drill_terminal(tmp_path)
    briefing = term.expect(r"press Enter to acknowledge ")
    assert "GAME DAY  a drill of the runbook" in briefing and "BRIEFING  03:12. DiskUsageHigh" in briefing
    assert "Log storm on db-1" not in briefing  # the scenario's title is the trainer's
    term.type("")
    term.expect(r"Cause \[logs/data\]: ")
    term.type("hint")
    assert "hint for assess: Which directory grew in the last hour?" in term.expect(r"Cause \[logs/data\]: ")
    term.type("nonsense")
    assert "answer one of: logs, data" in term.expect(r"Cause \[logs/data\]: ")
    term.type("logs")
    term.expect(r"Compress the big log\? \[y/N\]: ")
    term.type("y")
    out = term.expect(r"journal: \S+")
    assert term.wait() == 0
    assert "outcome: resolved" in out and "PASSED" in out and "hints used: 1" in out
    records = journal_of(tmp_path / "runs")
    assert records[0]["mode"] == "drill" and records[0]["participants"] == [{"name": "alice", "role": "responder"}]
    assert [(a["by"], a["role"]) for a in events(records, "incident.acknowledged")] == [("alice", "responder")]
    assert [h["step"] for h in events(records, "hint.shown")] == ["assess"]
    answered = events(records, "prompt.answered")[0]
    assert (answered["answers"], answered["by"], answered["role"]) == ({"cause": "logs"}, "alice", "responder")
    assert events(records, "approval")[0]["approved"] is True
    assert [(r["step"], r["status"]) for r in events(records, "step.finished")] == [
        ("usage", "ok"), ("assess", "ok"), ("compress", "ok"), ("verify", "ok")]


def test_speed_runs_simulated_durations_faster_but_counts_them_in_full(tmp_path: Path) -> None:
    term = drill_terminal(tmp_path, usage_time="2m", speed="200")
    term.expect(r"press Enter to acknowledge ")
    assert "simulated durations run 200x faster" in term.seen
    t0 = time.monotonic()
    term.type("")
    term.expect(r"Cause \[logs/data\]: ")
    real = time.monotonic() - t0
    usage = next(r for r in events(journal_of(tmp_path / "runs"), "step.finished") if r["step"] == "usage")
    assert usage["duration"] >= 120 and real < 10
    term.ctrl_c()
    term.wait()


def test_ctrl_c_at_a_prompt_aborts_the_drill_and_closes_the_journal(tmp_path: Path) -> None:
    term = drill_terminal(tmp_path)
    term.expect(r"press Enter to acknowledge ")
    term.type("")
    term.expect(r"Cause \[logs/data\]: ")
    term.ctrl_c()
    out = term.expect(r"journal: \S+")
    assert term.wait() == 1
    assert "assess aborted" in out and "outcome: aborted" in out and "FAILED" in out
    records = journal_of(tmp_path / "runs")
    assert records[-1]["event"] == "run.finished" and records[-1]["outcome"] == "aborted"
    assert [(r["step"], r["status"]) for r in events(records, "step.finished")] == [
        ("usage", "ok"), ("assess", "aborted")]


def test_ctrl_c_at_the_page_stops_the_drill_before_its_first_step(tmp_path: Path) -> None:
    term = drill_terminal(tmp_path)
    term.expect(r"press Enter to acknowledge ")
    term.ctrl_c()
    out = term.expect(r"journal: \S+")
    assert term.wait() == 1 and "outcome: aborted" in out
    records = journal_of(tmp_path / "runs")
    assert events(records, "step.finished") == [] and events(records, "incident.acknowledged") == []
    assert records[-1]["outcome"] == "aborted"


def test_ctrl_c_during_a_long_simulated_command_stops_it(tmp_path: Path) -> None:
    term = drill_terminal(tmp_path, usage_time="5m", speed="1")
    term.expect(r"press Enter to acknowledge ")
    term.type("")
    term.expect(r"\$ df /var")
    t0 = time.monotonic()
    term.ctrl_c()
    term.expect(r"journal: \S+")
    assert term.wait() == 1 and time.monotonic() - t0 < 10
    records = journal_of(tmp_path / "runs")
    assert [(r["step"], r["status"]) for r in events(records, "step.finished")] == [("usage", "aborted")]
    assert records[-1]["outcome"] == "aborted"


# -- trainer controls --------------------------------------------------------------------------


def test_trainer_controls_help_inject_pause_resume_and_end(tmp_path: Path) -> None:
    term = drill_terminal(tmp_path, speed="1", usage_time="1s")
    term.expect(r"press Enter to acknowledge ")
    term.type("")
    prompt = r"Cause \[logs/data\]: "
    term.expect(prompt)
    term.type(":help")
    assert ":pause  :resume  :inject N" in term.expect(prompt)
    term.type(":inject")
    assert "1 at 20m: Second page: /var at 99%" in term.expect(prompt)
    term.type(":inject 1")
    assert "Second page: /var at 99%" in term.expect(prompt)
    term.type(":inject The CEO is asking in #incident")
    assert "The CEO is asking in #incident" in term.expect(prompt)
    term.type(":pause")
    assert "clock pause" in term.expect(prompt)
    time.sleep(1.0)
    term.type(":resume")
    assert "clock resume" in term.expect(prompt)
    term.type(":bogus")
    assert "unknown trainer command :bogus" in term.expect(prompt)
    term.type(":end")
    out = term.expect(r"journal: \S+")
    assert term.wait() == 1 and "outcome: aborted" in out
    records = journal_of(tmp_path / "runs")
    injected = events(records, "inject.fired")
    assert [(i["index"], i["message"], i["manual"], i["set"]) for i in injected] == [
        (0, "Second page: /var at 99%", True, {"pct": 99}),
        (-1, "The CEO is asking in #incident", True, {}),
    ]
    controls = events(records, "clock.control")
    assert [(c["action"], c["by"]) for c in controls] == [("pause", "trainer"), ("resume", "trainer"),
                                                          ("end", "trainer")]
    paused_for = controls[1]["elapsed"] - controls[0]["elapsed"]
    assert paused_for < 0.5  # a second of real time passed, none of it on the drill's clock
    assert records[-1]["event"] == "run.finished" and records[-1]["outcome"] == "aborted"


# -- unattended drills -------------------------------------------------------------------------


def test_a_scripted_drill_plays_the_scenario_people_without_a_terminal(tmp_path: Path) -> None:
    write_drill(tmp_path)
    done = subprocess.run([RUNBOOK_BIN, "drill", "sc.yaml", "--scripted", "--speed", "300", "--runs-dir", "runs",
                           "--no-color"], cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED" in done.stdout
    records = journal_of(tmp_path / "runs")
    assert records[0]["mode"] == "drill"
    answered = events(records, "prompt.answered")[0]
    assert answered["answers"] == {"cause": "logs"} and answered["waited"] >= 30



def test_an_undeclared_role_names_the_participant_flag_the_trainer_typed(tmp_path: Path) -> None:
    write_drill(tmp_path)
    done = subprocess.run([RUNBOOK_BIN, "drill", "sc.yaml", "--participant", "ben:dba", "--runs-dir", "runs"],
                          cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--participant ben:dba: the runbook declares no role 'dba'" in done.stderr
    assert "--as" not in done.stderr and "Traceback" not in done.stderr

WOULD_WRITE = """\
kind: runbook
version: 1
id: writer
title: Writes files when run for real
defaults: {timeout: 1m}
inputs: {dir: {type: string}}
targets: {box: {hosts: [127.0.0.1]}}
detection:
  - {id: make, run: "touch {{ inputs.dir }}/made-by-run; mkdir {{ inputs.dir }}/made-dir"}
  - {id: remote, target: box, run: "touch {{ inputs.dir }}/made-over-ssh"}
  - {id: post, http: {url: "http://127.0.0.1:9/write", method: POST}}
  - {id: tell, notify: {channel: oncall, message: written}}
recovery:
  - {id: check, run: "test -e {{ inputs.dir }}/made-by-run", until: exit_code == 0, every: 5s, timeout: 1m}
"""

# Runs the CLI with an audit hook that writes every process spawn and connection
# attempt to a file: proof by construction, nothing is patched.
AUDITED = """\
import sys
log = open(sys.argv[1], "a")
WATCH = ("subprocess.Popen", "os.posix_spawn", "os.system", "os.exec", "os.fork", "os.forkpty",
         "os.spawn", "pty.spawn", "socket.connect", "socket.sendto")
def hook(event, args):
    if event.startswith(WATCH):
        log.write(event + "\\n"); log.flush()
sys.addaudithook(hook)
from engine.cli.commands import main
sys.argv = ["runbook", *sys.argv[2:]]
main()
"""


def test_a_drill_of_a_runbook_that_would_create_files_creates_none_and_spawns_nothing(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "rb.yaml").write_text(WOULD_WRITE, encoding="utf-8")
    (tmp_path / "sc.yaml").write_text(textwrap.dedent(f"""\
        kind: scenario
        version: 1
        id: writer-drill
        title: Nothing is written
        runbook: rb.yaml
        inputs: {{dir: {target}}}
        responses:
          - {{step: make, duration: 1s}}
          - {{step: remote}}
          - {{step: post, status: 201}}
          - {{step: check}}
        objectives: {{outcome: resolved}}
        """), encoding="utf-8")
    audit = tmp_path / "audit.log"
    for command in (["test", "sc.yaml"], ["drill", "sc.yaml", "--scripted", "--speed", "100", "--runs-dir", "runs"]):
        done = subprocess.run([sys.executable, "-c", AUDITED, str(audit), *command], cwd=tmp_path,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
    assert list(target.iterdir()) == []
    assert not audit.exists() or audit.read_text() == ""


def test_the_audit_hook_does_see_spawns_of_a_live_run(tmp_path: Path) -> None:
    """The control for the test above: the same hook records the spawns of a real run."""
    target = tmp_path / "target"
    target.mkdir()
    book = tmp_path / "rb.yaml"
    book.write_text("kind: runbook\nversion: 1\nid: w\ntitle: W\ndefaults: {timeout: 1m}\n"
                    f"detection:\n  - {{id: make, run: 'touch {target}/made'}}\n", encoding="utf-8")
    audit = tmp_path / "audit.log"
    done = subprocess.run([sys.executable, "-c", AUDITED, str(audit), "run", str(book), "--non-interactive",
                           "--runs-dir", str(tmp_path / "runs")], cwd=tmp_path, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (target / "made").exists()
    assert audit.read_text().strip() != ""


def test_runbook_test_in_two_processes_writes_the_same_journal_bytes(tmp_path: Path) -> None:
    scenarios = Path(__file__).resolve().parents[2] / "scenarios"
    for name in ("one", "two"):
        done = subprocess.run([RUNBOOK_BIN, "test", str(scenarios), "--runs-dir", str(tmp_path / name)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
    first = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("journal.jsonl"))
    assert len(first) == len(list(scenarios.glob("*.yaml")))  # every shipped scenario ran
    for rel in first:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes(), rel


def test_runbook_test_exit_codes_and_junit_from_a_real_process(tmp_path: Path) -> None:
    write_drill(tmp_path)
    passing = subprocess.run([RUNBOOK_BIN, "test", "sc.yaml", "--junit", "ok.xml"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    (tmp_path / "sc.yaml").write_text(SCENARIO.replace("USAGE_TIME", "20m"), encoding="utf-8")
    failing = subprocess.run([RUNBOOK_BIN, "test", "sc.yaml", "--junit", "bad.xml"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert (passing.returncode, failing.returncode) == (0, 1)
    from xml.etree import ElementTree as ET

    assert ET.parse(tmp_path / "ok.xml").getroot().get("failures") == "0"
    assert ET.parse(tmp_path / "bad.xml").getroot().get("failures") == "1"


# -- record and replay -------------------------------------------------------------------------

LOCAL = """\
kind: runbook
version: 1
id: local-cleanup
title: Local cleanup
defaults: {timeout: 30s}
roles: [incident_commander, responder]
inputs:
  dir: {type: string}
  token: {type: string, secret: true, default: hunter2-secret}
detection:
  - id: usage
    run: "ls {{ inputs.dir }} | wc -l"
    outputs: {count: "{{ stdout | trim | int }}"}
    expect: outputs.count > 0
triage:
  - {id: listing, run: "ls {{ inputs.dir }}; echo '{% raw %}{{ braces }}{% endraw %}'"}
  - id: assess
    manual: What fills it?
    ask: {cause: {choices: [logs, data]}}
remediation:
  - id: flaky
    run: >-
      if [ -e {{ inputs.dir }}/.tried ]; then echo second;
      else touch {{ inputs.dir }}/.tried; echo first >&2; exit 3; fi
    retries: {attempts: 3, delay: 200ms}
  - id: clean
    when: steps.assess.answers.cause == 'logs'
    run: "rm -f {{ inputs.dir }}/*.log && echo cleaned"
    confirm: {message: Clean?, role: incident_commander}
  - id: not_taken
    when: steps.assess.answers.cause == 'data'
    run: echo never
recovery:
  - id: verify
    run: >-
      n=$(cat {{ inputs.dir }}/.polls 2>/dev/null || echo 0); n=$((n+1));
      echo $n > {{ inputs.dir }}/.polls; echo $n
    until: stdout | trim | int >= 3
    every: 200ms
    timeout: 10s
"""


def test_a_real_local_run_replays_as_a_scenario_that_follows_the_same_path(tmp_path: Path) -> None:
    work = tmp_path / "d"
    work.mkdir()
    for name in ("a.log", "b.log", "keep.txt"):
        (work / name).write_text("x", encoding="utf-8")
    (tmp_path / "rb.yaml").write_text(LOCAL, encoding="utf-8")
    live = subprocess.run([RUNBOOK_BIN, "run", "rb.yaml", "-i", f"dir={work}", "--non-interactive", "--yes",
                           "--answer", "assess.cause=logs", "--as", "dana:incident_commander",
                           "--runs-dir", "runs", "--no-color"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert live.returncode == 0, live.stdout + live.stderr
    assert sorted(p.name for p in work.iterdir()) == [".polls", ".tried", "keep.txt"]  # it really ran
    (run_dir,) = (tmp_path / "runs").iterdir()
    made = subprocess.run([RUNBOOK_BIN, "scenario", "from-run", str(run_dir), "-o", "replay.yaml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    assert "hunter2-secret" not in (tmp_path / "replay.yaml").read_text(encoding="utf-8")
    (work / "keep.txt").unlink()  # the replay must not depend on (or touch) the real directory
    replayed = subprocess.run([RUNBOOK_BIN, "test", "replay.yaml", "--runs-dir", "replays"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert sorted(p.name for p in work.iterdir()) == [".polls", ".tried"]

    def path(journal: Path) -> list[tuple[str, str, int]]:
        records = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
        return [(r["step"], r["status"], r["attempts"]) for r in records if r["event"] == "step.finished"]

    original = path(run_dir / "journal.jsonl")
    (replay_dir,) = (tmp_path / "replays").iterdir()
    assert original == [("usage", "ok", 1), ("listing", "ok", 1), ("assess", "ok", 1), ("flaky", "ok", 2),
                        ("clean", "ok", 1), ("not_taken", "skipped", 0), ("verify", "ok", 1)]
    assert path(replay_dir / "journal.jsonl") == original


POLLING = """\
kind: runbook
version: 1
id: probe-poll
title: Poll a health endpoint until it recovers
defaults: {timeout: 30s}
inputs:
  url: {type: string}
detection:
  - {id: first, run: echo starting}
remediation:
  - {id: restart, run: "sleep 0.3; echo restarted"}
recovery:
  - id: health
    http: {url: "{{ inputs.url }}", status: [200, 502]}
    until: status == 200
    every: 1s
    timeout: 20s
  - {id: after, run: echo done}
"""


def _journal(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_live_http_poll_replays_attempt_by_attempt_with_the_live_durations(tmp_path: Path) -> None:
    """A real server answers 502, 502, 200: the replay polls three times too (each attempt
    journals its own status and body), every step takes the live time (5% or 100 ms) and
    so does the run (5%)."""
    from livekit import Server

    answers = iter([502, 502])

    def health(_: Any) -> tuple[int, str]:
        status = next(answers, 200)
        return status, "ok\n" if status == 200 else "<html>502 Bad Gateway</html>\n"

    (tmp_path / "rb.yaml").write_text(POLLING, encoding="utf-8")
    with Server({"/healthz": health}) as server:
        live = subprocess.run([RUNBOOK_BIN, "run", "rb.yaml", "-i", f"url={server.url}/healthz", "--non-interactive",
                               "--runs-dir", "runs", "--no-color"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)
    assert live.returncode == 0, live.stdout + live.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    made = subprocess.run([RUNBOOK_BIN, "scenario", "from-run", str(run_dir), "-o", "replay.yaml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    replayed = subprocess.run([RUNBOOK_BIN, "test", "replay.yaml", "--runs-dir", "replays"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    original = _journal(run_dir / "journal.jsonl")
    (replay_dir,) = (tmp_path / "replays").iterdir()
    again = _journal(replay_dir / "journal.jsonl")

    def attempts(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(r["step"], r["attempt"], r["status_code"], r["stdout"]) for r in records
                if r["event"] == "step.attempt"]

    def steps(records: list[dict[str, Any]]) -> dict[str, tuple[str, int | None, float]]:
        return {r["step"]: (r["status"], r["status_code"], r["duration"]) for r in records
                if r["event"] == "step.finished"}

    bad = "<html>502 Bad Gateway</html>\n"
    assert attempts(original) == [("health", 1, 502, bad), ("health", 2, 502, bad)]
    assert attempts(again) == attempts(original)
    live_steps, replay_steps = steps(original), steps(again)
    assert list(replay_steps) == list(live_steps) == ["first", "restart", "health", "after"]
    for step, (status, code, seconds) in live_steps.items():
        assert replay_steps[step][:2] == (status, code), step
        assert abs(replay_steps[step][2] - seconds) <= max(0.05 * seconds, 0.1), (step, seconds, replay_steps[step])
    assert live_steps["health"][2] > 2.0  # two polls 1 s apart really happened
    (live_total,) = [r["duration"] for r in original if r["event"] == "run.finished"]
    (replay_total,) = [r["duration"] for r in again if r["event"] == "run.finished"]
    assert abs(replay_total - live_total) <= 0.05 * live_total, (live_total, replay_total)
