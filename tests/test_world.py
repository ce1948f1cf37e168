"""engine.simulation.world: how the simulated world answers steps (matching, per-attempt
faults, durations, templated output, HTTP, state changes, timed events), and that a
drill touches nothing real."""

from __future__ import annotations

import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from simkit import drill, finished, load_pair, path_of, records

from engine.executors.base import Cancel, Invocation
from engine.simulation import guard
from engine.simulation.world import SimulatedNotifier
from engine.testing import Recorder


def rb(text: str) -> str:
    """A runbook body (dedented) with a generous default timeout."""
    return "defaults: {timeout: 30m}\n" + textwrap.dedent(text)


def world_says(recorder: Recorder) -> list[str]:
    """The `[world] ...` messages shown to the participants."""
    return [e.text for e in recorder.named("step.output")  # type: ignore[attr-defined]
            if e.text.startswith("[world]")]  # type: ignore[attr-defined]


# -- matching ----------------------------------------------------------------------------------


def test_a_response_matches_by_step_id(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - {id: a, run: echo a}
          - {id: b, run: echo b}
        """), """
        responses:
          - {step: b, stdout: "answer for b"}
          - {step: a, stdout: "answer for a"}
        """)
    assert finished(run, "a")["stdout"] == "answer for a"
    assert finished(run, "b")["stdout"] == "answer for b"


def test_a_match_on_a_command_glob_answers_any_step_running_that_command(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        inputs: {unit: {type: string, default: nginx}}
        detection:
          - {id: first, run: "systemctl restart {{ inputs.unit }}"}
          - {id: second, run: "systemctl restart postgresql"}
          - {id: third, run: "systemctl stop nginx"}
        """), """
        responses:
          - match: {command: "systemctl restart *"}
            stdout: "restarted by glob"
          - {step: third, stdout: "by id"}
        """)
    assert finished(run, "first")["stdout"] == "restarted by glob"
    assert finished(run, "second")["stdout"] == "restarted by glob"
    assert finished(run, "third")["stdout"] == "by id"


def test_a_command_glob_must_match_the_whole_rendered_command(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - {id: a, run: "sudo systemctl restart nginx"}
        """), """
        responses:
          - match: {command: "systemctl restart *"}
        """)
    assert finished(run, "a")["status"] == "failed"
    assert run.scorecard.unscripted == ["a"]


def test_a_match_on_a_command_regex_searches_the_rendered_command(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - {id: a, run: "sudo journalctl -u nginx --since -10m"}
          - {id: b, run: "journalctl -u postgresql"}
        """), """
        responses:
          - match: {command_regex: "journalctl -u (nginx|apache)"}
            stdout: web logs
          - match: {command_regex: "^journalctl"}
            stdout: other logs
        """)
    assert finished(run, "a")["stdout"] == "web logs"
    assert finished(run, "b")["stdout"] == "other logs"


def test_a_match_on_host_answers_each_host_of_a_fan_out_separately(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        targets:
          web: {hosts: [web-1, web-2, db-1]}
        detection:
          - {id: restart, target: web, run: systemctl restart app}
        """), """
        responses:
          - match: {host: web-1}
            stdout: "{{ host }} restarted"
          - match: {host: "web-*", command: "systemctl *"}
            exit_code: 1
            stderr: "{{ host }}: unit failed"
          - match: {host: "db-?"}
            stdout: "db answered"
        """)
    hosts = finished(run, "restart")["hosts"]
    assert hosts["web-1"]["stdout"] == "web-1 restarted" and hosts["web-1"]["status"] == "ok"
    assert hosts["web-2"]["exit_code"] == 1 and hosts["web-2"]["stderr"] == "web-2: unit failed"
    assert hosts["db-1"]["stdout"] == "db answered"
    assert finished(run, "restart")["error"] == "1 of 3 host(s) failed: web-2"


def test_a_host_match_never_answers_a_local_command(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - {id: local, run: uptime}
        """), """
        responses:
          - match: {host: "*"}
        """)
    assert run.scorecard.unscripted == ["local"]


def test_a_match_on_url_and_method_answers_http_steps(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - id: read
            http: {url: "https://api.example.com/v1/health"}
          - id: write
            http: {url: "https://api.example.com/v1/flags", method: POST}
        """), """
        responses:
          - match: {url: "https://api.example.com/*", method: post}
            body: "posted"
          - match: {url: "https://api.example.com/v1/*", method: GET}
            body: "got"
        """)
    assert finished(run, "read")["stdout"] == "got"
    assert finished(run, "write")["stdout"] == "posted"


def test_a_command_match_never_answers_an_http_step(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - {id: read, http: {url: "https://x.example.com/"}}
        """), """
        responses:
          - match: {command: "*"}
        """)
    assert run.scorecard.unscripted == ["read"]


