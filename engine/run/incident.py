"""Incident command during a run: stakeholder updates and escalation rules.

A runner hook. Updates go out when the run opens, on each phase change, every
`updates.every` while it is open, and when it ends. Escalation rules fire on time
(`after`, optionally only while a prompt or approval waits unanswered), on a condition
(`when`, e.g. the priority), or on a step failure; each notifies its channel once and
is journaled; a rule with `handoff: true` ends the run as `escalated`.

Timers run on the run's clock, so a drill on the virtual clock escalates
deterministically. A failing channel never stops the run; the journal says it failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.errors import TemplateError
from engine.language.duration import format_duration
from engine.language.model import EscalationRule, Runbook
from engine.templates import templating

from .events import EscalationFired
from .state import StepRecord
from .wording import describe

DEFAULT_UPDATE = (
    "{{ runbook.title }}: "
    "{% if update.final %}{{ update.ended }} after {{ update.elapsed }}"
    "{% if incident.priority %} ({{ incident.priority }}){% endif %}"
    "{% if update.last %}; last: {{ update.last }}{% endif %}. No more updates from this run."
    "{% else %}{{ incident.priority or 'priority not set' }}, {{ update.status }}"
    "{% if update.phase and update.status != 'now in ' ~ update.phase %}, phase {{ update.phase }}{% endif %}"
    ", open {{ update.elapsed }}"
    "{% if update.last %}; last: {{ update.last }}{% endif %}."
    "{% if update.next %} Next update within {{ update.next }}.{% endif %}{% endif %}"
)
DEFAULT_ESCALATION = ("Escalation for {{ runbook.title }} ({{ incident.priority or 'priority not set' }}): "
                      "{{ escalation.reason }}")

# How an update says a run ended, for people who do not read outcome codes (`update.ended`).
ENDED = {"resolved": "resolved", "escalated": "handed over (escalated)",
         "not_confirmed": "closed: the alert was not confirmed",
         "failed": "not resolved: the runbook stopped at a failed step",
         "aborted": "stopped by the responders (aborted)", "refused": "stopped: an approval was refused"}

Scheduler = Callable[[float, Callable[[], None]], None]


class IncidentSupervisor:
    """Runner hook for `updates:` and `escalation:`."""

    def __init__(self, runner: Any, schedule: Scheduler) -> None:
        self.runner = runner
        self.runbook: Runbook = runner.runbook
        self.schedule = schedule
        self.fired: set[int] = set(runner.resume.escalations) if runner.resume is not None else set()  # once a run
        self.last: list[str] = []
        self.prompt_started: dict[str, float] = {}
        self.due: set[int] = set()  # rules with both `after` and `when` whose time has come
        self.closed = False

    # -- runner hooks ----------------------------------------------------------------------------

    def on_start(self) -> None:
        now = self.runner.clock.monotonic()
        updates = self.runbook.updates
        if updates is not None:
            self._update("resumed" if self.runner.resume is not None else "declared")
            if updates.every:
                self.schedule(now + updates.every, self._periodic)
        opened = self.runner.opened  # a resumed run has been open since its first attempt
        for rule in self.runbook.escalation:
            if rule.after is not None and not rule.unacknowledged:
                self.schedule(opened + rule.after, self._opened_too_long(rule))
        self.check_conditions()  # a priority known from the start (severity: impact, urgency)

    def _opened_too_long(self, rule: EscalationRule) -> Callable[[], None]:
        return lambda: self._open_for(rule)

    def _open_for(self, rule: EscalationRule) -> None:
        if rule.when is None:
            self._fire(rule, f"the run has been open for {format_duration(rule.after or 0)}")
            return
        # `after` with `when`: from now on the condition decides (now, or after a later step).
        self.due.add(rule.number)
        self.check_conditions()

    def on_phase(self, phase: str) -> None:
        if self.runbook.updates is not None and phase != (self.runbook.phases[0].name if self.runbook.phases else ""):
            self._update(f"now in {phase}")

    def on_step_finished(self, step: Any, rec: StepRecord) -> None:
        if rec.status != "skipped":
            self.last = [*self.last, f"{step.id} {rec.status}"][-3:]
        # A refusal, too, means the runbook cannot go on, unless its on_refuse ends the run another way.
        if rec.status == "failed" or rec.outcome == "failed" or (rec.status == "refused" and rec.outcome is None):
            reason = f"step {step.id} failed: {rec.error}" if rec.status == "failed" else f"step {step.id}: {rec.error}"
            if rec.outcome == "failed":  # an `end:` step (or a refusal's) ends the run failed
                reason = f"step {step.id} ends the run failed: {rec.reason}"
            for rule in self.runbook.escalation:
                if rule.on_failure:
                    self._fire(rule, reason, step.id)
        self.check_conditions(step.id)

    def on_prompt(self, step: str) -> None:
        """A prompt or approval started waiting for a person."""
        started = self.runner.clock.monotonic()
        self.prompt_started[step] = started
        for rule in self.runbook.escalation:
            if rule.unacknowledged and rule.after is not None:
                self.schedule(started + rule.after, self._watch(rule, step, started))

    def _watch(self, rule: EscalationRule, step: str, since: float) -> Callable[[], None]:
        return lambda: self._unanswered(rule, step, since)

    def on_prompt_done(self, step: str) -> None:
        self.prompt_started.pop(step, None)

    def on_finish(self, outcome: str) -> None:
        self.closed = True
        if self.runbook.updates is not None:
            self._update(outcome, final=True)

    # -- escalation ------------------------------------------------------------------------------

    def check_conditions(self, step: str | None = None) -> None:
        for rule in self.runbook.escalation:
            if rule.when is None or rule.number in self.fired or rule.unacknowledged:
                continue
            if rule.after is not None and rule.number not in self.due:
                continue  # not open long enough yet
            if self._holds(rule):
                opened = f", and the run has been open for {format_duration(rule.after)}" if rule.after is not None \
                    else ""
                self._fire(rule, f"{describe(rule.when)}{opened}", step)

    def _holds(self, rule: EscalationRule) -> bool:
        """The rule's `when` (true without one)."""
        if rule.when is None:
            return True
        try:
            return bool(templating.evaluate(rule.when, self._context({"reason": ""}),
                                            where=self.runbook.where(("escalation", rule.number, "when"))))
        except TemplateError:
            return False  # names not known yet (a step that has not run): not true yet

    def _unanswered(self, rule: EscalationRule, step: str, since: float) -> None:
        if self.closed or self.prompt_started.get(step) != since:
            return  # answered in time
        if self._holds(rule):
            self._fire(rule, f"step {step} has waited {format_duration(rule.after or 0)} without an answer", step)

    def _fire(self, rule: EscalationRule, reason: str, step: str | None = None) -> None:
        if rule.number in self.fired or self.closed:
            return
        self.fired.add(rule.number)
        r = self.runner
        r.bus.emit(EscalationFired(rule.number, reason, rule.notify, rule.handoff, step))
        message = self._render(rule.message or DEFAULT_ESCALATION, {"reason": reason},
                               ("escalation", rule.number, "message"))
        r.notify(rule.notify, message, step=step, purpose="escalation", action="trigger")  # a pager pages
        if rule.handoff:
            r.hand_off(f"handed off to {rule.notify}: {reason}")

    # -- updates ---------------------------------------------------------------------------------

    def _periodic(self) -> None:
        updates = self.runbook.updates
        if self.closed or updates is None or not updates.every:
            return
        self._update("still open")
        self.schedule(self.runner.clock.monotonic() + updates.every, self._periodic)

    def _update(self, status: str, *, final: bool = False) -> None:
        updates = self.runbook.updates
        assert updates is not None
        r = self.runner
        info = {"status": status, "phase": None if final else r.state.phase,
                "elapsed": format_duration(r.bus.elapsed()), "last": ", ".join(self.last), "final": final,
                "outcome": status if final else None, "ended": ENDED.get(status, status) if final else None,
                "next": format_duration(updates.every) if updates.every and not final else None}
        text = self._render(updates.message or DEFAULT_UPDATE, info, ("updates", "message"), key="update")
        # A pager's alert for the run closes with the run, if it ended resolved; otherwise
        # people take it from here and it stays open.
        r.notify(updates.channel, text, purpose="update", action="resolve" if final and status == "resolved" else None)

    def _context(self, escalation: dict[str, Any]) -> dict[str, Any]:
        return self.runner.state.context(escalation=escalation)

    def _render(self, text: str, info: dict[str, Any], path: tuple[str | int, ...], key: str = "escalation") -> str:
        ctx = self.runner.state.context(**{key: info})
        try:
            return templating.render(text, ctx, where=self.runbook.where(path))
        except TemplateError as exc:
            return f"{self.runbook.title}: {info.get('status') or info.get('reason')} (message template failed: {exc})"
