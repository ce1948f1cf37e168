"""PromQL steps off the wire: Prometheus's API answers read into series (executors/
prometheus.py), the runbook's `connections:` and `promql:` as the model builds them, and
a drill answering queries from its scenario's state (glob or regex on the query). The
real Prometheus is in tests/integration/test_prometheus.py."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from simkit import drill, finished

from engine.executors.base import Result
from engine.executors.prometheus import Query, answer_body, format_series, read_answer
from engine.language.monitoring import BasicAuth, PromqlSpec, Tls

CONNECTION = """\
connections:
  prom:
    type: prometheus
    url: http://prometheus.example:9090
    basic_auth: {username: ops, password: "{{ inputs.pw }}"}
    tls: {ca_file: /etc/ca.pem, server_name: prom.internal}
    timeout: 10s
inputs: {pw: {type: string, secret: true, default: x}}
"""


def response(body: object, status: int = 200) -> Result:
    text = json.dumps(body)
    return Result("GET", None, text, "", None, 0.0, 0.0, 200 <= status < 300,
                  None if status < 300 else f"HTTP status {status}", status=status, body=text)


def test_a_vector_becomes_one_series_per_labelset_with_numbers() -> None:
    answer = read_answer(response({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"__name__": "up", "job": "api"}, "value": [1.5, "0"]},
        {"metric": {"job": "db"}, "value": [1.5, "NaN"]}]}}))
    assert answer.error is None
    assert answer.series[0] == {"labels": {"__name__": "up", "job": "api"}, "value": 0.0}
    assert math.isnan(answer.series[1]["value"])
    assert answer.results()["value"] is None and answer.results()["empty"] is False  # two series: no one value
    assert format_series(answer.series).splitlines()[0] == 'up{job="api"} 0'


def test_a_matrix_gives_values_and_its_last_value_and_a_scalar_one_value() -> None:
    matrix = read_answer(response({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"job": "api"}, "values": [[1, "1"], [2, "0.25"]]}]}}))
    assert matrix.results() == {"series": [{"labels": {"job": "api"}, "value": 0.25,
                                            "values": [[1.0, 1.0], [2.0, 0.25]]}], "value": 0.25, "empty": False}
    scalar = read_answer(response({"status": "success", "data": {"resultType": "scalar", "result": [1, "+Inf"]}}))
    assert scalar.results()["value"] == math.inf


def test_an_empty_result_is_explicit_and_an_error_is_prometheus_own_message() -> None:
    empty = read_answer(response({"status": "success", "data": {"resultType": "vector", "result": []}}))
    assert empty.error is None and empty.results() == {"series": [], "value": None, "empty": True}
    assert format_series([]) == "(no series)\n"
    bad = read_answer(response({"status": "error", "errorType": "timeout", "error": "query timed out"}, 503))
    assert bad.error == "timeout: query timed out"
    html = read_answer(Result("GET", None, "<html>", "", None, 0, 0, True, body="<html>", status=200))
    assert html.error is not None and "is the URL a Prometheus?" in html.error


def test_queries_go_under_the_base_url_with_their_times() -> None:
    assert Query("up == 0", 100.0).url("http://p:9090/prefix/") == \
        "http://p:9090/prefix/api/v1/query?query=up+%3D%3D+0&time=100.000"
    ranged = Query("up", 1000.0, 600.0).url("http://p")
    assert ranged == "http://p/api/v1/query_range?query=up&start=400.000&end=1000.000&step=10"


def test_a_drill_answer_reads_back_as_the_series_it_was_built_from() -> None:
    series = [{"labels": {"job": "api"}, "value": 0.5}, {"labels": {}, "value": "7"}]
    back = read_answer(Result("", None, "", "", None, 0, 0, True, body=answer_body(series, False, 9.0)))
    assert back.series == [{"labels": {"job": "api"}, "value": 0.5}, {"labels": {}, "value": 7.0}]


def test_connections_and_promql_steps_are_built_from_the_runbook(tmp_path: Path) -> None:
    from simkit import load_pair

    _, book = load_pair(tmp_path, CONNECTION + """\
        detection:
          - {id: short, promql: up}
          - {id: long, promql: {query: up, prometheus: prom, range: 30m, step: 1m}}
        """.replace("        ", ""), "responses: [{step: short, series: []}, {step: long, series: []}]\n")
    conn = book.connections["prom"]
    assert conn.basic_auth == BasicAuth("ops", "{{ inputs.pw }}")
    assert conn.tls == Tls(ca_file="/etc/ca.pem", server_name="prom.internal") and conn.timeout == 10
    short, long = (s.spec for s in book.steps())
    assert short == PromqlSpec("up") and long == PromqlSpec("up", "prom", 1800.0, 60.0, short=False)


RUNBOOK = CONNECTION.replace("inputs: {", "inputs: {job: {type: string}, ") + """\
detection:
  - id: down
    promql: 'up{job="{{ inputs.job }}"} == 0'
    expect: not empty
    outputs: {instances: "{{ series | map(attribute='labels.instance') | list }}"}
