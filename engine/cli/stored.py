"""Reading runs from the service's store with the commands that read journals (`report`,
`stats`, `scenario from-run`): with `--database URL` they take run ids, and the runs are
exported from the store into a temporary directory (journal.jsonl and logs/, byte for
byte what a CLI run leaves), read as any run directory is, and removed after.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from engine.errors import UsageError


def need_server_extra(what: str = "this command") -> None:
    """UsageError (not a traceback) when the `server` extra is not installed."""
    try:
        import sqlalchemy  # noqa: F401
    except ImportError:
        raise UsageError(f"{what} needs the server extra: pip install 'runbook-engine[server]'") from None


class RunSource(click.Path):
    """A run directory or journal; with --database, the id of a run in the store."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        # Not truthiness: click marks an option not given yet with a sentinel that is true.
        if ctx is not None and isinstance(ctx.params.get("database"), str) and ctx.params["database"]:
            return value
        return super().convert(value, param, ctx)


def database_option(f: Any) -> Any:
    # Eager: the run arguments are converted knowing whether they are ids or paths.
    return click.option("--database", metavar="URL", is_eager=True,
                        help="Read runs from the service's store (postgresql://... or sqlite:///...): "
                             "give run ids instead of directories.")(f)


@contextmanager
def exported(database: str, run_ids: Sequence[str]) -> Iterator[list[str]]:
    """Run directories of these runs (every finished run when none is named), exported
    from the store into a temporary directory that is removed after."""
    need_server_extra("--database")
    from engine.service.store import Store

    store = Store.open(database)
    try:
        ids = list(run_ids) or [run.id for run in store.runs(status="finished", limit=1_000_000)]
        with tempfile.TemporaryDirectory(prefix="runbook-stored-") as tmp:
            yield [str(store.export(run_id, Path(tmp) / run_id).parent) for run_id in ids]
    finally:
        store.close()


def stored_source(database: str, run_id: str) -> str:
    """How a report names a run read from the store (its password hidden)."""
    from engine.service.store.database import database_url, shown_url

    return f"run {run_id} in {shown_url(database_url(database))}"


def stored_runs(database: str, limit: int) -> list[Any]:
    """`runbook runs --database`: the store's runs, newest first, as run summaries (a run
    not yet finished shows its status: queued, running, waiting)."""
    from engine.executors.timestamps import iso
    from engine.run.history import RunSummary

    need_server_extra("--database")
    from engine.service.store import Store

    store = Store.open(database)
    try:
        rows = store.runs(limit=limit)
    finally:
        store.close()
    return [RunSummary(run_id=r.id, runbook=r.runbook, mode="live", started=iso(r.started_at or r.created_at),
                       outcome=r.outcome or r.status,
                       duration=r.finished_at - r.started_at if r.finished_at and r.started_at else None,
                       path=r.file) for r in rows]
