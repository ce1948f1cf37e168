"""The web console's pages, server-rendered from the Jinja templates beside this module
(autoescaped: every value a run, an alert or a person brings is text, never markup) and
usable without JavaScript: signing in and out, and the runs.

Every form carries a CSRF token (sessions.py) and every response a Content-Security-Policy
that allows no inline script or style: what the pages need comes from /static/.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.errors import EngineError
from engine.language.duration import format_duration
from engine.reporting.html import content_policy
from engine.reporting.stats import METRICS, trend_text

from . import history, throttle, views
from .api import STATUS, event_stream
from .config import ConsoleSettings
from .drill_room import kept_from
from .prompts import decide, open_question
from .sessions import COOKIE, LOGIN_COOKIE, Gate, Visitor, client_of, csrf_ok, safe_next
from .store import PersonRow, Session, Store

HERE = Path(__file__).parent
STATIC = {"console.css": "text/css", "console.js": "text/javascript", "room.js": "text/javascript",
          "favicon.svg": "image/svg+xml"}
RUNS_POLL = 1.0  # seconds between looks at the runs' counts when nothing wakes the runs stream
RUNS_GAP = 0.25  # seconds at least between two looks (a busy service writes journals all the time)
ANY_RUN = "*"  # Store.journal_ticket's key for a change to any run
MAX_FORM = 16 * 1024  # bytes: a sign-in or an answer, never more
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
          "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = [(b"content-security-policy", POLICY.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY")]

Page = Callable[[Request, Visitor], Awaitable[Response]]


class SecurityHeaders:
    """ASGI middleware: the CSP and its companions on every response the app gives (a
    response that sets its own policy, the report, keeps it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                own = any(name.lower() == b"content-security-policy" for name, _ in headers)
                message["headers"] = [*headers, *(h for h in HEADERS if not (own and h[0] == HEADERS[0][0]))]
            await send(message)
        await self.app(scope, receive, sending)


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["took"] = lambda seconds: f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"
    env.filters["dur"] = lambda seconds: "-" if seconds is None else format_duration(seconds)
    env.filters["when"] = lambda at: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at)) if at else ""
    return env


