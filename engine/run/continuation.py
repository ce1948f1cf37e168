"""How a resumed run continues: what the journal says (recovery.py) and what the operator
chose (flags, or answers on a terminal) turned into the runner's `Resume`.

Nothing is decided silently. A step that stopped the run, or that was running when the
engine died, is run again or skipped only on the operator's word; without a terminal a
missing decision is a usage error naming the flag, before anything runs or is written.
`advice` says, after a run that failed, was aborted or refused, the exact command that
continues it: the same rules, read from the journal just written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import UsageError
from engine.executors.prompts import ApprovalRequest, Prompter, Question
from engine.language.model import AskField, Phase, Runbook

from .events import RunResumed
from .leftovers import Leftover, Settler
from .recovery import PhaseMark, Recovered, os_user, reason_question, step_ids, unknown_steps
from .state import StepRecord


@dataclass
class Resume:
    """How the runner continues an earlier attempt recorded in its journal (recovery.py
    reads the journal, `plan` makes the operator's decisions into this)."""

    finished: dict[str, StepRecord]  # restored as they were, never run again
    skip: dict[str, str] = field(default_factory=dict)  # step -> why it is skipped now
    undone: set[str] = field(default_factory=set)  # completed steps whose rollbacks already ran
    vars: dict[str, Any] = field(default_factory=dict)
    incident: dict[str, Any] = field(default_factory=dict)
    phases: dict[str, PhaseMark] = field(default_factory=dict)  # when each phase first started (and took)
    escalations: set[int] = field(default_factory=set)  # rules that fired already: not again
    started_ago: float = 0.0  # seconds since the run started, downtime included (set when it resumes)
    last_elapsed: float = 0.0  # the earlier attempt's last record
    note: RunResumed | None = None  # who resumed, why, and what was decided (journaled)

    def phase_done(self, phase: Phase) -> bool:
        """A phase that ended well before, none of whose steps run now: not entered again."""
        mark = self.phases.get(phase.name)
        return mark is not None and mark.duration is not None and all(s.id in self.finished for s in phase.steps)


class Undecided(UsageError):
    """A resume needs decisions nobody at hand can make (`problems` says which); nothing
    was run or written. A service's worker asks a person and waits for the answer."""

    def __init__(self, run_id: str, problems: list[str]) -> None:
        super().__init__(f"cannot resume run {run_id} yet:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass
class Choices:
    """What the operator said about how to continue (flags of `runbook resume`)."""

    from_step: str | None = None
    skip: tuple[str, ...] = ()
    rerun_failed: bool = False
    rerun_interrupted: bool | None = None  # None: ask (or refuse without a terminal)
    reason: str | None = None
    by: str | None = None  # the first --as participant; else the OS user
    running: str | None = None  # a command of the earlier attempt still runs: "wait" or "stop"
    # How the earlier attempt ended, when the caller knows better than its journal can say
    # (a service run that stopped to wait for a person leaves no run.finished: not a crash).
    previous: str | None = None


@dataclass
class _Draft:
    """The plan being made: records kept, steps skipped and run again, problems found."""

    finished: dict[str, StepRecord]
    skip: dict[str, str] = field(default_factory=dict)
    rerun: list[str] = field(default_factory=list)
    from_step: str | None = None
    problems: list[str] = field(default_factory=list)
    leftovers: list[tuple[Leftover, str]] = field(default_factory=list)  # still running, and what to do


def plan(runbook: Runbook, recovered: Recovered, choices: Choices, prompter: Prompter,
         settler: Settler | None = None, say: Callable[[str], None] = lambda _: None) -> Resume:
    """The Resume for the runner; UsageError (nothing run, nothing written) when a decision
    is missing and nobody can be asked, or the operator declines to go on. Commands the
    earlier attempt left running (found by `settler`) are waited for or stopped first."""
    problems = unknown_steps(runbook, [choices.from_step], "--from") + unknown_steps(runbook, choices.skip, "--skip")
    if problems:
        raise UsageError("cannot resume:\n  " + "\n  ".join(problems))
    if choices.reason is None and prompter.interactive:  # first: skips record it too
        answer = prompter.ask(Question("resume", "resume", "", (reason_question(),)))
        choices = dataclasses.replace(choices, reason=str(answer.values.get("reason") or ""))
    draft = _Draft({sid: rec for sid, rec in recovered.steps.items() if _done(runbook, sid, rec)})
    from_step = choices.from_step or _from_undone(runbook, recovered, prompter)
    if from_step is not None:
        _start_at(draft, step_ids(runbook), from_step)
    _skips(draft, choices)
    if settler is not None and recovered.started:
        _still_running(settler.find(recovered.started), draft, choices, prompter, say)
    if from_step is None:
        _stopped_steps(runbook, recovered, draft, choices, prompter)
        _interrupted_steps(runbook, recovered, draft, choices, prompter)
    if draft.problems:
        raise Undecided(recovered.run_id, draft.problems)
    for leftover, action in draft.leftovers:
        _settle(settler, leftover, action, say)
    return _resume(recovered, draft, choices)


def _still_running(found: list[Leftover], draft: _Draft, choices: Choices, prompter: Prompter,
                   say: Callable[[str], None]) -> None:
    """A command the dead engine started still runs: wait for it or stop it, never start
    a second copy beside it."""
    for leftover in found:
        what = f"step {leftover.step} is still running ({leftover.where()}, started by the earlier attempt)"
        action = choices.running
        if action is None and not prompter.interactive:
            draft.problems.append(f"{what}: pass --wait-running to wait for it to end, or --stop-running to "
                                  "stop its whole process group")
            continue
        if action is None:
            say(f"   {what}")
            action = _choose(prompter, leftover)
        draft.leftovers.append((leftover, action))


def _choose(prompter: Prompter, leftover: Leftover) -> str:
    question = Question("resume", "resume", "", (AskField("action", "text", f"Wait for {leftover.step} to end, "
                                                          "stop it, or quit?", ("wait", "stop", "quit")),))
    action = str(prompter.ask(question).values.get("action"))
    if action not in ("wait", "stop"):
        raise UsageError(f"nothing resumed: step {leftover.step} still runs ({leftover.where()})")
    return action


def _settle(settler: Settler | None, leftover: Leftover, action: str, say: Callable[[str], None]) -> None:
    assert settler is not None
    if not settler.alive(leftover):  # it ended while the operator was deciding
        say(f"   step {leftover.step}: {leftover.where()} has ended meanwhile")
        return
    if action == "stop":
        say(f"   stopping step {leftover.step}: {leftover.where()} (SIGTERM, then SIGKILL)")
        settler.stop(leftover)
    else:
        say(f"   waiting for step {leftover.step} to end ({leftover.where()}); Ctrl-C stops waiting")
        settler.wait(leftover)
    say(f"   step {leftover.step}: {leftover.where()} has ended")


def _done(runbook: Runbook, sid: str, rec: StepRecord) -> bool:
    """Whether a step's last result needs no second run (a tolerated failure counts as done)."""
    step = runbook.step(sid) if "/" not in sid else None
    return rec.status in ("ok", "skipped") or (rec.status == "failed" and step is not None and step.continue_on_error)


def _from_undone(runbook: Runbook, recovered: Recovered, prompter: Prompter) -> str | None:
    """Where to start again when the earlier attempt's rollbacks undid completed steps."""
    undone = [s for s in step_ids(runbook) if s in recovered.undone]
    if not undone:
        return None
    why = (f"the earlier attempt ended {recovered.previous} and its rollbacks undid {', '.join(undone)}: "
           "continuing after them would act on a state they no longer set")
    if not prompter.interactive:
        raise UsageError(f"cannot resume run {recovered.run_id} as it is: {why}. Pass --from {undone[0]} to run "
                         f"them again, or --from STEP to continue at STEP with things as they are now")
    if _yes(prompter, f"{why[0].upper()}{why[1:]}. Run them again, from {undone[0]}?"):
        return undone[0]
    raise UsageError(f"nothing resumed: pass --from STEP to say where run {recovered.run_id} continues")


def _start_at(draft: _Draft, order: list[str], from_step: str) -> None:
    """--from: steps before it keep what they did (never-run ones are skipped); it and
    every step after it run, whatever they did before."""
    draft.from_step = from_step
    at = order.index(from_step)
    for sid in order[:at]:
        if sid not in draft.finished:
            draft.skip[sid] = f"before --from {from_step}"
    for sid in order[at:]:
        for key in [k for k in draft.finished if k == sid or k.startswith(f"{sid}/")]:
            del draft.finished[key]


def _skips(draft: _Draft, choices: Choices) -> None:
    for sid in choices.skip:
        if sid in draft.finished:
            draft.problems.append(f"--skip {sid}: step {sid} already completed; it does not run again anyway")
        else:
            draft.skip[sid] = "skipped on resume" + (f": {choices.reason}" if choices.reason else "")


def _stopped_steps(runbook: Runbook, recovered: Recovered, draft: _Draft, choices: Choices,
                   prompter: Prompter) -> None:
    """The step that stopped the run (failed, aborted, refused): run again or skip, as told."""
    for sid in step_ids(runbook):
        rec = recovered.steps.get(sid)
        if rec is None or sid in draft.finished or sid in draft.skip:
            continue
        what = f"step {sid} {rec.status}" + (f" ({rec.error})" if rec.error else "")
        if choices.rerun_failed:
            draft.rerun.append(sid)
        elif not prompter.interactive:
            draft.problems.append(f"{what}: pass --rerun-failed to run it again, or --skip {sid} to go on "
                                  "without it (or --from STEP to continue elsewhere)")
        elif _yes(prompter, f"{what[0].upper()}{what[1:]}. Run it again?"):
            draft.rerun.append(sid)
        elif _yes(prompter, f"Skip {sid} and go on after it?"):
            draft.skip[sid] = "skipped on resume" + (f": {choices.reason}" if choices.reason else "")
        else:
            raise UsageError(f"nothing resumed: pass --rerun-failed, --skip {sid} or --from STEP")


def _interrupted_steps(runbook: Runbook, recovered: Recovered, draft: _Draft, choices: Choices,
                       prompter: Prompter) -> None:
    """A step the engine was running when it died: run again only if idempotent or told so."""
    for sid in recovered.interrupted:
        step = runbook.step(sid) if "/" not in sid else None
        if step is None or sid in draft.skip:
            continue  # a step inside an included runbook: its include step decides
        rerun = True if step.idempotent else choices.rerun_interrupted
        if rerun is None and not prompter.interactive:
            draft.problems.append(f"step {sid} was running when the engine stopped and is not idempotent: "
                                  "pass --rerun-interrupted to run it again or --skip-interrupted to skip it")
            continue
        if rerun is None:
            rerun = _yes(prompter, f"Step {sid} was interrupted (the engine stopped while it ran). Run it again?")
        if rerun:
            draft.rerun.append(sid)
        else:
            draft.skip[sid] = "interrupted by a crash; skipped on resume"


def _yes(prompter: Prompter, message: str) -> bool:
    return prompter.approve(ApprovalRequest("resume", message)).approved


def _resume(recovered: Recovered, draft: _Draft, choices: Choices) -> Resume:
    leftovers = [{"step": lo.step, "pgid": lo.pgid, "host": lo.host, "action": action}
                 for lo, action in draft.leftovers]
    note = RunResumed(choices.by or os_user(), choices.reason or "", choices.previous or recovered.previous,
                      recovered.stop_step, draft.rerun, list(draft.skip), draft.from_step, list(recovered.undone),
                      leftovers=leftovers)
    return Resume(draft.finished, draft.skip, set(recovered.undone), dict(recovered.vars), dict(recovered.incident),
                  dict(recovered.phases), set(recovered.escalations), note=note,
                  last_elapsed=recovered.last_elapsed)


# -- after a run: how to continue it --------------------------------------------------------------


def advice(run_dir: Path, runbook: Runbook, recover: Callable[[Path], Recovered]) -> list[str]:
    """The command lines that continue a run that just failed, was aborted or refused
    (empty when it cannot be resumed)."""
    try:
        recovered = recover(run_dir)
    except UsageError:
        return []
    command = f"runbook resume {run_dir}"
    undone = [s for s in step_ids(runbook) if s in recovered.undone]
    if undone:
        return [f"{command} --from {undone[0]}    (its rollbacks undid {', '.join(undone)}: run again from there)",
                f"{command} --from STEP    (continue at STEP with things as they are now)"]
    stopped = recovered.stop_step
    rec = recovered.steps.get(stopped or "")
    if stopped is None or rec is None or "/" in stopped or _done(runbook, stopped, rec):
        return [command]
    return [f"{command} --rerun-failed    (run {stopped} again)",
            f"{command} --skip {stopped}    (go on after it, e.g. once it was done by hand)"]
