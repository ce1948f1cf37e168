"""engine.language.scenario: durations and their distributions, per-attempt replies, and
the scenario file built into frozen dataclasses."""

from __future__ import annotations

import random
import statistics
from pathlib import Path

import pytest
from simkit import load_pair

from engine.language.scenario import Dist, Reply, Response, dist

# -- durations and distributions -------------------------------------------------------------


def test_a_plain_duration_is_fixed_and_ignores_the_rng() -> None:
    d = dist("1m30s")
    assert d == Dist("fixed", 90.0)
    assert not d.is_random
    assert d.sample(random.Random(1)) == d.sample(random.Random(2)) == d.sample(None) == 90.0


def test_no_duration_gives_none() -> None:
    assert dist(None) is None


def test_min_max_is_uniform_within_the_bounds() -> None:
    d = dist({"min": "10s", "max": "20s"})
    assert d == Dist("uniform", 10.0, 20.0) and d.is_random
    rng = random.Random(7)
    samples = [d.sample(rng) for _ in range(2000)]
    assert all(10.0 <= s <= 20.0 for s in samples)
    assert min(samples) < 10.5 and max(samples) > 19.5
    assert abs(statistics.mean(samples) - 15.0) < 0.5


def test_uniform_without_an_rng_takes_the_middle() -> None:
    assert dist({"min": "10s", "max": "20s"}).sample(None) == 15.0


