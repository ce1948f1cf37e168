"""PagerDuty, Opsgenie and Slack (bot token) channels against local servers on 127.0.0.1.

The real services cannot be reached from here: each server below implements the
documented request contract (path, headers, the payload fields and their limits, the
answers, 429 and 5xx) and refuses a request that breaks it, so a wrong shape fails the
test rather than passing quietly. PagerDuty: Events API v2 (`POST /v2/enqueue`, 202).
Opsgenie: Alert API (`POST /v2/alerts`, `/v2/alerts/{alias}/{notes,acknowledge,close}
?identifierType=alias`, `Authorization: GenieKey`, 202). Slack: `chat.postMessage`
with `Authorization: Bearer` (HTTP 200 with `ok: false` when it refuses).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from livekit import (
    Request,
    Server,
    Workspace,
    assert_clean_failure_output,
    complete_journal,
    events,
    finished_step,
    iter_files,
    runbook_text,
)

pytestmark = pytest.mark.integration

PD_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"
GENIE_KEY = "eb243592-faa2-4ba2-a551q-1afdf565c889"
BOT_TOKEN = "xoxb-000000000000-000000000000-SLACKTOKEN"
SECRETS = (PD_KEY, GENIE_KEY, BOT_TOKEN)


def pagerduty_api(statuses: Iterator[int] | None = None) -> Server:
    """PagerDuty's Events API v2: validates each event as the service does."""
    def enqueue(request: Request) -> tuple[int, str] | tuple[int, str, dict[str, str]]:
        status = next(statuses, 202) if statuses is not None else 202
        if status == 429:
            throttled = {"status": "throttle event", "message": "Requests for this service are arriving too quickly."}
            return 429, json.dumps(throttled), {"Retry-After": "1"}
        if status >= 500:
            return status, "upstream unavailable"
        errors = _pd_errors(request)
        if errors:
            return 400, json.dumps({"status": "invalid event", "message": "Event object is invalid", "errors": errors})
        event = json.loads(request.body)
        return 202, json.dumps({"status": "success", "message": "Event processed", "dedup_key": event["dedup_key"]})

    return Server({"/v2/enqueue": enqueue})


def _pd_errors(request: Request) -> list[str]:
    if request.method != "POST" or not request.headers.get("Content-Type", "").startswith("application/json"):
        return ["Content-Type must be application/json"]
    event = json.loads(request.body)
    errors = []
    if event.get("routing_key") != PD_KEY:
        errors.append("'routing_key' is invalid")
    if event.get("event_action") not in ("trigger", "acknowledge", "resolve"):
        errors.append("'event_action' is invalid")
    if not 0 < len(event.get("dedup_key") or "") <= 255:
        errors.append("'dedup_key' is required for acknowledge and resolve, at most 255 characters")
    if event.get("event_action") == "trigger":
        payload = event.get("payload") or {}
        if not 0 < len(payload.get("summary") or "") <= 1024 or not payload.get("source"):
            errors.append("'payload.summary' (at most 1024 characters) and 'payload.source' are required")
        if payload.get("severity") not in ("critical", "error", "warning", "info"):
            errors.append("'payload.severity' is invalid")
    return errors


def opsgenie_api(statuses: Iterator[int] | None = None) -> Server:
    """Opsgenie's Alert API: create, and act on an alert named by its alias."""
    def alerts(request: Request) -> tuple[int, str] | tuple[int, str, dict[str, str]]:
        status = next(statuses, 202) if statuses is not None else 202
        if status == 429:
            return 429, json.dumps({"message": "You are making too many requests!", "took": 0.0}), {"Retry-After": "1"}
        if status >= 500:
            return status, json.dumps({"message": "Internal Server Error", "took": 0.0})
        if request.headers.get("Authorization") != f"GenieKey {GENIE_KEY}":
            return 401, json.dumps({"message": "Could not authenticate", "took": 0.0, "requestId": "r0"})
        body = json.loads(request.body)
        path, _, query = request.path.partition("?")
        parts = path.split("/")  # '', v2, alerts[, alias, action]
        if len(parts) == 3:
            ok = 0 < len(body.get("message", "")) <= 130 and 0 < len(body.get("alias", "")) <= 512 \
                and body.get("priority") in ("P1", "P2", "P3", "P4", "P5") and len(body.get("description", "")) <= 15000
        else:
            ok = len(parts) == 5 and parts[4] in ("notes", "acknowledge", "close") and query == "identifierType=alias" \
                and (parts[4] != "notes" or bool(body.get("note")))
        if not ok:
            return 422, json.dumps({"message": "Request body is not processable", "took": 0.0, "requestId": "r1"})
        return 202, json.dumps({"result": "Request will be processed", "took": 0.01, "requestId": "r2"})

    return Server({"/v2/alerts": alerts})


