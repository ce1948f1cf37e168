"""The execution loop: phases in order, steps in order, the outcome, then rollbacks
(_rollback.py). Each step is run by the step driver (_step.py), which sees this loop
only as a RunView; an included runbook runs on a runner of its own (_include.py).

The same loop serves live runs, drills and unattended tests; only the services
(executors, prompter, notifier, clock) differ. Events go to a bus; the journal and
the console are observers of it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import __version__
from engine.errors import EngineError, JournalError, RunbookError
from engine.executors.base import Cancel
from engine.language.duration import MAX_TEXT
from engine.language.model import IncludeSpec, Phase, Runbook, Step, too_long

from ._rollback import roll_back
from ._shown import visible
from ._step import StepDriver
from .attempt import Attempt, StepStop
from .bus import EventBus
from .clock import Clock
from .digest import runbook_digest, runbook_file
from .events import (
    PhaseFinished,
    PhaseStarted,
    RunFinished,
    RunStarted,
    StepFinished,
)
from .masking import Masker
from .messenger import Messenger
from .services import Services
from .state import Incident, RunState, StepRecord

if TYPE_CHECKING:  # made by continuation.py, only read here
    from .continuation import Resume

STOPPING = ("failed", "aborted", "refused", "not_confirmed")
ROLLED_BACK = ("failed", "aborted", "refused")  # outcomes after which completed steps are undone


def _mentions(runbook: Runbook, word: str) -> bool:
    """Whether any template of a step holds `word` (e.g. reads `json`)."""
    key = f"mentions:{word}"
    if key not in runbook.derived:
        runbook.derived[key] = _in_file(runbook, word) and _in_fields(runbook, word)
    return bool(runbook.derived[key])


def _in_file(runbook: Runbook, word: str) -> bool:
    """False when the runbook's file cannot hold `word` in any of its strings: its text
    does not, and no escape (`\\u006a`, an escaped line break) can make it. Most files
    never say `json`, and walking every field of every step cost a live run about 2%
    of each step's work."""
    text = runbook.source.text if runbook.source is not None else None
    return text is None or word in text or "\\" in text


def _in_fields(runbook: Runbook, word: str) -> bool:
    from engine.language.fields import step_fields

    return any(word in f.text for s in runbook.steps(rollbacks=True) for f in step_fields(s))


@dataclass
class RunResult:
    """How a run ended, and the record of each of its steps."""

    run_id: str
    outcome: str
    reason: str = ""
    failed_step: str | None = None
    duration: float = 0.0
    steps: dict[str, StepRecord] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)


