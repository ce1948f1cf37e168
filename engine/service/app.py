"""The ASGI application of `runbook serve`: every route declared here, in one place,
behind the request-id middleware (request_ids.py).

The JSON API for people (api.py, under /api, with tokens) is described at /openapi.json.
/healthz answers while the process can answer at all (a liveness probe); /readyz only
when the store answers and the process is not draining (a readiness probe: a load
balancer stops sending work); /metrics is for Prometheus. The embedded workers start
and stop with the app (its lifespan): a shutdown drains them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine import __version__

from .api import Api
from .console import Console, SecurityHeaders
from .intake import Intake
from .metrics import registry
from .openapi import document
from .request_ids import RequestIds
from .room_pages import RoomPages
from .slack import SlackInteractions
from .store import Store, StoreError
from .worker import Worker


def build_app(store: Store, worker: Worker | None, intake: Intake | None = None,
              slack: SlackInteractions | None = None, console: Console | None = None,
              rooms: RoomPages | None = None) -> Starlette:
    """The app over `store`, with `worker` (the embedded workers) started and drained by
    its lifespan; None when `runbook worker` processes do the work. `intake`: the hooks
    alerts are posted to (POST /hooks/<source>, GET /alerts); `slack`: where Slack's
    button clicks come (POST /slack/interactions); `console`: the web pages for people;
    `rooms`: the drill rooms' pages (game days in the browser, on the console)."""
    metrics = registry(store, worker, intake)
    state = {"draining": False}

    def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    def readyz(request: Request) -> Response:
        try:
            store.ping()
        except StoreError as exc:
            return JSONResponse({"ready": False, "reason": str(exc)}, status_code=503)
        if state["draining"] or (worker is not None and worker.draining.is_set()):
            return JSONResponse({"ready": False, "reason": "shutting down"}, status_code=503)
        return JSONResponse({"ready": True, "store": store.kind, "workers": _slots(worker)})

    def metrics_page(request: Request) -> Response:
        return Response(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if worker is not None:
            await run_in_threadpool(worker.start)
        try:
            yield
        finally:
            state["draining"] = True
            if worker is not None:
                await run_in_threadpool(worker.stop)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_page, methods=["GET"]),
    ]
    def openapi(request: Request) -> Response:
        return JSONResponse(document(__version__))

    routes.append(Route("/openapi.json", openapi, methods=["GET"]))
    routes += Api(store).routes()
    if intake is not None:
        # Alerts are read through /api/alerts, with a token: labels and annotations name
        # hosts and services, and nobody unauthenticated may list them.
        routes.append(Route("/hooks/{source}", intake.hook, methods=["POST"]))
    if slack is not None:
        routes.append(Route("/slack/interactions", slack.interact, methods=["POST"]))
    if console is not None:
        routes += console.routes()
    if rooms is not None:
        routes += rooms.routes()
    return Starlette(routes=routes, lifespan=lifespan,
                     middleware=[Middleware(RequestIds), Middleware(SecurityHeaders)])


def _slots(worker: Worker | None) -> int:
    return worker.options.slots if worker is not None else 0