def test_the_first_matching_response_wins(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - {id: a, run: "df -h /var"}
        """), """
        responses:
          - match: {command: "df *"}
            stdout: first
          - step: a
            stdout: second
        """)
    assert finished(run, "a")["stdout"] == "first"


def test_when_on_state_chooses_among_responses_for_the_same_step(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - {id: probe, run: probe}
          - {id: fix, run: fix}
          - {id: probe_again, run: probe}
        """), """
        state: {fixed: false}
        responses:
          - {match: {command: probe}, when: state.fixed, stdout: healthy}
          - {match: {command: probe}, stdout: broken}
          - {step: fix, set: {fixed: true}}
        """)
    assert finished(run, "probe")["stdout"] == "broken"
    assert finished(run, "probe_again")["stdout"] == "healthy"


# -- attempts, durations, output ---------------------------------------------------------------


def test_attempts_answer_each_try_in_order_and_the_last_repeats(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        remediation:
          - id: flaky
            run: gzip big.log
            retries: {attempts: 5, delay: 10s}
            expect: stdout == 'third'
        """), """
        responses:
          - step: flaky
            attempts:
              - {exit_code: 1, stderr: first failed, duration: 2s}
              - {exit_code: 0, stdout: second, duration: 3s}
              - {exit_code: 0, stdout: third, duration: 4s}
        """)
    tries = records(run, "step.attempt", step="flaky")
    assert [(t["exit_code"], t["stderr"], t["stdout"]) for t in tries] == [
        (1, "first failed", ""), (0, "", "second")]
    done = finished(run, "flaky")
    assert (done["status"], done["attempts"], done["stdout"]) == ("ok", 3, "third")
    assert done["duration"] == 2 + 10 + 3 + 10 + 4


def test_attempts_are_counted_per_step_so_two_steps_sharing_a_response_each_start_at_the_first(
        tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - {id: a, run: "ping db", retries: {attempts: 2, delay: 1s}}
          - {id: b, run: "ping db", retries: {attempts: 2, delay: 1s}}
        """), """
        responses:
          - match: {command: "ping *"}
            attempts: [{exit_code: 1}, {exit_code: 0}]
        """)
    assert finished(run, "a")["attempts"] == 2 and finished(run, "b")["attempts"] == 2


def test_the_last_attempt_repeats_once_the_list_is_used_up(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - {id: a, run: x, retries: {attempts: 4, delay: 1s}}
        """), """
        responses:
          - step: a
            attempts: [{exit_code: 0, stdout: one}, {exit_code: 7}]
        """)
    assert finished(run, "a")["attempts"] == 1  # succeeded on the first
    run = drill(tmp_path / "b", rb("""
        detection:
          - {id: a, run: x, retries: {attempts: 4, delay: 1s}}
        """), """
        responses:
          - step: a
            attempts: [{exit_code: 2}, {exit_code: 7}]
        """)
    assert [t["exit_code"] for t in records(run, "step.attempt")] == [2, 7, 7]
    assert finished(run, "a")["exit_code"] == 7 and run.result.outcome == "failed"


def test_fixed_durations_pass_on_the_run_clock(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - {id: a, run: a}
          - {id: b, run: b}
        """), """
        responses:
          - {step: a, duration: 1m30s}
          - {step: b, duration: 250ms}
        """)
    assert finished(run, "a")["duration"] == 90
    assert finished(run, "b")["elapsed"] == 90.25
    assert run.result.duration == 90.25


def test_distributed_durations_are_sampled_with_the_seed(tmp_path: Path) -> None:
    book = rb("""
        detection:
          - {id: a, run: a}
          - {id: b, run: b}
        """)
    sc = """
        responses:
          - {step: a, duration: {min: 10s, max: 20s}}
          - {step: b, duration: {median: 30s, p90: 1m}}
        """
    one = drill(tmp_path / "1", book, sc, seed=1)
    again = drill(tmp_path / "2", book, sc, seed=1)
    other = drill(tmp_path / "3", book, sc, seed=2)

    def durations(run: Any) -> tuple[float, float]:
        return finished(run, "a")["duration"], finished(run, "b")["duration"]

    assert durations(one) == durations(again)
    assert durations(one) != durations(other)
    assert all(10 <= durations(r)[0] <= 20 for r in (one, other))
    assert all(durations(r)[1] > 0 for r in (one, other))


def test_the_scenario_seed_is_used_when_none_is_given(tmp_path: Path) -> None:
    book = rb("detection:\n  - {id: a, run: a}\n")
    sc = "seed: 9\nresponses:\n  - {step: a, duration: {min: 1s, max: 100s}}\n"
    by_file = drill(tmp_path / "1", book, sc)
    by_flag = drill(tmp_path / "2", book, sc, seed=9)
    assert finished(by_file, "a")["duration"] == finished(by_flag, "a")["duration"]
    assert by_file.result.run_id == "sc-seed9"


