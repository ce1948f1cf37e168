"""Sending a run's messages: a notify step's, and incident command's updates and
escalations (incident.py). Each is masked, sent through the run's notifier and journaled
as notify.sent. An update or escalation to a channel that may be slow (a webhook) goes
through the outbox, off the run's thread; the run drains it before it ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.executors.base import Cancel

from .attempt import Attempt
from .bus import EventBus
from .events import NotifySent
from .masking import Masker
from .services import Services

if TYPE_CHECKING:  # a run that sends nothing slow starts no outbox (nor imports queue)
    from .outbox import Outbox


class Messenger:
    """The messages of one run (an included runbook's have a messenger of their own)."""

    def __init__(self, runbook_id: str, run_id: str, services: Services, bus: EventBus, masker: Masker,
                 cancel: Cancel) -> None:
        self.runbook_id, self.run_id = runbook_id, run_id
        self.services, self.bus, self.masker, self.cancel = services, bus, masker, cancel
        self._outbox: Outbox | None = None  # delivers updates and escalations off this thread

    def send(self, channel: str, message: str, *, title: str | None = None, step: str | None = None,
             purpose: str = "notify", budget: float | None = None, required: bool = False,
             action: str | None = None) -> Attempt:
        """Send a message; a failed delivery is journaled and fails only a `required` one
        (or a channel the config does not know: that is a mistake, not an outage). Updates
        and escalations to a channel that may be slow (a network one) go through the outbox.
        `action` tells a pager to trigger, acknowledge or resolve the run's alert."""
        slow = getattr(self.services.notifier, "slow", None)
        if purpose != "notify" and slow is not None and slow(channel):
            if self._outbox is None:
                from .outbox import Outbox

                self._outbox = Outbox()
            self._outbox.put(lambda: self._deliver(channel, message, title, step, purpose, budget, required, action))
            return Attempt(True)
        # The run's messages leave in order: a pager's acknowledge must not overtake the
        # trigger still queued (it would be dropped, and the trigger would page), nor a
        # Slack message the thread's first.
        self.drain()
        return self._deliver(channel, message, title, step, purpose, budget, required, action)

    def drain(self) -> None:
        """Wait until every update and escalation queued is delivered (and journaled)."""
        if self._outbox is not None:
            self._outbox.drain()

    def _deliver(self, channel: str, message: str, title: str | None, step: str | None, purpose: str,
                 budget: float | None, required: bool, action: str | None) -> Attempt:
        self.bus.barrier()
        meta: dict[str, Any] = {"runbook": self.runbook_id, "run_id": self.run_id, "channel_name": channel}
        if action is not None:
            meta["action"] = action
        delivery = self.services.notifier.send(channel, self.masker.text(message),
                                               title=self.masker.text(title) if title else None, meta=meta,
                                               budget=budget, cancel=self.cancel, required=required)
        self.bus.emit(NotifySent(channel, message, delivery.ok, delivery.error, step, purpose,
                                 delivery.attempts, delivery.note))
        ok = delivery.ok or not (required or delivery.unknown)
        return Attempt(ok, None if ok else delivery.error)
