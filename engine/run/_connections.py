"""The servers monitoring steps talk to: which connection a step means, and the parts of
its requests (base URL, authentication headers, TLS) rendered for this run. A secret
comes from a template over a secret input (masked like any), a file or the environment;
it goes only into a request header, never into anything shown or journaled.
"""

from __future__ import annotations

import base64
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from engine.executors.base import HttpRequest, Invocation, NullSink, Result
from engine.language.model import Runbook
from engine.language.monitoring import BasicAuth, Connection, Tls, connection_problem
from engine.templates import templating

from ._driver import Driver, Where
from .attempt import Attempt

SERVERS = {"prometheus": "Prometheus", "alertmanager": "Alertmanager"}


class Unusable(Exception):
    """A connection that cannot be used: the step fails with this message."""


class Endpoint(NamedTuple):
    """A connection rendered for one request."""

    connection: Connection
    url: str
    headers: dict[str, str]
    tls: Tls | None


def find(runbook: Runbook, kind: str, name: str | None) -> Connection:
    """The connection a step names, or the only one of its type."""
    of_kind = sorted(n for n, c in runbook.connections.items() if c.type == kind)
    problem = connection_problem(kind, name, of_kind)
    if problem is not None:
        raise Unusable(problem)
    return runbook.connections[name if name is not None else of_kind[0]]


def endpoint(d: Driver, conn: Connection, extra: dict[str, Any]) -> Endpoint:
    """The connection's URL and headers, rendered in the step's context. Outside a live
    run (a drill, `runbook test`) no secret file or variable is read and no TLS file is
    needed: the world answers, and the trainer's machine has none of them."""
    if d.r.state.mode != "live":
        conn = conn._replace(bearer_token_file=None, bearer_token_env=None, tls=None, basic_auth=None)
    ctx = d.context(extra)

    def render(text: str, *path: str) -> str:
        where: object = Where(d.r.runbook, ("connections", conn.name, *path)) if conn.file is None \
            else f"{conn.file}: connections.{conn.name}.{'.'.join(path)}"
        return templating.render(text, ctx, where=where)

    url = render(conn.url, "url")
    headers = {k: render(v, "headers", k) for k, v in conn.headers.items()}
    token = _secret(conn, "bearer token", conn.bearer_token_file, conn.bearer_token_env)
    _masked(d, token)
    if conn.bearer_token:
        token = render(conn.bearer_token, "bearer_token")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if conn.basic_auth is not None:
        headers["Authorization"] = _basic(d, conn, conn.basic_auth, render)
    return Endpoint(conn, url, headers, _tls(conn))


def _masked(d: Driver, secret: str | None) -> None:
    """A secret read from a file or a variable is masked from now on, as a secret input is
    (it goes only into a header, but a server may echo it back in an error)."""
    if secret:
        d.r.masker.add(secret)


def _basic(d: Driver, conn: Connection, auth: BasicAuth, render: Any) -> str:
    user = render(auth.username, "basic_auth", "username")
    password = _secret(conn, "password", auth.password_file, auth.password_env) or ""
    _masked(d, password)
    if auth.password:
        password = render(auth.password, "basic_auth", "password")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _secret(conn: Connection, what: str, file: str | None, env: str | None) -> str | None:
    """A secret read from its file (trailing whitespace dropped) or environment variable."""
    if file:
        try:
            return Path(file).expanduser().read_text().rstrip()
        except (OSError, UnicodeDecodeError) as exc:
            raise Unusable(f"connection {conn.name}: cannot read the {what} file {file}: "
                                   f"{getattr(exc, 'strerror', None) or exc}") from None
    if env:
        value = os.environ.get(env)
        if value is None:
            raise Unusable(f"connection {conn.name}: the {what} variable ${env} is not set")
        return value
    return None


def _tls(conn: Connection) -> Tls | None:
    """The connection's TLS settings with `~` expanded, once its files are known to exist."""
    tls = conn.tls
    if tls is None:
        return None
    for key in ("ca_file", "cert_file", "key_file"):
        name = getattr(tls, key)
        if name and not Path(name).expanduser().is_file():
            raise Unusable(f"connection {conn.name}: tls.{key} {name} is not a file")
    return tls._replace(ca_file=_expand(tls.ca_file), cert_file=_expand(tls.cert_file),
                        key_file=_expand(tls.key_file))


def _expand(name: str | None) -> str | None:
    return str(Path(name).expanduser()) if name else None


def send(d: Driver, sid: str, kind: str, point: Endpoint, request: tuple[str, str, bytes | None], shown: str,
         number: int, timeout: float | None) -> Result:
    """One request of a monitoring step (method, URL, body) through the run's HTTP
    executor, within the step's and the connection's timeouts. Its raw answer is for
    programs: the step shows people its own lines (see `answered`)."""
    method, url, body = request
    headers = dict(point.headers)
    if body is not None:
        headers["Content-Type"] = "application/json"
    http = HttpRequest(url, method, headers, body, tls=point.tls,
                       private_headers=frozenset(k.lower() for k in point.headers))
    limits = [t for t in (timeout, point.connection.timeout) if t]
    invocation = Invocation(sid, kind, shown, timeout=min(limits) if limits else None, http=http, attempt=number)
    d.r.bus.barrier()
    return d.r.services.http.run(invocation, NullSink(), d.r.cancel)


def answered(d: Driver, sid: str, point: Endpoint, result: Result, error: str | None, lines: str,
             results: dict[str, Any]) -> Attempt:
    """The attempt of a monitoring step: failed with the server named, or its lines shown
    and its `results` (value, alerts, silence_id...) for its checks."""
    if error is not None:
        if not result.cancelled:
            server = SERVERS.get(point.connection.type, point.connection.type)
            error = f"{server} {point.connection.name} ({point.url}): {error}"
        return Attempt(False, error, replace(result, ok=False, error=error), cancelled=result.cancelled)
    with d.sink(sid) as sink:
        sink.output("stdout", lines.encode(), None)
    return Attempt(True, None, replace(result, ok=True, error=None, stdout=lines, extra=results))