def test_stdout_and_stderr_are_templates_over_state_inputs_command_and_attempt(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        inputs: {mount: {type: string, default: /var}}
        triage:
          - id: usage
            run: "df {{ inputs.mount }}"
            retries: {attempts: 2, delay: 1s}
            expect: stdout is search('attempt 2')
        """), """
        state: {pct: 96, disk: {name: sda}}
        responses:
          - step: usage
            stdout: "{{ state.pct }}% {{ state.disk.name }} {{ inputs.mount }} [{{ command }}] attempt {{ attempt }}"
            stderr: "warning on {{ state.disk.name }}"
        """)
    done = finished(run, "usage")
    assert done["stdout"] == "96% sda /var [df /var] attempt 2"
    assert done["stderr"] == "warning on sda"


def test_a_broken_response_template_fails_the_step_naming_the_response(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("detection:\n  - {id: a, run: a}\n"), """
        responses:
          - {step: a, stdout: "{{ state.missing }}"}
        """)
    assert finished(run, "a")["status"] == "failed"
    assert "scenario response 0" in finished(run, "a")["error"]


def test_http_replies_give_status_body_and_headers(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - id: api
            http: {url: "https://api.example.com/status"}
            outputs:
              color: "{{ json.color }}"
              region: "{{ headers['x-region'] }}"
              code: "{{ status }}"
        """), """
        state: {color: green}
        responses:
          - step: api
            status: 203
            headers: {x-region: eu-1}
            body: {color: green, ok: true}
        """)
    done = finished(run, "api")
    assert done["status"] == "ok" and done["status_code"] == 203
    assert done["outputs"] == {"color": "green", "region": "eu-1", "code": 203}


def test_an_http_string_body_is_a_template_over_state(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - {id: api, http: {url: "https://api.example.com/q"}, outputs: {n: "{{ json.n }}"}}
        """), """
        state: {n: 41}
        responses:
          - {step: api, body: '{"n": {{ state.n + 1 }}}'}
        """)
    assert finished(run, "api")["outputs"] == {"n": 42}


def test_an_http_status_outside_the_expected_ones_fails_the_step(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - {id: default_2xx, http: {url: "https://a.example.com/"}, continue_on_error: true}
          - {id: listed, http: {url: "https://b.example.com/", status: [200, 404]}}
        """), """
        responses:
          - {step: default_2xx, status: 503, body: down}
          - {step: listed, status: 404}
        """)
    assert finished(run, "default_2xx")["status"] == "failed"
    assert finished(run, "default_2xx")["error"] == "HTTP status 503"
    assert finished(run, "listed")["status"] == "ok"


def test_exit_codes_of_the_step_decide_success_of_a_reply(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - {id: active, run: systemctl is-active app, exit_codes: [0, 3]}
        """), """
        responses:
          - {step: active, exit_code: 3, stdout: inactive}
        """)
    assert finished(run, "active")["status"] == "ok" and finished(run, "active")["exit_code"] == 3


# -- state changes ---------------------------------------------------------------------------


def test_set_changes_the_state_after_the_reply_and_sees_the_state_before(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - {id: before, run: df}
          - {id: clean, run: clean}
          - {id: after, run: df}
        """), """
        state: {pct: 96, log: {}}
        responses:
          - {step: before, stdout: "{{ state.pct }}"}
          - step: clean
            stdout: "was {{ state.pct }}"
            set: {pct: "{{ state.pct - 30 }}", log.cleaned: true}
          - {step: after, stdout: "{{ state.pct }} {{ state.log.cleaned }}"}
        """)
    assert finished(run, "before")["stdout"] == "96"
    assert finished(run, "clean")["stdout"] == "was 96"
    assert finished(run, "after")["stdout"] == "66 true"
    assert run.world.state == {"pct": 66, "log": {"cleaned": True}}


def test_a_failed_attempt_can_change_the_state_too(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - {id: fix, run: fix, retries: {attempts: 2, delay: 1s}}
        """), """
        state: {tries: 0}
        responses:
          - step: fix
            attempts:
              - {exit_code: 1, set: {tries: 1}}
              - {exit_code: 0, stdout: "after {{ state.tries }} failure", set: {tries: 2}}
        """)
    assert finished(run, "fix")["stdout"] == "after 1 failure"
    assert run.world.state["tries"] == 2


def test_the_state_of_the_scenario_model_is_not_changed_by_a_run(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("detection:\n  - {id: a, run: a}\n"), """
        state: {pct: 96}
        responses:
          - {step: a, set: {pct: 10}}
        """)
    assert run.world.state == {"pct": 10}
    assert dict(run.world.scenario.state) == {"pct": 96}


def test_a_reply_message_is_shown_to_the_participants(tmp_path: Path) -> None:
    recorder = Recorder()
    drill(tmp_path, rb("detection:\n  - {id: a, run: a}\n"), """
        responses:
          - {step: a, message: "kubectl: 2 pods Pending"}
        """, observers=[recorder])
    assert world_says(recorder) == ["[world] kubectl: 2 pods Pending"]


# -- timed events ------------------------------------------------------------------------------


def test_an_event_fires_between_steps_at_its_time(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - {id: a, run: a}
          - {id: pause, wait: 1m}
          - {id: b, run: b}
        """), """
        state: {pct: 80}
        responses:
          - {step: a, duration: 1m, stdout: "{{ state.pct }}"}
          - {step: b, duration: 1m, stdout: "{{ state.pct }}"}
        events:
          - {at: 90s, set: {pct: 99}, message: "Second page: 99%", kind: page}
        """)
    fired = records(run, "inject.fired")
    assert [(f["elapsed"], f["index"], f["message"], f["kind"], f["set"], f["manual"]) for f in fired] == [
        (90.0, 0, "Second page: 99%", "page", {"pct": 99}, False)]
    assert finished(run, "a")["stdout"] == "80"
    assert finished(run, "b")["stdout"] == "99"


