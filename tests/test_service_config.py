"""The serve config file: loaded into frozen records with paths made absolute, and every
problem reported at once with its file, line and column (never a traceback)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.commands import cli
from engine.language.validation import ValidationFailed
from engine.service.config import ServeConfig, load_config

GOOD = """\
kind: serve
version: 1
database: postgresql://runbook@db:5432/runbook
listen: 0.0.0.0:9000
runbooks: [runbooks]
workers: {slots: 2, labels: {region: eu}, lease: 45s, drain_timeout: 1m}
sources:
  am: {type: alertmanager, auth: {bearer: {env: AM_TOKEN}}}
  pd: {type: pagerduty, auth: {hmac: {env: PD_KEY}}}
routes:
  - name: disk
    match: {alertname: DiskUsageHigh, labels_match: {instance: "db-.*"}}
    runbook: disk-full
    pool: {region: eu}
    once_within: 30m
    unattended: [detection, triage]
    approvals: {free_space: oncall}
people:
  - {name: alice, roles: [oncall], slack: U123}
"""


def test_a_config_becomes_records(tmp_path: Path) -> None:
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "serve.yaml").write_text(GOOD, encoding="utf-8")
    config = load_config(tmp_path / "serve.yaml")
    assert config.runbooks == (tmp_path / "runbooks",)
    assert config.host_port == ("0.0.0.0", 9000)
    assert (config.workers.slots, config.workers.lease, config.workers.drain_timeout) == (2, 45.0, 60.0)
    assert config.sources["am"].auth == "bearer" and config.sources["am"].secret_env == "AM_TOKEN"
    [route] = config.routes
    assert (route.alertname, route.once_within, route.approvals) == ("DiskUsageHigh", 1800.0, {"free_space": "oncall"})
    assert config.people[0].roles == ("oncall",)
    assert load_config(None) == ServeConfig()


def test_every_problem_is_reported_with_its_position(tmp_path: Path) -> None:
    bad = GOOD.replace("listen: 0.0.0.0:9000", "listne: 0.0.0.0:9000").replace("slots: 2", "slots: 0")
    bad = bad.replace("type: pagerduty", "type: opsgenie")
    (tmp_path / "serve.yaml").write_text(bad, encoding="utf-8")
    with pytest.raises(ValidationFailed) as caught:
        load_config(tmp_path / "serve.yaml")
    message = str(caught.value)
    assert "(3 error(s))" in message
    for where in ("serve.yaml:4:1:", "serve.yaml:6:18:", "serve.yaml:9:14:"):
        assert where in message, message


def test_what_the_schema_cannot_say_is_positioned_too(tmp_path: Path) -> None:
    bad = GOOD.replace('"db-.*"', '"db-(.*"') + "  - {name: alice}\n"
    (tmp_path / "serve.yaml").write_text(bad, encoding="utf-8")  # and no runbooks/ directory
    with pytest.raises(ValidationFailed) as caught:
        load_config(tmp_path / "serve.yaml")
    message = str(caught.value)
    assert "serve.yaml:5:12: no such runbook directory or file: runbooks" in message
    assert "serve.yaml:12:64: not a regular expression" in message
    assert "serve.yaml:20:12: person 'alice' is listed twice" in message


def test_runbook_serve_refuses_a_bad_config_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "serve.yaml").write_text("kind: serve\nversion: 1\nworkers: {slots: many}\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["serve", "-c", str(tmp_path / "serve.yaml")])
    assert result.exit_code == 2
    assert "serve.yaml:3:18: expected an integer" in result.output and "Traceback" not in result.output


def test_runbook_schema_prints_the_serve_schema() -> None:
    result = CliRunner().invoke(cli, ["schema", "serve"])
    assert result.exit_code == 0 and '"const": "serve"' in result.output


def test_runbook_worker_refuses_a_bad_label_and_a_bad_config(tmp_path: Path) -> None:
    (tmp_path / "serve.yaml").write_text("kind: serve\nversion: 1\nworkers: {lease: soon}\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["worker", "-c", str(tmp_path / "serve.yaml")])
    assert result.exit_code == 2 and "serve.yaml:3:18:" in result.output, result.output
    result = CliRunner().invoke(cli, ["worker", "--label", "region", "--database", f"sqlite:///{tmp_path}/s.db"])
    assert result.exit_code == 2 and "--label 'region': expected KEY=VALUE" in result.output


def test_without_the_server_extra_the_commands_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # as if not installed: importing it fails
    for command in (["serve"], ["worker"], ["runs", "--database", "sqlite:///x.db"]):
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2, (command, result.output)
        assert "needs the server extra: pip install 'runbook-engine[server]'" in result.output
        assert "Traceback" not in result.output


def test_runbook_validate_checks_a_serve_config_beside_the_runbooks(tmp_path: Path) -> None:
    """A repository keeps serve.yaml beside its runbooks and pre-commit validates every file:
    `runbook validate` checked it as an 'unknown kind'. Now it gets the schema and the
    config's own checks, positioned, and the cache notices a runbook directory appearing."""
    config = tmp_path / "serve.yaml"
    config.write_text(GOOD + "bogus: 1\n")
    home = {"RUNBOOK_HOME": str(tmp_path / "home")}
    result = CliRunner().invoke(cli, ["validate", str(config)], env=home)
    bogus = f"{config}:{GOOD.count(chr(10)) + 1}:1: error: unknown key 'bogus'"
    assert result.exit_code == 1 and bogus in result.output, result.output
    config.write_text(GOOD)
    for expected in (1, 0):  # the second time the directory exists: the cached error must not stay
        result = CliRunner().invoke(cli, ["validate", str(config)], env=home)
        assert result.exit_code == expected, result.output
        assert ("no such runbook directory or file: runbooks" in result.output) is (expected == 1)
        (tmp_path / "runbooks").mkdir(exist_ok=True)


