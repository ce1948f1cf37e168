"""Escalation while a run is parked for a person.

A parked run has no worker and no runner, so the in-process timers of its runbook's
`escalation:` rules (engine/run/incident.py) are gone while it waits: a question nobody
answers would never page anyone. Every worker looks over the waiting runs instead (the
`escalation` thread of worker.py): a rule with `after:` whose time has come on the run's
clock (`unacknowledged`: since the open question was asked; otherwise since the run
opened) fires as the runner would fire it: `escalation.fired` and `notify.sent` in the
run's journal, the message through the run's channels. Exactly once, however many
workers look: the first record is appended only while the run still waits and its
journal still ends where this worker read it (Store.append_waiting), and the message is
sent only after that. The run, once answered, reads the rule as fired in its journal. A
rule with `handoff: true` ends the run there, `escalated` (its questions cancelled), in the
same compare-and-set as its last records.

Not here: rules with `when:` (they need the run's state as a step changes it); they are
the runner's once the run goes on.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.language.duration import format_duration
from engine.language.model import EscalationRule, Runbook
from engine.run.bus import EventBus
from engine.run.events import EscalationFired, Event, NotifySent, RunFinished, Stamp
from engine.run.journal_writer import encode
from engine.run.masking import Masker

from .store import QuestionRow, RunRow, Store

log = logging.getLogger("runbook.worker")


@dataclass(frozen=True)
class Due:
    """A rule whose time has come, and why (as the journal and the message say it)."""

    rule: EscalationRule
    reason: str
    step: str | None


class _Lines:
    """The bus's observer: journal lines, committed at each barrier only while the run
    still waits and nothing else wrote after them (then `Moved`)."""

    def __init__(self, store: Store, run_id: str, after: int) -> None:
        self.store, self.run_id, self.after = store, run_id, after
        self.lines: list[tuple[int, str, str]] = []

    def on_event(self, event: Event, stamp: Stamp) -> None:
        self.lines.append((stamp.seq, event.name, encode(event, stamp).decode("utf-8")[:-1]))

    def barrier(self) -> None:
        if self.lines and not self.store.append_waiting(self.run_id, self.after, self.lines):
            raise Moved(f"run {self.run_id} went on, or another worker escalated it")
        self.after = self.lines[-1][0] if self.lines else self.after
        self.lines = []


class Moved(EngineError):
    """The parked run's journal changed under us: someone else fired the rule, or it resumed."""