class Runner:
    """One run of a runbook (or of an included one, inside the run that includes it)."""

    def __init__(self, runbook: Runbook, inputs: Mapping[str, Any], *, services: Services,
                 bus: EventBus, clock: Clock, run_id: str, mode: str = "live",
                 masker: Masker | None = None, participants: Sequence[Any] = (),
                 rollback_on_abort: bool = True, resume: Resume | None = None,
                 prefix: str = "", scenario: str | None = None, cancel: Cancel | None = None,
                 alert: Mapping[str, Any] | None = None, parent: Runner | None = None) -> None:
        self.runbook, self.services, self.bus, self.clock = runbook, services, bus, clock
        self.alert = dict(alert) if alert is not None else None
        self.mode, self.prefix, self.scenario = mode, prefix, scenario
        # The bus's own masker even while it is empty: a secret found later (a token read from
        # a file) is masked in every event from then on.
        self.masker = masker if masker is not None else Masker()
        self.participants = list(participants)
        self.rollback_on_abort = rollback_on_abort
        self.resume = resume
        self.cancel = cancel or Cancel()
        self._own_cancel = cancel is None  # made here: its pipe is closed when the run ends
        self.hard_stop = False
        # Set on the runner of an included runbook: where includes may lead (the started
        # runbook's tree) and the files already running, so a cycle stops instead of recursing.
        self.include_roots: tuple[Path, ...] = ()
        self.include_chain: tuple[Path, ...] = ()
        self.stop_reason = "interrupted"  # what the journal says ended an aborted run (Ctrl-C, SIGTERM)
        ago = resume.started_ago if resume is not None and not prefix else 0.0
        secret = frozenset(k for k, spec in runbook.inputs.items() if spec.secret and inputs.get(k) not in (None, ""))
        self.state = RunState(runbook, run_id, mode, dict(inputs), clock.now() - ago, secret_inputs=secret,
                              masker=self.masker, clock=clock.now, alert=self.alert)
        if resume is not None:
            self.state.vars.update(resume.vars)
            if resume.incident:  # impact, urgency and priority set before the crash
                self.state.incident = Incident(**resume.incident)
            for rec in resume.finished.values():
                self.state.record(rec)
        self.driver = StepDriver(self)
        self.uses_json = _mentions(runbook, "json")  # parse outputs as JSON only if anyone reads it
        self.completed: list[Step] = []
        self._created = clock.monotonic()
        self._deadline = clock.monotonic() + runbook.timeout if runbook.timeout else None
        self.hooks: list[Any] = []  # on_start, on_phase, on_step_finished, on_prompt(_done), on_finish
        self.prompting = False  # a signal may only break into a prompt, never into a write
        self.handoff: str | None = None  # set by hand_off: an escalation rule or a notify step with handoff
        self.parent = parent  # the runner whose step includes this runbook
        self._timers: Any = None
        self.messenger = Messenger(runbook.id, run_id, services, bus, self.masker, self.cancel)
        if not prefix:
            # Supervised only with `updates:` or escalation rules (most runbooks, and trials, have neither).
            if runbook.updates is not None or runbook.escalation:
                from .incident import IncidentSupervisor

                self.hooks.append(IncidentSupervisor(self, self.schedule))
            if services.policy is not None:  # it follows the run's phases (an included runbook's are not)
                self.hooks.append(services.policy)

    def _hook(self, name: str, *args: Any) -> None:
        for hook in self.hooks:
            method = getattr(hook, name, None)
            if method is not None:
                method(*args)

    def schedule(self, t: float, action: Callable[[], None]) -> None:
        """Call `action` when the run's clock reaches `t` (monotonic seconds)."""
        call_at = getattr(self.clock, "call_at", None)
        if call_at is not None:
            call_at(t, action)
            return
        if self._timers is None:
            from .clock import Timers

            self._timers = Timers(self.clock)
        self._timers.call_at(t, action)

    @property
    def opened(self) -> float:
        """When the run opened, on the monotonic clock: earlier attempts and the downtime
        before a resume count (escalation `after` rules and the run's duration use it)."""
        ago = self.resume.started_ago if self.resume is not None and not self.prefix else 0.0
        return self._created - ago

    def hand_off(self, reason: str) -> None:
        """End the run as `escalated`: no step starts after this, and a step waiting (a poll,
        a retry delay, a `wait`) stops waiting now; a command that is running is let finish.
        An included runbook hands off the run that includes it."""
        if self.parent is not None:
            self.parent.hand_off(reason)
            return
        if self.handoff is None:
            self.handoff = reason
            wake = getattr(self.clock, "wake", None)
            if wake is not None:
                wake()  # out of a real-time sleep; the sleep then says it was cut short

    @property
    def handed_off(self) -> str | None:
        """Why the run was handed off (for this runner and every included one), if it was."""
        return self.parent.handed_off if self.parent is not None else self.handoff

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> RunResult:
        try:
            return self._run()
        finally:
            if self._own_cancel:
                # Its pipe would otherwise outlive the run: a Monte Carlo estimate ran out
                # of descriptors after about 500 trials under the usual limit of 1,024.
                self.cancel.close()

    def _run(self) -> RunResult:
        t0 = self.opened
        if self.resume is not None:  # a resumed run opens in the first phase it enters again
            self.state.phase = next((p.name for p in self.runbook.phases if not self.resume.phase_done(p)),
                                    self.state.phase)
        self._started()
        self._hook("on_start")
        stop: StepStop | None = None
        phase_times: dict[str, float] = {}
        try:
            stop = self._phases(phase_times)
        except JournalError as exc:
            stop = StepStop("failed", f"journal: {exc}")
        except EngineError as exc:
            stop = StepStop("failed", str(exc))  # a known failure with its own message
        except BaseException as exc:
            self._finish(StepStop("failed", f"internal error: {exc}"), t0, phase_times)
            raise
        result = self._finish(stop, t0, phase_times)
        return result

    def _phases(self, times: dict[str, float]) -> StepStop | None:
        long = too_long(self.runbook)  # (found once per runbook: lint asked first, and each trial asks again)
        if long:  # built without validation (RB135): no clock takes a 400-digit timeout
            raise RunbookError(f"{self.runbook.where(long[0])}: duration is longer than the {MAX_TEXT} maximum")
        for phase in self.runbook.phases:
            if self.resume is not None and self.resume.phase_done(phase):
                self._restore_phase(phase, times)
                continue
            stop = self._gate(phase)
            if stop is not None:
                return stop
            start = self._phase_start(phase)
            stop = self._phase(phase, start)
            times[phase.name] = self.bus.elapsed() - start
            if stop is not None:
                return stop
        return None

    def _gate(self, phase: Phase) -> StepStop | None:
        """A policy's approval before the phase (the way out of its unattended phases)."""
        policy = self.services.policy
        if policy is None or self.prefix:
            return None
        from ._manual import gate

        return gate(self, policy, phase, entered=self.resume is not None and phase.name in self.resume.phases)

    def _phase_start(self, phase: Phase) -> float:
        """When the phase began on the run's time axis: now, or (on resume) when the
        earlier attempt first entered it, so its duration spans the downtime too."""
        mark = self.resume.phases.get(phase.name) if self.resume is not None and not self.prefix else None
        return mark.start if mark is not None else self.bus.elapsed()

    def _restore_phase(self, phase: Phase, times: dict[str, float]) -> None:
        """A phase finished before the resume: its steps are restored, no event repeats it."""
        for step in phase.steps:
            self._restored(step)
        assert self.resume is not None
        times[phase.name] = self.resume.phases[phase.name].duration or 0.0

    def _phase(self, phase: Phase, start: float) -> StepStop | None:
        self.state.phase = phase.name
        self.bus.emit(PhaseStarted(phase.name))
        self._hook("on_phase", phase.name)
        status, stop = "ok", None
        try:
            for step in phase.steps:
                self.step(step)
        except StepStop as exc:
            status, stop = exc.outcome, exc
        self.bus.emit(PhaseFinished(phase.name, status, self.bus.elapsed() - start))
        return stop

    def step(self, step: Step, *, rollback_of: str | None = None) -> StepRecord:
        """Run one step (or restore it on resume); StepStop when the run must end."""
        restored = self._restored(step) if self.resume is not None else None
        if restored is not None:
            return restored
        if self.handoff is not None or self.parent is not None:  # (most runs: never handed off)
            self._check_handoff(step)
        if self.cancel.is_set():
            raise StepStop("aborted", self.stop_reason, self.qualified(step.id))
        rec = self.driver.execute(step, rollback_of)
        # An `end:` step, or a stop inside a block, once it is recorded (most steps leave none).
        stop = self.driver.take_stop() if self.driver.stop is not None else None
        if self.hooks:
            self._hook("on_step_finished", step, rec)
        if self.handoff is not None or self.parent is not None:
            self._check_handoff(step)
        if rec.status == "ok":
            self.completed.append(step)
        if stop is not None and not (step.continue_on_error and stop.outcome == "failed"):
            raise stop
        if rec.status in STOPPING and not (step.continue_on_error and rec.status == "failed"):
            raise self._stop_after(step, rec)
        return rec

    def _stop_after(self, step: Step, rec: StepRecord) -> StepStop:
        """How a step that did not succeed ends the run: its status is the outcome.

        A refused approval is a decision, not an interruption: the run ends `refused`
        (exit 7), rollbacks run as after a failure, and `on_failure` escalation sees it."""
        if rec.status == "aborted":
            return StepStop("aborted", self.stop_reason, self.qualified(step.id))
        return StepStop(rec.status, rec.error or rec.status, self.qualified(step.id))

    def _check_handoff(self, step: Step) -> None:
        if self.handed_off is not None:
            raise StepStop("escalated", self.handed_off, self.qualified(step.id))

    def _restored(self, step: Step) -> StepRecord | None:
        """On resume: a completed step's recorded result, or a skip the operator chose;
        None when the step runs now."""
        if self.resume is None or self.prefix or step.in_loop:
            return None  # a block's item runs its steps again: their records are the last item's
        sid = step.id
        rec = self.resume.finished.get(sid)
        if rec is not None:
            if rec.status == "ok" and sid not in self.resume.undone:
                self.completed.append(step)  # its rollback runs if this attempt fails too
            return rec
        why = self.resume.skip.get(sid)
        if why is None:
            return None
        rec = StepRecord(step.id, status="skipped", error=None)
        self.state.record(rec)
        self.bus.emit(StepFinished(sid, step.phase, step.kind, "skipped", reason=why))
        return rec

    # -- start and finish -----------------------------------------------------------------------

    def _started(self) -> None:
        if self.prefix:
            return
        inputs = {k: ("***" if spec.secret else self.state.inputs.get(k))
                  for k, spec in self.runbook.inputs.items()}
        # A run on the virtual clock (`runbook test`) journals the same bytes every time.
        pid, host = (0, "") if getattr(self.clock, "virtual", False) else (os.getpid(), os.uname().nodename)
        self.bus.emit(RunStarted(
            self.state.run_id, self.runbook.id, self.runbook.title, runbook_file(self.runbook), self.mode,
            inputs, [{"name": str(getattr(p, "name", p)), "role": str(getattr(p, "role", "") or "")}
                     for p in self.participants],
            pid, host, __version__,
            self.state.run_id if self.resume is not None else None, self.scenario,
            self.state.incident.view(), self.alert, runbook_digest(self.runbook),
        ))
        if self.resume is not None and self.resume.note is not None:
            downtime = max(self.resume.started_ago - self.resume.last_elapsed, 0.0)
            self.bus.emit(dataclasses.replace(self.resume.note, downtime=round(downtime, 3)))

    def _finish(self, stop: StepStop | None, t0: float, phases: dict[str, float]) -> RunResult:
        outcome = stop.outcome if stop else "resolved"
        reason = stop.reason if stop else ""
        if outcome in ROLLED_BACK:
            roll_back(self, outcome, reason)
        # The stop that ended the run has been taken: what follows (the final update, the
        # deliveries still queued) is rendered and sent. Another Ctrl-C stops that too.
        self.cancel.clear()
        self._hook("on_finish", outcome)
        if self._timers is not None:
            self._timers.stop()
        self.messenger.drain()  # every update and escalation is journaled before run.finished
        duration = self.clock.monotonic() - t0  # since the run started: t0 counts earlier attempts too
        if not self.prefix:
            self.bus.emit(RunFinished(outcome, duration, reason, stop.step if stop else None,
                                      reason if outcome == "failed" else None, phases))
            self.bus.barrier()
        return RunResult(self.state.run_id, outcome, reason, stop.step if stop else None, duration,
                         dict(self.state.steps), phases)

    # -- services for the step driver ------------------------------------------------------------

    def interrupt(self, *, hard: bool = False, reason: str = "interrupted") -> None:
        """Stop the current step (signal-safe); hard=True also skips rollbacks."""
        self.stop_reason = reason
        if hard:
            self.hard_stop = True
        self.cancel.set()
        wake = getattr(self.clock, "wake", None)
        if wake is not None:
            wake()

    @contextmanager
    def asking(self, step: str = "") -> Iterator[None]:
        """Around a prompt: Ctrl-C may interrupt the blocking read (see session), and
        escalation rules watch how long it stays unanswered."""
        self.bus.barrier()
        self.prompting = True
        self._hook("on_prompt", step)
        try:
            yield
        finally:
            self.prompting = False
            self._hook("on_prompt_done", step)

    def sleep(self, seconds: float) -> bool:
        """Wait on the run's clock; False if interrupted or handed off (see interruption)."""
        if self.cancel.is_set() or self.handed_off is not None:
            return False
        self.bus.barrier()
        turns = self  # items of a block running at once go on meanwhile (an including run's too)
        while turns.driver.baton is None and turns.parent is not None:
            turns = turns.parent
        with turns.driver.released():
            self.clock.sleep(seconds)
        return not self.cancel.is_set() and self.handed_off is None

    def interruption(self) -> str:
        """Why a wait was cut short: a hand-off, or an interruption (Ctrl-C, SIGTERM)."""
        return f"stopped waiting: {self.handed_off}" if self.handed_off is not None else "interrupted"

    def qualified(self, step_id: str) -> str:
        return f"{self.prefix}{step_id}"

    def timeout_for(self, step: Step) -> float | None:
        timeout = step.timeout or self.runbook.defaults.timeout or self.runbook.timeout
        if self._deadline is None and self.driver.deadline is None:
            return timeout  # most steps: no run deadline, outside any block's timeout
        for deadline in (self._deadline, self.driver.deadline):  # the run's, the block's it runs in
            if deadline is not None:
                left = max(deadline - self.clock.monotonic(), 0.001)
                timeout = min(timeout, left) if timeout else left
        return timeout

    def notify(self, channel: str, message: str, *, title: str | None = None, step: str | None = None,
               purpose: str = "notify", budget: float | None = None, required: bool = False,
               action: str | None = None) -> Attempt:
        """Send a message (see Messenger.send): journaled; fails only a `required` one."""
        return self.messenger.send(channel, message, title=title, step=step, purpose=purpose, budget=budget,
                                   required=required, action=action)

    def include(self, step: Step, spec: IncludeSpec, sid: str, extra: dict[str, Any]) -> Attempt:
        """Run another runbook as this step, with the same services, bus and clock."""
        loader = self.services.load_runbook
        if loader is None:
            return Attempt(False, "include is not available in this mode")
        from ._include import outcome, prepare  # a run that includes nothing reads no include code

        ready = prepare(self.runbook, step, spec, self.state.context(**visible(extra)), loader,
                        self.include_roots, self.include_chain, live=self.mode == "live")
        if isinstance(ready, Attempt):
            return ready
        for secret in ready.secrets:  # what the child read itself is masked like the run's own
            self.masker.add(secret)
        child = Runner(ready.runbook, ready.inputs, services=self.services, bus=self.bus, clock=self.clock,
                       run_id=self.state.run_id, mode=self.mode, masker=self.masker,
                       rollback_on_abort=self.rollback_on_abort, prefix=f"{sid}/", cancel=self.cancel,
                       parent=self)
        child.include_roots, child.include_chain = ready.roots, ready.chain
        result = child.run()
        return outcome(ready.runbook, result.outcome, result.reason)