recovery:
  - id: back
    promql: {query: 'sum(up{job="api"})', range: 10m}
    until: value == 3
    every: 1m
    timeout: 20m
"""
SCENARIO = """\
inputs: {job: api}
state:
  down: ["10.0.0.5:8080", "10.0.0.6:8080"]
  healthy: 1
responses:
  - match: {query: 'up{job=*} == 0'}
    series:
      - {labels: {instance: "{{ state.down[0] }}", job: api}, value: 0}
      - {labels: {instance: "{{ state.down[1] }}", job: api}, value: 0}
  - match: {query_regex: '^sum\\(up'}
    series: [{labels: {}, value: "{{ state.healthy }}"}]
events:
  - {at: 5m, set: {healthy: 2}}
  - {at: 9m, set: {healthy: 3}}
"""


def test_a_drill_answers_queries_by_glob_and_regex_from_the_state_as_it_changes(tmp_path: Path) -> None:
    run = drill(tmp_path, RUNBOOK, SCENARIO)
    assert run.result.outcome == "resolved", run.records
    assert finished(run, "down")["outputs"] == {"instances": ["10.0.0.5:8080", "10.0.0.6:8080"]}
    back = finished(run, "back")
    assert back["status"] == "ok" and back["attempts"] == 1
    polls = [r for r in run.records if r["event"] == "step.attempt" and r["step"] == "back"]
    assert len(polls) == 9  # healthy reaches 3 at 9m: polls at 0..8m fail, the tenth at 9m holds


ALERT_RUNBOOK = """\
connections: {am: {type: alertmanager, url: "http://alertmanager.example:9093"}}
detection:
  - id: firing
    alert: {fingerprint: "{{ run.alert.fingerprint }}"}
    expect: firing
remediation:
  - id: quiet
    silence: {matchers: ['alertname="TargetDown"', 'job=~"a.*"'], duration: 1h, comment: restarting}
  - id: silenced
    alert: {name: TargetDown, labels: {job: api}}
    expect: alerts[0].state == 'suppressed' and alerts[0].silenced_by == [steps.quiet.silence_id]
recovery:
  - id: cleared
    alert: TargetDown
    until: cleared
    every: 1m
    timeout: 30m
  - {id: loud, unsilence: quiet}
"""
ALERT_SCENARIO = """\
alert:
  labels: {alertname: TargetDown, job: api, instance: "10.0.0.5:8080"}
  fingerprint: 4f1c0ffee
events:
  - {at: 7m, set: {alerts: []}, message: the api is back}
