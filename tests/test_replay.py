"""engine.simulation.replay and `runbook scenario from-run`: a recorded live run becomes a
scenario that, replayed unattended, follows the same path (same steps, same statuses, in
the same order)."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from simkit import path_of

from engine.cli.commands import cli
from engine.errors import UsageError
from engine.executors.base import Invocation, Result
from engine.executors.prompts import Participant
from engine.language.validation import load_runbook, load_scenario
from engine.run.journal import read_journal
from engine.run.journal_writer import JournalWriter
from engine.simulation.drill import run_scenario
from engine.simulation.replay import SECRET_PLACEHOLDER, dump, scenario_from_run
from engine.testing import ScriptedExecutor, run_text

RUNBOOK = """\
kind: runbook
version: 1
id: cleanup
title: Disk cleanup
defaults: {timeout: 1m}
roles: [incident_commander, responder]
inputs:
  host: {type: string}
  token: {type: string, secret: true}
detection:
  - id: usage
    run: "df {{ inputs.host }}"
    outputs: {pct: "{{ stdout | trim | int }}"}
    expect: outputs.pct > 90
  - id: api
    http: {url: "https://api.example.com/disk/{{ inputs.host }}", headers: {Authorization: "{{ inputs.token }}"}}
    outputs: {state: "{{ json.state }}"}
triage:
  - {id: listing, run: "ls /var/log"}
  - id: assess
    role: responder
    manual: What fills it?
    ask: {cause: {choices: [logs, data]}}
remediation:
  - id: compress
    when: steps.assess.answers.cause == 'logs'
    run: gzip big.log
    confirm: {message: Compress?, role: incident_commander}
    retries: {attempts: 3, delay: 10s}
  - id: move_data
    when: steps.assess.answers.cause == 'data'
    run: mv data /big
recovery:
  - {id: verify, run: "df {{ inputs.host }}", until: stdout | trim | int < 90, every: 30s, timeout: 5m}
