"""Who a browser is: a session cookie (HttpOnly, SameSite=Lax, Secure over https) made by
signing in with a password, or, behind an authenticating proxy (oauth2-proxy and the like),
the person the proxy names in a trusted header, believed only from the proxy's addresses.
And the CSRF check every form passes: the session's token in a hidden field, compared in
constant time, with the request's Origin (when the browser sends one) being this site.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from .config import ConsoleSettings
from .store import Session, Store

COOKIE = "runbook_session"
LOGIN_COOKIE = "runbook_login"  # the login form's CSRF token, before there is a session


@dataclass(frozen=True)
class Visitor:
    """A browser's session, and the cookie to set when this request opened it."""

    session: Session | None
    new_cookie: str | None = None


class Gate:
    """Sessions and CSRF for the console's pages."""

    def __init__(self, store: Store, settings: ConsoleSettings) -> None:
        self.store, self.settings = store, settings
        self._proxies = [ipaddress.ip_network(p, strict=False) for p in settings.proxies]

    def visitor(self, request: Request) -> Visitor:
        """The session of this request; behind a trusted proxy, the proxy's person (a
        session is opened for them on their first page, so their forms have a CSRF token)."""
        cookie = request.cookies.get(COOKIE)
        current = self.store.session(cookie) if cookie else None
        named = self._header_person(request)
        if named is None or (current is not None and current.person.name == named):
            return Visitor(current)
        if self.store.person(named) is None:
            return Visitor(None)  # the proxy vouches for someone the serve config does not know
        opened = self.store.open_session(named, "header", self.settings.session, client_of(request))
        return Visitor(self.store.session(opened), opened)

    def _header_person(self, request: Request) -> str | None:
        if self.settings.header is None or request.client is None:
            return None
        try:
            address = ipaddress.ip_address(request.client.host)
        except ValueError:
            return None
        if not any(address in network for network in self._proxies):
            return None  # anyone can send the header: only the proxy's word counts
        return request.headers.get(self.settings.header, "").strip() or None

    def set_cookie(self, response: Response, request: Request, name: str, value: str,
                   max_age: float | None) -> None:
        """A cookie scripts cannot read, sent on top-level navigation only, and only over
        https when the site is served over https."""
        response.set_cookie(name, value, max_age=None if max_age is None else int(max_age), path="/",
                            httponly=True, samesite="lax", secure=request.url.scheme == "https")

    def clear_cookie(self, response: Response, request: Request, name: str) -> None:
        response.delete_cookie(name, path="/", httponly=True, samesite="lax", secure=request.url.scheme == "https")


def csrf_ok(request: Request, expected: str | None, given: str | None) -> bool:
    """A form's token is the one expected, and it was posted from this site."""
    if not expected or not given or not hmac.compare_digest(expected.encode(), given.encode()):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None  # an opaque origin (a sandboxed frame, a data: page) is not us
    return urlsplit(origin).netloc == request.headers.get("host", "")


def client_of(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never //other.example)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
