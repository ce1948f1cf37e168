"""The drill room's pages and stream, on the console (its templates, sessions and CSRF):

    GET  /drills                         rooms I train or play in; the start form (trainers)
    POST /drills                         open a room on a scenario
    GET  /drills/join/CODE               the join link: who runs it, and a Join button
    POST /drills/join/CODE               join (a signed-in person; the code grants nothing else)
    GET  /drills/ROOM                    the room, as this person may see it (room_views.py)
    GET  /drills/ROOM/stream             its live updates (Server-Sent Events, resumable)
    POST /drills/ROOM/roles | start | control          the trainer's
    POST /drills/ROOM/prompts/ID | prompts/ID/hint      a participant's answer, a hint

Every form is CSRF-checked; every refusal says why, with the status its kind means.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from engine.errors import EngineError

from .api import STATUS, _head
from .config import ServeConfig
from .console import Console, form_of
from .drill_room import NoSuchRoom, Room, catalogue, may_train
from .room_views import room_view, stream_line
from .sessions import Visitor, csrf_ok
from .store import Session
from .store.rooms import RoomRow
from .views import tail

POLL = 0.25  # seconds between looks at the store while a stream is idle
Action = Callable[[RoomRow, Session, dict[str, str]], Any]


class RoomPages:
    """The drill room's routes, over the console."""

    def __init__(self, console: Console, config: ServeConfig) -> None:
        self.console, self.config = console, config
        self.room = Room(console.store, config)

    def routes(self) -> list[Route]:
        signed = self.console._signed_in
        return [
            Route("/drills", signed(self.index), methods=["GET"]),
            Route("/drills", signed(self.open), methods=["POST"]),
            Route("/drills/join/{code}", signed(self.join_form), methods=["GET"]),
            Route("/drills/join/{code}", signed(self.join), methods=["POST"]),
            Route("/drills/{room_id}", signed(self.show), methods=["GET"]),
            Route("/drills/{room_id}/stream", self.stream, methods=["GET"]),
            Route("/drills/{room_id}/roles", signed(self._act(self._roles)), methods=["POST"]),
            Route("/drills/{room_id}/start", signed(self._act(self._start)), methods=["POST"]),
            Route("/drills/{room_id}/control", signed(self._act(self._control)), methods=["POST"]),
            Route("/drills/{room_id}/prompts/{prompt_id:int}", signed(self._act(self._answer)), methods=["POST"]),
            Route("/drills/{room_id}/prompts/{prompt_id:int}/hint", signed(self._act(self._hint)), methods=["POST"]),
        ]

    async def index(self, request: Request, visitor: Visitor, problem: str = "", status: int = 200) -> Response:
        me = _session(visitor)
        trainer = may_train(self.config, me.person)
        rooms, choices = await run_in_threadpool(self._index, me.person.name, trainer)
        return self.console.render("drills.html", status, me=me, rooms=rooms, choices=choices, trainer=trainer,
                                   trainers=self.config.trainers, problem=problem)

    def _index(self, name: str, trainer: bool) -> tuple[list[RoomRow], list[Any]]:
        rooms = [r for r in self.room.rooms.listing(100)
                 if r.trainer == name or name in {m.person for m in self.room.rooms.members(r.id)}]
        return rooms, catalogue(self.config) if trainer else []

    async def open(self, request: Request, visitor: Visitor) -> Response:
        me, form = _session(visitor), await form_of(request)
        if not csrf_ok(request, me.csrf, form.get("csrf")):
            return _stale(self.console, me)
        try:
            speed = float(form.get("speed") or 1)
            opened = await run_in_threadpool(self.room.open, me.person, form.get("scenario", ""), speed)
        except ValueError:
            return await self.index(request, visitor, "The speed must be a number, e.g. 10.", 400)
        except EngineError as exc:
            return await self.index(request, visitor, str(exc), _status(exc))
        return RedirectResponse(f"/drills/{opened.id}", status_code=303)

    async def join_form(self, request: Request, visitor: Visitor) -> Response:
        me, code = _session(visitor), request.path_params["code"]
        room = await run_in_threadpool(self.room.rooms.by_code, code)
        if room is None:
            return _refused(self.console, me, 404, "This join link is not (or no longer) a drill room's.")
        return self.console.render("drill_join.html", me=me, room=room, code=code)

    async def join(self, request: Request, visitor: Visitor) -> Response:
        me, form = _session(visitor), await form_of(request)
        if not csrf_ok(request, me.csrf, form.get("csrf")):
            return _stale(self.console, me)
        try:
            room = await run_in_threadpool(self.room.join, request.path_params["code"], me.person)
        except EngineError as exc:
            return _refused(self.console, me, _status(exc), str(exc))
        return RedirectResponse(f"/drills/{room.id}", status_code=303)

    async def show(self, request: Request, visitor: Visitor, problem: str = "", status: int = 200) -> Response:
        me = _session(visitor)
        try:
            room = await run_in_threadpool(self._allowed, request.path_params["room_id"], me.person.name)
            view = await run_in_threadpool(room_view, self.console.store, room, me.person.name)
        except EngineError as exc:
            return _refused(self.console, me, _status(exc), str(exc))
        link = f"{request.base_url}drills/join/{room.code}" if view.trainer else ""
        return self.console.render("room.html", status, me=me, view=view, link=link, problem=problem, tail=tail)

    def _allowed(self, room_id: str, name: str) -> RoomRow:
        """The room, if `name` is its trainer or a participant (NoSuchRoom otherwise: a
        room's address tells a stranger nothing, not even that it exists)."""
        room = self.room.get(room_id)
        if room.trainer != name and name not in {m.person for m in self.room.rooms.members(room.id)}:
            raise NoSuchRoom(f"no drill room {room_id} for {name}: join it through its link first")
        return room

    def _act(self, action: Action) -> Callable[[Request, Visitor], Awaitable[Response]]:
        """A form of the room: CSRF-checked, done as the signed-in person, back to the room
        (or the room again with why not)."""
        async def endpoint(request: Request, visitor: Visitor) -> Response:
            me, form = _session(visitor), await form_of(request)
            if not csrf_ok(request, me.csrf, form.pop("csrf", None)):
                return _stale(self.console, me)
            room_id = request.path_params["room_id"]
            form.update({k: str(v) for k, v in request.path_params.items()})
            try:
                room = await run_in_threadpool(self._allowed, room_id, me.person.name)
                await run_in_threadpool(action, room, me, form)
            except EngineError as exc:
                return await self.show(request, visitor, str(exc), _status(exc))
            return RedirectResponse(f"/drills/{quote(room_id, safe='')}", status_code=303)
        return endpoint

    def _roles(self, room: RoomRow, me: Session, form: dict[str, str]) -> None:
        roles = {name[5:]: value for name, value in form.items() if name.startswith("role-")}
        self.room.assign(room, me.person, roles)

    def _start(self, room: RoomRow, me: Session, form: dict[str, str]) -> None:
        self.room.start(room, me.person)

    def _control(self, room: RoomRow, me: Session, form: dict[str, str]) -> None:
        self.room.control(room, me.person, form.get("verb", ""), form.get("arg", ""))

    def _answer(self, room: RoomRow, me: Session, form: dict[str, str]) -> None:
        values = {k: v for k, v in form.items() if k not in ("room_id", "prompt_id")}
        self.room.answer(room, int(form["prompt_id"]), me.person, values)

    def _hint(self, room: RoomRow, me: Session, form: dict[str, str]) -> None:
        self.room.hint(room, int(form["prompt_id"]), me.person)

    async def stream(self, request: Request) -> Response:
        """The room's live updates for its trainer or a participant: each journal record
        (id = its seq; a trainee's cut down, room_views.stream_line) from Last-Event-ID on,
        and `room` events when the room itself changed (people, roles, prompts)."""
        visitor = await run_in_threadpool(self.console.gate.visitor, request)
        if visitor.session is None:
            return Response("sign in first", status_code=401, media_type="text/plain")
        name = visitor.session.person.name
        try:
            room = await run_in_threadpool(self._allowed, request.path_params["room_id"], name)
        except EngineError as exc:
            return Response(str(exc), status_code=_status(exc), media_type="text/plain")
        after = _seq(request.headers.get("last-event-id") or request.query_params.get("after"))
        return StreamingResponse(self._events(request, room, name == room.trainer, after),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _events(self, request: Request, room: RoomRow, trainer: bool, after: int) -> AsyncIterator[str]:
        store, version = self.console.store, -1
        while not await request.is_disconnected():
            now = await run_in_threadpool(self.room.rooms.get, room.id)
            if now is None:
                return
            if now.version != version:
                version = now.version
                yield f"event: room\ndata: {version}\n\n"
            lines = await run_in_threadpool(store.records, now.run_id, after=after) if now.run_id else []
            for line in lines:
                after, _ = _head(line, after + 1)
                yield f"id: {after}\ndata: {stream_line(line, trainer)}\n\n"
            if now.status == "ended" and not lines:
                yield "event: end\ndata: ended\n\n"
                return
            if not lines:
                yield ": waiting\n\n"
                await asyncio.sleep(POLL)


def _session(visitor: Visitor) -> Session:
    assert visitor.session is not None  # _signed_in lets no one else in
    return visitor.session


def _status(exc: EngineError) -> int:
    if isinstance(exc, NoSuchRoom):
        return 404
    return next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 500)


def _refused(console: Console, me: Session, status: int, why: str) -> Response:
    return console.render("refused.html", status, me=me, why=why)


def _stale(console: Console, me: Session) -> Response:
    return _refused(console, me, 403, "The form's security token is missing or stale: reload the page and try again.")


def _seq(raw: str | None) -> int:
    try:
        return max(int(raw or 0), 0)
    except ValueError:
        return 0