"""

SCRIPT: dict[str, Any] = {
    "usage": {"stdout": "96\n", "duration": 2.0},
    "api": {"status": 200, "body": '{"state": "full"}', "duration": 0.5},
    "listing": {"stdout": "app.log {{ not a template }} {% neither %}\n", "duration": 1.0},
    "compress": [{"exit_code": 1, "stderr": "gzip: No space left on device\n", "duration": 3.0},
                 {"exit_code": 0, "stdout": "done\n", "duration": 40.0}],
    "verify": [{"stdout": "95\n", "duration": 1.0}, {"stdout": "93\n", "duration": 1.0},
               {"stdout": "62\n", "duration": 1.0}],
}


def record_live_run(folder: Path, script: dict[str, Any] | None = None, runbook: str = RUNBOOK,
                    **kwargs: Any) -> Path:
    """Run a runbook in live mode (fake executors, virtual clock) with a real journal; the run dir."""
    folder.mkdir(parents=True, exist_ok=True)
    book = folder / "rb.yaml"
    book.write_text(runbook, encoding="utf-8")
    run_dir = folder / "runs" / "live-1"
    kwargs.setdefault("answers", {"assess": {"cause": "logs"}})
    kwargs.setdefault("participants", [Participant("sam", "responder"), Participant("dana", "incident_commander")])
    kwargs.setdefault("inputs", {"host": "db-1", "token": "tok-123-secret"})
    with JournalWriter(run_dir, fsync=False) as journal:
        run_text(runbook, file=str(book), executor=ScriptedExecutor(script or SCRIPT), yes=True,
                 observers=[journal], **kwargs)
    return run_dir


def replay(run_dir: Path, out: Path) -> Any:
    """from-run -> YAML file -> validated scenario -> unattended run."""
    out.write_text(dump(scenario_from_run(run_dir, str(out))), encoding="utf-8")
    scenario = load_scenario(out)
    return run_scenario(scenario, load_runbook(scenario.runbook_path))


# -- the round trip ----------------------------------------------------------------------------


def test_a_replayed_run_follows_the_same_path(tmp_path: Path) -> None:
    run_dir = record_live_run(tmp_path)
    original = read_journal(run_dir).records
    replayed = replay(run_dir, tmp_path / "replay.yaml")
    assert path_of(original) == [("usage", "ok"), ("api", "ok"), ("listing", "ok"), ("assess", "ok"),
                                 ("compress", "ok"), ("move_data", "skipped"), ("verify", "ok")]
    assert path_of(replayed.records) == path_of(original)
    assert replayed.result.outcome == "resolved" and replayed.scorecard.passed


def test_a_replay_repeats_attempts_polls_outputs_and_durations(tmp_path: Path) -> None:
    run_dir = record_live_run(tmp_path)
    original = {r["step"]: r for r in read_journal(run_dir).records if r["event"] == "step.finished"}
    replayed = {r["step"]: r for r in replay(run_dir, tmp_path / "r.yaml").records if r["event"] == "step.finished"}
    for step in ("usage", "api", "listing", "compress", "verify"):
        for key in ("status", "attempts", "exit_code", "stdout", "outputs", "status_code"):
            assert replayed[step][key] == original[step][key], (step, key)
        assert replayed[step]["duration"] == pytest.approx(original[step]["duration"], abs=0.01), step
    assert replayed["listing"]["stdout"] == "app.log {{ not a template }} {% neither %}\n"


def test_the_generated_scenario_holds_responses_people_inputs_and_objectives(tmp_path: Path) -> None:
    run_dir = record_live_run(tmp_path)
    data = scenario_from_run(run_dir, str(tmp_path / "replay.yaml"))
    assert data["kind"] == "scenario" and data["runbook"] == "rb.yaml"
    assert data["id"] == "replay-cleanup-test-run"  # run_text names its run test-run
    assert data["inputs"] == {"host": "db-1", "token": SECRET_PLACEHOLDER}
    responses = {r["step"]: r for r in data["responses"]}
    assert responses["usage"] == {"step": "usage", "exit_code": 0, "duration": "2s", "stdout": "96\n"}
    assert responses["api"] == {"step": "api", "duration": "0.5s", "status": 200, "body": '{"state": "full"}'}
    assert [a["exit_code"] for a in responses["compress"]["attempts"]] == [1, 0]
    assert responses["compress"]["attempts"][0]["stderr"] == "gzip: No space left on device\n"
    assert [a["stdout"] for a in responses["verify"]["attempts"]] == ["95\n", "93\n", "62\n"]
    assert responses["listing"]["stdout"] == "{% raw %}app.log {{ not a template }} {% neither %}\n{% endraw %}"
    assert "move_data" not in responses  # skipped: nothing to answer
    assert data["participants"] == {
        "assess": {"answers": {"cause": "logs"}, "after": "0s", "by": "sam", "role": "responder"},
        "compress": {"approve": True, "after": "0s", "by": "dana", "role": "incident_commander"},
    }
    assert data["objectives"] == {"outcome": "resolved",
                                  "must_run": ["usage", "api", "listing", "assess", "compress", "verify"]}


def test_the_secret_never_reaches_the_scenario(tmp_path: Path) -> None:
    run_dir = record_live_run(tmp_path)
    assert "tok-123-secret" not in dump(scenario_from_run(run_dir))


def test_a_failed_run_replays_to_the_same_failure(tmp_path: Path) -> None:
    script = {**SCRIPT, "compress": {"exit_code": 1, "stderr": "gzip: I/O error\n", "duration": 2.0}}
    run_dir = record_live_run(tmp_path, script)
    original = read_journal(run_dir).records
    replayed = replay(run_dir, tmp_path / "replay.yaml")
    assert read_journal(run_dir).finished["outcome"] == "failed"  # type: ignore[index]
    assert replayed.result.outcome == "failed"
    assert path_of(replayed.records) == path_of(original)
    assert replayed.scorecard.passed  # the objective is the recorded outcome


def test_an_executor_error_without_an_exit_code_replays_as_a_failure_with_its_message(tmp_path: Path) -> None:
    def timed_out(inv: Invocation) -> Result:
        return Result(inv.command, None, "", "", None, 0.0, 60.0, False, "timed out after 1m", timed_out=True)

    run_dir = record_live_run(tmp_path, {**SCRIPT, "usage": timed_out})
    data = scenario_from_run(run_dir)
    usage = next(r for r in data["responses"] if r["step"] == "usage")
    assert (usage["exit_code"], usage["stderr"]) == (1, "timed out after 1m")
    replayed = replay(run_dir, tmp_path / "replay.yaml")
    assert path_of(replayed.records) == [("usage", "failed")]


def test_truncated_output_is_taken_whole_from_the_step_log(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (tmp_path / "rb.yaml").write_text(RUNBOOK, encoding="utf-8")
    (run_dir / "logs").mkdir()
    (run_dir / "logs" / "listing.stdout.log").write_text("FULL OUTPUT\n" * 3, encoding="utf-8")
    records = [
        {"seq": 1, "event": "run.started", "run_id": "r1", "runbook": "cleanup", "title": "Disk cleanup",
         "file": str(tmp_path / "rb.yaml"), "mode": "live", "inputs": {}},
        {"seq": 2, "event": "step.finished", "step": "listing", "kind": "run", "status": "ok",
         "exit_code": 0, "duration": 1.5, "stdout": "tail only\n", "truncated": True},
        {"seq": 3, "event": "run.finished", "outcome": "resolved", "duration": 1.5},
    ]
    (run_dir / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    data = scenario_from_run(run_dir)
    assert data["responses"] == [{"step": "listing", "exit_code": 0, "duration": "1.5s",
                                  "stdout": "FULL OUTPUT\n" * 3}]


def test_a_fan_out_replays_each_host_by_a_host_match(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    records = [
        {"seq": 1, "event": "run.started", "run_id": "r1", "runbook": "x", "file": str(tmp_path / "rb.yaml"),
         "mode": "live", "inputs": {}},
        {"seq": 2, "event": "step.finished", "step": "restart", "kind": "run", "status": "failed",
         "hosts": {"web-1": {"status": "ok", "exit_code": 0, "stdout": "ok\n", "duration": 2.0},
                   "web-2": {"status": "failed", "exit_code": 5, "stderr": "no unit\n", "duration": 1.0}}},
    ]
    (run_dir / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert scenario_from_run(run_dir)["responses"] == [
        {"step": "restart", "match": {"host": "web-1"}, "exit_code": 0, "duration": "2s", "stdout": "ok\n"},
        {"step": "restart", "match": {"host": "web-2"}, "exit_code": 5, "duration": "1s", "stderr": "no unit\n"},
    ]


# -- refusals ----------------------------------------------------------------------------------


def test_a_drill_journal_cannot_be_replayed(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "journal.jsonl").write_text(json.dumps(
        {"seq": 1, "event": "run.started", "run_id": "d1", "runbook": "x", "file": "x.yaml", "mode": "drill"}) + "\n")
    with pytest.raises(UsageError, match="run d1 is a drill run; replay needs a live run"):
        scenario_from_run(run_dir)


def test_a_journal_without_a_start_is_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "journal.jsonl").write_text(json.dumps({"seq": 1, "event": "step.started", "step": "a"}) + "\n")
    with pytest.raises(UsageError, match="is not the journal of a run"):
        scenario_from_run(run_dir)


# -- the command -------------------------------------------------------------------------------


def test_scenario_from_run_writes_a_file_whose_runbook_path_is_relative_to_it(tmp_path: Path) -> None:
    run_dir = record_live_run(tmp_path / "rec")
    out = tmp_path / "elsewhere" / "replay.yaml"
    out.parent.mkdir()
    result = CliRunner().invoke(cli, ["scenario", "from-run", os.fspath(run_dir), "-o", os.fspath(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0 and f"wrote {out}" in result.output
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert data["runbook"] == "../rec/rb.yaml"
    test = CliRunner().invoke(cli, ["test", os.fspath(out)], catch_exceptions=False)
    assert test.exit_code == 0, test.output


def test_scenario_from_run_prints_yaml_without_an_output_file(tmp_path: Path) -> None:
    run_dir = record_live_run(tmp_path)
    result = CliRunner().invoke(cli, ["scenario", "from-run", os.fspath(run_dir)], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output.startswith("# yaml-language-server: $schema=")
    assert yaml.safe_load(result.output)["kind"] == "scenario"


def test_scenario_from_run_of_a_drill_exits_2_with_a_message(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "journal.jsonl").write_text(textwrap.dedent("""\
        {"seq": 1, "event": "run.started", "run_id": "d1", "runbook": "x", "file": "x.yaml", "mode": "test"}
        """))
    result = CliRunner().invoke(cli, ["scenario", "from-run", os.fspath(run_dir)])
    assert result.exit_code == 2
    assert "replay needs a live run" in result.output


HTTP_RETRIES = """\
kind: runbook
version: 1
id: http-retries
title: HTTP retries
defaults: {timeout: 1m}
triage:
  - id: api
    http: {url: "https://api.example.com/health"}
    retries: {attempts: 3, delay: 5s}
  - {id: after, run: "true"}
