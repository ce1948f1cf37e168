"""`http` steps and webhook notifications against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from livekit import (
    Request,
    Server,
    Workspace,
    assert_clean_failure_output,
    closed_port,
    complete_journal,
    events,
    finished_step,
    runbook_text,
)

pytestmark = pytest.mark.integration


def echo(request: Request) -> tuple[int, str]:
    return 200, json.dumps({"method": request.method, "body": json.loads(request.body or b"null"),
                            "type": request.headers.get("Content-Type")})


def slow(request: Request) -> tuple[int, str]:
    time.sleep(30)
    return 200, "late"


ROUTES = {
    "/queue": lambda r: (200, '{"messages_ready": 12, "consumers": 0}'),
    "/down": lambda r: (503, "maintenance"),
    "/created": lambda r: (201, "made"),
    "/redirect": lambda r: (302, ""),
    "/echo": echo,
    "/slow": slow,
}


def test_a_json_answer_feeds_outputs_and_expect(ws: Workspace) -> None:
    with Server(ROUTES) as server:
        ws.write("live.yaml", runbook_text(f"""\
            triage:
              - id: depth
                http: {{url: "{server.url}/queue"}}
                outputs: {{ready: "{{{{ json.messages_ready }}}}", idle: "{{{{ json.consumers == 0 }}}}"}}
                expect: "outputs.ready > 10 and status == 200"
            """))
        done = ws.run("run", "live.yaml")
    assert done.code == 0, done.text
    step = finished_step(complete_journal(ws.only_run()), "depth")
    assert step["outputs"] == {"ready": 12, "idle": True} and step["status_code"] == 200
    assert f"GET {server.url}/queue" in done.out


def test_a_mapping_body_is_sent_as_json(ws: Workspace) -> None:
    with Server(ROUTES) as server:
        ws.write("live.yaml", runbook_text(f"""\
            inputs: {{replicas: {{type: integer, default: 3}}}}
            remediation:
              - id: scale
                http:
                  url: "{server.url}/echo"
                  method: POST
                  body: {{replicas: "{{{{ inputs.replicas * 2 }}}}", reason: "scale for {{{{ runbook.id }}}}"}}
                outputs: {{sent: "{{{{ json.body }}}}"}}
            """))
        done = ws.run("run", "live.yaml")
        [request] = server.requests
    assert done.code == 0, done.text
    assert request.method == "POST" and request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {"replicas": 6, "reason": "scale for live-test"}


def test_an_error_status_fails_the_step_with_the_status(ws: Workspace) -> None:
    with Server(ROUTES) as server:
        ws.write("live.yaml", runbook_text(f"""\
            recovery:
              - {{id: health, http: {{url: "{server.url}/down"}}}}
            """))
        done = ws.run("run", "live.yaml")
    assert done.code == 1
    assert_clean_failure_output(done)
    assert "✗ health FAILED" in done.out and "HTTP status 503" in done.out
    step = finished_step(complete_journal(ws.only_run()), "health")
    assert step["status_code"] == 503 and step["error"] == "HTTP status 503"


def test_status_lists_the_codes_that_count_as_success(ws: Workspace) -> None:
    with Server(ROUTES) as server:
        ws.write("live.yaml", runbook_text(f"""\
            remediation:
              - {{id: create, http: {{url: "{server.url}/created", method: PUT, status: 201}}}}
              - {{id: maintenance, http: {{url: "{server.url}/down", status: [200, 503]}}}}
              - {{id: strict, http: {{url: "{server.url}/created", status: 200}}}}
            """))
        done = ws.run("run", "live.yaml")
    assert done.code == 1
    records = complete_journal(ws.only_run())
    assert finished_step(records, "create")["status"] == "ok"
    assert finished_step(records, "maintenance")["status"] == "ok"
    assert finished_step(records, "strict")["error"] == "HTTP status 201"


def test_a_redirect_is_a_failure_when_not_followed(ws: Workspace) -> None:
    with Server(ROUTES) as server:
        ws.write("live.yaml", runbook_text(f"""\
            triage:
              - {{id: login, http: {{url: "{server.url}/redirect", follow_redirects: false}}}}
            """))
        done = ws.run("run", "live.yaml")
    assert done.code == 1 and "HTTP status 302" in done.out


def test_a_slow_server_times_out_with_the_step_named(ws: Workspace) -> None:
    with Server(ROUTES) as server:
        ws.write("live.yaml", runbook_text(f"""\
            triage:
              - {{id: probe, http: {{url: "{server.url}/slow"}}, timeout: 1s}}
            """))
        started = time.monotonic()
        done = ws.run("run", "live.yaml")
    assert time.monotonic() - started < 20
    assert done.code == 1
    assert_clean_failure_output(done)
    assert "✗ probe FAILED" in done.out and "timed out" in done.out


def test_a_closed_port_is_connection_refused_and_retries_run(ws: Workspace) -> None:
    port = closed_port()
    ws.write("live.yaml", runbook_text(f"""\
        triage:
          - {{id: probe, http: {{url: "http://127.0.0.1:{port}/"}}, retries: {{attempts: 2, delay: 100ms}}}}
        """))
    done = ws.run("run", "live.yaml")
    assert done.code == 1
    assert "attempt 1 failed (connection refused); retrying in 100ms" in done.out
    step = finished_step(complete_journal(ws.only_run()), "probe")
    assert step["attempts"] == 2 and step["error"] == "connection refused"


def test_an_unsupported_scheme_fails_clearly(ws: Workspace) -> None:
    ws.write("live.yaml", runbook_text("""\
        triage:
          - {id: probe, http: {url: "file:///etc/passwd"}}
        """))
    done = ws.run("run", "live.yaml")
    assert done.code == 1
    assert_clean_failure_output(done)
    assert "unsupported URL scheme 'file': use http or https" in done.out
    assert "root:" not in done.text


# -- notifications ---------------------------------------------------------------------------------------


def hook(status: int) -> Server:
    return Server({"/hooks/": lambda r: (status, "ok")})


def channels(ws: Workspace, url: str) -> Path:
    return ws.write("channels.yaml", f"kind: channels\nchannels:\n  oncall: {{type: webhook, url: \"{url}\"}}\n")


NOTIFY = """\
inputs: {host: {type: string, default: db-1}}
remediation:
  - id: tell
    notify: {channel: oncall, title: "Disk full", message: "{{ inputs.host }}: compressing logs"}