def slack_api(refuse: str | None = None, statuses: Iterator[int] | None = None) -> Server:
    """Slack's chat.postMessage: a reply must name a message the bot posted."""
    posted: list[str] = []

    def post_message(request: Request) -> tuple[int, str] | tuple[int, str, dict[str, str]]:
        status = next(statuses, 200) if statuses is not None else 200
        if status == 429:
            return 429, "", {"Retry-After": "1"}  # Slack's rate limit: an empty body and when to come back
        if status >= 500:
            return status, "upstream connect error"
        body = json.loads(request.body)
        error = "invalid_auth" if request.headers.get("Authorization") != f"Bearer {BOT_TOKEN}" else refuse
        if error is None and "thread_ts" in body and body["thread_ts"] not in posted:
            error = "thread_not_found"
        if error is not None:
            return 200, json.dumps({"ok": False, "error": error})
        ts = f"1700000000.{len(posted) + 1:06d}"
        posted.append(ts)
        return 200, json.dumps({"ok": True, "channel": body["channel"], "ts": ts,
                                "message": {"type": "message", "text": body["text"], "ts": ts}})

    return Server({"/api/chat.postMessage": post_message})


def channels(ws: Workspace, **specs: str) -> None:
    lines = "".join(f"  {name}: {spec}\n" for name, spec in specs.items())
    ws.write("channels.yaml", f"kind: channels\nrun_url: \"https://runbooks.example.com/runs/{{run_id}}\"\nchannels:\n{lines}")


def run(ws: Workspace, body: str, *args: str, env: dict[str, str] | None = None) -> Any:
    ws.write("live.yaml", runbook_text(body))
    return ws.run("run", "live.yaml", "--channels", "channels.yaml", *args,
                  env={"PD_KEY": PD_KEY, "GENIE_KEY": GENIE_KEY, "BOT_TOKEN": BOT_TOKEN, **(env or {})})


def assert_no_secret_written(ws: Workspace, done: Any) -> None:
    for path in iter_files(ws.runs):
        data = path.read_bytes()
        assert not [s for s in SECRETS if s.encode() in data], path
    assert not [s for s in SECRETS if s in done.text]


UPDATES = """\
updates: {channel: pager}
detection:
  - {id: look, run: "true"}
remediation:
  - id: ack
    notify: {channel: pager, action: acknowledge, message: "working on it"}
"""


