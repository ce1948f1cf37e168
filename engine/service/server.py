"""What `runbook serve` runs: the store, the embedded workers and the app, on uvicorn.

One process by default (SQLite under $RUNBOOK_HOME, workers in-process); with
PostgreSQL, any number of serve and `runbook worker` processes share the store. The
listening socket is bound here, before uvicorn starts, so a port in use is a clear error.
SIGTERM and Ctrl-C are uvicorn's: it stops taking requests, and the app's lifespan drains
the embedded workers (runs finish, or are handed over after the drain timeout).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

import uvicorn
from starlette.types import ASGIApp

from engine.errors import UsageError

from .app import build_app
from .config import ServeConfig
from .console import Console
from .history import Catalog
from .intake import Intake
from .prompts import people_of
from .room_pages import RoomPages
from .routing import Router
from .slack import SlackInteractions, announcer_of
from .store import Store
from .worker import Worker, WorkerOptions

log = logging.getLogger("runbook.serve")


@dataclass(frozen=True)
class ServeOptions:
    """The command line's word over the config file's."""

    database: str | None = None
    listen: str | None = None
    workers: bool | None = None  # None: as the config says (default: embedded)


def listen_socket(listen: str) -> socket.socket:
    """A bound, listening TCP socket for HOST:PORT; UsageError when it cannot be had."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    # IPPROTO_TCP said outright: asyncio turns Nagle's algorithm off only on the
    # connections of a socket whose protocol is TCP, and with it on every answer waited
    # for the client's delayed ACK (40 ms per request on a kept-alive connection).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]") or "127.0.0.1", int(port)))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    return sock


def serve(config: ServeConfig, options: ServeOptions) -> None:
    """Serve until SIGTERM or Ctrl-C."""
    listen = options.listen or config.listen
    router = Router.of(config)
    sock = listen_socket(listen)
    store = Store.open(options.database or config.database)
    try:
        if config.file is not None:  # the config says who may answer what; without one, the store does
            store.set_people(people_of(config))
        worker = _worker(store, config, options)
        intake = Intake(store, config.sources, router, on_queued=worker.wake if worker else lambda: None)
        catalog = Catalog(config.runbooks, {t.runbook.id: (t.file, t.runbook) for t in router.targets})
        console = Console(store, config.console, catalog)
        app = build_app(store, worker, intake, _slack(store, config), console, RoomPages(console, config))
        log.info("listening on http://%s, store %s, %s", listen, store,
                 f"{worker.options.slots} embedded worker slot(s)" if worker else "no embedded workers")
        run_app(app, sock, graceful=config.workers.drain_timeout + 5, on_exit=store.close_streams)
    finally:
        sock.close()
        store.close()


def run_app(app: ASGIApp, sock: socket.socket, *, graceful: float,
            on_exit: Callable[[], None] = lambda: None) -> None:
    """Serve `app` on the listening socket until SIGTERM or Ctrl-C (then wait up to
    `graceful` seconds for requests in flight and the lifespan's drain). `on_exit` is
    called at the signal: it ends the event streams, which would otherwise hold the stop."""
    server = _Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on",
                                    timeout_graceful_shutdown=int(graceful)))
    server.on_exit = on_exit
    server.run(sockets=[sock])


class _Server(uvicorn.Server):
    """uvicorn's server, except that SIGTERM and Ctrl-C end the service with exit status 0
    once it has shut down (uvicorn raises the signal again, so the process would die of it:
    a drained, clean stop would look like a crash to whoever started it)."""

    on_exit: Callable[[], None] = staticmethod(lambda: None)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.on_exit()
        super().handle_exit(sig, frame)

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {signum: signal.signal(signum, self.handle_exit) for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def _slack(store: Store, config: ServeConfig) -> SlackInteractions | None:
    """Slack's interactivity endpoint, when the config has a `slack:` signing secret."""
    if config.slack_secret_env is None:
        return None
    secret = os.environ.get(config.slack_secret_env)
    if not secret:
        raise UsageError(f"{config.file}: slack.signing_secret names ${config.slack_secret_env}, which is not set")
    return SlackInteractions(store, secret)


def _worker(store: Store, config: ServeConfig, options: ServeOptions) -> Worker | None:
    settings = config.workers
    embedded = settings.embedded if options.workers is None else options.workers
    if not embedded:
        return None
    return Worker(store, WorkerOptions(settings.labels, settings.slots, settings.lease,
                                       drain_timeout=settings.drain_timeout, on_question=announcer_of(config)))
