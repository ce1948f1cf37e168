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


def flaky(*statuses: int) -> Server:
    """A webhook answering these statuses in turn (the last one from then on)."""
    answers = iter(statuses)
    last = {"status": statuses[-1]}

    def answer(request: Request) -> tuple[int, str]:
        last["status"] = next(answers, last["status"])
        return last["status"], "ok"

    return Server({"/hooks/": answer})


def channels(ws: Workspace, url: str, extra: str = "") -> Path:
    return ws.write("channels.yaml", f"kind: channels\n{extra}channels:\n  oncall: {{type: webhook, url: \"{url}\"}}\n"
                                     "  status: {type: stdout}\n")


NOTIFY = """\
inputs: {host: {type: string, default: db-1}}
remediation:
  - id: tell
    notify: {channel: oncall, title: "Disk full", message: "{{ inputs.host }}: compressing logs"}
  - {id: after, run: "true"}
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
    run_id = ws.only_run().name
    assert payload["text"] == f"Disk full\ndb-1: compressing logs\nrun {run_id}"  # no run_url: the run's id
    assert payload["runbook"] == "live-test" and payload["run_id"] == run_id
    assert "→ notify [oncall] db-1: compressing logs" in done.out
    [sent] = events(complete_journal(ws.only_run()), "notify.sent")
    assert sent["ok"] and sent["channel"] == "oncall" and sent["attempts"] == 1


def test_slack_payloads_escape_mrkdwn_and_link_back_to_the_run(ws: Workspace) -> None:
    book = NOTIFY.replace('"{{ inputs.host }}: compressing logs"', '"{{ inputs.host }} <!channel> & <https://x|y>"')
    with hook(200) as server:
        channels(ws, f"{server.url}/hooks/x", extra="run_url: \"https://runbooks.example.com/runs/{run_id}\"\n")
        ws.write("live.yaml", runbook_text(book))
        done = ws.run("run", "live.yaml", "--channels", "channels.yaml")
        [request] = server.requests
    assert done.code == 0, done.text
    run_id = ws.only_run().name
    payload = json.loads(request.body)
    assert payload["text"] == (f"Disk full\ndb-1 &lt;!channel&gt; &amp; &lt;https://x|y&gt;\n"
                               f"<https://runbooks.example.com/runs/{run_id}|run {run_id}>")
    assert payload["run_url"] == f"https://runbooks.example.com/runs/{run_id}"
    [sent] = events(complete_journal(ws.only_run()), "notify.sent")
    assert sent["message"] == "db-1 <!channel> & <https://x|y>"  # the journal keeps what was said


@pytest.mark.parametrize("failure", ["http 500", "connection refused"])
def test_a_webhook_outage_is_retried_reported_and_the_run_goes_on(ws: Workspace, failure: str) -> None:
    with hook(500) as server:
        url = f"{server.url}/hooks/T000/B000/SECRETPATH" if failure == "http 500" else \
            f"http://127.0.0.1:{closed_port()}/hooks/T000/B000/SECRETPATH"
        channels(ws, url)
        ws.write("live.yaml", runbook_text(NOTIFY))
        done = ws.run("run", "live.yaml", "--channels", "channels.yaml")
        tried = len(server.requests)
    assert done.code == 0, done.text
    assert tried == (4 if failure == "http 500" else 0)  # 1 s, 2 s, 4 s apart: inside the 30 s step timeout
    records = complete_journal(ws.only_run())
    [sent] = events(records, "notify.sent")
    expected = "HTTP status 500" if failure == "http 500" else "Connection refused"
    assert not sent["ok"] and sent["attempts"] == 4 and expected in sent["error"]
    assert "after 4 attempts" in sent["error"] and "SECRETPATH" not in done.text + json.dumps(records)
    assert finished_step(records, "tell")["status"] == "ok" and finished_step(records, "after")["status"] == "ok"
    assert "(not delivered: channel 'oncall' (http://127.0.0.1:" in done.out


def test_a_webhook_that_recovers_delivers_on_a_later_attempt(ws: Workspace) -> None:
    with flaky(500, 503, 200) as server:
        channels(ws, f"{server.url}/hooks/x")
        ws.write("live.yaml", runbook_text(NOTIFY))
        done = ws.run("run", "live.yaml", "--channels", "channels.yaml")
        assert len(server.requests) == 3
    assert done.code == 0, done.text
    [sent] = events(complete_journal(ws.only_run()), "notify.sent")
    assert sent["ok"] and sent["attempts"] == 3 and sent["error"] is None
    assert "(delivered on attempt 3)" in done.out


def test_retries_stop_within_the_steps_timeout(ws: Workspace) -> None:
    book = NOTIFY.replace("    notify: {channel: oncall", "    timeout: 2s\n    notify: {channel: oncall")
    with hook(503) as server:
        channels(ws, f"{server.url}/hooks/x")
        ws.write("live.yaml", runbook_text(book))
        started = time.monotonic()
        done = ws.run("run", "live.yaml", "--channels", "channels.yaml")
        took = time.monotonic() - started
        tried = len(server.requests)
    assert done.code == 0, done.text
    assert tried == 2  # at 0 s and 1 s; the next would come at 3 s, past the 2 s budget
    assert took < 7  # 4 attempts would wait 7 s
    [sent] = events(complete_journal(ws.only_run()), "notify.sent")
    assert sent["attempts"] == 2 and not sent["ok"]


def test_a_required_message_that_cannot_be_delivered_fails_its_step(ws: Workspace) -> None:
    book = NOTIFY.replace('message: "{{ inputs.host }}: compressing logs"}',
                          'message: "{{ inputs.host }}: compressing logs", required: true}')
    with hook(404) as server:  # a deleted webhook: final at once, no retries
        channels(ws, f"{server.url}/hooks/T000/B000/SECRETPATH")
        ws.write("live.yaml", runbook_text(book))
        done = ws.run("run", "live.yaml", "--channels", "channels.yaml")
        assert len(server.requests) == 1
    assert done.code == 1
    assert_clean_failure_output(done)
    records = complete_journal(ws.only_run())
    step = finished_step(records, "tell")
    assert step["status"] == "failed" and "HTTP status 404" in step["error"] and "SECRETPATH" not in step["error"]
    assert events(records, "step.started")[-1]["step"] == "tell"  # `after` never ran


def test_a_channel_the_config_does_not_name_is_refused_before_anything_runs(ws: Workspace) -> None:
    book = NOTIFY.replace("channel: oncall", "channel: oncal") + "updates: {channel: stauts}\n"
    channels(ws, "http://127.0.0.1:9/hooks/x")
    ws.write("live.yaml", runbook_text(book))
    done = ws.run("run", "live.yaml", "--channels", "channels.yaml")
    assert done.code == 2
    assert "channel 'oncal' is not in channels.yaml (did you mean 'oncall'?)" in done.err
    assert "channel 'stauts' is not in channels.yaml (did you mean 'status'?)" in done.err
    assert "live.yaml:9:23: channel 'oncal'" in done.err  # where the step names it
    assert ws.run_dirs() == []


def test_an_included_runbooks_unknown_channel_fails_its_step(ws: Workspace) -> None:
    ws.write("child.yaml", runbook_text("remediation:\n  - {id: tell, notify: {channel: pager, message: hi}}\n",
                                        id="child"))
    ws.write("live.yaml", runbook_text("remediation:\n  - {id: sub, include: {runbook: child.yaml}}\n"))
    channels(ws, "http://127.0.0.1:9/hooks/x")
    done = ws.run("run", "live.yaml", "--channels", "channels.yaml")
    assert done.code == 1
    step = finished_step(complete_journal(ws.only_run()), "sub/tell")
    assert step["status"] == "failed" and "channel 'pager' is not in channels.yaml" in step["error"]


def test_without_any_channels_config_messages_go_to_the_console_and_it_says_so_once(ws: Workspace) -> None:
    ws.write("live.yaml", runbook_text(NOTIFY + "updates: {channel: status}\n"))
    done = ws.run("run", "live.yaml")
    assert done.code == 0, done.text
    assert "→ notify [oncall] db-1: compressing logs" in done.out and "(console only: no channels config)" in done.out
    assert done.out.count("messages are shown here only: no channels config") == 1
    sent = events(complete_journal(ws.only_run()), "notify.sent")
    assert all(s["ok"] and s["note"] == "console only: no channels config" for s in sent)


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