def test_an_event_during_a_long_step_changes_what_the_next_poll_sees(tmp_path: Path) -> None:
    """The restart takes 2 minutes; the event at 90s happens during it; the poll after sees it."""
    run = drill(tmp_path, rb("""
        remediation:
          - {id: restart, run: systemctl restart app}
        recovery:
          - id: verify
            run: curl -s localhost/health
            until: stdout == 'ok'
            every: 30s
            timeout: 5m
        """), """
        state: {health: starting}
        responses:
          - {step: restart, duration: 2m}
          - {step: verify, stdout: "{{ state.health }}", duration: 1s}
        events:
          - {at: 90s, set: {health: ok}}
        """)
    assert records(run, "inject.fired")[0]["elapsed"] == 90
    assert finished(run, "verify")["attempts"] == 1
    assert records(run, "step.attempt") == []  # the very first poll already saw "ok"
    assert finished(run, "verify")["stdout"] == "ok"


def test_until_polling_sees_state_changes_over_simulated_time(tmp_path: Path) -> None:
    """Polls at 0, 31, 62 and 93 s (1 s each, every 30 s): the event at 90 s shows in the fourth."""
    run = drill(tmp_path, rb("""
        recovery:
          - id: verify
            run: df /var
            until: stdout | int < 90
            every: 30s
            timeout: 10m
        """), """
        state: {pct: 96}
        responses:
          - {step: verify, stdout: "{{ state.pct }}", duration: 1s}
        events:
          - {at: 90s, set: {pct: 60}}
        """)
    polls = records(run, "step.attempt", step="verify")
    assert [(p["elapsed"], p["stdout"], p["polling"]) for p in polls] == [
        (1.0, "96", True), (32.0, "96", True), (63.0, "96", True)]
    done = finished(run, "verify")
    assert (done["status"], done["stdout"], done["duration"]) == ("ok", "60", 94.0)
    assert run.timings.polls == 3 and run.timings.retries == 0


def test_until_that_never_becomes_true_fails_after_the_timeout(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        recovery:
          - {id: verify, run: check, until: stdout == 'ok', every: 1m, timeout: 5m}
        """), """
        responses:
          - {step: verify, stdout: "nope"}
        """)
    done = finished(run, "verify")
    assert done["status"] == "failed"
    assert "still false after" in done["error"]
    assert done["duration"] <= 5 * 60


def test_events_with_no_state_change_only_show_a_message(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("detection:\n  - {id: a, run: a}\n"), """
        responses:
          - {step: a, duration: 10m}
        events:
          - {at: 1m, message: "Customer reports errors", kind: report}
          - {at: 2m, message: "#infra: unrelated", kind: red_herring}
        """)
    fired = records(run, "inject.fired")
    assert [(f["elapsed"], f["kind"], f["set"]) for f in fired] == [(60, "report", {}), (120, "red_herring", {})]


def test_an_event_after_the_run_ended_never_fires(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("detection:\n  - {id: a, run: a}\n"), """
        responses:
          - {step: a, duration: 10s}
        events:
          - {at: 1h, message: too late}
        """)
    assert records(run, "inject.fired") == []


# -- unscripted steps --------------------------------------------------------------------------


def test_an_unscripted_step_fails_clearly_naming_the_step_and_the_rendered_command(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        inputs: {host: {type: string, default: db-1}}
        detection:
          - {id: scripted, run: "true"}
          - {id: cleanup, run: "rm -rf /var/log/{{ inputs.host }}/*.gz"}
        """), """
        responses:
          - {step: scripted}
        """)
    done = finished(run, "cleanup")
    assert done["status"] == "failed"
    assert done["error"] == ("unscripted step cleanup: the scenario has no response for "
                             "`rm -rf /var/log/db-1/*.gz`")
    assert run.result.outcome == "failed"
    assert run.scorecard.unscripted == ["cleanup"] and not run.scorecard.passed


