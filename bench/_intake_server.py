"""The server the intake benchmark posts to: `runbook serve`'s own app (POST /hooks/<source>
as it is served) plus the floor, POST /floor: a bare endpoint on the same stack
(uvicorn, Starlette, the same Store and database) that reads the body and inserts one
row in one durable transaction (Store.audit). Embedded workers only with --workers.
With BENCH_PROFILE=FILE set, every thread is sampled (bench/_sampler.py) and where the
time went is written to FILE when the server stops.

    python bench/_intake_server.py CONFIG DATABASE_URL PORT [--workers]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from bench._sampler import Sampler
    from engine.service.app import build_app
    from engine.service.config import load_config
    from engine.service.intake import Intake
    from engine.service.routing import Router
    from engine.service.server import listen_socket, run_app
    from engine.service.store import Store
    from engine.service.worker import Worker, WorkerOptions

    config_file, url, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    config = load_config(config_file)
    store = Store.open(url)
    worker = Worker(store, WorkerOptions(slots=4)) if "--workers" in sys.argv else None
    intake = Intake(store, config.sources, Router.of(config), on_queued=worker.wake if worker else lambda: None)
    app = build_app(store, worker, intake)

    async def floor(request: Request) -> Response:
        body = await request.body()
        await run_in_threadpool(store.audit, "bench", "floor", None, {"bytes": len(body)})
        return JSONResponse({"ok": True}, status_code=202)

    app.router.routes.append(Route("/floor", floor, methods=["POST"]))
    profile = os.environ.get("BENCH_PROFILE")
    sampler = Sampler.start() if profile else None
    try:
        run_app(app, listen_socket(f"127.0.0.1:{port}"), graceful=5)
    finally:
        if sampler is not None and profile:
            sampler.stop().write(Path(profile))


if __name__ == "__main__":
    main()
