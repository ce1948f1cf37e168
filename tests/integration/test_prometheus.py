"""`promql` steps against a real Prometheus on loopback (promkit.py): it scrapes itself
and a closed port, so `up{job="api"} == 0` is a real TargetDown. TLS, basic auth and a
client certificate are Prometheus's own (`--web.config.file`); a bearer token, which
Prometheus itself does not check, is checked by a recording server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from livekit import (
    Request,
    Server,
    Workspace,
    assert_clean_failure_output,
    closed_port,
    complete_journal,
    finished_step,
    iter_files,
    runbook_text,
)
from promkit import DOWN_TARGET, Prometheus

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def prom() -> Iterator[Prometheus]:
    p = Prometheus.create().start()
    try:
        p.wait_for("count(up) == 2")  # both targets scraped: the tests count them
        yield p
    finally:
        p.destroy()


def connection(url: str, extra: str = "") -> str:
    return f"connections:\n  prom:\n    type: prometheus\n    url: \"{url}\"\n{extra}"


def test_an_instant_query_gives_each_series_with_its_labels_and_value(ws: Workspace, prom: Prometheus) -> None:
    ws.write("live.yaml", runbook_text("""\
        inputs: {job: {type: string, default: api}}
        detection:
          - id: down
            promql: 'up{job="{{ inputs.job }}"} == 0'
            expect: not empty and value == 0
            outputs: {instance: "{{ series[0].labels.instance }}", job: "{{ series[0].labels.job }}"}
          - id: later
            promql: count(up)
            expect: value == 2 and steps.down.value == 0 and steps.down.series | length == 1
        """, head=connection(prom.url)))
    done = ws.run("run", "live.yaml")
    assert done.code == 0, done.text
    records = complete_journal(ws.only_run())
    assert finished_step(records, "down")["outputs"] == {"instance": DOWN_TARGET, "job": "api"}
    assert 'promql [prom]: up{job="api"} == 0' in done.out
    assert f'up{{instance="{DOWN_TARGET}", job="api"}} 0' in done.out  # one line per series


def test_a_range_query_gives_each_series_its_values(ws: Workspace, prom: Prometheus) -> None:
    ws.write("live.yaml", runbook_text("""\
        triage:
          - id: history
            promql: {query: 'up{job="prometheus"}', range: 30s, step: 1s}
            outputs: {points: "{{ series[0]['values'] | length }}", first: "{{ series[0]['values'][0][1] }}"}
            expect: value == 1 and outputs.points >= 1 and outputs.first == 1
        """, head=connection(prom.url)))
    done = ws.run("run", "live.yaml")
    assert done.code == 0, done.text
    assert "promql [prom over 30s]" in done.out


def test_an_empty_result_is_a_result_and_says_so_when_a_check_needs_a_value(ws: Workspace, prom: Prometheus,
                                                                            ) -> None:
    ws.write("live.yaml", runbook_text("""\
        triage:
          - {id: none, promql: 'up{job="nope"}', expect: "empty and series == []"}
          - {id: needs_value, promql: 'up{job="nope"}', expect: value > 0.9}
        """, head=connection(prom.url)))
    done = ws.run("run", "live.yaml")
    assert done.code == 1, done.text
    records = complete_journal(ws.only_run())
    assert finished_step(records, "none")["status"] == "ok"
    failed = finished_step(records, "needs_value")
    assert failed["status"] == "failed" and "the query returned no series" in failed["error"]
    assert "(no series)" in done.out


def test_a_bad_query_fails_the_step_with_prometheus_message(ws: Workspace, prom: Prometheus) -> None:
    ws.write("live.yaml", runbook_text("""\
        triage:
          - {id: bad, promql: 'sum(rate(up[5m]'}
        """, head=connection(prom.url)))
    done = ws.run("run", "live.yaml")
    assert done.code == 1, done.text
    error = finished_step(complete_journal(ws.only_run()), "bad")["error"]
    assert error.startswith(f"Prometheus prom ({prom.url}): bad_data: ") and "parse error" in error
    assert_clean_failure_output(done)


def test_prometheus_down_fails_the_step_clearly(ws: Workspace) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    ws.write("live.yaml", runbook_text("""\
        triage:
          - {id: q, promql: up}
        """, head=connection(url)))
    done = ws.run("run", "live.yaml")
    assert done.code == 1, done.text
    error = finished_step(complete_journal(ws.only_run()), "q")["error"]
    assert error == f"Prometheus prom ({url}): connection refused"
    assert_clean_failure_output(done)


@pytest.fixture(scope="module")
def secure_prom() -> Iterator[Prometheus]:
    p = Prometheus.create(tls=True, users={"ops": "s3cret-pw"}, client_cert=True).start()
    try:
        yield p
    finally:
        p.destroy()


def tls_connection(p: Prometheus, password: str, *, ca: bool = True) -> str:
    assert p.certs is not None
    d = p.certs.dir
    lines = [f"    tls:\n      cert_file: {d / 'client.pem'}\n      key_file: {d / 'client.key'}\n"
             "      server_name: prom.test\n",
             "    basic_auth: {username: ops, password: \"" + password + "\"}\n"]
    if ca:
        lines.append(f"      ca_file: {d / 'ca.pem'}\n")
    return connection(p.url, lines[0] + (lines[2] if ca else "") + lines[1])


def test_tls_with_a_client_certificate_and_basic_auth_from_a_secret(ws: Workspace, secure_prom: Prometheus) -> None:
    """Prometheus serves HTTPS for prom.test, wants a client certificate and a password:
    the URL names 127.0.0.1, `server_name` the certificate's name."""
    ws.write("live.yaml", runbook_text("""\
        inputs: {pw: {type: string, secret: true}}
        detection:
          - id: down
            promql: 'up{job="api"}'
            until: not empty
            every: 1s
            timeout: 60s
            expect: value == 0
        """, head=tls_connection(secure_prom, "{{ inputs.pw }}")))
    done = ws.run("run", "live.yaml", "-i", "pw=s3cret-pw", timeout=90)
    assert done.code == 0, done.text
    run = ws.only_run()
    assert all(b"s3cret-pw" not in f.read_bytes() for f in iter_files(run))


