"""The connections file: Prometheus and Alertmanager servers every runbook may name,
kept once for a team instead of in each runbook. It is `$RUNBOOK_CONNECTIONS`, else
connections.yaml in the runbook home when there is one; a runbook's own `connections:`
entry of the same name wins. Read once per process (again if the file changes).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType

from engine.errors import UsageError
from engine.home import home

from .cache import note
from .loader import LoadError, load_file
from .model import Runbook
from .monitoring import Connection, build_connection
from .schema import validate_as

ENV = "RUNBOOK_CONNECTIONS"
CONFIG_NAME = "connections.yaml"


def config_path() -> str | None:
    """The connections file in force, or None."""
    chosen = os.environ.get(ENV)
    if chosen:
        return chosen
    fallback = home() / CONFIG_NAME
    return os.fspath(fallback) if fallback.is_file() else None


def in_force() -> Mapping[str, Connection]:
    """The connections of the file in force (none without one); UsageError naming each
    problem of a bad file, positioned."""
    path = config_path()
    if path is None:
        return MappingProxyType({})
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError as exc:
        raise UsageError(f"connections file {path} (${ENV}): {exc.strerror}") from None
    return _load(path, stamp)


@cache
def _load(path: str, stamp: int) -> Mapping[str, Connection]:
    try:
        doc = load_file(path)
    except LoadError as exc:
        raise UsageError(f"connections file: {_where(exc.diagnostic)}") from None
    problems = sorted([*doc.problems, *validate_as(doc, "connections")], key=lambda d: d.sort_key())
    errors = [d for d in problems if d.is_error]
    if errors:
        raise UsageError(f"connections file {path} is not valid ({len(errors)} error(s)):\n"
                         + "\n".join(f"  {_where(d)}" for d in errors))
    return MappingProxyType({str(k): build_connection(str(k), v, file=path)
                             for k, v in doc.data["connections"].items()})


def _where(d: object) -> str:
    return f"{d.file}:{d.line}:{d.column}: {d.message} [{d.rule}]"  # type: ignore[attr-defined]


def add_to(runbook: Runbook) -> Runbook:
    """The runbook with the file's connections beside its own (its own win)."""
    # The model depends on the file in force, or on there being none.
    note(os.environ.get(ENV) or home() / CONFIG_NAME)
    shared = in_force()
    if shared:
        runbook.connections = MappingProxyType({**shared, **runbook.connections})
    return runbook