def test_the_console_section_sets_sessions_and_the_proxys_header(tmp_path: Path) -> None:
    (tmp_path / "runbooks").mkdir()
    extra = "console:\n  session: 8h\n  trusted_header: {name: X-Forwarded-User, proxies: [10.0.0.5, 10.1.0.0/16]}\n"
    (tmp_path / "serve.yaml").write_text(GOOD + extra, encoding="utf-8")
    console = load_config(tmp_path / "serve.yaml").console
    assert (console.session, console.header, console.proxies) == (8 * 3600, "X-Forwarded-User",
                                                                  ("10.0.0.5", "10.1.0.0/16"))
    assert load_config(None).console.header is None
    assert (console.audit_roles, console.control_roles) == (("auditor",), ("incident_commander",))


def test_the_console_section_names_the_roles_that_audit_and_control(tmp_path: Path) -> None:
    (tmp_path / "runbooks").mkdir()
    extra = "console:\n  roles: {audit: [security, sre-lead], control: [sre-lead]}\n"
    (tmp_path / "serve.yaml").write_text(GOOD + extra, encoding="utf-8")
    console = load_config(tmp_path / "serve.yaml").console
    assert (console.audit_roles, console.control_roles) == (("security", "sre-lead"), ("sre-lead",))
    (tmp_path / "serve.yaml").write_text(GOOD + "console:\n  roles: {abort: [x]}\n", encoding="utf-8")
    with pytest.raises(ValidationFailed, match="abort"):
        load_config(tmp_path / "serve.yaml")


def test_a_proxy_that_is_no_address_is_positioned(tmp_path: Path) -> None:
    (tmp_path / "runbooks").mkdir()
    extra = "console:\n  trusted_header:\n    name: X-Forwarded-User\n    proxies: [10.0.0.5, oauth2-proxy]\n"
    (tmp_path / "serve.yaml").write_text(GOOD + extra, encoding="utf-8")
    with pytest.raises(ValidationFailed) as caught:
        load_config(tmp_path / "serve.yaml")
    assert "serve.yaml:23:25: not an IP address or network: 'oauth2-proxy'" in str(caught.value)


