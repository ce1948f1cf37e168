"""HTTP steps against servers that misbehave: never answer, trickle, send without end,
inflate, lie about lengths, send 500-deep or huge-number JSON, unknown charsets, invalid
UTF-8, garbage, floods of headers, resets, redirect loops, redirects to other schemes
and to another origin (which must never receive the credentials)."""

from __future__ import annotations

from collections.abc import Iterator

import hostile_servers as servers
import pytest
from hostile_harness import Case, Runner

SECRET = "s3cr3t-t0ken-for-hostile-servers"
BEHAVIOURS = {
    "never-answers": servers.never_answers,
    "trickles": servers.trickles,
    "floods": servers.floods,
    "gzip-bomb": servers.gzip_bomb,
    "lies-about-length": servers.lies_about_length,
    "deep-json": servers.deep_json,
    "huge-numbers": servers.huge_numbers,
    "unknown-charset": servers.unknown_charset,
    "invalid-utf8": servers.invalid_utf8,
    "garbage": servers.garbage,
    "header-flood": servers.header_flood,
    "long-header": servers.long_header,
    "resets": servers.resets,
    "redirect-loop": servers.redirect_loop,
    "redirect-file": servers.redirect_to("file:///etc/passwd"),
    "redirect-ftp": servers.redirect_to("ftp://127.0.0.1/x"),
    "redirect-long": servers.redirect_to("http://127.0.0.1:9/" + "a" * 100_000),
}

RUNBOOK = """\
kind: runbook
version: 1
id: client
title: Client
inputs:
  url: {type: string}
  token: {type: string, secret: true, env: OPS_TOKEN}
defaults: {timeout: 1s}
detection:
  - id: call
    http:
      url: "{{ inputs.url }}/first"
      headers: {Authorization: "Bearer {{ inputs.token }}", X-Api-Key: "{{ inputs.token }}"}
      FOLLOW
    outputs: {doc: "{{ json }}", size: "{{ stdout | length }}"}
    continue_on_error: true
  - id: after
    run: echo still here
"""


def _runbook(hostile: Runner, follow: str = "") -> str:
    text = RUNBOOK.replace("FOLLOW", f"follow_redirects: {follow}" if follow else "")
    return str(hostile.write("client.yaml", text))


@pytest.mark.parametrize("name", BEHAVIOURS)
def test_misbehaving_server(hostile: Runner, name: str) -> None:
    server = servers.Server(BEHAVIOURS[name])
    try:
        hostile.check(Case(f"http:{name}", "run",
                           hostile.run_args(_runbook(hostile), "-i", f"url={server.url}"),
                           secrets=(SECRET,), env={"OPS_TOKEN": SECRET}))
    finally:
        server.close()


@pytest.fixture
def other_origin() -> Iterator[servers.Server]:
    server = servers.Server(servers.echo, address="127.0.0.2")
    yield server
    server.close()


@pytest.mark.parametrize("follow", ["", "true", "same-origin", "false"])
def test_cross_origin_redirect_never_carries_credentials(hostile: Runner, other_origin: servers.Server,
                                                         follow: str) -> None:
    first = servers.Server(servers.redirect_to(other_origin.url + "/landed", 307))
    try:
        hostile.check(Case(f"http:cross-origin-{follow or 'default'}", "run",
                           hostile.run_args(_runbook(hostile, follow), "-i", f"url={first.url}"),
                           secrets=(SECRET,), env={"OPS_TOKEN": SECRET}))
    finally:
        first.close()
    carried = [r for r in other_origin.received if SECRET in str(r)]
    if carried:
        hostile.tally.fail(hostile.test, "leak", f"{other_origin.url} got {carried[0]['headers']}")
    assert not carried, f"the other origin got the credentials: {carried[0]['headers']}"
