"""The JSON API under /api: runs (a list with filters, one run, its journal as a stream of
Server-Sent Events), the questions runs wait on and the answers to them, and the alerts.
Every request proves who makes it with an API token (`Authorization: Bearer rbt_...`,
`runbook token create`); answering checks the role a question needs against that person.
OpenAPI describes it all at /openapi.json (openapi.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from engine.errors import EngineError, UsageError

from .client import AGENT
from .drill_room import kept_from
from .prompts import Forbidden, NoSuchRun, NotWaiting, Unauthorized, answer_as, person_of
from .store import RUN_MODES, PersonRow, RunQuery, Store, StoreError

ENDED = ("finished", "cancelled")
POLL = 0.25  # seconds between looks at a run's journal when no write wakes the stream (store.wait_for_journal)
STATUS = {Unauthorized: 401, Forbidden: 403, NoSuchRun: 404, NotWaiting: 409, UsageError: 400, StoreError: 503}


def error_response(exc: EngineError) -> JSONResponse:
    """The JSON answer to an EngineError: its message, with the status its kind means."""
    status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 500)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": str(exc)}, status_code=status, headers=headers)


def _token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class Api:
    """The /api routes over a store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def routes(self) -> list[Route]:
        return [
            Route("/api/runs", self._guarded(self._runs), methods=["GET"]),
            Route("/api/runs/{run_id}", self._guarded(self._run), methods=["GET"]),
            Route("/api/runs/{run_id}/events", self.events, methods=["GET"]),
            Route("/api/questions", self._guarded(self._questions), methods=["GET"]),
            Route("/api/runs/{run_id}/questions/{step}/answer", self.answer, methods=["POST"]),
            Route("/api/alerts", self._guarded(self._alerts), methods=["GET"]),
        ]

    def _guarded(self, read: Callable[[Request, PersonRow], Any]) -> Callable[[Request], Any]:
        """A read for anyone with a valid token: its JSON, or the error's status."""
        async def endpoint(request: Request) -> Response:
            try:
                person = await run_in_threadpool(person_of, self.store, _token(request))
                return JSONResponse(await run_in_threadpool(read, request, person))
            except EngineError as exc:
                return error_response(exc)
        return endpoint

    def _runs(self, request: Request, _: PersonRow) -> dict[str, Any]:
        query, limit = request.query_params, _limit(request.query_params.get("limit"))
        mode = query.get("mode")
        if mode is not None and mode not in RUN_MODES:
            raise UsageError(f"mode: {mode!r} is not one of {', '.join(RUN_MODES)}")
        chosen = self.store.find_runs(RunQuery(runbook=query.get("runbook"), status=query.get("status"), mode=mode,
                                               limit=limit))
        return {"runs": [r.to_dict() for r in chosen[:limit]]}

    def _run(self, request: Request, _: PersonRow) -> dict[str, Any]:
        run_id = request.path_params["run_id"]
        run = self.store.run(run_id)
        if run is None:
            raise NoSuchRun(f"no run {run_id}")
        questions = self.store.questions(run_id=run_id, status=None)
        return {**run.to_dict(), "questions": [q.to_dict() for q in questions]}

    def _questions(self, request: Request, _: PersonRow) -> dict[str, Any]:
        status = request.query_params.get("status", "open")
        rows = self.store.questions(run_id=request.query_params.get("run"), status=None if status == "all" else status)
        return {"questions": [q.to_dict() for q in rows]}

    def _alerts(self, request: Request, _: PersonRow) -> dict[str, Any]:
        unrouted = request.query_params.get("unrouted", "") in ("1", "true", "yes")
        rows = self.store.alerts(route=request.query_params.get("route"), unrouted=unrouted)
        return {"alerts": [r.to_dict() for r in rows]}

    async def answer(self, request: Request) -> Response:
        """POST {"answer": {field: value}}; an approval is {"approved": true|false, "reason": "..."}."""
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body is not JSON: send {\"answer\": {\"FIELD\": VALUE}}"},
                                status_code=400)
        values = body.get("answer") if isinstance(body, dict) else None
        if not isinstance(values, dict):
            return JSONResponse({"error": "expected {\"answer\": {\"FIELD\": VALUE, ...}}"}, status_code=400)
        run_id, step = request.path_params["run_id"], request.path_params["step"]
        try:
            question, person = await run_in_threadpool(answer_as, self.store, _token(request), run_id, step,
                                                       values, _via(request))
            run = await run_in_threadpool(self.store.run, run_id)
        except EngineError as exc:
            return error_response(exc)
        return JSONResponse({"question": question.id, "step": step, "answered_by": person.name,
                             "run_status": run.status if run is not None else "gone"})

    async def events(self, request: Request) -> Response:
        """The run's journal records as Server-Sent Events (`id` the record's seq, `event` its
        name, `data` the journal line), from `Last-Event-ID` on, live until the run ends."""
        run_id = request.path_params["run_id"]
        try:
            person = await run_in_threadpool(person_of, self.store, _token(request))
            if await run_in_threadpool(self.store.run, run_id) is None:
                raise NoSuchRun(f"no run {run_id}")
            # A drill room's journal names the scenario and each event's kind: its trainer's.
            if (why := await run_in_threadpool(kept_from, self.store, run_id, person.name, journal=True)):
                raise Forbidden(why)
        except EngineError as exc:
            return error_response(exc)
        return event_stream(self.store, request, run_id)


