"""One claimed run, carried out by a worker: load its runbook, resolve its inputs, and run
it with the same runner and session as `runbook run`, its journal going to the store.

A run that ran before (its worker died, or drained and handed it over) is continued from
its stored journal exactly as `runbook resume` continues a file journal: completed steps
are restored and never run again, and a step that was running when the worker stopped
runs again only if it is `idempotent: true`. Any other decision (a non-idempotent step
that was interrupted, a command the earlier attempt left running) is asked of a person:
the run waits in the store, holding no lease, until the question is answered (`answer`
fields: `interrupted` rerun or skip, `running` wait or stop), then the next worker goes on.
"""

from __future__ import annotations

import io
import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from engine.errors import EngineError
from engine.run.continuation import Choices, Undecided
from engine.run.journal import read_journal, run_finished
from engine.run.policy import RunPolicy, policy_of
from engine.run.recovery import recover
from engine.run.runner import Runner, RunResult
from engine.run.session import LiveOptions, run_at

from .journal import StoreJournal
from .prompts import APPROVAL, ASK, StoredPrompter
from .store import Claim, NewQuestion, QuestionRow, RunRow, Store, StoreError

log = logging.getLogger("runbook.worker")

DECISION_FIELDS: tuple[dict[str, Any], ...] = (
    {"name": "interrupted", "type": "text", "prompt": "Run the interrupted step again, or skip it?",
     "choices": ["rerun", "skip"]},
    {"name": "running", "type": "text", "prompt": "A command it started may still run: wait for it, or stop it?",
     "choices": ["wait", "stop"]},
)


@dataclass
class Execution:
    """A run this worker holds: what stops it, and how it ended."""

    store: Store
    claim: Claim
    worker: str
    scratch: Path  # where an earlier attempt's journal is exported for recovery
    journal: StoreJournal | None = None
    runner: Runner | None = None
    handed_over: bool = False
    stopped: str | None = None  # why it was stopped
    parked: NewQuestion | None = None  # the question it stopped to wait on
    on_question: Callable[[QuestionRow], None] | None = None  # told of each question stored (Slack)
    policy: RunPolicy | None = None  # its route's (unattended phases, approvals), read when it starts
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def run(self) -> RunRow:
        return self.claim.run

    def stop(self, why: str, *, hand_over: bool = False) -> None:
        """Write nothing more and stop the runner (no rollbacks): the lease was lost, or
        the worker drains and hands the run to another."""
        with self._lock:
            self.handed_over = self.handed_over or hand_over
            self.stopped = self.stopped or why
            if self.journal is not None:
                self.journal.seal(why)

    def abort(self, why: str) -> None:
        """A person stops the run: its step is stopped and the run ends aborted, with the
        rollbacks its policy says for an abort (as SIGTERM stops a run on a terminal)."""
        runner = self.runner
        if runner is not None and not runner.cancel.is_set():
            log.info("run %s: %s", self.run.id, why)
            runner.interrupt(hard=not runner.rollback_on_abort, reason=why)

    def carry_out(self) -> str:
        """Run it to its end, or until it waits for a person or is handed over; the word
        for what happened (an outcome, `waiting`, `handed over`, `lost`)."""
        run_dir = self.scratch / self.run.id
        try:
            return self._carry_out(run_dir)
        except EngineError as exc:
            if self.journal is not None and self.journal.sealed is not None:
                return self._sealed(self.journal.sealed)  # the runner stopped at its next barrier
            return self.failed(str(exc))
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)

    def _carry_out(self, run_dir: Path) -> str:
        from engine.language.validation import load_runbook
        from engine.run import inputs as inputs_mod

        runbook = load_runbook(self.run.file)
        resolved = inputs_mod.resolve(runbook, from_file=self.run.inputs)
        alert = self.store.alert_of(self.run.id)  # its route's policy goes with it to every worker
        self.policy = policy_of(alert.policy, f"route {alert.route}") if alert is not None and alert.route else None
        recovered = choices = None
        if self.claim.takeover:
            self.store.export(self.run.id, run_dir)
            records = read_journal(run_dir).records
            ended = run_finished(records)
            if ended is not None and _ends(records) > self.run.resumes:  # died between run.finished and this
                return self._record_end(str(ended.get("outcome") or "failed"), str(ended.get("reason") or ""))
            answered = self.store.questions(run_id=self.run.id, status="answered")
            recovered, choices = recover(run_dir), _choices(answered, self.claim.previous_owner, self.run)
        try:
            result = run_at(runbook, resolved.values, self._options(), run_id=self.run.id, run_dir=run_dir,
                            secrets=tuple(resolved.secrets), recovered=recovered, choices=choices)
        except Undecided as exc:
            return self._ask(exc)
        return self._end(result)

    def _options(self) -> LiveOptions:
        def journal(_: Path) -> StoreJournal:
            with self._lock:
                self.journal = StoreJournal(self.store, self.run.id, self.worker, on_lost=self._interrupt)
                if self.stopped is not None:
                    self.journal.seal(self.stopped)
            return self.journal

        def on_runner(runner: Runner) -> None:
            self.runner = runner
            if self.stopped is not None:  # stopped before the runner existed
                runner.interrupt(hard=True, reason=self.stopped)

        def prompter(services: Any) -> None:
            services.prompter = StoredPrompter(self.store, self.run.id, self._park, self.run.answers)
            services.policy = self.policy

        return LiveOptions(answers=self.run.answers, install_signals=False, stream=_Discard(),
                           show_output=False, alert=self.run.alert, journal=journal, machine_lock=False,
                           on_runner=on_runner, extra_services=prompter)

    def _park(self, question: NewQuestion) -> NoReturn:
        """Stop here to wait for a person: the journal is flushed up to the question (the
        runner's barrier before any prompt) and sealed, the runner stopped without
        rollbacks; `_sealed` then stores the question and gives up the lease."""
        with self._lock:
            self.parked = question
            self.stopped = self.stopped or f"waiting for a person at step {question.step}"
            if self.journal is not None:
                self.journal.seal(self.stopped)
        raise KeyboardInterrupt  # how a prompt is cut short: the step stops, nothing more runs

    def _interrupt(self, why: str) -> None:
        if self.parked is None:  # parking is logged once the question is stored
            log.warning("run %s: %s", self.run.id, why)
        if self.runner is not None:
            self.runner.interrupt(hard=True, reason=why)

    def _ask(self, undecided: Undecided) -> str:
        text = "; ".join(_without_flags(p) for p in undecided.problems)
        step = next(iter(recover_steps(undecided.problems)), "")
        self._announce(self.store.park(self.run.id, self.worker, NewQuestion(step, "interrupted", text,
                                                                            DECISION_FIELDS)))
        log.info("run %s waits for a person: %s", self.run.id, text)
        return "waiting"

    def _end(self, result: RunResult) -> str:
        if self.journal is not None and self.journal.sealed is not None:
            return self._sealed(self.journal.sealed)
        return self._record_end(result.outcome, result.reason or "")

    def _record_end(self, outcome: str, reason: str) -> str:
        self.store.close_questions([q.id for q in self.store.questions(run_id=self.run.id, status="answered")])
        self.store.finish(self.run.id, self.worker, outcome, reason)
        return outcome

    def _sealed(self, why: str) -> str:
        """It stopped writing: parked for a person, handed over (back in the queue now), or
        lost to another worker."""
        if self.parked is not None and not self.handed_over:
            return self._wait(self.parked)
        if not self.handed_over:
            return "lost"
        self._release(why)
        return "handed over"

    def _wait(self, question: NewQuestion) -> str:
        try:
            question_id = self.store.park(self.run.id, self.worker, question)
        except StoreError as exc:  # its lease ran out: the next worker reaches the question again
            log.warning("run %s: could not store its question: %s", self.run.id, exc)
            return "lost"
        self._announce(question_id)
        log.info("run %s waits for a person at step %s: %s", self.run.id, question.step, question.text)
        return "waiting"

    def _announce(self, question_id: int) -> None:
        stored = self.store.question(question_id) if self.on_question is not None else None
        if self.on_question is not None and stored is not None:
            self.on_question(stored)

    def _release(self, why: str) -> None:
        try:
            self.store.release(self.run.id, self.worker, why)
        except StoreError as exc:  # its lease runs out instead, and another worker takes it over
            log.warning("run %s: could not hand it back at once: %s", self.run.id, exc)

    def failed(self, why: str) -> str:
        """It cannot go on (its runbook is gone or invalid, its inputs are wrong, a bug):
        it ends `failed` with the reason, unless another worker holds it by now."""
        log.error("run %s failed: %s", self.run.id, why)
        try:
            self.store.finish(self.run.id, self.worker, "failed", why)
        except StoreError as exc:
            log.warning("run %s: %s", self.run.id, exc)
            return "lost"
        return "failed"


