"""The console's accounts on a real `runbook serve`: a password set with `runbook password`
signs in (a session cookie that scripts cannot read, sent on same-site navigation only),
a wrong one does not, signing out ends the session, a form without its CSRF token is
refused, every response carries the Content-Security-Policy, each sign-in, failure and
sign-out is on the audit trail, and behind an authenticating proxy the trusted header
names the person, but only from the proxy's address."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from consolekit import PASSWORD, Browser, hidden, set_password, write_config
from hookkit import serving, stop
from sqlalchemy import select

from engine.service.store import Store
from engine.service.store.tables import audit

pytestmark = pytest.mark.integration


def _audit(home: Path) -> list[tuple[str, str]]:
    store = Store.open(f"sqlite:///{home / 'service.db'}")
    try:
        with store.engine.connect() as conn:
            return [(r.who, r.what) for r in conn.execute(select(audit).order_by(audit.c.id))]
    finally:
        store.close()


def test_sign_in_and_out_with_a_password(tmp_path: Path) -> None:
    config, home = write_config(tmp_path), tmp_path / "home"
    done = set_password(config, home, "alice")
    assert done.returncode == 0 and "alice can sign in" in done.stdout, done.stderr
    with serving(config, home) as (base, proc):
        browser = Browser(base)
        assert browser.get("/").location.startswith("/login?next=")
        assert browser.sign_in("alice", "not the password").status == 401
        assert browser.sign_in("mallory", PASSWORD).status == 401
        signed = browser.sign_in("alice")
        assert signed.status == 303 and signed.location == "/"
        session = next(c for c in signed.cookies() if c.startswith("runbook_session="))
        assert "HttpOnly" in session and "SameSite=lax" in session and "Secure" not in session  # plain http here
        page = browser.get("/")
        assert page.status == 200 and "alice (dba)" in page.text
        refused = browser.post("/logout", {"csrf": "forged"})
        assert refused.status == 403 and browser.get("/").status == 200  # still signed in
        out = browser.post("/logout", {"csrf": hidden(page.text, "csrf")})
        assert out.status == 303 and out.location == "/login"
        assert browser.get("/").status == 303
        stop(proc, home)
    trail = _audit(home)
    assert [e for e in trail if e[1].startswith(("login", "logout"))] == [
        ("alice", "login.failed"), ("mallory", "login.failed"), ("alice", "login"), ("alice", "logout")]


def test_a_stolen_cookie_dies_with_a_new_password(tmp_path: Path) -> None:
    config, home = write_config(tmp_path), tmp_path / "home"
    set_password(config, home, "alice")
    with serving(config, home) as (base, proc):
        browser = Browser(base)
        assert browser.sign_in("alice").status == 303
        assert set_password(config, home, "alice", "another long password").returncode == 0
        assert browser.get("/").status == 303
        assert browser.sign_in("alice", PASSWORD).status == 401
        assert browser.sign_in("alice", "another long password").status == 303
        stop(proc, home)


def test_behind_a_tls_proxy_the_cookie_is_secure(tmp_path: Path) -> None:
    config, home = write_config(tmp_path), tmp_path / "home"
    set_password(config, home, "alice")
    with serving(config, home) as (base, proc):
        browser = Browser(base)
        https = {"X-Forwarded-Proto": "https"}  # from 127.0.0.1: uvicorn believes it by default
        form = browser.get("/login", https)
        login = next(c for c in form.cookies() if c.startswith("runbook_login="))
        assert "Secure" in login  # so this plain-http client would not send it back: we do, as a proxy would
        token = hidden(form.text, "csrf")
        signed = browser.post("/login", {"csrf": token, "name": "alice", "password": PASSWORD},
                              {**https, "Cookie": login.split(";")[0]})
        session = next(c for c in signed.cookies() if c.startswith("runbook_session="))
        assert signed.status == 303 and "Secure" in session and "HttpOnly" in session
        stop(proc, home)


def test_login_form_without_its_csrf_token_is_refused(tmp_path: Path) -> None:
    config, home = write_config(tmp_path), tmp_path / "home"
    set_password(config, home, "alice")
    with serving(config, home) as (base, proc):
        browser = Browser(base)
        assert browser.post("/login", {"name": "alice", "password": PASSWORD}).status == 403
        token = hidden(browser.get("/login").text, "csrf")
        cross = browser.post("/login", {"csrf": token, "name": "alice", "password": PASSWORD},
                             headers={"Origin": "http://evil.example"})
        assert cross.status == 403 and "security token" in cross.text
        assert browser.get("/").status == 303
        stop(proc, home)


def test_every_response_carries_the_content_security_policy(tmp_path: Path) -> None:
    config, home = write_config(tmp_path), tmp_path / "home"
    with serving(config, home) as (base, proc):
        browser = Browser(base)
        for path in ("/login", "/", "/healthz", "/static/console.css", "/static/nothing"):
            reply = browser.get(path)
            policy = reply.headers.get("Content-Security-Policy", "")
            assert "script-src 'self'" in policy and "default-src 'none'" in policy, path
            assert "unsafe-inline" not in policy and reply.headers.get("X-Frame-Options") == "DENY", path
        stop(proc, home)


def test_passwords_shorter_than_ten_characters_are_refused(tmp_path: Path) -> None:
    config, home = write_config(tmp_path), tmp_path / "home"
    done = set_password(config, home, "alice", "short")
    assert done.returncode != 0 and "at least 10 characters" in done.stderr and "Traceback" not in done.stderr
    unknown = set_password(config, home, "carol")
    assert unknown.returncode != 0 and "names no person 'carol'" in unknown.stderr


TRUSTED = """console:
  trusted_header: {{name: X-Forwarded-User, proxies: ["{proxy}"]}}