"""
OK = {"status": 200, "body": '{"ok": true}'}
REFUSED = Result("GET x", None, "", "", None, 0.0, 0.1, False, "connection refused")


@pytest.mark.parametrize(("expect", "replies", "path"), [
    (None, [{"status": 503, "body": "busy"}, OK], [("api", "ok", 2), ("after", "ok", 1)]),
    (None, [REFUSED, OK], [("api", "ok", 2), ("after", "ok", 1)]),
    (None, [REFUSED], [("api", "failed", 3)]),
    (None, [{"status": 500, "body": "oops"}], [("api", "failed", 3)]),
    ("json.ok", [{"status": 200, "body": '{"ok": false}'}, OK], [("api", "ok", 2), ("after", "ok", 1)]),
], ids=["503 then 200", "refused then 200", "always refused", "always 500", "expect false then true"])
def test_http_attempts_replay_with_their_status(tmp_path: Path, expect: str | None, replies: list[Any],
                                                 path: list[tuple[str, str, int]]) -> None:
    book = HTTP_RETRIES if expect is None else HTTP_RETRIES.replace("delay: 5s}", f"delay: 5s}}\n    expect: {expect}")
    run_dir = record_live_run(tmp_path, {"api": replies, "after": ""}, book, inputs={})

    def steps(records: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
        return [(r["step"], r["status"], r["attempts"]) for r in records if r["event"] == "step.finished"]

    assert steps(read_journal(run_dir).records) == path
    assert steps(replay(run_dir, tmp_path / "replay.yaml").records) == path


FOR_EACH = """\
kind: runbook
version: 1
id: for-each
title: For each
defaults: {timeout: 1m}
triage:
  - {id: each, run: "restart {{ item }}", for_each: [a, b, skip, c], when: "item != 'skip'"}
  - {id: after, run: "true"}