def _ends(records: list[dict[str, Any]]) -> int:
    """How many times the journal says the run ended: once more than it was resumed, when it has."""
    return sum(1 for r in records if r.get("event") == "run.finished")


def _choices(answered: list[QuestionRow], previous: str | None, run: RunRow) -> Choices:
    """The decisions of the latest answer a person gave (none: only what needs nobody)."""
    asked = [q for q in answered if q.kind in (ASK, APPROVAL)]
    if asked:  # it parked at a question: that step starts again (nothing of it ran) and finds the answer
        last = asked[-1]
        reason = f"continued as {last.answered_by} answered step {last.step}"
        return Choices(rerun_interrupted=True, running="wait", reason=reason, by=last.answered_by,
                       previous="stopped to wait for a person")
    if not answered:
        reason = (f"taken over from worker {previous}" if previous else
                  "resumed by a person" if run.resumes else "continued from its journal")
        return Choices(reason=reason, running="wait")  # never a second copy beside the first
    last = answered[-1]
    reason = f"continued as {last.answered_by} answered: {last.text}"
    values = last.answer or {}
    rerun = {"rerun": True, "skip": False}.get(str(values.get("interrupted", "")))
    running = "stop" if values.get("running") == "stop" else "wait"
    # A resumed run stopped at a step that failed or was aborted: the same answer decides it
    # (runbook resume's --rerun-failed, or --skip STEP).
    skip = (last.step,) if rerun is False and run.resumes else ()
    return Choices(rerun_interrupted=rerun, rerun_failed=rerun is True, skip=skip, running=running, reason=reason,
                   by=last.answered_by)


def _without_flags(problem: str) -> str:
    """A resume's problem as a person answering in the service reads it: what happened,
    and which answer field decides it (not the `runbook resume` flags that would)."""
    what = problem.split(": pass --", 1)[0]
    if "still running" in what:
        return f"{what} (answer running: wait or stop)"
    return f"{what} (answer interrupted: rerun or skip)"


def recover_steps(problems: list[str]) -> list[str]:
    """The steps named by a resume's problems ("step ID ...")."""
    return [p.split()[1] for p in problems if p.startswith("step ") and len(p.split()) > 1]


class _Discard(io.StringIO):
    """Where a worker's run console goes: the journal in the store is the record."""

    def write(self, text: str) -> int:
        return len(text)