"""


def test_a_webhook_notification_reaches_a_real_server(ws: Workspace) -> None:
    with hook(200) as server:
        channels(ws, f"{server.url}/hooks/T000/B000/XXXX")
        ws.write("live.yaml", runbook_text(NOTIFY))
        done = ws.run("run", "live.yaml", "--channels", "channels.yaml")
        [request] = server.requests
    assert done.code == 0, done.text
    assert request.method == "POST" and request.path == "/hooks/T000/B000/XXXX"
    payload = json.loads(request.body)
    assert payload["text"] == "Disk full\ndb-1: compressing logs"
    assert payload["runbook"] == "live-test" and payload["run_id"] == ws.only_run().name
    assert "→ notify [oncall] db-1: compressing logs" in done.out
    [sent] = events(complete_journal(ws.only_run()), "notify.sent")
    assert sent["ok"] and sent["channel"] == "oncall"


def test_a_failed_webhook_fails_the_step_without_showing_the_url_secret(ws: Workspace) -> None:
    with hook(500) as server:
        channels(ws, f"{server.url}/hooks/T000/B000/SECRETPATH")
        ws.write("live.yaml", runbook_text(NOTIFY))
        done = ws.run("run", "live.yaml", "--channels", "channels.yaml")
    assert done.code == 1
    assert_clean_failure_output(done)
    assert "HTTP status 500" in done.out and "SECRETPATH" not in done.text
    step = finished_step(complete_journal(ws.only_run()), "tell")
    assert step["status"] == "failed" and "SECRETPATH" not in step["error"]


def test_an_unreachable_webhook_fails_the_step_clearly(ws: Workspace) -> None:
    channels(ws, f"http://127.0.0.1:{closed_port()}/hooks/x")
    ws.write("live.yaml", runbook_text(NOTIFY))
    done = ws.run("run", "live.yaml", "--channels", "channels.yaml")
    assert done.code == 1
    assert_clean_failure_output(done)
    assert "channel 'oncall'" in done.out and "Connection refused" in done.out


def test_a_channel_that_is_not_configured_is_shown_on_the_console(ws: Workspace) -> None:
    ws.write("live.yaml", runbook_text(NOTIFY))
    done = ws.run("run", "live.yaml")
    assert done.code == 0 and "→ notify [oncall] db-1: compressing logs" in done.out


def test_a_bad_channels_file_is_a_usage_error(ws: Workspace) -> None:
    ws.write("channels.yaml", "kind: channels\nchannels:\n  oncall: {type: pigeon}\n")
    ws.write("live.yaml", runbook_text(NOTIFY))
    done = ws.run("run", "live.yaml", "--channels", "channels.yaml")
    assert done.code == 2
    assert "channel 'oncall' needs `type:` one of stdout, file, webhook" in done.err
    assert ws.run_dirs() == []


def test_channels_in_the_runbook_home_are_used_by_default(ws: Workspace) -> None:
    with hook(200) as server:
        home = ws.root / ".runbook"
        home.mkdir()
        (home / "channels.yaml").write_text(
            f"kind: channels\nchannels:\n  oncall: {{type: webhook, url: \"{server.url}/hooks/x\"}}\n")
        ws.write("live.yaml", runbook_text(NOTIFY))
        done = ws.run("run", "live.yaml")  # RUNBOOK_HOME is ws.root/.runbook
        assert done.code == 0, done.text
        assert len(server.requests) == 1
