"""POST /hooks/<source>: alerts come in.

In order: the source must exist (404), the body must fit (413), the delivery must prove
its sender (401; neither is stored: anyone may knock). Then the body is read in the
source's format (payloads.py); one that cannot be read is stored raw as `rejected` and
answered 400 with the reason. One that can is routed (routing.py) and handed to the
store in one transaction (raw body, dedup key, alerts, queued runs): answered 202 with
what happened to each alert, or 200 when it repeats a delivery already taken. Only when
the store cannot take it is the answer 5xx (Alertmanager retries those). Nothing runs
here: workers claim the queued runs (the embedded ones are woken at once).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .authentication import Guard
from .config import Source
from .payloads import PayloadError, digest, parse
from .routing import Router
from .store import NewAlert, NewDelivery, Received, Store, StoreError

log = logging.getLogger("runbook.intake")

MAX_BODY = 1 << 20  # 1 MiB: Alertmanager truncates a group long before (max_alerts)
DRAINED = 8  # a body up to 8x too large is read to its end before the 413 (see _read)
BODY_TIMEOUT = 10.0  # seconds a sender may pause while sending its body
KEPT_HEADERS = ("content-type", "content-length", "user-agent", "x-webhook-id", "x-webhook-subscription",
                "x-forwarded-for", "x-request-id")


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


@dataclass
class Intake:
    """The hooks of a serve config's sources, routed by its routes into `store`."""

    store: Store
    sources: Mapping[str, Source]
    router: Router
    on_queued: Callable[[], None] = lambda: None  # wake the embedded workers
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    refused: dict[str, int] = field(default_factory=dict)  # not stored: by reason (unknown, unsigned, too large)

    def __post_init__(self) -> None:
        self.guards = {name: Guard.of(source, self.environ) for name, source in self.sources.items()}

    async def hook(self, request: Request) -> Response:
        name = request.path_params["source"]
        source = self.sources.get(name)
        if source is None:
            known = ", ".join(sorted(self.sources)) or "none: the serve config lists no sources"
            return self._refuse("unknown", 404, f"no source named {name!r} (sources: {known})")
        try:
            body = await _read(request, MAX_BODY)
        except _TooLarge:
            return self._refuse("too_large", 413, f"the body is larger than {MAX_BODY} bytes")
        except _TooSlow:
            log.warning("hook %s: %s stopped sending its body", name, _client(request))
            return self._refuse("too_slow", 408, f"the body stopped coming for {BODY_TIMEOUT:g} s")
        why = self.guards[name].check(request.headers, body)
        if why is not None:
            log.warning("hook %s: refused a delivery from %s: %s", name, _client(request), why)
            return self._refuse("unauthenticated", 401, why)
        kept = {k: request.headers[k] for k in KEPT_HEADERS if k in request.headers}
        try:
            delivery = self.delivery(source, body, request.headers, kept)
        except PayloadError as exc:
            return await self._reject(NewDelivery(name, body, kept, reason=str(exc)))
        try:
            received = await run_in_threadpool(self.store.receive, delivery)
        except StoreError as exc:
            log.error("hook %s: the delivery was not stored (answered 503): %s", name, exc)
            return JSONResponse({"error": f"the delivery was not stored: {exc}"}, status_code=503,
                                headers={"Retry-After": "5"})
        return self._answer(name, received)

    def delivery(self, source: Source, body: bytes, headers: Mapping[str, str],
                 kept: Mapping[str, str]) -> NewDelivery:
        """The body read and routed (PayloadError when it cannot be read)."""
        notification = parse(source, body, headers)
        return NewDelivery(source.name, body, kept, notification.dedup_key,
                           tuple(self._alert(source.name, a) for a in notification.alerts))

    def _alert(self, source: str, alert: Mapping[str, Any]) -> NewAlert:
        labels = dict(alert.get("labels") or {})
        target = self.router.match(source, alert)
        firing = alert["status"] == "firing"
        return NewAlert(
            occurrence=digest(source, alert["fingerprint"], alert.get("startsAt") or ""),
            fingerprint=alert["fingerprint"], name=str(labels.get("alertname", "alert")), status=alert["status"],
            labels=labels, label_key=digest(sorted(labels.items())), starts_at=alert.get("startsAt"),
            ends_at=alert.get("endsAt"), route=target.name if target else None,
            policy=target.policy if target else {}, once_within=target.route.once_within if target else None,
            run=target.run(source, alert) if target is not None and firing else None)

    async def _reject(self, delivery: NewDelivery) -> Response:
        log.warning("hook %s: rejected a delivery: %s", delivery.source, delivery.reason)
        try:
            number = await run_in_threadpool(self.store.reject, delivery)
        except StoreError as exc:
            log.error("hook %s: the rejected delivery was not stored either: %s", delivery.source, exc)
            number = None
        return JSONResponse({"error": delivery.reason, "delivery": number}, status_code=400)

    def _answer(self, source: str, received: Received) -> Response:
        if received.duplicate_of is not None:
            return JSONResponse(received.to_dict(), status_code=200)
        for alert in received.alerts:
            level = logging.WARNING if alert.action == "unrouted" else logging.INFO
            log.log(level, "hook %s: alert %s (%s) %s: %s", source, alert.name, alert.fingerprint, alert.status,
                    alert.detail)
        if any(a.action == "queued" for a in received.alerts):
            self.on_queued()
        return JSONResponse(received.to_dict(), status_code=202)

    def _refuse(self, reason: str, status: int, message: str) -> Response:
        self.refused[reason] = self.refused.get(reason, 0) + 1
        headers = {"WWW-Authenticate": 'Bearer realm="runbook"'} if status == 401 else None
        return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _read(request: Request, limit: int) -> bytes:
    """The body, or _TooLarge past `limit` bytes, or _TooSlow when it stops coming. A body a
    little too large is read to its end all the same (and dropped): a sender still writing
    it when the answer came and the connection closed would see a broken pipe, not the
    413 that says why."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > DRAINED * limit:
        raise _TooLarge
    chunks, size = [], 0
    watchdog = _Watchdog(BODY_TIMEOUT)
    try:
        async for chunk in request.stream():
            watchdog.fed()
            size += len(chunk)
            if size > DRAINED * limit:
                break
            if size <= limit:
                chunks.append(chunk)
    except asyncio.CancelledError:
        if not watchdog.fired:
            raise
        watchdog.forgive()
        raise _TooSlow from None
    finally:
        watchdog.stop()
    if size > limit:
        raise _TooLarge
    return b"".join(chunks)


class _Watchdog:
    """Cancels the task reading a body once no chunk has come for `seconds` (a stalled or
    trickling sender holds a connection, never the intake: others are served meanwhile).
    One timer per body, moved on by each chunk: asyncio.wait_for around each chunk made a
    task every time, nine more turns of the event loop and half the hook's own CPU."""

    def __init__(self, seconds: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.seconds, self.last, self.fired = seconds, self.loop.time(), False
        self.timer = self.loop.call_later(seconds, self._check)

    def fed(self) -> None:
        self.last = self.loop.time()

    def stop(self) -> None:
        self.timer.cancel()

    def forgive(self) -> None:
        """The cancellation was this watchdog's and is handled (Python 3.11+ counts them)."""
        uncancel = getattr(self.task, "uncancel", None)
        if uncancel is not None:
            uncancel()

    def _check(self) -> None:
        idle = self.loop.time() - self.last
        if idle < self.seconds:
            self.timer = self.loop.call_later(self.seconds - idle, self._check)
        elif self.task is not None:
            self.fired = True
            self.task.cancel()


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "an unknown client"
