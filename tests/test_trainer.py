"""engine.simulation.trainer: `runbook drill` in-process, with typed lines fed to it: the
team's answers, hints, and the trainer's :inject, :pause, :resume, :end, :help.
(tests/integration/test_drills.py plays the same through a real pseudo-terminal.)"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from simkit import load_pair

from engine.executors.prompts import Participant
from engine.simulation.trainer import DrillOptions, run_drill

RUNBOOK = """\
defaults: {timeout: 10m}
roles: [incident_commander, responder]
detection:
  - {id: usage, run: df /var, outputs: {pct: "{{ stdout | int }}"}}
triage:
  - id: assess
    role: responder
    manual: What is filling /var?
    ask: {cause: {prompt: Cause, choices: [logs, data]}}
remediation:
  - {id: compress, run: gzip big.log, confirm: Compress?, rollback: [{id: undo, run: gunzip big.log.gz}]}
recovery:
  - {id: verify, run: df /var, expect: stdout | int < 90}
"""
SCENARIO = """\
state: {pct: 96}
responses:
  - {step: usage, stdout: "{{ state.pct }}", duration: 10s}
  - {step: compress, duration: 30s, set: {pct: 60}}
  - {step: undo}
  - {step: verify, stdout: "{{ state.pct }}", duration: 1s}
events:
  - {at: 1h, message: "Second page: /var at 99%", set: {pct: 99}, kind: page}
participants:
  assess: {answers: {cause: logs}, after: 30s}
  compress: {approve: true, after: 5s}
hints:
  assess: Which directory grew in the last hour?
