"""The service's commands: `runbook serve` (the HTTP service, with workers in-process by
default) and `runbook worker` (claims and carries out queued runs from a shared store).
The `server` extra's packages are imported inside the commands only, so `runbook
validate` and `runbook run` never load them.
"""

from __future__ import annotations

import logging
import signal
import sys
from typing import Any

import click

from engine.errors import UsageError

from .stored import need_server_extra

DATABASE_HELP = ("postgresql://USER@HOST:PORT/NAME shared by every serve and worker process, or "
                 "sqlite:///PATH (default: service.db under $RUNBOOK_HOME). Also $RUNBOOK_DATABASE.")


def database_option(f: Any) -> Any:
    return click.option("--database", envvar="RUNBOOK_DATABASE", metavar="URL", help=DATABASE_HELP)(f)


def labels_of(pairs: tuple[str, ...]) -> dict[str, str]:
    """--label KEY=VALUE pairs; UsageError naming the bad one."""
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--label {pair!r}: expected KEY=VALUE, e.g. --label region=eu")
        labels[key.strip()] = value.strip()
    return labels


def log_to_stderr(level: int = logging.INFO) -> None:
    """One line per event, key=value, for journald or a log shipper."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("time=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s"))
    root = logging.getLogger("runbook")
    root.addHandler(handler)
    root.setLevel(level)


@click.command()
@click.option("-c", "--config", "config_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="A serve config: its `database` and `workers` settings are this worker's defaults.")
@database_option
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="A label of this worker (repeatable): it claims runs whose pool these labels fit.")
@click.option("--slots", type=click.IntRange(1, 256), help="Runs at once (default 4).")
@click.option("--lease", type=click.FloatRange(min=1),
              help="Seconds a claim holds without a heartbeat, then another worker takes the run over (default 30).")
@click.option("--drain-timeout", type=click.FloatRange(min=0),
              help="On SIGTERM: seconds runs in progress may finish before they are handed over (default 30).")
def worker(config_file: str | None, database: str | None, labels: tuple[str, ...], slots: int | None,
           lease: float | None, drain_timeout: float | None) -> None:
    """Claim queued runs from the store and carry them out, until SIGTERM.

    SIGTERM (or Ctrl-C) drains: no new claims; runs in progress finish, or are handed over
    after --drain-timeout and continued by another worker from their journal.
    """
    need_server_extra()
    from engine.service.config import load_config
    from engine.service.store import Store
    from engine.service.worker import Worker, WorkerOptions

    config = load_config(config_file)
    given = config.workers
    from engine.service.slack import announcer_of

    options = WorkerOptions(labels_of(labels) if labels else given.labels, slots or given.slots,
                            lease or given.lease, drain_timeout=given.drain_timeout if drain_timeout is None
                            else drain_timeout, on_question=announcer_of(config))
    log_to_stderr()
    store = Store.open(database or config.database)
    try:
        running = Worker(store, options).start()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: running.drain())
        running.wait()
    finally:
        store.close()


@click.command()
@click.option("-c", "--config", "config_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="The serve config (YAML; `runbook schema serve` prints its schema).")
@database_option
@click.option("--listen", metavar="HOST:PORT", help="Where the HTTP server listens (default 127.0.0.1:8080).")
@click.option("--workers/--no-workers", default=None,
              help="Run workers in this process (default, unless the config says `embedded: false`).")
def serve(config_file: str | None, database: str | None, listen: str | None, workers: bool | None) -> None:
    """Serve the service over HTTP (/healthz, /readyz, /metrics), with workers in-process.

    One process and nothing else to install: the store is SQLite under $RUNBOOK_HOME.
    With --database postgresql://..., any number of `runbook serve` and `runbook worker`
    processes on any machines share it. SIGTERM drains the embedded workers.
    """
    need_server_extra()
    from engine.service.config import load_config
    from engine.service.server import ServeOptions
    from engine.service.server import serve as run_server

    config = load_config(config_file)
    log_to_stderr()
    run_server(config, ServeOptions(database, listen, workers))


@click.command("export")
@click.argument("run_id", metavar="RUN_ID")
@click.option("--database", envvar="RUNBOOK_DATABASE", metavar="URL", required=True,
              help="The service's store (also $RUNBOOK_DATABASE).")
@click.option("-o", "--output", "output", type=click.Path(file_okay=False), metavar="DIR",
              help="The run directory to write (default: ./RUN_ID). It must not exist yet.")
def export(run_id: str, database: str, output: str | None) -> None:
    """Write a stored run as a run directory: journal.jsonl and logs/, byte for byte what a
    CLI run leaves, for any command that reads run directories, or to keep."""
    from pathlib import Path

    need_server_extra()
    from engine.service.store import Store

    target = Path(output or run_id)
    if target.exists():
        raise UsageError(f"{target} exists already: name a new directory with -o")
    store = Store.open(database)
    try:
        journal = store.export(run_id, target)
    finally:
        store.close()
    click.echo(f"wrote {journal}")


COMMANDS = (serve, worker, export)