def test_a_wrong_password_or_an_unknown_ca_fails_with_the_reason(ws: Workspace, secure_prom: Prometheus) -> None:
    ws.write("wrong.yaml", runbook_text("""\
        triage:
          - {id: q, promql: up}
        """, id="wrong", head=tls_connection(secure_prom, "nope")))
    ws.write("noca.yaml", runbook_text("""\
        triage:
          - {id: q, promql: up}
        """, id="noca", head=tls_connection(secure_prom, "s3cret-pw", ca=False)))
    wrong, noca = ws.run("run", "wrong.yaml"), ws.run("run", "noca.yaml")
    assert wrong.code == 1 and noca.code == 1, wrong.text + noca.text
    assert f"Prometheus prom ({secure_prom.url}): HTTP status 401" in wrong.out
    assert "TLS certificate verification failed" in noca.out
    assert_clean_failure_output(wrong)


def answer(request: Request) -> tuple[int, str]:
    return 200, json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"job": "api"}, "value": [1.0, "0.5"]}]}})


def test_a_bearer_token_from_a_file_and_headers_are_sent(ws: Workspace, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("tok-123\n")
    with Server({"/prefix/api/v1/query": answer}) as server:
        extra = f"    bearer_token_file: {token}\n    headers: {{X-Scope-OrgID: team-a}}\n"
        ws.write("live.yaml", runbook_text("""\
            triage:
              - {id: q, promql: 'avg(up)', expect: value == 0.5}
            """, head=connection(f"{server.url}/prefix/", extra)))
        done = ws.run("run", "live.yaml")
        [request] = server.requests
    assert done.code == 0, done.text
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["authorization"] == "Bearer tok-123" and headers["x-scope-orgid"] == "team-a"
    assert request.path.startswith("/prefix/api/v1/query?query=avg%28up%29&time=")


def test_scrape_targets_give_each_target_health_and_its_last_scrape_error(ws: Workspace, prom: Prometheus) -> None:
    prom.wait_for('up{job="api"}')  # scraped once: its last error is known
    ws.write("live.yaml", runbook_text("""\
        triage:
          - id: api
            scrape_targets: {labels: {job: api}}
            expect: "down | length == 1 and 'connection refused' in down[0].last_error"
            outputs: {instance: "{{ down[0].labels.instance }}", health: "{{ targets[0].health }}"}
          - id: all
            scrape_targets: {}
            expect: targets | length == 2 and down | length == 1 and not empty
        """, head=connection(prom.url)))
    done = ws.run("run", "live.yaml")
    assert done.code == 0, done.text
    assert finished_step(complete_journal(ws.only_run()), "api")["outputs"] == {"instance": DOWN_TARGET,
                                                                               "health": "down"}
    assert f"down    api {DOWN_TARGET}  Get" in done.out


def test_a_connection_from_the_connections_file_and_a_runbook_own_one_that_wins(ws: Workspace, prom: Prometheus,
                                                                                  tmp_path: Path) -> None:
    shared = tmp_path / "connections.yaml"
    shared.write_text(f"kind: connections\nversion: 1\nconnections:\n"
                      f"  prom: {{type: prometheus, url: '{prom.url}'}}\n"
                      f"  other: {{type: prometheus, url: 'http://127.0.0.1:{closed_port()}'}}\n")
    ws.write("live.yaml", runbook_text("""\
        detection:
          - {id: down, promql: {query: 'up{job="api"} == 0', prometheus: prom}, expect: value == 0}
          - {id: own, promql: {query: up, prometheus: other}, expect: not empty}
        """, head=connection(prom.url).replace("prom:", "other:")))
    done = ws.run("run", "live.yaml", env={"RUNBOOK_CONNECTIONS": str(shared)})
    assert done.code == 0, done.text  # `prom` from the file; `other`, in both, is the runbook's


def echo_token(request: Request) -> tuple[int, str]:
    token = {k.lower(): v for k, v in request.headers.items()}.get("authorization", "")
    return 400, json.dumps({"status": "error", "errorType": "bad_data", "error": f"refused {token}"})


def test_a_token_read_from_a_variable_is_masked_when_the_server_echoes_it(ws: Workspace) -> None:
    with Server({"/api/v1/query": echo_token}) as server:
        ws.write("live.yaml", runbook_text("""\
            triage:
              - {id: q, promql: up}
            """, head=connection(server.url, "    bearer_token_env: PROM_TOKEN_TEST\n")))
        done = ws.run("run", "live.yaml", env={"PROM_TOKEN_TEST": "tok-very-secret"})
    assert done.code == 1, done.text
    assert "refused Bearer ***" in finished_step(complete_journal(ws.only_run()), "q")["error"]
    assert "tok-very-secret" not in done.text
    assert all(b"tok-very-secret" not in f.read_bytes() for f in iter_files(ws.only_run()))


def test_a_prometheus_that_never_answers_fails_the_step_at_the_connection_timeout(ws: Workspace) -> None:
    import socket

    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        ws.write("live.yaml", runbook_text("""\
            triage:
              - {id: q, promql: up, timeout: 60s}
            """, head=connection(url, "    timeout: 1s\n")))
        done = ws.run("run", "live.yaml")
    assert done.code == 1, done.text
    error = finished_step(complete_journal(ws.only_run()), "q")["error"]
    assert error.startswith(f"Prometheus prom ({url}): timed out after 1s"), error
    assert_clean_failure_output(done)


def test_a_label_value_from_an_alert_cannot_change_the_query(ws: Workspace, prom: Prometheus) -> None:
    """Inside quotes a substituted value is PromQL string text: `"} or vector(1) ...` stays
    a job name that matches nothing (unescaped, vector(1) would answer and `empty` be false)."""
    ws.write("live.yaml", runbook_text("""\
        inputs: {job: {type: string}}
        detection:
          - {id: q, promql: 'up{job="{{ inputs.job }}"} == 0', expect: empty}
          - {id: bare, promql: 'up{job={{ inputs.job }}}'}
        """, head=connection(prom.url)))
    done = ws.run("run", "live.yaml", "-i", 'job=api"} or vector(1) or up{job="x')
    assert done.code == 1, done.text
    records = complete_journal(ws.only_run())
    assert finished_step(records, "q")["status"] == "ok"
    assert "gives a value with a quote outside a quoted PromQL string" in finished_step(records, "bare")["error"]