objectives: {outcome: resolved}
"""


def typist(lines: Iterable[str], prompts: list[str]) -> Callable[[str], str]:
    """A terminal that types `lines` in order; the end of them is Ctrl-C."""
    queue = list(lines)

    def read(prompt: str) -> str:
        prompts.append(prompt)
        if not queue:
            raise KeyboardInterrupt
        return queue.pop(0)

    return read


def play(tmp_path: Path, lines: Iterable[str], **options: Any) -> tuple[Any, list[dict[str, Any]], str, list[str]]:
    """Run the drill with typed lines; (drill, journal records, console text, prompts)."""
    scenario, runbook = load_pair(tmp_path, RUNBOOK, SCENARIO)
    out = io.StringIO()
    prompts: list[str] = []
    options.setdefault("participants", (Participant("alice", "responder"),))
    drill, run_dir = run_drill(scenario, runbook, DrillOptions(
        speed=1000, runs_dir=tmp_path / "runs", stream=out, read=typist(lines, prompts), **options))
    records = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text(encoding="utf-8").splitlines()]
    return drill, records, out.getvalue(), prompts


def named(records: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [r for r in records if r["event"] == event]


def test_the_team_answers_at_the_terminal_and_the_drill_is_scored(tmp_path: Path) -> None:
    drill, records, out, prompts = play(tmp_path, ["", "logs", "y"])
    assert drill.result.outcome == "resolved" and drill.scorecard.passed
    assert prompts[0].endswith("press Enter to acknowledge ")
    assert "GAME DAY  a drill of the runbook 'Drill runbook'" in out
    assert "Scorecard: Drill scenario (sc)" in out and "PASSED" in out
    assert records[0]["mode"] == "drill"
    assert [(a["by"], a["role"]) for a in named(records, "incident.acknowledged")] == [("alice", "responder")]
    assert named(records, "prompt.answered")[0]["answers"] == {"cause": "logs"}
    usage = next(r for r in named(records, "step.finished") if r["step"] == "usage")
    assert usage["duration"] >= 10  # simulated time counts in full at any speed


def test_asking_for_the_hint_shows_it_and_records_it(tmp_path: Path) -> None:
    drill, records, out, _ = play(tmp_path, ["", "hint", "logs", "y"])
    assert "hint for assess: Which directory grew in the last hour?" in out
    assert [h["step"] for h in named(records, "hint.shown")] == ["assess"]
    assert len(drill.timings.hints) == 1


def test_inject_fires_a_scenario_event_now_and_the_world_changes(tmp_path: Path) -> None:
    drill, records, out, _ = play(tmp_path, ["", ":inject 1", "logs", "y"])
    fired = named(records, "inject.fired")
    assert [(f["index"], f["manual"], f["set"]) for f in fired] == [(0, True, {"pct": 99})]
    assert "Second page: /var at 99%" in out and "page: Second page" not in out  # no kind shown
    assert drill.world.state["pct"] == 60  # then the compress reply set it to 60


def test_inject_text_tells_the_team_something_new(tmp_path: Path) -> None:
    _, records, out, _ = play(tmp_path, ["", ":inject The CEO joined the call", "logs", "y"])
    assert [(f["index"], f["message"], f["manual"]) for f in named(records, "inject.fired")] == [
        (-1, "The CEO joined the call", True)]
    assert "The CEO joined the call" in out


def test_inject_without_an_argument_lists_the_events(tmp_path: Path) -> None:
    _, _, out, _ = play(tmp_path, ["", ":inject", "logs", "y"])
    assert "   events (`:inject N` fires one now):\n     1 at 1h: Second page: /var at 99%\n" in out


def test_inject_of_an_event_number_that_does_not_exist_says_so(tmp_path: Path) -> None:
    _, records, out, _ = play(tmp_path, ["", ":inject 7", "logs", "y"])
    assert "no event 7: the scenario's events are numbered 1 to 1" in out
    assert named(records, "inject.fired") == []


def test_inject_numbers_events_from_1_as_the_lists_do_and_0_is_no_event(tmp_path: Path) -> None:
    _, records, out, _ = play(tmp_path, ["", ":inject 0", "logs", "y"])
    assert named(records, "inject.fired") == []
    assert "no event 0: the scenario's events are numbered 1 to 1" in out


def test_help_lists_the_events_by_number_and_time(tmp_path: Path) -> None:
    _, _, out, _ = play(tmp_path, ["", ":help", "logs", "y"])
    assert "events: 1 at 1h (`:inject` shows what each says, `:inject N` fires one now)" in out


TEAM = (Participant("alice", "responder"), Participant("bob", "incident_commander"))
TWO_QUESTIONS = RUNBOOK.replace("remediation:\n", "  - {id: scope, manual: How wide?, ask: {hosts: {type: number}}}\n"
                                                   "remediation:\n")


def play_team(tmp_path: Path, lines: list[str], runbook: str = RUNBOOK) -> tuple[Any, list[dict[str, Any]],
                                                                                    str, list[str]]:
    scenario, book = load_pair(tmp_path, runbook, SCENARIO)
    out, prompts = io.StringIO(), []
    drill, run_dir = run_drill(scenario, book, DrillOptions(
        participants=TEAM, speed=1000, runs_dir=tmp_path / "runs", stream=out, read=typist(lines, prompts)))
    records = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text(encoding="utf-8").splitlines()]
    return drill, records, out.getvalue(), prompts


def test_who_is_answering_is_remembered_from_one_prompt_to_the_next(tmp_path: Path) -> None:
    """Two questions and an approval: alice took the page, so she answers them all, unasked."""
    _, records, out, prompts = play_team(tmp_path, ["", "logs", "3", "y"], TWO_QUESTIONS)
    assert not any("Who is answering?" in p for p in prompts)
    answered = [(r["step"], r["by"]) for r in named(records, "prompt.answered")]
    assert answered == [("assess", "alice"), ("scope", "alice")]
    assert named(records, "approval")[0]["by"] == "alice"
    assert "answering: alice (responder) (`as NAME` to switch)" in out


def test_as_name_switches_who_answers_at_any_prompt(tmp_path: Path) -> None:
    _, records, out, prompts = play_team(tmp_path, ["", "logs", "as bob", "3", "y"], TWO_QUESTIONS)
    assert [(r["step"], r["by"], r["role"]) for r in named(records, "prompt.answered")] == [
        ("assess", "alice", "responder"), ("scope", "bob", "incident_commander")]
    assert named(records, "approval")[0]["by"] == "bob"
    assert "answering: bob (incident_commander)" in out
    assert not any("Who is answering?" in p for p in prompts)


def test_the_one_who_takes_the_page_is_recorded_and_asked_only_for_a_step_of_another_role(tmp_path: Path) -> None:
    """bob (incident commander) takes the page; the responder's question asks who answers,
    suggesting the responder; then alice goes on answering."""
    _, records, _, prompts = play_team(tmp_path, ["bob", "", "logs", "y"])
    assert "(or type your name)" in prompts[0]
    assert [(a["by"], a["role"]) for a in named(records, "incident.acknowledged")] == [("bob", "incident_commander")]
    assert [p for p in prompts if "Who is answering?" in p] == ["   Who is answering? [alice/bob] (alice): "]
    assert named(records, "prompt.answered")[0]["by"] == "alice"
    assert named(records, "approval")[0]["by"] == "alice"


def test_hint_at_who_is_answering_shows_the_hint(tmp_path: Path) -> None:
    _, records, out, _ = play_team(tmp_path, ["bob", "hint", "alice", "logs", "y"])
    assert "hint for assess: Which directory grew in the last hour?" in out
    assert [h["step"] for h in named(records, "hint.shown")] == ["assess"]


def test_the_trainees_never_see_the_trainer_notes(tmp_path: Path) -> None:
    """No scenario title or description, no response description, no event kind: the page
    reads as the alert does."""
    notes = ("title: Drill scenario\ndescription: The answer is the debug log level.\n"
             "alert: {labels: {alertname: DiskUsageHigh}, annotations: {summary: /var on db-1 is 96% full}}\n")
    scenario, runbook = load_pair(tmp_path, RUNBOOK, SCENARIO.replace(
        "{step: compress, duration: 30s,", "{step: compress, description: gzip is the trap, duration: 30s,")
        .replace("kind: page}", "kind: red_herring}"))
    (tmp_path / "sc.yaml").write_text((tmp_path / "sc.yaml").read_text().replace("title: Drill scenario\n", notes))
    from engine.language.validation import load_scenario

    scenario = load_scenario(tmp_path / "sc.yaml")
    out, prompts = io.StringIO(), []
    _, run_dir = run_drill(scenario, runbook, DrillOptions(
        speed=1000, runs_dir=tmp_path / "runs", stream=out, read=typist(["", ":inject 1", "logs", "y"], prompts)))
    shown = out.getvalue().split("Scorecard:")[0] + "".join(prompts)  # the scorecard ends the drill
    assert prompts[0].startswith("PAGE DiskUsageHigh: /var on db-1 is 96% full: press Enter")
    for secret in ("Drill scenario", "debug log level", "gzip is the trap", "red_herring", "sc-", "drill-sc"):
        assert secret not in shown, secret
    assert "Second page: /var at 99%" in shown
    assert "drill-rb-" in run_dir.name


def test_pause_and_resume_are_journaled(tmp_path: Path) -> None:
    _, records, out, _ = play(tmp_path, ["", ":pause", ":resume", "logs", "y"])
    assert [c["action"] for c in named(records, "clock.control")] == ["pause", "resume"]
    assert "clock pause" in out and "clock resume" in out


def test_help_and_unknown_commands_explain_the_controls(tmp_path: Path) -> None:
    _, _, out, _ = play(tmp_path, ["", ":help", ":frobnicate", "logs", "y"])
    assert "trainer commands: :pause  :resume  :inject N" in out
    assert "unknown trainer command :frobnicate" in out


def test_end_at_a_prompt_aborts_and_skips_the_rollbacks(tmp_path: Path) -> None:
    # compress has run (it has a rollback); :end is typed at the next question.
    scenario, runbook = load_pair(tmp_path, RUNBOOK.replace(
        "recovery:\n", "recovery:\n  - {id: confirm_ok, manual: Is the disk fine?}\n"), SCENARIO)
    out = io.StringIO()
    drill, run_dir = run_drill(scenario, runbook, DrillOptions(
        speed=1000, runs_dir=tmp_path / "runs", stream=out, read=typist(["", "logs", "y", ":end"], [])))
    records = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text(encoding="utf-8").splitlines()]
    assert drill.result.outcome == "aborted"
    assert [c["action"] for c in named(records, "clock.control")] == ["end"]
    assert named(records, "rollback.finished")[0]["skipped"] is True
    assert "undo" not in [r["step"] for r in named(records, "step.finished")]


def test_ctrl_c_at_a_prompt_aborts_and_offers_the_rollbacks(tmp_path: Path) -> None:
    scenario, runbook = load_pair(tmp_path, RUNBOOK.replace(
        "recovery:\n", "recovery:\n  - {id: confirm_ok, manual: Is the disk fine?}\n"), SCENARIO)
    prompts: list[str] = []
    drill, run_dir = run_drill(scenario, runbook, DrillOptions(
        speed=1000, runs_dir=tmp_path / "runs", stream=io.StringIO(),
        read=typist(["", "logs", "y"], prompts)))
    records = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text(encoding="utf-8").splitlines()]
    assert drill.result.outcome == "aborted"
    assert any("Run the rollbacks of 1 completed step(s)?" in p for p in prompts)
    # Nobody answers (the typist is out of lines: Ctrl-C again), so the rollbacks are skipped.
    assert named(records, "rollback.finished")[0]["skipped"] is True


def test_scripted_drill_needs_no_typing(tmp_path: Path) -> None:
    drill, records, _, prompts = play(tmp_path, [], scripted=True)
    assert prompts == []
    assert drill.result.outcome == "resolved"
    assert named(records, "prompt.answered")[0]["waited"] >= 30
