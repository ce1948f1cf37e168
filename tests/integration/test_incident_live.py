"""Incident command in live runs, in real processes: a real webhook server on 127.0.0.1
receives stakeholder updates on cadence and escalations; failing channels never stop a
run; approvals restricted to a role; hand-off ends the run with exit code 6; hostile
values in update templates arrive as plain text."""

from __future__ import annotations

import itertools
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

RUNBOOK_BIN = str(Path(sys.executable).parent / "runbook")


@dataclass
class Webhook:
    """A real HTTP server on 127.0.0.1 that records every POST (path, JSON body, time)."""

    server: ThreadingHTTPServer
    status: int = 200
    received: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def texts(self, path: str) -> list[str]:
        """Messages as people read them in Slack: `&lt;` shown as `<`, the run's link line left out."""
        return [_shown(r["body"]["text"]) for r in self.received if r["path"] == path]


def _shown(text: str) -> str:
    message, _, link = text.rpartition("\n")
    assert link.startswith("run 20") or link.startswith("<http"), text  # every message names its run
    return message.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook(ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            hook.received.append({"path": self.path, "body": body, "at": time.monotonic(),
                                  "type": self.headers.get("Content-Type")})
            self.send_response(hook.status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    hook.server.RequestHandlerClass = Handler
    thread = threading.Thread(target=hook.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        hook.server.shutdown()
        hook.server.server_close()


def channels(folder: Path, **urls: str) -> Path:
    path = folder / "channels.yaml"
    lines = ["kind: channels", "channels:"]
    lines += [f"  {name}: {{type: webhook, url: '{url}', timeout: 2}}" for name, url in urls.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(folder: Path, runbook: str, *args: str) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """`runbook run` as a real process; its result and its journal records."""
    (folder / "rb.yaml").write_text(runbook, encoding="utf-8")
    done = subprocess.run([RUNBOOK_BIN, "run", "rb.yaml", "--non-interactive", "--runs-dir", "runs", "--no-color",
                           *args], cwd=folder, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    runs = list((folder / "runs").iterdir()) if (folder / "runs").is_dir() else []
    records = []
    if runs:
        text = (runs[0] / "journal.jsonl").read_text(encoding="utf-8")
        records = [json.loads(line) for line in text.splitlines()]
    return done, records


def sent(records: list[dict[str, Any]], **where: Any) -> list[dict[str, Any]]:
    return [r for r in records if r["event"] == "notify.sent" and all(r.get(k) == v for k, v in where.items())]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once it is closed


HEAD = "kind: runbook\nversion: 1\nid: live-ic\ntitle: Live incident\ndefaults: {timeout: 30s}\n"

UPDATES = HEAD + """\
severity: {impact: high, urgency: medium}
updates:
  channel: status
  every: 1s
  message: "{{ runbook.title }}: {{ incident.priority }}, {{ update.status }}"
detection:
  - {id: look, run: "sleep 0.3"}
remediation:
  - {id: fix, run: "sleep 2.6"}
recovery:
  - {id: verify, run: "true", expect: exit_code == 0}
"""
QUICK = UPDATES.replace("every: 1s", "every: 10m").replace("sleep 2.6", "true")


# -- updates -----------------------------------------------------------------------------------


def test_updates_reach_a_real_webhook_at_declaration_on_cadence_on_phase_changes_and_at_the_end(
        tmp_path: Path, webhook: Webhook) -> None:
    done, records = run(tmp_path, UPDATES, "--channels", str(channels(tmp_path, status=f"{webhook.url}/status")))
    assert done.returncode == 0, done.stdout + done.stderr
    texts = webhook.texts("/status")
    assert texts[0] == "Live incident: P2, declared"
    assert texts[1] == "Live incident: P2, now in remediation"
    assert texts[-2:] == ["Live incident: P2, now in recovery", "Live incident: P2, resolved"]
    periodic = [r for r in webhook.received if _shown(r["body"]["text"]).endswith("still open")]
    assert 2 <= len(periodic) <= 4  # a run of about 3 s with an update every second
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(periodic)]
    assert all(0.5 < g < 2.0 for g in gaps), gaps
    body = webhook.received[0]["body"]
    assert (body["username"], body["runbook"], body["channel_name"]) == ("runbook", "live-ic", "status")
    assert webhook.received[0]["type"] == "application/json"
    journaled = sent(records, purpose="update")
    assert [r["message"] for r in journaled] == texts and all(r["ok"] for r in journaled)


def test_the_console_header_shows_the_priority(tmp_path: Path, webhook: Webhook) -> None:
    done, _ = run(tmp_path, QUICK, "--channels", str(channels(tmp_path, status=f"{webhook.url}/status")))
    header = done.stdout.split("── detection")[0]
    assert "   priority: P2\n" in header


@pytest.mark.parametrize("failure", ["http 500", "closed port"])
def test_a_failing_update_channel_never_stops_the_run_and_is_journaled(
        tmp_path: Path, webhook: Webhook, failure: str) -> None:
    if failure == "http 500":
        webhook.status = 500
        url = f"{webhook.url}/status"
    else:
        url = f"http://127.0.0.1:{closed_port()}/status"
    done, records = run(tmp_path, QUICK, "--channels", str(channels(tmp_path, status=url)))
    assert done.returncode == 0, done.stdout + done.stderr
    updates = sent(records, purpose="update")
    assert len(updates) == 4 and not any(u["ok"] for u in updates)
    expected = "HTTP status 500" if failure == "http 500" else "refused"
    assert all(expected in (u["error"] or "") for u in updates), updates
    assert "not delivered" in done.stdout
    assert records[-1]["outcome"] == "resolved"


# -- escalation --------------------------------------------------------------------------------

ASSESS = HEAD + """\
roles: [incident_commander, responder]
severity: {matrix: default}
escalation:
  - {when: "incident.priority == 'P1'", notify: managers}
  - {on_failure: true, notify: owners, message: "{{ runbook.title }}: {{ escalation.reason }}"}
triage:
  - id: assess
    manual: How bad?
    ask:
      impact: {choices: [high, medium, low], sets: incident.impact}
      urgency: {choices: [high, medium, low], sets: incident.urgency}
  - {id: probe, run: "exit 4", continue_on_error: true}
  - {id: reassess, set: {incident.urgency: high}}
"""


def test_priority_from_answers_escalates_once_and_a_failure_notifies_the_owners(
        tmp_path: Path, webhook: Webhook) -> None:
    done, records = run(tmp_path, ASSESS, "--answer", "assess.impact=high", "--answer", "assess.urgency=high",
                        "--as", "sam:responder", "--channels",
                        str(channels(tmp_path, managers=f"{webhook.url}/managers", owners=f"{webhook.url}/owners")))
    assert done.returncode == 0, done.stdout + done.stderr
    assert webhook.texts("/managers") == [
        "Escalation for Live incident (P1): the priority is P1"]
    assert webhook.texts("/owners") == ["Live incident: step probe failed: exit code 4"]
    changed = [r for r in records if r["event"] == "priority.changed"]
    assert [(c["priority"], c["by"], c["role"], c["step"]) for c in changed] == [
        ("P1", "sam", "responder", "assess"), ("P1", None, None, "reassess")]
    assert "priority P1: impact high, urgency high by sam" in done.stdout


def test_a_handoff_ends_a_live_run_as_escalated_with_exit_code_6(tmp_path: Path, webhook: Webhook) -> None:
    book = HEAD + """\
escalation:
  - {after: 1s, notify: oncall, handoff: true}
detection:
  - {id: slow, run: "sleep 1.5"}
  - {id: never, run: "touch never-ran"}
"""
    done, records = run(tmp_path, book, "--channels", str(channels(tmp_path, oncall=f"{webhook.url}/oncall")))
    assert done.returncode == 6, done.stdout + done.stderr
    assert webhook.texts("/oncall") == ["Escalation for Live incident (priority not set): the run has been open for 1s"]
    assert not (tmp_path / "never-ran").exists()
    assert records[-1]["outcome"] == "escalated"
    assert records[-1]["reason"] == "handed off to oncall: the run has been open for 1s"
    assert "outcome: escalated" in done.stdout


def test_a_live_handoff_stops_a_long_wait_at_once_instead_of_letting_it_run_out(
        tmp_path: Path, webhook: Webhook) -> None:
    book = HEAD + """\
escalation:
  - {after: 1s, notify: oncall, handoff: true}
recovery:
  - {id: settle, wait: 60s}
  - {id: verify, run: "sleep 0.1", until: "false", every: 20s, timeout: 2m}
"""
    started = time.monotonic()
    done, records = run(tmp_path, book, "--channels", str(channels(tmp_path, oncall=f"{webhook.url}/oncall")))
    assert done.returncode == 6, done.stdout + done.stderr
    assert time.monotonic() - started < 30  # not the 60 s wait, nor the two minutes of polling
    settle = next(r for r in records if r["event"] == "step.finished" and r["step"] == "settle")
    assert settle["status"] == "aborted" and settle["error"].startswith("stopped waiting: handed off to oncall")
    assert "verify" not in {r.get("step") for r in records if r["event"] == "step.started"}


# -- approvals restricted to a role ------------------------------------------------------------

GATED = HEAD + """\
roles: [incident_commander, responder]
remediation:
  - id: restart
    run: "touch restarted"
    confirm: {message: Restart the service?, role: incident_commander}
"""


def test_a_live_approval_by_the_wrong_role_is_refused(tmp_path: Path) -> None:
    done, records = run(tmp_path, GATED, "--yes", "--as", "sam:responder")
    assert done.returncode == 7  # refused
    assert not (tmp_path / "restarted").exists()
    approval = next(r for r in records if r["event"] == "approval")
    assert (approval["approved"], approval["required_role"]) == (False, "incident_commander")
    assert "approval requires the role incident_commander: pass --as NAME:incident_commander" in done.stdout


def test_a_live_approval_by_the_required_role_runs_the_step(tmp_path: Path) -> None:
    done, records = run(tmp_path, GATED, "--yes", "--as", "sam:responder", "--as", "dana:incident_commander")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "restarted").exists()
    approval = next(r for r in records if r["event"] == "approval")
    assert (approval["approved"], approval["by"], approval["role"]) == (True, "dana", "incident_commander")


def test_a_role_the_runbook_does_not_declare_is_a_usage_error(tmp_path: Path) -> None:
    done, _ = run(tmp_path, GATED, "--yes", "--as", "sam:janitor")
    assert done.returncode == 2
    assert "the runbook declares no role 'janitor'" in done.stderr


# -- hostile values ----------------------------------------------------------------------------


def test_hostile_values_in_update_templates_are_delivered_as_plain_text_with_secrets_masked(
        tmp_path: Path, webhook: Webhook) -> None:
    hostile = f"$(touch {tmp_path}/pwned) `touch {tmp_path}/pwned2`; rm -rf / && echo 'q\" <b>"
    book = HEAD + """\
inputs:
  note: {type: string}
  token: {type: string, secret: true}
updates:
  channel: status
  message: "note: {{ inputs.note }}"
detection:
  - {id: use, run: "test -n {{ inputs.token }}"}
"""
    done, records = run(tmp_path, book, "-i", f"note={hostile} token=tok-SECRET-42", "-i", "token=tok-SECRET-42",
                        "--channels", str(channels(tmp_path, status=f"{webhook.url}/status")))
    assert done.returncode == 0, done.stdout + done.stderr
    texts = webhook.texts("/status")
    assert texts[0] == f"note: {hostile} token=***"
    assert all("tok-SECRET-42" not in t for t in texts)
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()
    journal = json.dumps(records)
    assert "tok-SECRET-42" not in journal and "tok-SECRET-42" not in done.stdout
