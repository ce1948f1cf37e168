"""The service's API as the CLI reaches it from another machine (`--server URL`): JSON over
HTTP with a bearer token, standard library only, so `runbook answer` and `runbook approve`
need nothing of the server extra to talk to a service."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from engine.errors import EngineError, UsageError

TIMEOUT = 30.0
AGENT = "runbook-cli"  # the User-Agent: the service journals an answer sent this way as via cli


class ApiError(EngineError):
    """The service refused the request, or could not be reached; says why."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.exit_code = 77 if status in (401, 403) else 2 if 400 <= status < 500 else 1


def call(server: str, method: str, path: str, token: str | None, body: Any = None) -> Any:
    """The JSON the service answers `method path` with; ApiError with its reason otherwise."""
    base = server.rstrip("/")
    if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
        raise UsageError(f"--server {server!r}: expected http://HOST:PORT or https://HOST:PORT")
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Accept", "application/json")
    request.add_header("User-Agent", AGENT)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise ApiError(f"{server} refused it ({exc.code}): {_reason(exc)}", exc.code) from None
    except (urllib.error.URLError, OSError) as exc:
        why = getattr(exc, "reason", exc)
        raise ApiError(f"cannot reach the service at {server}: {why}") from None


def _reason(exc: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(exc.read() or b"{}")
    except ValueError:
        return exc.reason
    return str(payload.get("error") or exc.reason) if isinstance(payload, dict) else str(exc.reason)