def test_pagerduty_keeps_one_alert_per_run_triggered_acknowledged_and_resolved(ws: Workspace) -> None:
    with pagerduty_api() as server:
        channels(ws, pager=f"{{type: pagerduty, url: \"{server.url}/v2/enqueue\", routing_key: {{env: PD_KEY}}, "
                           "severity: error}")
        done = run(ws, UPDATES)
        sent = [json.loads(r.body) for r in server.requests]
    assert done.code == 0, done.text
    run_id = ws.only_run().name
    assert [e["event_action"] for e in sent] == ["trigger", "trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in sent} == {run_id} and {e["routing_key"] for e in sent} == {PD_KEY}
    first = sent[0]
    assert first["payload"]["summary"].startswith("Live test live-test: priority not set, declared")
    assert first["payload"]["severity"] == "error" and first["payload"]["source"] == "live-test"
    assert first["client_url"] == f"https://runbooks.example.com/runs/{run_id}"
    assert set(sent[2]) == {"routing_key", "event_action", "dedup_key"}  # acknowledge names only the alert
    records = complete_journal(ws.only_run())
    assert all(s["ok"] for s in events(records, "notify.sent"))
    assert_no_secret_written(ws, done)


@pytest.mark.parametrize("answers, delivered, attempts", [
    ([429, 202], True, 2),  # throttled: waits its Retry-After, then gets through
    ([500, 503, 502, 500], False, 4),  # down: retried, then a clear failure
])
def test_pagerduty_throttling_and_outages_are_retried(ws: Workspace, answers: list[int], delivered: bool,
                                                      attempts: int) -> None:
    book = """\
        remediation:
          - id: page
            notify: {channel: pager, message: "db-1 is down", required: true}
        """
    with pagerduty_api(iter(answers)) as server:
        channels(ws, pager=f"{{type: pagerduty, url: \"{server.url}/v2/enqueue\", routing_key: {{env: PD_KEY}}}}")
        done = run(ws, book)
        tried = len(server.requests)
    assert tried == attempts and done.code == (0 if delivered else 1), done.text
    assert_clean_failure_output(done)
    [sent] = events(complete_journal(ws.only_run()), "notify.sent")
    assert sent["ok"] is delivered and sent["attempts"] == attempts
    if not delivered:
        assert sent["error"] == "channel 'pager' (http://127.0.0.1:.../...): HTTP status 500 after 4 attempts" \
            .replace(".../...", server.url.rsplit(":", 1)[1] + "/...")
        assert finished_step(complete_journal(ws.only_run()), "page")["status"] == "failed"


def test_a_refused_event_fails_at_once_with_what_pagerduty_said(ws: Workspace) -> None:
    with pagerduty_api() as server:
        channels(ws, pager=f"{{type: pagerduty, url: \"{server.url}/v2/enqueue\", routing_key: {{env: PD_KEY}}}}")
        done = run(ws, "remediation:\n  - {id: page, notify: {channel: pager, message: x, required: true}}\n",
                   env={"PD_KEY": "wrong-key-0000"})
        tried = len(server.requests)
    assert done.code == 1 and tried == 1, done.text
    [sent] = events(complete_journal(ws.only_run()), "notify.sent")
    assert sent["error"].endswith("HTTP status 400: 'routing_key' is invalid") and "wrong-key-0000" not in done.text


def test_opsgenie_opens_the_runs_alert_adds_notes_and_closes_it(ws: Workspace) -> None:
    book = """\
        updates: {channel: genie}
        detection:
          - {id: look, run: "true"}
        remediation:
          - {id: ack, notify: {channel: genie, action: acknowledge, message: "on it"}}
        """
    with opsgenie_api() as server:
        channels(ws, genie=f"{{type: opsgenie, url: \"{server.url}\", api_key: {{env: GENIE_KEY}}, priority: P2}}")
        done = run(ws, book)
        requests = list(server.requests)
    assert done.code == 0, done.text
    alias = ws.only_run().name
    paths = [r.path for r in requests]
    assert paths == ["/v2/alerts", f"/v2/alerts/{alias}/notes?identifierType=alias",
                     f"/v2/alerts/{alias}/acknowledge?identifierType=alias",
                     f"/v2/alerts/{alias}/close?identifierType=alias"]
    created = json.loads(requests[0].body)
    assert created["alias"] == alias and created["priority"] == "P2" and len(created["message"]) <= 130
    assert created["details"]["run_url"] == f"https://runbooks.example.com/runs/{alias}"
    assert json.loads(requests[3].body)["note"].startswith("Live test live-test: resolved after")
    assert all(s["ok"] for s in events(complete_journal(ws.only_run()), "notify.sent"))
    assert_no_secret_written(ws, done)


@pytest.mark.parametrize("api", ["opsgenie", "slack"])
@pytest.mark.parametrize("answers, delivered, attempts", [([429, 202], True, 2), ([503, 500, 502, 503], False, 4)])
def test_opsgenie_and_slack_throttling_and_outages_are_retried(ws: Workspace, api: str, answers: list[int],
                                                              delivered: bool, attempts: int) -> None:
    book = "remediation:\n  - {id: tell, notify: {channel: c, message: x, required: true}}\n"
    statuses = iter(answers if api == "opsgenie" else [200 if a == 202 else a for a in answers])
    with (opsgenie_api(statuses) if api == "opsgenie" else slack_api(statuses=statuses)) as server:
        channels(ws, c=f"{{type: opsgenie, url: \"{server.url}\", api_key: {{env: GENIE_KEY}}}}" if api == "opsgenie"
                 else f"{{type: slack, url: \"{server.url}/api\", token: {{env: BOT_TOKEN}}, channel: C1}}")
        done = run(ws, book)
        tried = len(server.requests)
    assert tried == attempts and done.code == (0 if delivered else 1), done.text
    assert_clean_failure_output(done)
    [sent] = events(complete_journal(ws.only_run()), "notify.sent")
    assert sent["ok"] is delivered and sent["attempts"] == attempts
    if not delivered:
        said = ": Internal Server Error" if api == "opsgenie" else ""  # what Opsgenie's answer says comes along
        assert sent["error"].endswith(f"HTTP status 503{said} after 4 attempts")


def test_an_opsgenie_key_that_is_refused_or_cannot_be_read_is_a_clear_failure(ws: Workspace) -> None:
    book = "remediation:\n  - {id: page, notify: {channel: genie, message: x}}\n  - {id: next, run: 'true'}\n"
    with opsgenie_api() as server:
        channels(ws, genie=f"{{type: opsgenie, url: \"{server.url}\", api_key: {{command: \"printf wrong-key\"}}}}",
                 gone=f"{{type: opsgenie, url: \"{server.url}\", api_key: {{file: /run/secrets/no-such-key}}}}")
        done = run(ws, book)
        book2 = book.replace("channel: genie", "channel: gone")
        done2 = run(ws, book2)
        tried = len(server.requests)
    assert done.code == 0 and done2.code == 0 and tried == 1, done.text + done2.text
    runs = sorted(ws.runs.iterdir())
    [refused] = events(complete_journal(runs[0]), "notify.sent")
    assert refused["error"].endswith("HTTP status 401: Could not authenticate") and refused["attempts"] == 1
    [unread] = events(complete_journal(runs[1]), "notify.sent")
    assert unread["error"] == ("channel 'gone': file /run/secrets/no-such-key: cannot read it "
                               "(No such file or directory)") and unread["attempts"] == 0
    assert "wrong-key" not in done.text + done2.text


def test_slack_bot_updates_go_as_replies_under_the_runs_first_message(ws: Workspace) -> None:
    with slack_api() as server:
        channels(ws, incidents=f"{{type: slack, url: \"{server.url}/api\", token: {{env: BOT_TOKEN}}, channel: C0INC}}")
        done = run(ws, UPDATES.replace("pager", "incidents").replace("action: acknowledge, ", ""))
        posted = [json.loads(r.body) for r in server.requests]
        auth = {r.headers["Authorization"] for r in server.requests}
    assert done.code == 0, done.text
    run_id = ws.only_run().name
    assert auth == {f"Bearer {BOT_TOKEN}"} and {p["channel"] for p in posted} == {"C0INC"}
    assert "thread_ts" not in posted[0] and [p.get("thread_ts") for p in posted[1:]] == ["1700000000.000001"] * 3
    assert posted[0]["text"].endswith(f"<https://runbooks.example.com/runs/{run_id}|run {run_id}>")
    assert posted[2]["text"] == "working on it"
    assert all(s["ok"] for s in events(complete_journal(ws.only_run()), "notify.sent"))
    assert_no_secret_written(ws, done)


def test_a_message_slack_refuses_is_a_clear_failure_naming_slacks_error(ws: Workspace) -> None:
    with slack_api(refuse="channel_not_found") as server:
        channels(ws, incidents=f"{{type: slack, url: \"{server.url}/api\", token: {{env: BOT_TOKEN}}, "
                               "channel: C0NONE}")
        done = run(ws, "remediation:\n  - {id: tell, notify: {channel: incidents, message: x, required: true}}\n")
        tried = len(server.requests)
    assert done.code == 1 and tried == 1, done.text
    assert_clean_failure_output(done)
    [sent] = events(complete_journal(ws.only_run()), "notify.sent")
    assert sent["error"].endswith("Slack refused the message: channel_not_found")


def test_a_drill_records_each_page_and_mail_and_sends_none(ws: Workspace) -> None:
    book = """\
        updates: {channel: pager}
        escalation:
          - {on_failure: true, notify: mail}
        remediation:
          - {id: ack, notify: {channel: pager, action: acknowledge, message: "on it"}}
          - {id: fix, run: "systemctl restart api"}
        """
    with pagerduty_api() as server:
        channels(ws, pager=f"{{type: pagerduty, url: \"{server.url}/v2/enqueue\", routing_key: {{env: PD_KEY}}}}",
                 mail="{type: email, host: 127.0.0.1, port: 9, from: rb@example.com, to: sre@example.com, "
                      "username: rb, password: {command: \"exit 1\"}}")
        ws.write("live.yaml", runbook_text(book))
        ws.write("drill.yaml", "kind: scenario\nversion: 1\nid: d\ntitle: D\nrunbook: live.yaml\n"
                               "responses:\n  - {step: fix, exit_code: 1, stderr: failed}\n")
        done = ws.run("drill", "drill.yaml", "--scripted", "--speed", "100", "--channels", "channels.yaml")
        tried = len(server.requests)
    assert done.code == 0 and tried == 0, done.text  # fix fails in the drill; nothing reached PagerDuty
    run_id = ws.only_run().name
    notes = [(s["channel"], s["note"]) for s in events(complete_journal(ws.only_run()), "notify.sent")]
    assert notes == [("pager", f"drill: not sent: PagerDuty event: trigger for the run ({run_id})"),
                     ("pager", f"drill: not sent: PagerDuty event: acknowledge for the run ({run_id})"),
                     ("mail", "drill: not sent: email to sre@example.com via 127.0.0.1:9"),
                     ("pager", f"drill: not sent: PagerDuty event: trigger for the run ({run_id})")]
    assert "not sent: PagerDuty event: acknowledge" in done.out