def test_an_unscripted_http_step_names_the_method_and_url(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - {id: purge, http: {url: "https://cdn.example.com/purge", method: DELETE}}
        """), "")
    assert finished(run, "purge")["error"] == (
        "unscripted step purge: the scenario has no response for `DELETE https://cdn.example.com/purge`")


def test_an_unscripted_remote_step_names_the_host(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        targets: {box: {hosts: [db-1]}}
        detection:
          - {id: reboot, target: box, run: reboot}
        """), "")
    assert finished(run, "reboot")["hosts"]["db-1"]["error"] == (
        "unscripted step reboot: the scenario has no response for `reboot` on db-1")


def test_an_unscripted_manual_step_fails_naming_the_step(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        triage:
          - {id: assess, manual: Look around., ask: {cause: {choices: [a, b]}}}
        """), "")
    assert finished(run, "assess")["status"] == "failed"
    assert finished(run, "assess")["error"].startswith("unscripted step assess:")


# -- fan-out and notifications -----------------------------------------------------------------


def test_a_fan_out_takes_as_long_as_its_slowest_host(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        targets: {web: {hosts: [web-1, web-2, web-3]}}
        detection:
          - {id: restart, target: web, run: restart}
          - {id: next, run: next}
        """), """
        responses:
          - {match: {host: web-2}, duration: 45s}
          - {step: restart, duration: 10s}
          - {step: next}
        """)
    done = finished(run, "restart")
    assert done["duration"] == 45
    assert {h: r["duration"] for h, r in done["hosts"].items()} == {"web-1": 10, "web-2": 45, "web-3": 10}
    assert finished(run, "next")["elapsed"] == 45


def test_a_group_target_stands_for_its_hosts_in_a_drill(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        targets: {web: {group: webservers}}
        detection:
          - {id: restart, target: web, run: restart}
        """), """
        responses:
          - {match: {host: webservers}, stdout: "{{ host }}"}
        """)
    assert finished(run, "restart")["stdout"] == "webservers"


def test_a_drill_splits_a_templated_host_list_exactly_as_a_live_run_and_a_dry_run_do(tmp_path: Path) -> None:
    """One resolver for both: `hosts: ["{{ inputs.lbs }}"]` with "fe-01, fe-02 fe-03" is three
    hosts everywhere (a `user@host:port` entry is its host), never one host with that name."""
    from simkit import load_pair

    from engine.fleet.hosts import Resolver
    from engine.simulation.drill import DrillSetup, run_scenario

    runbook = rb("""
        inputs: {lbs: {type: string}}
        targets: {lb: {hosts: ["{{ inputs.lbs }}", "ops@fe-04:2222"]}}
        detection:
          - {id: drain, target: lb, run: drain}
        """)
    scenario = """
        inputs: {lbs: "fe-01, fe-02 fe-03"}
        responses:
          - {step: drain, stdout: "{{ host }}"}
        """
    model, book = load_pair(tmp_path, runbook, scenario)
    run = run_scenario(model, book, DrillSetup())
    planned = Resolver(None).plan_hosts(book, {"lbs": "fe-01, fe-02 fe-03"})("lb")
    drilled = list(finished(run, "drain")["hosts"])
    assert drilled == ["fe-01", "fe-02", "fe-03", "fe-04"]
    assert [h.split(" ")[0] for h in planned] == drilled


def test_a_mapping_body_is_templated_from_state_like_a_string_body(tmp_path: Path) -> None:
    """Every string inside a mapping or list body is a template; one `{{ }}` keeps its type."""
    run = drill(tmp_path, rb("""
        detection:
          - id: api
            http: {url: "https://api.example.com/q"}
            outputs: {n: "{{ json.n }}", tags: "{{ json.tags | join(',') }}", note: "{{ json.note }}"}
        """), """
        state: {n: 41, region: eu}
        responses:
          - step: api
            body: {n: "{{ state.n + 1 }}", tags: ["{{ state.region }}-1", plain], note: "at {{ state.region }}"}
        """)
    assert finished(run, "api")["outputs"] == {"n": 42, "tags": "eu-1,plain", "note": "at eu"}


def test_notifications_in_a_drill_are_journaled_but_go_nowhere(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - {id: tell, notify: {channel: oncall, message: "disk full"}}
        """), "")
    sent = records(run, "notify.sent")
    assert [(s["channel"], s["message"], s["ok"]) for s in sent] == [("oncall", "disk full", True)]
    notifier = SimulatedNotifier()
    assert notifier.send("x", "y").note == "simulated" and notifier.sent == [("x", "y")]


# -- nothing real is touched -------------------------------------------------------------------

_AUDITED = ("subprocess.Popen", "os.posix_spawn", "os.system", "os.exec", "os.fork", "os.forkpty",
            "os.spawn", "pty.spawn", "socket.connect", "socket.sendto", "socket.getaddrinfo")
_seen: list[str] = []
_watching = threading.Event()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Installed once for the session (audit hooks cannot be removed); records spawns and
    # connections from every thread while a test watches.
    if _watching.is_set() and event.startswith(_AUDITED):
        _seen.append(f"{event} {args[:2]!r}")