"""


def test_in_a_drill_alerts_are_world_state_that_events_resolve_and_silences_change(tmp_path: Path) -> None:
    """The scenario's alert fires until an event resolves it; the wait follows the world."""
    run = drill(tmp_path, ALERT_RUNBOOK, ALERT_SCENARIO)
    assert run.result.outcome == "resolved", [r.get("error") for r in run.records]
    polls = [r for r in run.records if r["event"] == "step.attempt" and r["step"] == "cleared"]
    assert len(polls) == 7  # resolved at 7m: polls at 0..6m see it firing
    assert run.world.state["silences"][0]["active"] is False  # `loud` expired it
    assert run.world.state["silences"][0]["comment"].startswith("restarting (runbook rb, run ")


def test_a_drill_answers_scrape_targets_from_the_state(tmp_path: Path) -> None:
    run = drill(tmp_path, CONNECTION + """\
        triage:
          - id: t
            scrape_targets: {labels: {job: api}}
            outputs:
              error: "{{ down[0].last_error }}"
              pool: "{{ targets[0].scrape_pool }}"
              n: "{{ targets | length }}"
        """.replace("        ", ""), """\
        state: {error: "connect: connection refused"}
        responses:
          - step: t
            targets:
              - {labels: {job: api, instance: "a:1"}, health: down, last_error: "{{ state.error }}"}
              - {labels: {job: db, instance: "b:1"}, health: up}
        """.replace("        ", ""))
    assert finished(run, "t")["outputs"] == {"error": "connect: connection refused", "pool": "api", "n": 1}


def test_the_connections_file_completes_a_runbook_and_a_bad_one_says_where(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.errors import UsageError
    from engine.language.validation import Options, check_file

    book = tmp_path / "rb.yaml"
    book.write_text("kind: runbook\nversion: 1\nid: rb\ntitle: T\ndetection:\n  - {id: q, promql: up}\n")
    assert [d.rule for d in check_file(str(book), Options()).diagnostics if d.is_error] == ["RB170"]
    shared = tmp_path / "connections.yaml"
    shared.write_text("connections:\n  prom: {type: prometheus, url: 'http://p:9090'}\n")
    monkeypatch.setenv("RUNBOOK_CONNECTIONS", str(shared))
    checked = check_file(str(book), Options())
    assert not [d for d in checked.diagnostics if d.is_error]
    assert checked.model.connections["prom"].file == str(shared)
    shared.write_text("connections:\n  prom: {type: prometheus, url: 'http://p:9090', timeout: soon}\n")
    with pytest.raises(UsageError, match=r"connections.yaml:2:59: 'soon' is not valid"):
        check_file(str(book), Options())


def test_the_connections_file_schema_shares_the_runbook_schema_definitions() -> None:
    from engine.language.schema import load_schema

    runbook, shared = load_schema("runbook"), load_schema("connections")
    for name, definition in shared["$defs"].items():
        assert definition == runbook["$defs"][name], name
    assert shared["properties"]["connections"]["additionalProperties"] == \
        runbook["properties"]["connections"]["additionalProperties"]


def test_substituted_values_are_escaped_for_the_quotes_they_land_in() -> None:
    from engine.errors import TemplateError
    from engine.run._promql_text import render_query

    ctx = {"v": 'a"b\\c\nd', "w": "5m", "re": "10\\.0\\..*"}
    assert render_query('x{l="{{ v }}"}', ctx, "q") == 'x{l="a\\"b\\\\c\\nd"}'
    assert render_query("x{l='{{ v }}'}[{{ w }}]", ctx, "q") == "x{l='a\"b\\\\c\\nd'}[5m]"
    assert render_query('x{l=~"{{ re }}"}', ctx, "q") == 'x{l=~"10\\\\.0\\\\..*"}'  # Prometheus reads 10\.0\..*
    assert render_query('x{l="a\\"{{ w }}"} and {{ w }}', ctx, "q") == 'x{l="a\\"5m"} and 5m'
    with pytest.raises(TemplateError, match="quote outside a quoted PromQL string"):
        render_query("x{l={{ v }}}", ctx, "q")
    assert render_query("{% if w %}x{l=\"{{ v }}\"}{% endif %}", ctx, "q") == 'x{l="a"b\\c\nd"}'  # blocks: as written