@dataclass
class ParkedEscalations:
    """Fires the due `after:` rules of runs waiting for a person (see the module's doc)."""

    store: Store
    scratch: Path
    _runbooks: dict[tuple[str, float], Runbook] = field(default_factory=dict)
    _fired: dict[str, tuple[int, frozenset[int]]] = field(default_factory=dict)  # run -> (last seq read, rules fired)

    def check(self) -> int:
        """Look over every waiting run once; how many rules fired."""
        fired = 0
        waiting = self.store.runs(status="waiting", limit=1000)
        self._fired = {k: v for k, v in self._fired.items() if k in {r.id for r in waiting}}  # forget the gone
        for run in waiting:
            try:
                fired += self._run(run)
            except Moved as exc:
                log.debug("%s", exc)
            except EngineError as exc:  # its runbook is gone, its journal unreadable: the run says so when it goes on
                log.warning("run %s: cannot check its escalation rules: %s", run.id, exc)
        return fired

    def _run(self, run: RunRow) -> int:
        runbook = self._runbook(run.file)
        if runbook is None or not _timed(runbook):
            return 0
        now = time.time()
        asked = self.store.questions(run_id=run.id)
        seen, fired = self._fired.get(run.id, (-1, frozenset()))
        if seen == run.last_seq and not _due(runbook, run.started_at or run.created_at, asked, now, fired):
            return 0  # the common case, decided without reading the journal again
        from engine.run.recovery import recover

        run_dir = self.scratch / f"escalate-{run.id}"
        try:
            recovered = recover(self.store.export(run.id, run_dir))
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
        fired = frozenset(recovered.escalations)
        self._fired[run.id] = (recovered.last_seq, fired)
        due = _due(runbook, recovered.started_at, asked, now, fired)
        for item in due:
            self._fire(run, runbook, recovered, item)
            recovered.last_seq += 2  # escalation.fired and notify.sent
            self._fired[run.id] = (recovered.last_seq, fired := fired | {item.rule.number})
        return len(due)

    def _runbook(self, file: str) -> Runbook | None:
        from engine.language.validation import load_runbook

        try:
            key = (file, Path(file).stat().st_mtime)
        except OSError:
            return None
        if key not in self._runbooks:
            self._runbooks[key] = load_runbook(file)
        return self._runbooks[key]

    def _fire(self, run: RunRow, runbook: Runbook, recovered: Any, due: Due) -> None:
        """escalation.fired committed first (exactly once), then the message, then notify.sent."""
        from engine.run.clock import RealClock

        clock = RealClock()
        masker = _masker(run)
        lines = _Lines(self.store, run.id, recovered.last_seq)
        ago = max(clock.now() - recovered.started_at, recovered.last_elapsed)
        bus = EventBus(clock, [lines], masker, start_seq=recovered.last_seq, elapsed_offset=ago)
        rule = due.rule
        bus.emit(EscalationFired(rule.number, due.reason, rule.notify, rule.handoff, due.step))
        bus.barrier()  # Moved unless this worker is the one to fire it
        message = _message(runbook, run, recovered, due, masker)
        delivery = _notifier().send(rule.notify, message, meta={"runbook": runbook.id, "run_id": run.id,
                                                                "channel_name": rule.notify, "action": "trigger"})
        bus.emit(NotifySent(rule.notify, message, delivery.ok, delivery.error, due.step, "escalation",
                            delivery.attempts, delivery.note))
        if rule.handoff:  # the run ends here, escalated, as its runner would end it
            why = f"handed off to {rule.notify}: {due.reason}"
            bus.emit(RunFinished("escalated", bus.elapsed(), why, due.step))
            if not self.store.end_waiting(run.id, lines.after, lines.lines, "escalated", why):
                log.warning("run %s: escalation %d sent; the run went on before it could be handed off",
                            run.id, rule.number)
            return
        try:
            bus.barrier()
        except Moved:  # answered meanwhile: the message went, its record could not follow
            log.warning("run %s: escalation %d sent; the run went on before its delivery was journaled",
                        run.id, rule.number)
        log.info("run %s waits for a person: escalation %d fired to %s: %s", run.id, rule.number, rule.notify,
                 due.reason)


def _timed(runbook: Runbook) -> bool:
    return any(_applies(rule) for rule in runbook.escalation)


def _applies(rule: EscalationRule) -> bool:
    return rule.after is not None and rule.when is None


def _due(runbook: Runbook, opened: float, asked: list[QuestionRow], now: float,
         fired: frozenset[int]) -> list[Due]:
    """The rules whose time has come (`opened`: wall time the run started)."""
    out = []
    for rule in runbook.escalation:
        if not _applies(rule) or rule.number in fired or rule.after is None:
            continue
        after = format_duration(rule.after)
        if rule.unacknowledged:
            waiting = [q for q in asked if now - q.asked_at >= rule.after]
            if waiting:
                out.append(Due(rule, f"step {waiting[0].step} has waited {after} without an answer", waiting[0].step))
        elif now - opened >= rule.after:
            out.append(Due(rule, f"the run has been open for {after}", None))
    return out


def _masker(run: RunRow) -> Masker:
    masker = Masker()
    for name in run.secrets:
        value = run.inputs.get(name)
        if value not in (None, ""):
            masker.add(str(value))
    return masker


def _message(runbook: Runbook, run: RunRow, recovered: Any, due: Due, masker: Masker) -> str:
    """The rule's message (or the default) rendered as the runner would render it."""
    from engine.run.incident import DEFAULT_ESCALATION
    from engine.run.state import Incident, RunState
    from engine.templates import templating

    state = RunState(runbook, run.id, "live", dict(run.inputs), recovered.started_at, vars=dict(recovered.vars),
                     masker=masker, alert=run.alert)
    if recovered.incident:
        state.incident = Incident(**{k: recovered.incident.get(k) for k in ("impact", "urgency", "priority")})
    text = due.rule.message or DEFAULT_ESCALATION
    try:
        return masker.text(templating.render(text, state.context(escalation={"reason": due.reason}),
                                             where=runbook.where(("escalation", due.rule.number, "message"))))
    except EngineError as exc:
        return f"{runbook.title}: {due.reason} (message template failed: {exc})"


def _notifier() -> Any:
    """The channels config in force, as a run's own notifier finds it (engine/run/session.py)."""
    from engine.executors.channels_file import config_path
    from engine.executors.notify import Notifier, load_channels

    found = config_path(None)
    return Notifier(load_channels(found) if found else None, console=lambda text: log.info("%s", text))
