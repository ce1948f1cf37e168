"""How POST /hooks/<source> reads a body (engine/service/intake.py), called in-process as
uvicorn calls the app: a delivery costs the event loop no more turns than a bare endpoint
that reads its body and writes in a thread, and a sender that stops sending is answered
408 while one that merely trickles is not."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.service import intake as intake_module
from engine.service.app import build_app
from engine.service.config import load_config
from engine.service.intake import Intake
from engine.service.routing import Router
from engine.service.store import Store

CONFIG = """\
kind: serve
version: 1
runbooks: [runbooks]
sources:
  am: {type: alertmanager, auth: {bearer: {env: AM_TOKEN}}}
routes:
  - {name: disk, match: {alertname: DiskFull}, runbook: disk-full}
"""

RUNBOOK = """\
kind: runbook
version: 1
id: disk-full
title: Disk full
remediation:
  - {id: clean, run: "true"}
"""

Chunks = list[tuple[float, bytes, bool]]  # (seconds to wait first, the bytes, more to come)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Any]:
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "disk-full.yaml").write_text(RUNBOOK, encoding="utf-8")
    (tmp_path / "serve.yaml").write_text(CONFIG, encoding="utf-8")
    config = load_config(tmp_path / "serve.yaml")
    store = Store.open(f"sqlite:///{tmp_path}/service.db")
    intake = Intake(store, config.sources, Router.of(config), environ={"AM_TOKEN": "t0ken"})
    application = build_app(store, None, intake)

    async def bare(request: Request) -> Response:
        body = await request.body()
        await run_in_threadpool(len, body)
        return JSONResponse({"ok": True}, status_code=202)

    application.router.routes.append(Route("/bare", bare, methods=["POST"]))
    yield application
    store.close()


def _notification(i: int) -> bytes:
    alert = {"status": "firing", "labels": {"alertname": "DiskFull", "instance": f"db-{i}"}, "annotations": {},
             "startsAt": "2026-12-05T04:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
             "fingerprint": f"{i:016x}"}
    return json.dumps({"version": "4", "groupKey": f"{{}}:{{instance=\"db-{i}\"}}", "truncatedAlerts": 0,
                       "status": "firing", "receiver": "runbook", "groupLabels": {}, "commonLabels": {},
                       "commonAnnotations": {}, "externalURL": "", "alerts": [alert]}).encode()


async def _post(app: Any, path: str, chunks: Chunks) -> int:
    size = sum(len(data) for _, data, _ in chunks)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"authorization", b"Bearer t0ken"), (b"content-type", b"application/json"),
                         (b"content-length", str(size).encode())],
             "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8080)}
    pending = list(chunks)

    async def receive() -> dict[str, Any]:
        if not pending:
            await asyncio.sleep(3600)  # as uvicorn does: nothing more comes until the client sends
        pause, data, more = pending.pop(0)
        if pause:
            await asyncio.sleep(pause)
        return {"type": "http.request", "body": data, "more_body": more}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


def _turns(monkeypatch: pytest.MonkeyPatch, run: Callable[[], Awaitable[Any]]) -> int:
    """How many turns the event loop took while `run()` ran."""
    loop = asyncio.new_event_loop()
    count = [0]
    original = type(loop)._run_once

    def counted(self: asyncio.AbstractEventLoop) -> None:
        count[0] += 1
        original(self)  # type: ignore[arg-type]

    monkeypatch.setattr(type(loop), "_run_once", counted)
    try:
        loop.run_until_complete(run())
    finally:
        monkeypatch.setattr(type(loop), "_run_once", original)
        loop.close()
    return count[0]


def test_a_delivery_costs_the_event_loop_no_more_turns_than_a_bare_endpoint(
        app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    body = _notification(1)
    asyncio.run(_post(app, "/hooks/am", [(0, body, False)]))  # warm: statements, connections
    hook = _turns(monkeypatch, lambda: _post(app, "/hooks/am", [(0, _notification(2), False)]))
    bare = _turns(monkeypatch, lambda: _post(app, "/bare", [(0, body, False)]))
    # asyncio.wait_for around each chunk made a task each time: 13 turns against the bare 4
    assert hook <= bare, (hook, bare)


def test_a_sender_that_stops_is_answered_408_and_one_that_trickles_is_not(
        app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake_module, "BODY_TIMEOUT", 0.3)
    body = _notification(3)
    stalled = asyncio.run(asyncio.wait_for(_post(app, "/hooks/am", [(0, body[:20], True)]), 30))
    assert stalled == 408
    # Seven pauses of 0.1 s: longer than the timeout in all, never once as long.
    trickle = [(0.1, body[i:i + 20], True) for i in range(0, 140, 20)] + [(0.1, body[140:], False)]
    assert asyncio.run(asyncio.wait_for(_post(app, "/hooks/am", trickle), 30)) == 202
