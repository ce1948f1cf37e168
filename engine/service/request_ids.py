"""The middleware every request of the service goes through: a request id (the caller's
`X-Request-Id` when it sends a sane one, else a new one), returned in the response and
named in the one log line each request gets (method, path, status, milliseconds; the
probes and /metrics only at DEBUG, since they come every few seconds), and the time until
the answer started in a `Server-Timing` header.

Plain ASGI rather than Starlette's BaseHTTPMiddleware, so a streamed response (the event
streams of runs) passes through as it is produced.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any

log = logging.getLogger("runbook.http")

PROBES = frozenset({"/healthz", "/readyz", "/metrics"})  # asked every few seconds: logged at DEBUG only
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")  # what may go into our logs and headers as it is


class RequestIds:
    """ASGI middleware: a request id for each HTTP request, and its log line."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        started, status = time.monotonic(), {"code": 500}

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                # Server-Timing: the time spent here until the answer starts (browsers' tools show it).
                took = f"app;dur={(time.monotonic() - started) * 1000:.1f}".encode()
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode()),
                                      (b"server-timing", took)]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            level = logging.DEBUG if scope["path"] in PROBES else logging.INFO
            log.log(level, "request=%s method=%s path=%s status=%d ms=%.1f", request_id, scope["method"],
                    scope["path"], status["code"], (time.monotonic() - started) * 1000)


def _request_id(scope: dict[str, Any]) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            given = value.decode("latin-1")
            if _SANE_ID.match(given):
                return given
    return secrets.token_hex(8)
