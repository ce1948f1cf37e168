"""The part of the Store the web console alone uses: journal streams woken by writes, people
aborting and resuming runs, and the audit trail read back (pages, failed sign-ins). A
mixin of `api.Store`, which keeps the one door; here to keep api.py readable."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine

from . import _audit, _control, _wakeup
from .database import is_postgres
from .records import AuditEntry

T = TypeVar("T")


class ConsoleDoor:
    """Store methods for the console (see api.Store)."""

    engine: Engine
    _wakeup: _wakeup.Wakeup

    if TYPE_CHECKING:
        def _read(self, action: Callable[[Connection], T], doing: str) -> T: ...
        def _write(self, action: Callable[[Connection], T], doing: str) -> T: ...

    def abort(self, run_id: str, by: str, reason: str, how: Mapping[str, Any]) -> str:
        """A person stops the run: `cancelled` at once (queued, or waiting for a person), or
        `stopping` (its worker stops it at its next heartbeat); UsageError once it has ended."""
        done = self._write(lambda c: _control.abort(c, run_id, by, reason, how), "abort the run")
        if done == "cancelled":
            self._wakeup.ended(run_id)
        return done

    def aborts(self, run_ids: Sequence[str]) -> dict[str, str]:
        """Which of these runs people asked to stop, and why (for the workers holding them)."""
        return self._read(lambda c: _control.requested(c, run_ids), "read abort requests")

    def resume(self, run_id: str, by: str, how: Mapping[str, Any]) -> None:
        """A person resumes an aborted, failed, refused or cancelled run: queued again, and
        continued from its journal; UsageError for any other run."""
        self._write(lambda c: _control.resume(c, run_id, by, how), "resume the run")
        self._wakeup.changed(run_id)

    def journal_ticket(self, run_id: str) -> int:
        """Take before reading the run's records; `await wait_for_journal(run_id, ticket, ...)`
        after. The run id `*` stands for any run (a change to one wakes its readers too)."""
        return self._wakeup.ticket(run_id)

    @property
    def closing(self) -> bool:
        """The server shuts down (close_streams): readers of journals stop reading."""
        return self._wakeup.closing

    def close_streams(self) -> None:
        """End every journal stream of this process now (at shutdown; signal-safe)."""
        self._wakeup.shut()

    async def wait_for_journal(self, run_id: str, ticket: int, timeout: float) -> bool:
        """Until the run's journal or status changes after `ticket` (a write in this process,
        or on PostgreSQL in any), or `timeout` seconds: False. Readers still poll on False."""
        if is_postgres(self.engine):
            self._wakeup.listen(self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False))
        return await self._wakeup.wait(run_id, ticket, timeout)

    def audit_entries(self, *, what: str | None = None, before: int | None = None, limit: int = 100,
                      run_id: str | None = None) -> list[AuditEntry]:
        """The audit trail, newest first: entries of one kind (`what`) or all, older than the
        entry `before` (an id), of one run or all, at most `limit`."""
        return self._read(lambda c: _audit.entries(c, what, before, limit, run_id), "read the audit trail")

    def failed_sign_ins(self, window: float, *, who: str | None = None, address: str | None = None,
                        limit: int = 100) -> list[float]:
        """How many seconds ago the failed sign-ins of the last `window` seconds were, newest
        first: those of the account `who`, or those from `address`."""
        return self._read(lambda c: _audit.failures(c, window, who, address, limit), "count failed sign-ins")