sys.addaudithook(_audit)

WOULD_WRITE = """
    inputs: {dir: {type: string}}
    targets: {box: {hosts: [db-1]}}
    detection:
      - {id: make, run: "touch {{ inputs.dir }}/made-by-run && mkdir {{ inputs.dir }}/made-dir"}
      - {id: remote, target: box, run: "touch {{ inputs.dir }}/made-over-ssh"}
      - {id: post, http: {url: "http://127.0.0.1:9/write", method: POST, body: {file: x}}}
      - {id: tell, notify: {channel: oncall, message: "written"}}
    recovery:
      - {id: check, run: "test -e {{ inputs.dir }}/made-by-run", until: exit_code == 0, every: 5s, timeout: 1m}
    """


def test_a_runbook_whose_commands_would_create_files_creates_none_and_spawns_nothing(tmp_path: Path) -> None:
    """Proved by construction: a real directory stays empty, and an audit hook sees no
    process spawn and no connection while the drill runs (nothing is patched)."""
    target = tmp_path / "target"
    target.mkdir()
    _seen.clear()
    _watching.set()
    try:
        run = drill(tmp_path / "files", rb(WOULD_WRITE), f"""
            inputs: {{dir: {target}}}
            responses:
              - {{step: make, duration: 1s}}
              - {{step: remote, duration: 1s}}
              - {{step: post, status: 201}}
              - {{step: check}}
            """)
    finally:
        _watching.clear()
    assert run.result.outcome == "resolved"
    assert path_of(run.records) == [("make", "ok"), ("remote", "ok"), ("post", "ok"), ("tell", "ok"),
                                    ("check", "ok")]
    assert list(target.iterdir()) == []
    assert _seen == []


def test_the_guard_refuses_a_spawn_during_a_drill_and_records_the_attempt() -> None:
    import subprocess

    before = len(guard.attempts)
    with guard.no_real_effects(), pytest.raises(guard.RealEffectRefused, match=r"subprocess\.Popen"):
        subprocess.run(["true"], check=False)
    assert guard.attempts[before:] == ["subprocess.Popen"]


def test_the_guard_refuses_a_network_connection_during_a_drill() -> None:
    import socket

    before = len(guard.attempts)
    with socket.socket() as sock, guard.no_real_effects(), pytest.raises(guard.RealEffectRefused):
        sock.connect(("127.0.0.1", 9))
    assert guard.attempts[before:] == ["socket.connect"]


def test_the_guard_lets_everything_through_outside_a_drill() -> None:
    import subprocess

    with guard.no_real_effects():
        pass
    assert subprocess.run(["true"], check=False).returncode == 0


def test_an_executor_that_tried_to_spawn_in_a_drill_would_fail_the_step_not_the_machine(
        tmp_path: Path) -> None:
    """The safety net: if a real executor slipped into a drill, its spawn is refused."""
    from engine.executors.local import LocalExecutor

    marker = tmp_path / "spawned"
    inv = Invocation("s", "run", f"touch {marker}")
    before = len(guard.attempts)
    with guard.no_real_effects(), pytest.raises(guard.RealEffectRefused):
        LocalExecutor().run(inv, _NullSink(), Cancel())
    assert not marker.exists()
    assert len(guard.attempts) > before


class _NullSink:
    def output(self, stream: str, data: bytes, host: str | None) -> None:
        return None

    def process_started(self, pgid: int, host: str | None) -> None:
        return None


def test_a_hostile_input_stays_one_shell_argument_in_the_command_the_world_sees(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        inputs: {host: {type: string}}
        detection:
          - {id: ping, run: "ping -c1 {{ inputs.host }}"}
        """), """
        inputs: {host: "db-1; rm -rf /"}
        responses:
          - {match: {command: "ping -c1 'db-1; rm -rf /'"}, stdout: quoted}
        """)
    assert finished(run, "ping")["stdout"] == "quoted"


def test_a_commands_output_shows_the_state_at_the_moment_it_finishes(tmp_path: Path) -> None:
    """An event during a 2-minute command shows in that command's output (it reports at its end)."""
    run = drill(tmp_path, rb("detection:\n  - {id: slow, run: slow}\n"), """
        state: {phase: before}
        responses:
          - {step: slow, duration: 2m, stdout: "{{ state.phase }}"}
        events:
          - {at: 90s, set: {phase: after}}
        """)
    assert finished(run, "slow")["stdout"] == "after"


# -- timeouts and interruptions ----------------------------------------------------------------


def test_a_reply_slower_than_the_step_timeout_times_out_as_a_live_command_would(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - {id: hang, run: "rollout status", timeout: 1m, continue_on_error: true}
          - {id: after, run: next}
        """), """
        state: {done: false}
        responses:
          - {step: hang, duration: 10m, stdout: finished, set: {done: true}}
          - {step: after, stdout: "{{ state.done }}"}
        """)
    done = finished(run, "hang")
    assert (done["status"], done["error"], done["duration"], done["stdout"]) == (
        "failed", "timed out after 1m", 60.0, "")
    assert finished(run, "after")["stdout"] == "false"  # the command never finished: no state change
    assert finished(run, "after")["elapsed"] == 60


def test_a_timed_out_attempt_is_retried_and_the_next_reply_can_succeed(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        remediation:
          - {id: rollout, run: rollout, timeout: 4m, retries: {attempts: 2, delay: 30s}}
        """), """
        responses:
          - step: rollout
            attempts:
              - {duration: 1h}
              - {duration: 50s, stdout: rolled out}
        """)
    tries = records(run, "step.attempt")
    assert [(t["error"], t["duration"]) for t in tries] == [("timed out after 4m", 240.0)]
    done = finished(run, "rollout")
    assert (done["status"], done["attempts"], done["duration"]) == ("ok", 2, 240 + 30 + 50)


