"""Secrets as people choose them (quotes, shell and URL specials, unicode, one character)
flowing everywhere a runbook can send them: a command's arguments, env, stdin, for_each
items, an HTTP request's URL, headers and JSON body (echoed back), a variable, a message,
a failing command's stderr, a failed expectation. None may show, in any encoding the
engine makes, in the console, the journal, step logs, a delivered message, any report,
or the scenario `scenario from-run` writes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hostile_corpus import SECRETS
from hostile_harness import Case, Runner
from hostile_servers import Server, echo

RUNBOOK = """\
kind: runbook
version: 1
id: secrets
title: Secrets
inputs:
  token: {type: string, secret: true, env: OPS_TOKEN}
  url: {type: string}
defaults: {timeout: 10s}
detection:
  - id: argument
    run: echo {{ inputs.token }}
  - id: environment
    run: printf '%s\\n' "$T"
    env: {T: "{{ inputs.token }}"}
  - id: standard_input
    run: cat
    stdin: "{{ inputs.token }}"
  - id: item_by_item
    for_each: inputs.token | list
    run: printf '%s' {{ item }}
  - id: call
    http:
      url: "{{ inputs.url }}/echo?t={{ inputs.token | urlencode }}"
      method: POST
      headers: {Authorization: "Bearer {{ inputs.token }}", X-Token: "{{ inputs.token }}"}
      body: {token: "{{ inputs.token }}"}
  - id: keep
    set: {copy: "{{ inputs.token }}"}
  - id: tell
    notify: {channel: status, message: "token {{ vars.copy }}"}
  - id: loud_failure
    run: "echo {{ inputs.token }} >&2; exit 3"
    continue_on_error: true
  - id: wrong_expectation
    run: echo {{ inputs.token }}
    expect: "stdout == 'nope'"
    continue_on_error: true
recovery:
  - id: last
    run: "echo done; echo {{ inputs.token }} >&2; exit 4"
"""


def _carried(body: str) -> object:
    try:
        return json.loads(body).get("token")
    except (ValueError, AttributeError):
        return None


@pytest.fixture(scope="module")
def echo_server() -> Iterator[Server]:
    server = Server(echo)
    yield server
    server.close()


@pytest.mark.parametrize("name", SECRETS)
def test_secret_never_shows(hostile: Runner, echo_server: Server, name: str) -> None:
    secret = SECRETS[name]
    runbook = hostile.write("secrets.yaml", RUNBOOK)
    channels = hostile.write("channels.yaml", "kind: channels\nchannels:\n"
                                              f"  status: {{type: file, path: {hostile.work / 'status.log'}}}\n")
    kind = f"secret:{name}"
    [run] = hostile.check(Case(kind, "run", hostile.run_args(runbook, "-i", f"url={echo_server.url}",
                                                             "--channels", str(channels)),
                               secrets=(secret,), env={"OPS_TOKEN": secret}))
    assert run.runs, "the run left no run directory"
    if secret.isascii() and secret.isprintable():  # else no HTTP header can carry it: the step fails first
        assert any(_carried(r["body"]) == secret for r in echo_server.received), "the request never carried it"
    run_dir = str(run.runs[0])
    hostile.check(*(Case(kind, "report", ["report", run_dir, "-f", fmt], secrets=(secret,)) for fmt in
                    ("md", "html", "json")),
                  Case(kind, "from-run", ["scenario", "from-run", run_dir], secrets=(secret,)),
                  Case(kind, "stats", ["stats", run_dir, "-f", "json"], secrets=(secret,)))
