"""What the console tests share: a serve config with people, setting a password with the
real `runbook password` command, and a small HTTP client that keeps cookies as a browser
does but follows no redirect (so a test sees each 303 and each Set-Cookie)."""

from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

CONFIG = """\
kind: serve
version: 1
runbooks: [runbooks]
people:
  - {{name: alice, roles: [dba]}}
  - {{name: bob, roles: [oncall]}}
{extra}"""

RUNBOOK = """\
kind: runbook
version: 1
id: hello
title: Hello
remediation:
  - id: greet
    run: "echo hello"
"""
PASSWORD = "correct horse battery"


def write_config(tmp: Path, extra: str = "") -> Path:
    (tmp / "runbooks").mkdir(exist_ok=True)
    (tmp / "runbooks" / "hello.yaml").write_text(RUNBOOK, encoding="utf-8")
    config = tmp / "serve.yaml"
    config.write_text(CONFIG.format(extra=extra), encoding="utf-8")
    return config


def set_password(config: Path, home: Path, name: str, password: str = PASSWORD,
                 database: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RUNBOOK_")}, "RUNBOOK_HOME": str(home)}
    where = ["--database", database] if database else []
    return subprocess.run([sys.executable, "-m", "engine", "password", name, "-c", str(config), "--stdin", *where],
                          input=password + "\n", capture_output=True, text=True, env=env, timeout=120)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@dataclass
class Reply:
    status: int
    headers: Message
    text: str

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    def cookies(self) -> list[str]:
        return self.headers.get_all("Set-Cookie") or []


class Browser:
    """Cookies kept, redirects not followed, forms posted url-encoded."""

    def __init__(self, base: str) -> None:
        self.base, self.jar = base, http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect)

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        return self._send(urllib.request.Request(self.base + path, headers=headers or {}))

    def post(self, path: str, fields: dict[str, str], headers: dict[str, str] | None = None) -> Reply:
        body = urllib.parse.urlencode(fields).encode()
        return self._send(urllib.request.Request(self.base + path, data=body, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded", **(headers or {})}))

    def _send(self, request: urllib.request.Request) -> Reply:
        try:
            with self.opener.open(request, timeout=60) as response:
                return Reply(response.status, response.headers, response.read().decode())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.headers, exc.read().decode())

    def sign_in(self, name: str, password: str = PASSWORD) -> Reply:
        form = self.get("/login")
        return self.post("/login", {"csrf": hidden(form.text, "csrf"), "next": "/", "name": name,
                                    "password": password})


def hidden(page: str, name: str) -> str:
    """The value of a page's hidden field `name`."""
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden {name} field in:\n{page}"
    return found.group(1)
