"""Running one step, from `when` to its step.finished: `for_each` (_for_each.py),
`confirm` (_manual.py), retries, each attempt (_polling.py: the action through its kind,
`until`, `outputs`, `expect`), and the record of how it went.

The Runner owns the run; this owns a step, and sees the run only as a RunView
(_driver.py). It raises StepStop when the run must end.
"""

from __future__ import annotations

import json
from typing import Any

from engine.errors import JournalError, TemplateError
from engine.executors.base import parse_json
from engine.language.model import CONTAINERS, HttpSpec, ManualSpec, Retries, RunSpec, SetSpec, Step
from engine.language.monitoring import AlertSpec, PromqlSpec, ScrapeTargetsSpec, SilenceSpec, UnsilenceSpec
from engine.templates import templating

from ._commands import next_try, started_command, started_request
from ._driver import Driver, RunView
from ._hosts import hosts_of
from ._manual import approval, instructions, refusal
from ._output import TAIL, masked_tail
from ._polling import attempt_event, one_attempt
from .attempt import Attempt, StepStop
from .events import StepFinished, StepStarted
from .journal_writer import jsonable
from .masking import Masker
from .state import StepRecord


class StepDriver(Driver):
    """Executes the steps of one run."""

    def execute(self, step: Step, rollback_of: str | None = None) -> StepRecord:
        """Run a step to completion and record it; StepStop if the run must end."""
        r = self.r
        sid = f"{r.prefix}{step.id}"
        t0, lag = r.clock.monotonic(), self.lag
        self.announced = False
        scope = dict(self.scope) if self.scope else {}  # inside a block with for_each: its item's names
        try:
            if step.for_each is not None:
                from ._for_each import for_each  # kinds of step most runs have none of: on first use

                rec = for_each(self, step, sid, rollback_of,
                               lambda s, i, back, extra: self._guarded(s, i, back, {**scope, **extra}))
            elif step.when is None:  # most steps: straight to the run
                rec = self._run(step, sid, rollback_of, scope)
            else:
                rec = self._guarded(step, sid, rollback_of, scope)
        except JournalError as exc:
            # The journal cannot record more (a full disk): this step ends here, and says why.
            rec = StepRecord(step.id, status="failed", error=f"journal: {exc}")
        if rec.status == "failed" and r.cancel.is_set():
            rec.status = "aborted"  # it failed because Ctrl-C or SIGTERM stopped it (a render, a wait)
        rec.duration = r.clock.monotonic() - t0 - (self.lag - lag)  # less its turns waited (_items.py)
        r.state.record(rec)
        if self.ran is not None:
            self.ran[step.id] = rec  # this item's own run of it (items may run at once)
        self._finished(step, sid, rec, rollback_of)
        return rec

    def _guarded(self, step: Step, sid: str, rollback_of: str | None, extra: dict[str, Any]) -> StepRecord:
        if step.when is not None:
            try:
                go = templating.evaluate(step.when, self.context(extra), where=self.where(step, "when"))
            except TemplateError as exc:
                return StepRecord(step.id, status="failed", error=str(exc))
            if not go:
                return StepRecord(step.id, status="skipped", error=None,
                                  outputs={}, answers={}, stdout="", stderr="")
        return self._run(step, sid, rollback_of, extra)

    def _run(self, step: Step, sid: str, rollback_of: str | None, extra: dict[str, Any]) -> StepRecord:
        """One execution (an item, or the whole step): start, approval, attempts and retries."""
        r = self.r
        try:
            self._start(step, sid, rollback_of, extra)
        except TemplateError as exc:
            return StepRecord(step.id, status="failed", error=str(exc))
        try:  # its confirm, or the run's policy's approval (most steps need neither)
            asked = step.confirm is not None or r.services.policy is not None
            reply = approval(self, step, sid, extra) if asked else None
        except StepStop as stop:  # no one to ask, or Ctrl-C: the step still gets its step.finished
            return StepRecord(step.id, status=stop.outcome, error=stop.reason)
        if reply is not None and not reply.approved:
            return self._refused(step, sid, refusal(reply), extra)
        # A block or a switch is not retried: the steps inside it have retries of their own.
        retries = _ONCE if step.kind in CONTAINERS else step.retries or r.runbook.defaults.retries or _ONCE
        attempt: Attempt | None = None
        tries = number = 0  # `attempt` in templates: every retry and every poll is one more
        for number in range(1, retries.attempts + 1):
            attempt = one_attempt(self, step, sid, number, extra, tries + 1)
            tries += attempt.tries
            if attempt.ok or attempt.cancelled or attempt.refused or (attempt.expect_false and _detects(r, step)):
                break
            if number < retries.attempts:
                delay = retries.delay_before(number + 1)
                upcoming = next_try(self, step, {**extra, "attempt": tries + 1})
                r.bus.emit(attempt_event(self, sid, number, attempt, delay, polling=False, command=upcoming))
                if not r.sleep(delay):
                    attempt = Attempt(False, r.interruption(), cancelled=True)
                    break
        return self._recorded(step, attempt if attempt is not None else Attempt(False, "not run"), number)

    def _refused(self, step: Step, sid: str, why: str, extra: dict[str, Any]) -> StepRecord:
        """A refused approval: the run ends `refused`, unless the step's `on_refuse:` says
        to skip it, end the run another way, or run other steps instead."""
        refuse = step.confirm.on_refuse if step.confirm is not None else None  # (a policy's: the run ends)
        if refuse is None:
            return StepRecord(step.id, status="refused", error=why)
        from ._branch import refused

        try:
            attempt = refused(self, step, sid, refuse, why, extra)
        except TemplateError as exc:
            attempt = Attempt(False, str(exc))
        rec = self._recorded(step, attempt, 0)
        if attempt.ok:  # the step itself did not run; the run goes on, or ends as on_refuse says
            rec.status, rec.reason = ("refused" if refuse.end is not None else "skipped"), why
        return rec

    def _start(self, step: Step, sid: str, rollback_of: str | None, extra: dict[str, Any]) -> None:
        """Emit step.started with the rendered command (secrets masked by the bus)."""
        r = self.r
        command = shown = per_host = None
        spec = step.spec
        target = step.target or (r.runbook.defaults.target if step.kind == "run" else None)
        if isinstance(spec, RunSpec):  # what the first try runs (`attempt` is 1)
            command, shown, per_host = started_command(self, step, spec, target, {**extra, "attempt": 1})
        elif isinstance(spec, HttpSpec):
            shown = started_request(self, step, spec, {**extra, "attempt": 1})
        elif isinstance(spec, (PromqlSpec, ScrapeTargetsSpec, AlertSpec, SilenceSpec, UnsilenceSpec)):
            shown = _monitoring_started(self, step, spec, {**extra, "attempt": 1})
        # A manual step's text is rendered here, once, so that what the person reads (the
        # console shows step.started) is what the journal and every report say they read.
        text = instructions(self, step, spec, extra) if isinstance(spec, ManualSpec) else None
        hosts = hosts_of(self, target, step) if target else []
        item = ((extra.get("_shown") or {}).get("item", extra.get("item"))) if extra else None  # a plain step: none
        r.bus.emit(StepStarted(sid, step.phase, step.kind, step.title, shown, target, hosts,
                               step.role or r.runbook.defaults.role, rollback_of, _jsonable(item) if item else item,
                               text, *(self.within or _OUTSIDE)))
        self.start(command, target, hosts, per_host, text)

    # -- recording ---------------------------------------------------------------------------

    def _recorded(self, step: Step, attempt: Attempt, attempts: int) -> StepRecord:
        """The step's record, made whole at once from its last attempt."""
        res = attempt.result
        if res is not None:
            # In the order of StepRecord's fields (keywords cost about 6k instructions a step more):
            # id, status, exit_code, stdout, stderr, outputs, answers, duration, attempts,
            # status_code, headers, body, json, hosts, items, error, truncated, results.
            rec = StepRecord(  # (most steps: ok, their status without a call)
                step.id, "ok" if attempt.ok else _status(self.r, step, attempt), res.exit_code, res.stdout, res.stderr,
                attempt.outputs, attempt.answers, 0.0, attempts, res.status,
                dict(res.headers) if res.headers else {}, res.body,
                parse_json(res.body if res.body is not None else res.stdout) if self.r.uses_json else None,
                attempt.hosts, [], attempt.error, res.truncated, dict(res.extra) if res.extra else {})
        else:
            rec = StepRecord(step.id, _status(self.r, step, attempt), outputs=attempt.outputs,
                             answers=attempt.answers, attempts=attempts, hosts=attempt.hosts, error=attempt.error)
            if len(attempt.hosts) == 1:
                # One host: the step's stdout is that host's (with several, use steps.X.hosts).
                only = next(iter(attempt.hosts.values()))
                rec.exit_code, rec.stdout = only.get("exit_code"), only.get("stdout", "")
                rec.stderr = only.get("stderr", "")
        if attempt.extra:  # a switch's case, an `end:` step's outcome and reason
            rec.case, rec.outcome = attempt.extra.get("case"), attempt.extra.get("outcome")
            rec.reason = attempt.extra.get("reason")
        if attempt.shown_outputs is not None:
            rec.shown["outputs"] = attempt.shown_outputs
        return rec

    def _finished(self, step: Step, sid: str, rec: StepRecord, rollback_of: str | None) -> None:
        r = self.r
        if not self.announced and rec.status != "skipped":
            # It failed before it could start (a template in `when` or `run`): the journal
            # still shows it starting, so every step.finished has its step.started.
            r.bus.emit(StepStarted(sid, step.phase, step.kind, step.title, None, step.target, [],
                                   step.role or r.runbook.defaults.role, rollback_of, None, None,
                                   *self._within()))
        m, shown, out, err = r.masker, rec.shown, rec.stdout, rec.stderr
        outputs = shown.get("outputs", rec.outputs) if shown else rec.outputs
        # (Empty outputs, answers and streams, as most steps have, are written as they are.)
        r.bus.emit(StepFinished(
            sid, step.phase, step.kind, rec.status, rec.duration, rec.attempts, rec.exit_code,
            rec.error, rec.reason or ("when was false" if rec.status == "skipped" else None),
            masked_tail(m, out) if out != "" else out, masked_tail(m, err) if err != "" else err,
            rec.truncated or len(out) > TAIL,
            _jsonable(outputs) if outputs else outputs, _jsonable(rec.answers) if rec.answers else rec.answers,
            rec.status_code, _hosts(m, rec.hosts) if rec.hosts else {},
            _items(shown.get("items", rec.items)) if rec.items or shown.get("items") else [],
            _jsonable({**r.state.vars, **r.state.shown_vars}) if isinstance(step.spec, _SETTING) and _sets_vars(step) \
            else {},
            self.logs_of(sid), rollback_of, *(self.within or _OUTSIDE), rec.case, rec.outcome,
            _results(rec.results) if rec.results else {},
        ))

    def _within(self) -> tuple[str | None, int | None]:
        """The block (and item index) the step runs inside, as events name them."""
        return self.within or _OUTSIDE