def test_game_days_scenarios_and_trainers_are_read_and_checked(tmp_path: Path) -> None:
    """Drill rooms: the scenario directories a trainer picks from (each must exist, positioned
    like the runbooks'), and the roles that may run game days (default: trainer)."""
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "scenarios").mkdir()
    config = tmp_path / "serve.yaml"
    config.write_text("kind: serve\nversion: 1\nrunbooks: [runbooks]\nscenarios: [scenarios]\n"
                      "trainers: [facilitator]\n", encoding="utf-8")
    loaded = load_config(config)
    assert loaded.scenarios == (tmp_path.resolve() / "scenarios",) and loaded.trainers == ("facilitator",)
    config.write_text("kind: serve\nversion: 1\nscenarios: [drills]\n", encoding="utf-8")
    with pytest.raises(ValidationFailed) as caught:
        load_config(config)
    assert "serve.yaml:3:13: no such scenario directory or file: drills" in str(caught.value)
    config.write_text("kind: serve\nversion: 1\n", encoding="utf-8")
    assert load_config(config).trainers == ("trainer",)


POLICY_RUNBOOK = """\
kind: runbook
version: 1
id: disk-full
title: Disk full
defaults: {role: oncall}
detection:
  - id: check
    run: "true"
triage:
  - id: classify
    manual: Logs or data?
    ask:
      cause: {prompt: Cause, choices: [logs, data]}
      size: {prompt: Size, default: 1}
  - id: look
    run: "true"
    confirm: {message: Look?}
remediation:
  - id: free_space
    run: "true"
"""


def test_a_route_whose_unattended_phase_waits_for_a_person_is_refused_where_it_says_so(tmp_path: Path) -> None:
    """Nobody is there to answer an unattended phase: `runbook validate` and `runbook serve`
    refuse the route at the config's position, naming each step and where it is."""
    (tmp_path / "runbooks").mkdir()
    runbook = tmp_path / "runbooks" / "disk-full.yaml"
    runbook.write_text(POLICY_RUNBOOK, encoding="utf-8")
    config = tmp_path / "serve.yaml"
    config.write_text(GOOD.replace("{free_space: oncall}", "{free_space: oncall, gone: dba}"), encoding="utf-8")
    home = {"RUNBOOK_HOME": str(tmp_path / "home")}
    result = CliRunner().invoke(cli, ["validate", str(config)], env=home)
    assert result.exit_code == 1, result.output
    assert (f"{config}:16:29: error: disk: phase triage runs unattended, but step classify ({runbook}:10:5) "
            "asks cause without a default: nobody would answer") in result.output
    assert f"step look ({runbook}:15:5) asks for an approval (confirm:)" in result.output
    assert f"{config}:17:37: error: disk: runbook disk-full has no step 'gone'" in result.output
    served = CliRunner().invoke(cli, ["serve", "-c", str(config)], env=home)
    assert served.exit_code == 2 and "serve.yaml:16:29: disk: phase triage runs unattended" in served.output
    assert "Traceback" not in served.output
    runbook.write_text(POLICY_RUNBOOK.replace("choices: [logs, data]}", "choices: [logs, data], default: logs}")
                       .replace("    confirm: {message: Look?}\n", ""), encoding="utf-8")
    config.write_text(GOOD, encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", str(config)], env=home)  # defaults answer: nobody waits
    assert result.exit_code == 0, result.output
    assert load_config(config).routes[0].unattended == ("detection", "triage")


def test_unattended_names_phases(tmp_path: Path) -> None:
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "serve.yaml").write_text(GOOD.replace("[detection, triage]", "[detection, triag]"), encoding="utf-8")
    with pytest.raises(ValidationFailed, match=r"serve\.yaml:16:29: .triag. is not one of: detection, triage"):
        load_config(tmp_path / "serve.yaml")
