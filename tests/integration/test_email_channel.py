"""The email channel against a real SMTP server on 127.0.0.1 (smtp_server.py): STARTTLS with a
test CA, AUTH PLAIN with a password read from a secret file, and the server's faults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from livekit import Workspace, assert_clean_failure_output, complete_journal, events, iter_files, runbook_text
from smtp_server import Script, SmtpServer

pytestmark = pytest.mark.integration

PASSWORD = Script().password
BOOK = """\
updates: {channel: mail}
remediation:
  - id: tell
    notify: {channel: mail, title: "db-1 disk full", message: "compressing logs on db-1"}
"""


def channels(ws: Workspace, server: SmtpServer, *, trust: bool = True, to: str = "[sre@example.com, ic@example.com]",
             password: str = PASSWORD) -> None:
    (ws.root / "secrets").mkdir(exist_ok=True)
    (ws.root / "secrets" / "smtp").write_text(password + "\n")
    ca = f", ca_file: {server.ca_file}" if trust else ""
    ws.write("channels.yaml", f"""\
kind: channels
run_url: "https://runbooks.example.com/runs/{{run_id}}"
channels:
  mail: {{type: email, host: 127.0.0.1, port: {server.port}, from: runbook@example.com, to: {to},
         username: runbook, password: {{file: secrets/smtp}}, retries: 3{ca}}}
""")


def run(ws: Workspace, book: str = BOOK) -> Any:
    ws.write("live.yaml", runbook_text(book))
    return ws.run("run", "live.yaml", "--channels", "channels.yaml")


def only_sent(ws: Workspace) -> dict[str, Any]:
    [sent] = events(complete_journal(ws.only_run()), "notify.sent")
    return sent


def assert_password_never_written(ws: Workspace, done: Any) -> None:
    assert PASSWORD not in done.text
    assert not [p for p in iter_files(ws.runs) if PASSWORD.encode() in p.read_bytes()]


def test_mail_goes_over_starttls_with_a_login_from_a_secret_file(ws: Workspace, tmp_path: Path) -> None:
    with SmtpServer(tmp_path) as server:
        channels(ws, server)
        done = run(ws)
    assert done.code == 0, done.text
    run_id = ws.only_run().name
    assert [m.message["Subject"] for m in server.received][1] == "db-1 disk full"
    declared, told, final = server.received
    assert all(m.tls and m.user == "runbook" for m in server.received)
    assert server.logins == [("runbook", PASSWORD, True)] * 3  # only ever over TLS
    assert told.sender == "runbook@example.com" and told.recipients == ["sre@example.com", "ic@example.com"]
    assert told.message["To"] == "sre@example.com, ic@example.com" and told.message["X-Runbook-Run"] == run_id
    body = told.message.get_content().replace("\r\n", "\n")  # as it came over the wire
    assert body == f"compressing logs on db-1\n\nRun {run_id}: https://runbooks.example.com/runs/{run_id}\n"
    assert declared.message["Subject"].startswith("Live test live-test: priority not set, declared")
    assert final.message["Subject"].startswith("Resolved: Live test live-test: resolved after")
    assert all(s["ok"] for s in events(complete_journal(ws.only_run()), "notify.sent"))
    assert_password_never_written(ws, done)


def test_a_busy_server_is_tried_again(ws: Workspace, tmp_path: Path) -> None:
    with SmtpServer(tmp_path, Script(greet=["421 4.3.2 service busy, try later"])) as server:
        channels(ws, server)
        done = run(ws, BOOK.replace("updates: {channel: mail}\n", ""))
    assert done.code == 0, done.text
    sent = only_sent(ws)
    assert sent["ok"] and sent["attempts"] == 2 and len(server.received) == 1


@pytest.mark.parametrize("fault, error", [
    ("wrong password", "login refused: 535 5.7.8 Authentication credentials invalid"),
    ("no starttls", "STARTTLS extension not supported by server: nothing was sent"),
    ("untrusted certificate", "TLS with 127.0.0.1:{port}: CERTIFICATE_VERIFY_FAILED"),
    ("recipient refused", "recipients refused: oncall@nowhere.example (550)"),
])
def test_a_refusal_is_final_and_says_why(ws: Workspace, tmp_path: Path, fault: str, error: str) -> None:
    script = Script(starttls=fault != "no starttls")
    with SmtpServer(tmp_path, script) as server:
        channels(ws, server, trust=fault != "untrusted certificate",
                 password="not-the-password" if fault == "wrong password" else PASSWORD,
                 to="oncall@nowhere.example" if fault == "recipient refused" else "[sre@example.com]")
        book = BOOK.replace("updates: {channel: mail}\n", "").replace('message: "', 'required: true, message: "')
        done = run(ws, book)
    assert done.code == 1, done.text
    assert_clean_failure_output(done)
    sent = only_sent(ws)
    assert not sent["ok"] and sent["attempts"] == 1 and error.format(port=server.port) in sent["error"]
    assert server.received == []
    if fault in ("no starttls", "untrusted certificate"):
        assert server.logins == []  # the password never left over a connection it could not trust
    assert "not-the-password" not in done.text
