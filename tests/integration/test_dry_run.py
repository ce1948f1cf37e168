"""`runbook run --dry-run`: the shipped runbooks render whole, and nothing is executed,
connected to, locked or journaled."""

from __future__ import annotations

from pathlib import Path

import pytest
from livekit import ROOT, Server, Workspace, assert_clean_failure_output, runbook_text

from engine.language.validation import load_runbook

pytestmark = pytest.mark.integration

SHIPPED = sorted((ROOT / "runbooks").glob("*.yaml"))

# Values for the inputs the shipped runbooks require (read from each model below).
KNOWN = {
    "host": "db-1", "service": "checkout-api", "replica": "db-2", "primary": "db-1", "queue": "orders",
    "worker": "orders-worker", "domain": "www.example.com", "web_host": "web-1", "job": "node",
    "instance": "10.0.3.7:9100", "namespace": "shop", "app": "checkout-api",
    "health_url": "http://127.0.0.1:9/health", "lock": "/var/lock/export.lock",
}
SECRETS = {"prom_token": "prom-secret-123", "rabbit_password": "rabbit-secret-456"}


def required_inputs(path: Path) -> tuple[list[str], dict[str, str]]:
    """`-i` flags for the required plain inputs, environment for the required secrets."""
    book = load_runbook(path)
    flags, env = [], {}
    for name, spec in book.inputs.items():
        if not spec.required:
            continue
        if spec.secret:
            assert spec.env, f"{path.name}: secret input {name} has no env"
            env[spec.env] = SECRETS[name]
        else:
            assert name in KNOWN, f"{path.name} requires input {name}: add a value to KNOWN"
            flags += ["-i", f"{name}={KNOWN[name]}"]
    return flags, env


def test_every_shipped_runbook_is_tested() -> None:
    assert len(SHIPPED) >= 6


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_a_shipped_runbook_renders_its_plan_and_executes_nothing(tmp_path: Path, path: Path) -> None:
    ws = Workspace(tmp_path)
    flags, env = required_inputs(path)
    done = ws.run("run", "--dry-run", path, *flags, env=env)
    assert done.code == 0, done.text
    assert_clean_failure_output(done)
    book = load_runbook(path)
    assert done.out.startswith(f"Plan: {book.title} (runbook {book.id}) - dry-run, nothing is executed\n")
    for phase in book.phases:
        assert f"\n{phase.name}\n" in done.out
        for step in phase.steps:
            assert f". {step.id}" in done.out
    assert "cannot render" not in done.out
    for secret in SECRETS.values():
        assert secret not in done.text
    assert not (tmp_path / ".runbook").exists()  # no run directory, no journal, no lock


def test_a_dry_run_runs_no_command_and_sends_no_request(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    with Server({"/": lambda request: (200, "ok")}) as server:
        channels = ws.write("channels.yaml",
                            f"kind: channels\nchannels:\n  oncall: {{type: webhook, url: '{server.url}/hook'}}\n")
        ws.write("live.yaml", runbook_text(f"""\
            inputs: {{host: {{type: string}}}}
            detection:
              - {{id: touch, run: "touch executed-{{{{ inputs.host }}}}.txt"}}
            remediation:
              - {{id: call, http: {{url: "{server.url}/api", method: POST}}, confirm: "Call the API?"}}
              - {{id: tell, notify: {{channel: oncall, message: "{{{{ inputs.host }}}} done"}}}}
              - {{id: pause, wait: 10m}}
            """))
        done = ws.run("run", "--dry-run", "live.yaml", "-i", "host=db-1", "--channels", channels, timeout=30)
        assert server.requests == []
    assert done.code == 0, done.text
    assert "$ touch executed-db-1.txt" in done.out and "wait 10m" in done.out
    assert "asks for approval: Call the API?" in done.out
    assert list(tmp_path.glob("executed-*")) == []
    assert not (tmp_path / ".runbook").exists()


def test_a_dry_run_still_checks_inputs(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    flags, env = required_inputs(ROOT / "runbooks" / "disk-full.yaml")
    done = ws.run("run", "--dry-run", ROOT / "runbooks" / "disk-full.yaml", *flags, "-i", "threshold=150", env=env)
    assert done.code == 2 and "input 'threshold' (from -i) must be at most" in done.err
