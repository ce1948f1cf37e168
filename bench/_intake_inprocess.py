"""Deliveries posted in-process, for counting the instructions one costs (bench/intake.py,
under callgrind): `runbook serve`'s app with a SQLite store in a temporary directory,
called as uvicorn calls it (the ASGI messages of one POST), plus the floor endpoint of
bench/_intake_server.py. Both endpoints are warmed up first, then COUNT deliveries go to
the one named; the count's difference between COUNT and 0 is what COUNT deliveries cost.
No socket, no HTTP parsing: what is left is the engine's own work and the floor's.

    python bench/_intake_inprocess.py hook|floor COUNT
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "integration")]

WARM = 60


async def _post(app: Any, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [*headers, (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8080)}
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop() if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    if sent[0]["status"] != 202:
        raise RuntimeError(f"{path} answered {sent[0]['status']}")


def main() -> None:
    what, count = sys.argv[1], int(sys.argv[2])
    with tempfile.TemporaryDirectory(prefix="bench-intake-inprocess-") as name:
        _deliver(what, count, Path(name))


def _deliver(what: str, count: int, tmp: Path) -> None:
    from hookkit import SECRETS, write_service
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from bench.intake import HEADERS, _body
    from engine.service.app import build_app
    from engine.service.config import load_config
    from engine.service.intake import Intake
    from engine.service.routing import Router
    from engine.service.store import Store

    config = load_config(write_service(tmp))
    store = Store.open(f"sqlite:///{tmp}/service.db")
    app = build_app(store, None, Intake(store, config.sources, Router.of(config), environ={**os.environ, **SECRETS}))

    async def floor(request: Request) -> Response:  # as bench/_intake_server.py's
        body = await request.body()
        await run_in_threadpool(store.audit, "bench", "floor", None, {"bytes": len(body)})
        return JSONResponse({"ok": True}, status_code=202)

    app.router.routes.append(Route("/floor", floor, methods=["POST"]))
    headers = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]

    async def posts() -> None:
        for i in range(WARM):
            await _post(app, "/hooks/am", _body(10**6 + i), headers)
            await _post(app, "/floor", _body(2 * 10**6 + i), headers)
        for i in range(count):
            await _post(app, "/hooks/am" if what == "hook" else "/floor", _body(3 * 10**6 + i), headers)

    try:
        asyncio.run(posts())
    finally:
        store.close()


if __name__ == "__main__":
    main()