"""


@pytest.mark.parametrize("failing", [None, "c"])
def test_a_for_each_step_replays_item_by_item(tmp_path: Path, failing: str | None) -> None:
    script = {f"restart {x}": {"duration": 10.0, "exit_code": 1 if x == failing else 0} for x in "abc"}
    run_dir = record_live_run(tmp_path, {**script, "after": ""}, FOR_EACH, inputs={}, answers={})

    def items(records: list[dict[str, Any]]) -> list[Any]:
        return [(r["step"], r["status"], [(i["item"], i["status"]) for i in r["items"]])
                for r in records if r["event"] == "step.finished"]

    original = items(read_journal(run_dir).records)
    assert original[0][2] == [("a", "ok"), ("b", "ok"), ("skip", "skipped"),
                              ("c", "failed" if failing else "ok")]
    assert items(replay(run_dir, tmp_path / "replay.yaml").records) == original


HTTP_POLL = """\
kind: runbook
version: 1
id: http-poll
title: HTTP poll
defaults: {timeout: 1m}
recovery:
  - id: health
    http: {url: "https://app.example.com/healthz", status: [200, 502]}
    until: status == 200
    every: 10s
    timeout: 5m
"""


def test_each_poll_of_an_http_step_replays_with_its_own_status(tmp_path: Path) -> None:
    """502, 502, 200 stays 502, 502, 200 (not 200 three times, which resolves at once)."""
    bad = {"status": 502, "body": "<html>502 Bad Gateway</html>", "duration": 0.5}
    run_dir = record_live_run(tmp_path, {"health": [bad, bad, {"status": 200, "body": "ok", "duration": 0.5}]},
                              HTTP_POLL, inputs={})
    polls = [(r["attempt"], r["status_code"]) for r in read_journal(run_dir).records if r["event"] == "step.attempt"]
    assert polls == [(1, 502), (2, 502)]
    replayed = replay(run_dir, tmp_path / "replay.yaml")
    assert [(r["attempt"], r["status_code"]) for r in replayed.records if r["event"] == "step.attempt"] == polls
    (done,) = [r for r in replayed.records if r["event"] == "step.finished"]
    assert (done["status"], done["status_code"], done["duration"]) == ("ok", 200, pytest.approx(21.5))


def _journal(run_dir: Path, *records: dict[str, Any]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return run_dir


def test_a_journal_that_does_not_name_the_runbook_file_is_refused_by_name(tmp_path: Path) -> None:
    run_dir = _journal(tmp_path / "run", {"seq": 1, "event": "run.started", "run_id": "r1", "mode": "live"})
    with pytest.raises(UsageError, match=r"run\.started does not name the runbook file"):
        scenario_from_run(run_dir)


def test_fields_of_the_wrong_type_are_read_as_missing_not_a_crash(tmp_path: Path) -> None:
    """A damaged journal (hosts as a list, text durations, no step id) still gives a scenario."""
    run_dir = _journal(
        tmp_path / "run",
        {"seq": 1, "event": "run.started", "file": str(tmp_path / "rb.yaml"), "mode": "live", "inputs": []},
        {"seq": 2, "event": "step.finished", "step": "a", "kind": "run", "status": "ok", "hosts": ["web-1"],
         "duration": "long", "exit_code": "zero"},
        {"seq": 3, "event": "step.finished", "kind": "run", "status": "ok"},
        {"seq": 4, "event": "run.finished", "outcome": ["resolved"], "duration": "1e999"})
    data = scenario_from_run(run_dir)
    assert data["responses"] == [{"step": "a", "exit_code": 0, "duration": "0s"}]
    assert data["id"] == "replay-rb-run" and data["inputs"] == {}


def test_a_huge_output_replays_its_last_mebibyte(tmp_path: Path) -> None:
    run_dir = _journal(
        tmp_path / "run",
        {"seq": 1, "event": "run.started", "run_id": "r1", "file": str(tmp_path / "rb.yaml"), "mode": "live"},
        {"seq": 2, "event": "step.finished", "step": "dump", "kind": "run", "status": "ok", "exit_code": 0,
         "duration": 1.0, "stdout": "tail\n", "truncated": True})
    (run_dir / "logs").mkdir()
    (run_dir / "logs" / "dump.stdout.log").write_bytes(b"x" * (3 << 20) + b"THE END\n")
    [response] = scenario_from_run(run_dir)["responses"]
    assert len(response["stdout"]) == 1 << 20 and response["stdout"].endswith("THE END\n")


def test_a_group_target_replays_on_the_hosts_the_inventory_gave_the_live_run(tmp_path: Path) -> None:
    """from-run writes the hosts each `group:` target fanned out to as the scenario's
    inline inventory, so the replay fans out to the same hosts with each one's answer."""
    from engine.fleet.fanout import FanOut
    from engine.fleet.hosts import Resolver
    from engine.testing import FakeRemote

    runbook = textwrap.dedent("""\
        kind: runbook
        version: 1
        id: lbs
        title: Load balancers
        defaults: {timeout: 1m}
        targets:
          lbs: {group: lbs, max_failures: 2}
        detection:
          - {id: probe, target: lbs, run: "curl -fsS http://localhost/health", continue_on_error: true}
        """)
    (tmp_path / "hosts.ini").write_text("[lbs]\nlb-[1:3]\n", encoding="utf-8")
    run_dir = record_live_run(tmp_path, runbook=runbook, answers={}, participants=[], inputs={},
                              remote=FanOut(FakeRemote({"lb-2": 7, "lb-3": 7, "lb-1": "ok"})),
                              resolve_hosts=Resolver(tmp_path / "hosts.ini"))
    scenario = scenario_from_run(run_dir, str(tmp_path / "replay.yaml"))
    assert scenario["inventory"] == {"groups": {"lbs": {"hosts": ["lb-1", "lb-2", "lb-3"]}}}
    replayed = replay(run_dir, tmp_path / "replay.yaml")
    [probe] = [r for r in replayed.records if r["event"] == "step.finished" and r["step"] == "probe"]
    assert {h: v["status"] for h, v in probe["hosts"].items()} == {"lb-1": "ok", "lb-2": "failed", "lb-3": "failed"}