async def form_of(request: Request) -> dict[str, str]:
    """An url-encoded form's fields (the first value of each); a body over MAX_FORM: none."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return {}
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


class Console:
    """The pages, over a store, for the people of the serve config."""

    def __init__(self, store: Store, settings: ConsoleSettings, catalog: history.Catalog | None = None) -> None:
        self.store, self.gate, self.env = store, Gate(store, settings), _environment()
        self.settings, self.catalog = settings, catalog or history.Catalog((), {})
        self.stats_cache = history.StatsCache()

    def routes(self) -> list[Route]:
        return [
            Route("/", self._signed_in(self.runs), methods=["GET"]),
            Route("/runs/{run_id}", self._signed_in(self.run), methods=["GET"]),
            Route("/runs/{run_id}/questions/{step}", self._signed_in(self.answer), methods=["POST"]),
            Route("/runs/{run_id}/events", self.events, methods=["GET"]),
            Route("/events/runs", self.runs_events, methods=["GET"]),
            Route("/runs/{run_id}/report", self._signed_in(self.report), methods=["GET"]),
            Route("/runs/{run_id}/abort", self._signed_in(self.control), methods=["POST"]),
            Route("/runs/{run_id}/resume", self._signed_in(self.control), methods=["POST"]),
            Route("/alerts/view", self._signed_in(self.alerts), methods=["GET"]),
            Route("/stats", self._signed_in(self.stats), methods=["GET"]),
            Route("/runbooks", self._signed_in(self.runbooks), methods=["GET"]),
            Route("/runbooks/{runbook_id}/graph.svg", self._signed_in(self.graph), methods=["GET"]),
            Route("/audit", self._signed_in(self.audit), methods=["GET"]),
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self._signed_in(self.logout), methods=["POST"]),
            Route("/static/{name}", self.static, methods=["GET"]),
        ]

    def render(self, name: str, status: int = 200, **values: Any) -> HTMLResponse:
        me = values.get("me")
        auditor = me is not None and bool(set(me.person.roles) & set(self.settings.audit_roles))
        return HTMLResponse(self.env.get_template(name).render(auditor=auditor, **values), status_code=status)

    def _signed_in(self, page: Page) -> Callable[[Request], Awaitable[Response]]:
        """A page for people signed in; others go to /login, and come back after."""
        async def endpoint(request: Request) -> Response:
            visitor = await run_in_threadpool(self.gate.visitor, request)
            if visitor.session is None:
                back = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe="")
                return RedirectResponse(f"/login?next={back}", status_code=303)
            response = await page(request, visitor)
            if visitor.new_cookie is not None:
                self.gate.set_cookie(response, request, COOKIE, visitor.new_cookie, self.settings.session)
            return response
        return endpoint

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return Response("not found", status_code=404, media_type="text/plain")
        return FileResponse(HERE / "static" / name, media_type=STATIC[name],
                            headers={"Cache-Control": "no-cache"})

    async def login_form(self, request: Request, problem: str = "", status: int = 200) -> Response:
        token = request.cookies.get(LOGIN_COOKIE) or _fresh_token()
        response = self.render("login.html", status, csrf=token, problem=problem,
                               next=safe_next(request.query_params.get("next")), me=None)
        self.gate.set_cookie(response, request, LOGIN_COOKIE, token, 3600)
        return response

    async def login(self, request: Request) -> Response:
        form = await form_of(request)
        if not csrf_ok(request, request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
            return self.render("refused.html", 403, me=None, why="The form's security token is missing or "
                               "stale. Go back, reload the page and sign in again.")
        name, password = form.get("name", "").strip(), form.get("password", "")
        if name and password:
            throttled = await run_in_threadpool(self._throttled, name, client_of(request))
            if throttled is not None:
                response = await self.login_form(request, throttled.message(), 429)
                response.headers["Retry-After"] = str(math.ceil(throttled.wait))
                return response
        cookie = await run_in_threadpool(self.store.sign_in, name, password, self.settings.session,
                                         client_of(request)) if name and password else None
        if cookie is None:
            return await self.login_form(request, "Wrong name or password.", 401)
        response = RedirectResponse(safe_next(form.get("next")), status_code=303)
        self.gate.set_cookie(response, request, COOKIE, cookie, self.settings.session)
        self.gate.clear_cookie(response, request, LOGIN_COOKIE)
        return response

    def _throttled(self, name: str, address: str) -> throttle.Throttled | None:
        """Refused for now (audited as login.throttled), or None: the password may be checked."""
        refused = throttle.check(self.store, name, address)
        if refused is not None:
            self.store.audit(name, "login.throttled", detail={"from": address, "scope": refused.scope,
                                                               "wait": round(refused.wait)})
        return refused

    async def logout(self, request: Request, visitor: Visitor) -> Response:
        form = await form_of(request)
        assert visitor.session is not None
        if not csrf_ok(request, visitor.session.csrf, form.get("csrf")):
            return self.render("refused.html", 403, me=visitor.session, why="The form's security token is "
                               "missing or stale: reload the page and try again.")
        await run_in_threadpool(self.store.sign_out, request.cookies.get(COOKIE, ""), client_of(request))
        response = RedirectResponse("/login", status_code=303)
        self.gate.clear_cookie(response, request, COOKIE)
        return response

    async def runs(self, request: Request, visitor: Visitor) -> Response:
        page = await run_in_threadpool(views.runs_page, self.store, dict(request.query_params))
        outcomes = await run_in_threadpool(self.store.outcomes)
        return self.render("runs.html", 400 if page.problem else 200, me=visitor.session, page=page,
                           statuses=views.STATUSES, outcomes=sorted(outcomes), modes=views.MODES)

    async def _drill_kept(self, request: Request, session: Session | None, journal: bool = False) -> str | None:
        """Why this person may not read this run here: a drill room's run (drill_room.kept_from)."""
        name = session.person.name if session is not None else ""
        return await run_in_threadpool(kept_from, self.store, request.path_params["run_id"], name, journal=journal)

    async def run(self, request: Request, visitor: Visitor) -> Response:
        if (why := await self._drill_kept(request, visitor.session)) is not None:
            return self.render("refused.html", 403, me=visitor.session, why=why)
        page = await run_in_threadpool(views.run_page, self.store, request.path_params["run_id"])
        if page is None:
            return self.render("refused.html", 404, me=visitor.session, why="There is no such run.")
        return self.render("run.html", me=visitor.session, page=page, tail=views.tail, doing=views.doing,
                           controls=self._controls(visitor.session))

    async def answer(self, request: Request, visitor: Visitor) -> Response:
        """A question or approval answered from the run page, as the signed-in person (their
        roles checked as the API checks a token's); back to the run page, or it with why not."""
        form = await form_of(request)
        session, run_id = visitor.session, request.path_params["run_id"]
        assert session is not None
        if not csrf_ok(request, session.csrf, form.pop("csrf", None)):
            return self.render("refused.html", 403, me=session, why="The form's security token is missing or "
                               "stale: reload the page and answer again.")
        try:
            await run_in_threadpool(self._decide, run_id, request.path_params["step"], session.person, form)
        except EngineError as exc:
            page = await run_in_threadpool(views.run_page, self.store, run_id)
            status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 500)
            if page is None:
                return self.render("refused.html", 404, me=session, why="There is no such run.")
            return self.render("run.html", status, me=session, page=page, tail=views.tail, doing=views.doing,
                               problem=str(exc), controls=self._controls(session))
        return RedirectResponse(f"/runs/{quote(run_id, safe='')}", status_code=303)

    def _decide(self, run_id: str, step: str, person: PersonRow, values: dict[str, str]) -> None:
        decide(self.store, open_question(self.store, run_id, step), person, values, "console")

    async def events(self, request: Request) -> Response:
        """The run's journal as Server-Sent Events (the API's stream), for a signed-in browser:
        the run page's script listens to it and refreshes what changed."""
        visitor = await run_in_threadpool(self.gate.visitor, request)
        if visitor.session is None:
            return Response("sign in first", status_code=401, media_type="text/plain")
        if await run_in_threadpool(self.store.run, request.path_params["run_id"]) is None:
            return Response("no such run", status_code=404, media_type="text/plain")
        if (why := await self._drill_kept(request, visitor.session, journal=True)) is not None:
            return Response(why, status_code=403, media_type="text/plain")
        return event_stream(self.store, request, request.path_params["run_id"], named=False)

    def _controls(self, session: Session | None) -> bool:
        """May this person abort and resume runs (console.roles.control)?"""
        return session is not None and bool(set(session.person.roles) & set(self.settings.control_roles))

    async def control(self, request: Request, visitor: Visitor) -> Response:
        """Abort or resume the run (the last part of the path says which), for the roles in
        console.roles.control; back to the run page, or it with why not."""
        form = await form_of(request)
        session, run_id = visitor.session, request.path_params["run_id"]
        verb = request.url.path.rsplit("/", 1)[1]
        assert session is not None
        if not csrf_ok(request, session.csrf, form.get("csrf")):
            return self.render("refused.html", 403, me=session, why="The form's security token is missing or "
                               "stale: reload the page and try again.")
        if not self._controls(session):
            roles = ", ".join(self.settings.control_roles)
            return self.render("refused.html", 403, me=session, why=f"To {verb} a run takes the role(s) {roles} "
                               f"(yours: {', '.join(session.person.roles) or 'none'}).")
        try:
            await run_in_threadpool(self._control, verb, run_id, session.person.name, form.get("reason", ""),
                                    client_of(request))
        except EngineError as exc:
            page = await run_in_threadpool(views.run_page, self.store, run_id)
            if page is None:
                return self.render("refused.html", 404, me=session, why="There is no such run.")
            return self.render("run.html", 409, me=session, page=page, tail=views.tail, doing=views.doing,
                               problem=str(exc), controls=True)
        return RedirectResponse(f"/runs/{quote(run_id, safe='')}", status_code=303)

    def _control(self, verb: str, run_id: str, name: str, reason: str, address: str) -> None:
        how = {"via": "console", "from": address}
        if verb == "abort":
            why = f"aborted by {name} from the console" + (f": {reason.strip()}" if reason.strip() else "")
            self.store.abort(run_id, name, why, how)
        else:
            self.store.resume(run_id, name, how)

    async def runs_events(self, request: Request) -> Response:
        """A Server-Sent Event (`changed`) each time a run is queued, starts, waits or ends:
        the runs page's script then renders its list again."""
        visitor = await run_in_threadpool(self.gate.visitor, request)
        if visitor.session is None:
            return Response("sign in first", status_code=401, media_type="text/plain")
        return StreamingResponse(self._runs_changes(request), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _runs_changes(self, request: Request) -> AsyncIterator[str]:
        # Woken by any run's journal or end in this process (or on PostgreSQL in any);
        # runs queued by another process are seen at the next look, RUNS_POLL later.
        seen = None
        while not self.store.closing and not await request.is_disconnected():
            ticket = self.store.journal_ticket(ANY_RUN)
            counts = await run_in_threadpool(self.store.counts)
            if seen is not None and counts != seen:
                yield "data: changed\n\n"
            seen = counts
            if not await self.store.wait_for_journal(ANY_RUN, ticket, RUNS_POLL):
                yield ": waiting\n\n"
            else:  # any run's journal wakes it: with many runs going, count at most RUNS_GAP apart
                await asyncio.sleep(RUNS_GAP)

    async def report(self, request: Request, visitor: Visitor) -> Response:
        if (why := await self._drill_kept(request, visitor.session)) is not None:
            return self.render("refused.html", 403, me=visitor.session, why=why)
        reader = visitor.session.person.name if visitor.session is not None else ""
        html = await run_in_threadpool(views.report_html, self.store, request.path_params["run_id"], reader)
        if html is None:
            return self.render("refused.html", 404, me=visitor.session, why="This run has no journal yet.")
        # The report's own policy (its inline style and print script), instead of the pages' one.
        return HTMLResponse(html, headers={"Content-Security-Policy": content_policy()})

    async def alerts(self, request: Request, visitor: Visitor) -> Response:
        unrouted = request.query_params.get("unrouted") == "1"
        rows, deliveries = await run_in_threadpool(views.alerts_page, self.store, unrouted)
        return self.render("alerts.html", me=visitor.session, alerts=rows, deliveries=deliveries,
                           unrouted=unrouted)

    async def stats(self, request: Request, visitor: Visitor) -> Response:
        """`runbook stats` over the newest finished runs of the store."""
        stats, total = await run_in_threadpool(self.stats_cache.stats_of, self.store)
        return self.render("stats.html", me=visitor.session, stats=stats, total=total, metrics=METRICS,
                           trend_text=trend_text, limit=history.STATS_RUNS)

    async def runbooks(self, request: Request, visitor: Visitor) -> Response:
        served = await run_in_threadpool(self.catalog.served, self.store)
        return self.render("runbooks.html", me=visitor.session, served=served)

    async def graph(self, request: Request, visitor: Visitor) -> Response:
        svg = await run_in_threadpool(self.catalog.graph_svg, request.path_params["runbook_id"])
        if svg is None:
            return self.render("refused.html", 404, me=visitor.session, why="The serve config serves no such "
                               "runbook.")
        # The picture carries its own style element; it runs no script.
        return Response(svg, media_type="image/svg+xml",
                        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})

    async def audit(self, request: Request, visitor: Visitor) -> Response:
        """Who did what, for people holding one of the console's audit roles."""
        assert visitor.session is not None
        roles = self.settings.audit_roles
        if not set(visitor.session.person.roles) & set(roles):
            return self.render("refused.html", 403, me=visitor.session, why=f"The audit trail is for the role(s) "
                               f"{', '.join(roles)} (yours: {', '.join(visitor.session.person.roles) or 'none'}).")
        page = await run_in_threadpool(history.audit_page, self.store, dict(request.query_params))
        return self.render("audit.html", me=visitor.session, page=page, kinds=history.AUDITED)


def _fresh_token() -> str:
    return secrets.token_urlsafe(32)