def test_median_p90_is_lognormal_with_that_median_and_90th_percentile() -> None:
    d = dist({"median": "10s", "p90": "30s"})
    assert d == Dist("lognormal", 10.0, 30.0) and d.is_random
    rng = random.Random(11)
    samples = sorted(d.sample(rng) for _ in range(20000))
    median, p90 = samples[len(samples) // 2], samples[int(len(samples) * 0.9)]
    assert all(s > 0 for s in samples)
    assert median == pytest.approx(10.0, rel=0.05)
    assert p90 == pytest.approx(30.0, rel=0.07)


def test_lognormal_without_an_rng_takes_the_median() -> None:
    assert dist({"median": "10s", "p90": "30s"}).sample(None) == 10.0


def test_lognormal_whose_p90_equals_its_median_is_fixed_in_effect() -> None:
    d = dist({"median": "10s", "p90": "10s"})
    rng = random.Random(3)
    assert {d.sample(rng) for _ in range(20)} == {10.0}


def test_the_same_seed_gives_the_same_samples() -> None:
    d = dist({"median": "5s", "p90": "20s"})
    a, b = random.Random(42), random.Random(42)
    assert [d.sample(a) for _ in range(50)] == [d.sample(b) for _ in range(50)]
    c = random.Random(43)
    assert [d.sample(random.Random(42)) for _ in range(1)] != [d.sample(c) for _ in range(1)]


# -- replies per attempt -----------------------------------------------------------------------


def test_a_response_without_attempts_gives_its_own_reply_every_time() -> None:
    reply = Reply(stdout="ok")
    response = Response(0, "s", None, None, reply)
    assert [response.reply_for(n) for n in (1, 2, 9)] == [reply, reply, reply]


def test_attempts_are_given_in_order_and_the_last_repeats() -> None:
    first, second = Reply(exit_code=1), Reply(exit_code=0)
    response = Response(0, "s", None, None, Reply(), (first, second))
    assert [response.reply_for(n).exit_code for n in (1, 2, 3, 4)] == [1, 0, 0, 0]


# -- the scenario file -------------------------------------------------------------------------

RUNBOOK = """\
defaults: {timeout: 1m}
inputs:
  host: {type: string, default: db-1}
detection:
  - {id: probe, run: "check {{ inputs.host }}", expect: exit_code == 0}
remediation:
  - id: fix
    run: fix
    confirm: Fix it?
    retries: {attempts: 3, delay: 5s}
recovery:
  - {id: verify, run: verify, expect: exit_code == 0}
"""


def _scenario(tmp_path: Path, body: str) -> object:
    scenario, _ = load_pair(tmp_path, RUNBOOK, body)
    return scenario


def test_scenario_fields_are_built_from_the_file(tmp_path: Path) -> None:
    s = _scenario(tmp_path, """\
        description: What it rehearses.
        inputs: {host: db-1}
        briefing: You are paged.
        seed: 5
        state: {pct: 96, nested: {a: 1}}
        roles: {incident_commander: dana}
        responses:
          - step: probe
            stdout: "{{ state.pct }}"
            stderr: warn
            duration: 2s
            set: {pct: 97}
            message: probed
            description: the first answer
          - match: {command: "fix*", command_regex: "^fix$", host: "db-*", url: "http://x/*", method: GET}
            when: state.pct > 90
            status: 503
            body: {error: down}
            headers: {retry-after: "5"}
          - step: fix
            attempts:
              - {exit_code: 1, duration: {min: 1s, max: 3s}}
              - {exit_code: 0, duration: {median: 10s, p90: 30s}}
        hints: {probe: Look at df.}
        objectives:
          outcome: resolved
          time_to_acknowledge: 2m
          time_to_triage: 3m
          time_to_mitigate: 4m
          time_to_recover: 1h
          must_run: [fix]
          must_not_run: [probe]
          max_retries: 1
          first_update_within: 30s
          escalated: false
          priority: P2
          approved_by_role: {fix: incident_commander}
        """)
    assert s.id == "sc" and s.title == "Drill scenario" and s.description == "What it rehearses."  # type: ignore[attr-defined]
    assert dict(s.inputs) == {"host": "db-1"} and s.seed == 5 and s.briefing == "You are paged."  # type: ignore[attr-defined]
    assert dict(s.roles) == {"incident_commander": "dana"}  # type: ignore[attr-defined]
    probe, matcher, fix = s.responses  # type: ignore[attr-defined]
    assert (probe.index, probe.step, probe.match) == (0, "probe", None)
    assert probe.reply.stdout == "{{ state.pct }}" and probe.reply.stderr == "warn"
    assert probe.reply.duration == Dist("fixed", 2.0) and dict(probe.reply.set) == {"pct": 97}
    assert probe.reply.message == "probed" and probe.description == "the first answer"
    assert matcher.step is None and matcher.when == "state.pct > 90"
    assert (matcher.match.command, matcher.match.command_regex, matcher.match.host,
            matcher.match.url, matcher.match.method) == ("fix*", "^fix$", "db-*", "http://x/*", "GET")
    assert matcher.reply.status == 503 and matcher.reply.body == {"error": "down"}
    assert dict(matcher.reply.headers) == {"retry-after": "5"}
    assert [a.duration.kind for a in fix.attempts] == ["uniform", "lognormal"]
    assert dict(s.hints) == {"probe": "Look at df."}  # type: ignore[attr-defined]
    o = s.objectives  # type: ignore[attr-defined]
    assert (o.outcome, o.time_to_acknowledge, o.time_to_triage, o.time_to_mitigate, o.time_to_recover) == (
        "resolved", 120.0, 180.0, 240.0, 3600.0)
    assert (o.must_run, o.must_not_run, o.max_retries) == (("fix",), ("probe",), 1)
    assert (o.first_update_within, o.escalated, o.priority) == (30.0, False, "P2")
    assert dict(o.approved_by_role) == {"fix": "incident_commander"}


def test_reply_defaults_are_exit_0_and_http_200_with_no_output(tmp_path: Path) -> None:
    s = _scenario(tmp_path, "responses:\n  - {step: probe}\n")
    reply = s.responses[0].reply  # type: ignore[attr-defined]
    assert (reply.stdout, reply.stderr, reply.exit_code, reply.status, reply.body) == ("", "", 0, 200, None)
    assert reply.duration is None and not reply.set and reply.message is None


def test_events_are_sorted_by_time_and_keep_their_file_index(tmp_path: Path) -> None:
    s = _scenario(tmp_path, """\
        events:
          - {at: 5m, message: late}
          - {at: 30s, set: {pct: 99}, kind: page}
          - {at: 5m, message: also late}
        """)
    events = s.events  # type: ignore[attr-defined]
    assert [(e.at, e.index, e.message) for e in events] == [
        (30.0, 1, None), (300.0, 0, "late"), (300.0, 2, "also late")]
    assert events[0].kind == "page" and dict(events[0].set) == {"pct": 99}
    assert events[1].kind == "info"


def test_participants_keep_answers_approval_delay_and_identity(tmp_path: Path) -> None:
    s = _scenario(tmp_path, """\
        participants:
          fix: {approve: false, after: 45s, by: dana, role: incident_commander, hint: true}
        """)
    p = s.participants["fix"]  # type: ignore[attr-defined]
    assert (p.step, p.approve, p.after, p.by, p.role, p.hint) == (
        "fix", False, Dist("fixed", 45.0), "dana", "incident_commander", True)
    assert not p.answers


def test_the_runbook_path_is_resolved_against_the_scenario_file(tmp_path: Path) -> None:
    s = _scenario(tmp_path / "deep", "")
    assert s.runbook_path == (tmp_path / "deep" / "rb.yaml").resolve()  # type: ignore[attr-defined]


def test_randomness_is_detected_in_replies_attempts_and_people(tmp_path: Path) -> None:
    fixed = _scenario(tmp_path / "a", "responses:\n  - {step: probe, duration: 2s}\n")
    in_reply = _scenario(tmp_path / "b", "responses:\n  - {step: probe, duration: {min: 1s, max: 2s}}\n")
    in_attempt = _scenario(tmp_path / "c", "responses:\n  - step: fix\n    attempts:\n"
                                           "      - {duration: {median: 1s, p90: 2s}}\n")
    in_person = _scenario(tmp_path / "d", "participants:\n  fix: {after: {min: 1s, max: 9s}}\n")
    assert not fixed.has_randomness()  # type: ignore[attr-defined]
    assert in_reply.has_randomness() and in_attempt.has_randomness()  # type: ignore[attr-defined]
    assert in_person.has_randomness()  # type: ignore[attr-defined]


def test_the_scenario_model_is_frozen(tmp_path: Path) -> None:
    s = _scenario(tmp_path, "")
    with pytest.raises(AttributeError):
        s.id = "other"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("extra", "page"), [
    ("page: 'PagerDuty: checkout down'\n", "PagerDuty: checkout down"),
    ("alert: {labels: {alertname: ProbeFailed}, annotations: {summary: checkout failing}}\n",
     "ProbeFailed: checkout failing"),
    ("alert: {labels: {alertname: ProbeFailed}}\n", "ProbeFailed"),
    ("", "Drill runbook"),
], ids=["page", "alert name and summary", "alert name", "runbook title"])
def test_the_page_reads_as_the_alert_never_as_the_scenario_title(tmp_path: Path, extra: str, page: str) -> None:
    scenario, runbook = load_pair(tmp_path, "detection:\n  - {id: a, run: a}\n",
                                  extra + "responses: [{step: a}]\n", validate=False)
    assert scenario.page_text(runbook.title) == page
