"""Redirects of `http` steps against real servers on two loopback addresses: credentials
never follow a redirect to another origin, https never goes to http, and what is
followed is the step's choice (`follow_redirects`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from livekit import Request, Server, Workspace, assert_clean_failure_output, complete_journal, finished_step

pytestmark = pytest.mark.integration

SECRET = "tok-'quoted\"-s3cret"
HEADERS = """{Authorization: "Bearer {{ inputs.token }}", Cookie: "session=abc123",
              X-Api-Key: "{{ inputs.token }}", Proxy-Authorization: "Basic eDp5", X-Plain: visible}"""


def runbook(url: str, follow: str = "") -> str:
    follow_field = f", follow_redirects: {follow}" if follow else ""
    return (f"kind: runbook\nversion: 1\nid: redirects\ntitle: Redirects\n"
            f"inputs: {{token: {{type: string, secret: true, env: API_TOKEN}}}}\n"
            f"triage:\n  - id: call\n    http: {{url: \"{url}\", headers: {HEADERS}{follow_field}}}\n")


@pytest.fixture
def other() -> Iterator[Server]:
    """Another origin: a second loopback address, its own port. It records what arrives."""
    with Server({"/land": lambda r: (200, "landed")}, address="127.0.0.2") as server:
        yield server


def to(url: str) -> object:
    return lambda r: (302, "", {"Location": url})


def sent_credentials(request: Request) -> set[str]:
    names = {k.lower() for k in request.headers}
    return names & {"authorization", "cookie", "x-api-key", "proxy-authorization"}


def run(ws: Workspace, text: str) -> tuple[int, str, dict[str, object]]:
    ws.write("live.yaml", text)
    done = ws.run("run", "live.yaml", "--non-interactive", env={"API_TOKEN": SECRET})
    assert_clean_failure_output(done)
    assert SECRET not in done.text
    return done.code, done.out, finished_step(complete_journal(sorted(ws.run_dirs())[-1]), "call")


def test_a_redirect_to_another_origin_drops_every_credential(ws: Workspace, other: Server) -> None:
    with Server({"/go": to(f"{other.url}/land")}) as first:
        code, _, step = run(ws, runbook(f"{first.url}/go", "true"))
    assert code == 0 and step["status"] == "ok", step
    [arrived] = other.requests
    assert sent_credentials(arrived) == set() and arrived.headers.get("X-Plain") == "visible"
    assert sent_credentials(first.requests[0]) == {"authorization", "cookie", "x-api-key", "proxy-authorization"}


def test_by_default_only_same_origin_redirects_are_followed_with_credentials(ws: Workspace, other: Server) -> None:
    routes = {"/old": to("/new"), "/new": lambda r: (200, "moved here"), "/away": to(f"{other.url}/land")}
    with Server(routes) as first:
        code, _, step = run(ws, runbook(f"{first.url}/old"))
        assert code == 0 and step["status"] == "ok"
        assert sent_credentials(first.requests[-1]) == {"authorization", "cookie", "x-api-key", "proxy-authorization"}
        code, out, step = run(ws, runbook(f"{first.url}/away"))
    assert code == 1 and other.requests == []
    assert str(step["error"]).startswith(f"HTTP status 302: a redirect to {other.url}/land, another origin, "
                                         "not followed")
    assert "follow_redirects: true" in out


def test_https_to_http_is_never_followed(ws: Workspace, other: Server) -> None:
    with Server({"/go": to(f"{other.url}/land")}, tls=True) as secure:
        text = runbook(f"{secure.url}/go", "true, verify: false")
        code, _, step = run(ws, text)
    assert code == 1 and other.requests == []
    assert "refused to follow the redirect" in str(step["error"]) and "from https to http" in str(step["error"])


def test_follow_redirects_false_answers_with_the_redirect(ws: Workspace) -> None:
    with Server({"/old": to("/new"), "/new": lambda r: (200, "moved here")}) as first:
        code, _, step = run(ws, runbook(f"{first.url}/old", "false"))
        assert [r.path for r in first.requests] == ["/old"]
    assert code == 1 and step["status_code"] == 302
    assert "not followed (follow_redirects: false)" in str(step["error"])