_OUTSIDE: tuple[str | None, int | None] = (None, None)  # a step outside any block
_ONCE = Retries()  # no retries (immutable)


# Kinds of step most runs have none of: their modules are imported when first used.
def _monitoring_started(d: StepDriver, step: Step, spec: Any, extra: dict[str, Any]) -> str | None:
    """What step.started shows of a promql, scrape_targets, alert, silence or unsilence step."""
    if isinstance(spec, PromqlSpec):
        from ._promql import started_query

        return started_query(d, step, spec, extra)
    if isinstance(spec, ScrapeTargetsSpec):
        from ._promql import started_targets

        return started_targets(d, step, spec, extra)
    from ._alertmanager import started

    return started(d, step, spec, extra)


def _hosts(m: Masker, hosts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What the journal keeps of each host of a fan-out: its output's tail, masked."""
    return {h: {k: v for k, v in d.items() if k not in ("stdout", "stderr")} | {
        "stdout": masked_tail(m, d.get("stdout", "")), "stderr": masked_tail(m, d.get("stderr", ""))}
        for h, d in hosts.items()}


def _items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the journal keeps of each item of a for_each."""
    return [{k: _jsonable(v) if k == "item" else v for k, v in i.items()
             if k in ("index", "item", "status", "exit_code", "error")} for i in items]


RESULTS_LIMIT = 64 * 1024  # characters of JSON a step's kind results may take in its step.finished


def _results(results: dict[str, Any]) -> dict[str, Any]:
    """What the journal keeps of a kind's results: all of them, or when they are large (a
    query over thousands of series) the values that are not lists."""
    if not results:
        return results
    kept = _jsonable(results)
    if len(json.dumps(kept, default=str)) <= RESULTS_LIMIT:
        return kept
    return {k: v for k, v in kept.items() if not isinstance(v, (list, dict))}


def _status(r: RunView, step: Step, attempt: Attempt) -> str:
    """A step's status after its last attempt."""
    if attempt.ok:
        return "ok"
    if attempt.cancelled:
        return "aborted"
    if attempt.refused:
        return "refused"
    return "not_confirmed" if attempt.expect_false and _detects(r, step) else "failed"


def _detects(r: RunView, step: Step) -> bool:
    """A detection step of the run itself: a false `expect` there means the alert is not confirmed."""
    return step.phase == "detection" and not r.prefix


_SETTING = (SetSpec, ManualSpec)  # the kinds of step that may change vars (see _sets_vars)


def _sets_vars(step: Step) -> bool:
    """Whether the step may change vars (journaled with it, so `resume` can restore them)."""
    spec = step.spec
    return isinstance(spec, SetSpec) or (isinstance(spec, ManualSpec) and any(f.sets for f in spec.ask))


def _jsonable(value: Any) -> Any:
    """What a template computed, as the journal and the console can hold it (see jsonable)."""
    if not value:
        return value  # the common case: no outputs, answers or vars
    return jsonable(value)