def event_stream(store: Store, request: Request, run_id: str, *, named: bool = True) -> StreamingResponse:
    """The run's journal as Server-Sent Events, from the request's `Last-Event-ID` (or
    `?after=`) on; for a caller that has checked who asks (the API's token, the console's
    session). `named`: each event carries its journal event's name; without it every record
    is a plain `message` (what a browser's EventSource hears without naming each kind),
    and only the last is named, `end`."""
    after = _seq(request.headers.get("last-event-id") or request.query_params.get("after"))
    return StreamingResponse(_stream(store, request, run_id, after, named), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _stream(store: Store, request: Request, run_id: str, after: int, named: bool) -> AsyncIterator[str]:
    status = None
    while not store.closing and not await request.is_disconnected():
        ticket = store.journal_ticket(run_id)  # before reading: a write meanwhile is not missed
        run = await run_in_threadpool(store.run, run_id)
        lines = await run_in_threadpool(partial(store.records, run_id, after=after))
        for line in lines:
            seq, name = _head(line, after + 1)
            after = seq
            yield f"id: {seq}\nevent: {name}\ndata: {line}\n\n" if named else f"id: {seq}\ndata: {line}\n\n"
        if not named and not lines and run is not None and status not in (None, run.status):
            # A browser's page shows the run's status too: it changes without a journal
            # record when a run is queued again, or parks at a question before its steps.
            yield f"event: status\ndata: {run.status}\n\n"
        status = run.status if run is not None else None
        if run is None or (run.status in ENDED and not lines):
            yield f"event: end\ndata: {run.status if run else 'gone'}\n\n"
            return
        if not lines and not await store.wait_for_journal(run_id, ticket, POLL):
            yield ": waiting\n\n"  # keeps proxies from closing an idle stream


def _head(line: str, next_seq: int) -> tuple[int, str]:
    """A journal line's seq and event name (a damaged line: the next seq, `record`)."""
    try:
        record = json.loads(line)
        return int(record["seq"]), str(record["event"])
    except (ValueError, KeyError, TypeError):
        return next_seq, "record"


def _seq(raw: str | None) -> int:
    try:
        return max(int(raw or 0), 0)
    except ValueError:
        return 0


def _limit(raw: str | None) -> int:
    try:
        return min(max(int(raw or 100), 1), 1000)
    except ValueError:
        return 100


def _via(request: Request) -> str:
    """How an answer came, for the journal: `runbook answer/approve --server` (cli), or any
    other client of the API. Said by the client, so it is a note, never a permission."""
    return "cli" if request.headers.get("user-agent", "").startswith(AGENT) else "api"