def test_polling_stops_at_the_step_timeout_even_inside_a_slow_poll(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        recovery:
          - {id: verify, run: check, until: stdout == 'ok', every: 30s, timeout: 2m}
        """), """
        responses:
          - {step: verify, stdout: "no", duration: 50s}
        """)
    done = finished(run, "verify")
    assert done["status"] == "failed" and done["duration"] <= 120


def test_an_interrupted_simulated_command_is_aborted_and_changes_nothing(tmp_path: Path) -> None:
    """Ctrl-C during a simulated wait stops the step, as it would kill a live command."""
    from simkit import load_pair

    from engine.simulation.drill import DrillSetup, run_scenario

    scenario, runbook = load_pair(tmp_path, rb("""
        detection:
          - {id: slow, run: slow}
          - {id: never, run: never}
        """), """
        state: {done: false}
        responses:
          - {step: slow, duration: 5m, set: {done: true}}
          - {step: never}
        """)

    def interrupt_soon(runner: Any, world: Any) -> None:
        world.clock.call_at(60, runner.interrupt)

    run = run_scenario(scenario, runbook, DrillSetup(ready=interrupt_soon))
    assert path_of(run.records) == [("slow", "aborted")]
    assert finished(run, "slow")["error"] == "interrupted"
    assert run.result.outcome == "aborted" and run.world.state == {"done": False}


def test_an_interrupted_fan_out_is_aborted(tmp_path: Path) -> None:
    from simkit import load_pair

    from engine.simulation.drill import DrillSetup, run_scenario

    scenario, runbook = load_pair(tmp_path, rb("""
        targets: {web: {hosts: [web-1, web-2]}}
        detection:
          - {id: restart, target: web, run: restart}
        """), "responses:\n  - {step: restart, duration: 5m}\n")
    run = run_scenario(scenario, runbook, DrillSetup(ready=lambda r, w: w.clock.call_at(30, r.interrupt)))
    assert path_of(run.records) == [("restart", "aborted")]


def test_an_event_whose_set_fails_is_journaled_and_the_drill_goes_on(tmp_path: Path) -> None:
    run = drill(tmp_path, rb("""
        detection:
          - {id: a, run: a, retries: {attempts: 2, delay: 1m}}
          - {id: b, run: b}
        """), """
        state: {pct: 96}
        responses:
          - step: a
            attempts: [{exit_code: 1, duration: 10s}, {exit_code: 0}]
          - {step: b, stdout: "{{ state.pct }}"}
        events:
          - {at: 30s, set: {pct: "{{ state.nope.deeper }}"}, message: Broken event}
          - {at: 40s, set: {pct: 50}, message: Good event}
        """)
    fired = records(run, "inject.fired")
    assert [(f["index"], f["set"]) for f in fired] == [(0, {}), (1, {"pct": 50})]
    assert fired[0]["message"].startswith("Broken event (event 0: its set failed, nothing changed:")
    assert path_of(run.records) == [("a", "ok"), ("b", "ok")]
    assert finished(run, "b")["stdout"] == "50"


def test_a_reply_renders_its_stdout_and_stderr_from_one_context(tmp_path: Path, monkeypatch: Any) -> None:
    """The templates of one reply see the same state (built once, at every simulated step)."""
    from engine.simulation.world import World

    built: list[int] = []
    context = World.context
    monkeypatch.setattr(World, "context", lambda self, inv=None: built.append(1) or context(self, inv))
    run = drill(tmp_path, rb("""
        detection:
          - {id: probe, run: probe}
        """), """
        state: {n: 5}
        responses:
          - {step: probe, stdout: "{{ state.n }} up", stderr: "{{ state.n }} warned", duration: 1s}
        """)
    assert (finished(run, "probe")["stdout"], finished(run, "probe")["stderr"]) == ("5 up", "5 warned")
    assert len(built) == 1


def test_the_guard_gives_back_the_state_it_found_nested_and_after_an_error() -> None:
    """Inside a drill the guard may be entered again (an included run); leaving it, even
    by an exception, restores what was there: refusing in the outer drill, not after it."""
    import subprocess

    with guard.no_real_effects():
        with pytest.raises(KeyError), guard.no_real_effects():
            raise KeyError("inner")
        with pytest.raises(guard.RealEffectRefused):
            subprocess.run(["true"], check=False)
    assert subprocess.run(["true"], check=False).returncode == 0


class _Sink:
    """A sink that records what reaches it; `wants_output` as the step's sink says it."""

    def __init__(self, **wants: bool) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.__dict__.update(wants)

    def output(self, stream: str, data: bytes, host: str | None) -> None:
        self.got.append((stream, data))

    def process_started(self, pgid: int, host: str | None) -> None:
        return None


def test_a_reply_reaches_a_sink_that_wants_output_and_skips_one_that_does_not(tmp_path: Path) -> None:
    """Trials' sinks drop live output: the world neither encodes it nor calls them; the
    step's stdout and stderr are the same either way."""
    from engine.run.clock import VirtualClock
    from engine.simulation.world import SimulatedExecutor, World

    scenario, _ = load_pair(tmp_path, rb("detection:\n  - {id: a, run: echo a}\n"),
                            'responses:\n  - {step: a, stdout: "out", stderr: "err\\n"}\n')
    results = {}
    for name, sink in (("plain", _Sink()), ("wants", _Sink(wants_output=True)), ("drops", _Sink(wants_output=False))):
        results[name] = SimulatedExecutor(World(scenario, VirtualClock())).run(Invocation("a", "run", "echo a"),
                                                                              sink, Cancel())
        expected = [] if name == "drops" else [("stdout", b"out\n"), ("stderr", b"err\n")]
        assert sink.got == expected, name
    assert {(r.stdout, r.stderr, r.ok) for r in results.values()} == {("out", "err\n", True)}


def test_a_step_whose_first_response_names_only_it_is_answered_without_a_search(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trials of an estimate share the scenario: a step's first response that has no
    `match` and no `when` is found once; a first response with `when` is looked at each time."""
    from engine.language.scenario import Scenario
    from engine.simulation.drill import DrillSetup, run_scenario

    scenario, book = load_pair(tmp_path, rb("""
        detection:
          - {id: a, run: echo a}
          - {id: b, run: echo b}
        """), """
        state: {n: 1}
        responses:
          - {step: a, stdout: "plain a"}
          - {step: b, when: "state.n > 5", stdout: "big"}
          - {step: b, stdout: "small", set: {n: 9}}
        """)
    searched: list[str] = []
    real = Scenario.responses_for
    monkeypatch.setattr(Scenario, "responses_for", lambda self, step: searched.append(step) or real(self, step))
    runs = [run_scenario(scenario, book, DrillSetup(seed=seed)) for seed in (1, 2)]
    assert searched == ["a", "b", "b"]
    for run in runs:
        assert (finished(run, "a")["stdout"], finished(run, "b")["stdout"]) == ("plain a", "small")


def test_each_world_starts_from_its_own_copy_of_the_state_encoded_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trials of an estimate share the scenario's state as JSON text (made once);
    each world reads its own copy, so a change in one trial never reaches the next."""
    import datetime
    import json

    from engine.run.clock import VirtualClock
    from engine.simulation import world as world_module

    scenario, _ = load_pair(tmp_path, rb("detection:\n  - {id: a, run: echo a}\n"),
                            "state: {disk: {pct: 96}, when: 2026-01-02}\nresponses:\n  - {step: a}\n")
    dumps: list[object] = []
    real = json.dumps
    monkeypatch.setattr(json, "dumps", lambda *a, **k: dumps.append(a) or real(*a, **k))
    first, second = (world_module.World(scenario, VirtualClock()) for _ in range(2))
    first.state["disk"]["pct"] = 1
    assert second.state == {"disk": {"pct": 96}, "when": str(datetime.date(2026, 1, 2))}
    assert len(dumps) <= 1 and scenario.state["disk"]["pct"] == 96


def test_a_reply_that_reads_only_the_state_renders_without_the_invocations_names(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The invocation's names (command, host, step, attempt, url, query) go into a reply's
    context only when its template spells one; the output is the same either way."""
    from engine.simulation.world import World

    asked: list[bool] = []
    real = World.context
    monkeypatch.setattr(World, "context", lambda self, inv=None: asked.append(inv is not None) or real(self, inv))
    run = drill(tmp_path, rb("""
        detection:
          - {id: a, run: echo a}
          - {id: b, run: echo b}
        """), """
        state: {n: 7}
        responses:
          - {step: a, stdout: "{{ state.n }}"}
          - {step: b, stdout: "{{ state.n }} for {{ step }}", stderr: "{{ state.n }}"}
        """)
    assert (finished(run, "a")["stdout"], finished(run, "b")["stdout"]) == ("7", "7 for b")
    assert asked == [False, True]
