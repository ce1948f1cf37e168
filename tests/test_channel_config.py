"""The channels config for paging, mail and Slack bot channels: what each type needs,
secrets named by where they are kept (never written in the file), and clear refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import UsageError
from engine.executors.notify import Notifier, load_channels
from engine.executors.secrets import SecretSource


def config(tmp_path: Path, channels: str) -> Path:
    path = tmp_path / "channels.yaml"
    path.write_text("kind: channels\nchannels:\n" + channels)
    return path


def test_each_type_reads_its_settings_and_where_its_secret_is(tmp_path: Path) -> None:
    path = config(tmp_path, """\
  pager: {type: pagerduty, routing_key: {env: PD_KEY}, severity: warning}
  genie: {type: opsgenie, api_key: {file: secrets/genie}, priority: P1, url: "https://api.eu.opsgenie.com"}
  mail: {type: email, host: smtp.example.com, from: rb@example.com, to: sre@example.com,
         username: rb, password: {command: "vault kv get -field=password secret/smtp"}, ca_file: ca.pem}
  chat: {type: slack, token: {env: SLACK_BOT_TOKEN}, channel: C0123}
""")
    loaded = load_channels(path).channels
    assert loaded["pager"].secret == SecretSource("env", "PD_KEY", str(tmp_path))
    assert loaded["pager"].url == "https://events.pagerduty.com/v2/enqueue" and loaded["pager"].severity == "warning"
    assert loaded["genie"].secret == SecretSource("file", "secrets/genie", str(tmp_path))
    assert loaded["genie"].secret.path() == str(tmp_path / "secrets" / "genie")
    mail = loaded["mail"].email
    assert mail is not None and (mail.port, mail.security, mail.to) == (587, "starttls", ("sre@example.com",))
    assert mail.ca_file == str(tmp_path / "ca.pem")
    assert loaded["chat"].target == "C0123" and loaded["chat"].url == "https://slack.com/api"
    assert loaded["mail"].describe() == "email to sre@example.com via smtp.example.com:587"
    assert all(Notifier(load_channels(path)).slow(name) for name in loaded)


@pytest.mark.parametrize("spec, message", [
    ("{type: pagerduty, routing_key: R0UT1NG}", "pagerduty channel 'c' needs `routing_key:` saying where the secret"),
    ("{type: pagerduty, routing_key: {env: K, file: f}}", "{env: VAR}, {file: PATH} or {command: COMMAND}"),
    ("{type: pagerduty, routing_key: {env: K}, severity: high}", "`severity` is one of critical, error, warning, info"),
    ("{type: opsgenie, api_key: {env: K}, priority: urgent}", "`priority` is one of P1, P2, P3, P4, P5"),
    ("{type: slack, token: {env: T}}", "slack channel 'c' needs `channel:`"),
    ("{type: slack, channel: C1}", "needs `token:`"),
    ("{type: email, host: h, from: a@b}", "needs `to:`"),
    ("{type: email, host: h, from: a@b, to: [x@y], security: ssl}", "`security` is one of starttls, tls, none"),
    ("{type: email, host: h, from: a@b, to: x@y, security: none, username: u, password: {env: P}}",
     "a password is never sent in the clear"),
    ("{type: email, host: h, from: a@b, to: x@y, username: u}", "needs `password:`"),
    ("{type: email, host: h, from: a@b, to: x@y, port: 0}", "`port` is a port number"),
])
def test_a_channel_missing_what_it_needs_is_refused_naming_it(tmp_path: Path, spec: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        load_channels(config(tmp_path, f"  c: {spec}\n"))
    assert message in str(info.value) and str(tmp_path / "channels.yaml") in str(info.value)


def test_a_secret_that_cannot_be_read_fails_the_delivery_not_the_run(tmp_path: Path) -> None:
    path = config(tmp_path, "  pager: {type: pagerduty, routing_key: {env: NO_SUCH_PD_KEY}}\n")
    notifier = Notifier(load_channels(path))
    delivery = notifier.send("pager", "db-1 down", meta={"run_id": "r1", "runbook": "disk"})
    assert not delivery.ok and delivery.attempts == 0
    assert delivery.error == "channel 'pager': $NO_SUCH_PD_KEY is not set"