"""


def test_the_proxys_header_names_the_person_only_from_the_proxy(tmp_path: Path) -> None:
    config, home = write_config(tmp_path, TRUSTED.format(proxy="127.0.0.0/8")), tmp_path / "home"
    with serving(config, home) as (base, proc):
        browser = Browser(base)
        page = browser.get("/", {"X-Forwarded-User": "bob"})
        assert page.status == 200 and "bob (oncall)" in page.text
        assert browser.get("/", {"X-Forwarded-User": "nobody-we-know"}).status == 303
        stop(proc, home)
    assert ("bob", "login") in _audit(home)
    untrusted = write_config(tmp_path, TRUSTED.format(proxy="10.9.9.9"))
    with serving(untrusted, tmp_path / "home2") as (base, proc):
        assert Browser(base).get("/", {"X-Forwarded-User": "bob"}).status == 303
        stop(proc, tmp_path / "home2")


def test_a_session_ends_when_its_time_is_up(tmp_path: Path) -> None:
    config, home = write_config(tmp_path, "console: {session: 2s}\n"), tmp_path / "home"
    set_password(config, home, "alice")
    with serving(config, home) as (base, proc):
        browser = Browser(base)
        signed = browser.sign_in("alice")
        assert signed.status == 303 and "Max-Age=2" in next(c for c in signed.cookies() if "runbook_session" in c)
        cookie = next(c for c in browser.jar if c.name == "runbook_session").value
        assert browser.get("/").status == 200
        time.sleep(3)
        # Sent again after its time, as a browser that kept it would: the store refuses it.
        late = Browser(base).get("/", {"Cookie": f"runbook_session={cookie}"})
        assert late.status == 303 and late.location.startswith("/login")
        stop(proc, home)


def test_failed_sign_ins_are_throttled_per_account_and_per_address(tmp_path: Path) -> None:
    """Five failures on one account make it wait (even the right password is not checked)
    with a message saying how long; others still sign in from that address until twenty
    failures came from it. Refusals are audited; the names tried need not exist."""
    config, home = write_config(tmp_path), tmp_path / "home"
    assert set_password(config, home, "alice").returncode == 0
    assert set_password(config, home, "bob").returncode == 0
    with serving(config, home) as (base, proc):
        browser = Browser(base)
        for _ in range(5):
            assert browser.sign_in("alice", "not the password").status == 401
        refused = browser.sign_in("alice")
        assert refused.status == 429 and 840 <= int(refused.headers["Retry-After"]) <= 900
        assert "Too many failed sign-ins for this account: try again in 15 minutes" in refused.text
        assert Browser(base).sign_in("bob").status == 303
        for i in range(15):
            assert browser.sign_in(f"nobody-{i}", "not the password").status == 401
        late = Browser(base).sign_in("bob")
        assert late.status == 429 and "Too many failed sign-ins from your address" in late.text
        stop(proc, home)
    trail = _audit(home)
    assert trail.count(("alice", "login.failed")) == 5 and ("alice", "login.throttled") in trail
    assert ("bob", "login.throttled") in trail and trail.count(("bob", "login")) == 1
