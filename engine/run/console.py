"""The live console view: an observer an operator can follow under stress.

Phase headers, each step's title and rendered command (masked), streamed output,
prompts, retries, a final summary with the outcome and the time per phase. Colour on
a terminal, plain otherwise; NO_COLOR is respected by the caller's choice of `color`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from engine.executors.channels_file import NO_CONFIG
from engine.language.duration import format_duration

from .events import (
    Approval,
    ClockControl,
    EscalationFired,
    Event,
    HintShown,
    HostFinished,
    InjectFired,
    NotifySent,
    PhaseFinished,
    PhaseStarted,
    PriorityChanged,
    PromptAnswered,
    RollbackFinished,
    RollbackStarted,
    RunFinished,
    RunResumed,
    RunStarted,
    Stamp,
    StepAttempt,
    StepFinished,
    StepOutput,
    StepStarted,
)
from .terminal import Terminal

_STYLES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34",
           "cyan": "36", "magenta": "35"}
_OUTCOME_STYLE = {"resolved": "green", "not_confirmed": "yellow", "escalated": "yellow",
                  "failed": "red", "aborted": "red"}
PARTIAL_LIMIT = 8192  # characters of an unfinished output line kept before it is shown anyway
_STATUS = {"ok": ("✓", "ok", "green"), "failed": ("✗", "FAILED", "red"),
           "skipped": ("–", "skipped", "dim"), "refused": ("✗", "refused", "red"),
           "aborted": ("✗", "aborted", "red"), "not_confirmed": ("!", "not confirmed", "yellow")}

POLL_COMPARE_LIMIT = 65536  # characters of a poll's output kept to compare with the next poll
PROGRESS_EVERY = 1.0  # seconds between fan-out progress lines (failures always show)
TABLE_OK_ROWS = 10  # ok hosts listed in a step's host table; the journal has them all
HEADER_HOSTS = 8  # hosts named in a step's first line: a 1,000-host target is not one 17 kB line


class Console:
    """Prints events as they happen."""

    wants_output = True

    def __init__(self, stream: TextIO | None = None, *, color: bool = False, unicode: bool | None = None,
                 show_output: bool = True, terminal: Terminal | None = None) -> None:
        self.stream = stream or sys.stdout
        self.terminal = terminal or Terminal(self.stream)
        self._polls = _Polls()
        self._depths: dict[str, int] = {}  # how deep in blocks a step is: its lines are indented as deep
        self._told_console_only = False
        self.color = color
        encoding = (getattr(self.stream, "encoding", "") or "").lower()
        self.unicode = unicode if unicode is not None else "utf" in encoding
        self.show_output = show_output
        self._partial: dict[tuple[str, str, str | None], str] = {}
        self._handlers: dict[type[Event], Callable[[Any, Stamp], None]] = {
            RunStarted: self._run_started, PhaseStarted: self._phase_started,
            PhaseFinished: self._phase_finished, StepStarted: self._step_started,
            StepOutput: self._output, StepAttempt: self._attempt, StepFinished: self._step_finished,
            Approval: self._approval, PromptAnswered: self._answered, NotifySent: self._notified,
            RollbackStarted: self._rollback_started, RollbackFinished: self._rollback_finished,
            RunFinished: self._run_finished, InjectFired: self._inject, HintShown: self._hint,
            PriorityChanged: self._priority, EscalationFired: self._escalation,
            ClockControl: self._clock, HostFinished: self._host_finished, RunResumed: self._run_resumed,
        }
        self._progress_at: dict[str, float] = {}
        self._mark: tuple[int, str] = (-1, "")  # the last clock mark: its whole second, its text

    def on_event(self, event: Event, stamp: Stamp) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event, stamp)

    # -- formatting helpers --------------------------------------------------------------------

    def paint(self, text: str, *styles: str) -> str:
        if not self.color or not styles:
            return text
        codes = ";".join(_STYLES[s] for s in styles)
        return f"\033[{codes}m{text}\033[0m"

    def sym(self, fancy: str, plain: str) -> str:
        return fancy if self.unicode else plain

    def line(self, text: str = "") -> None:
        """Print one line (from any thread: an open prompt is kept whole, see Terminal)."""
        self.terminal.write(text + "\n")

    def ask(self, prompt: str) -> str:
        """Read an answer at a prompt this console owns (Terminal.ask)."""
        return self.terminal.ask(prompt)

    def _clock_mark(self, stamp: Stamp) -> str:
        whole = int(stamp.elapsed)
        if whole != self._mark[0]:  # a run's lines come many a second: each second's made once
            minutes, seconds = divmod(whole, 60)
            self._mark = (whole, self.paint(f"[{minutes:02d}:{seconds:02d}]", "dim"))
        return self._mark[1]

    # -- events ----------------------------------------------------------------------------------

    def _run_started(self, e: RunStarted, s: Stamp) -> None:
        resumed = " (resumed)" if e.resumed_from else ""
        dot = self.sym("·", "|")
        self.line(self.paint(f"{self.sym('▶▶', '>>')} {e.title}", "bold") +
                  self.paint(f"  runbook {e.runbook} {dot} run {e.run_id} {dot} {e.mode}{resumed}", "dim"))
        if e.inputs:
            shown = " ".join(f"{k}={_short(v)}" for k, v in e.inputs.items())
            self.line(self.paint(f"   inputs: {shown}", "dim"))
        if e.participants:
            people = ", ".join(p["name"] + (f" ({p['role']})" if p.get("role") else "") for p in e.participants)
            self.line(self.paint(f"   participants: {people}", "dim"))
        if e.incident.get("priority"):
            self.line(f"   priority: {self.paint(e.incident['priority'], 'bold')}")

    def _run_resumed(self, e: RunResumed, s: Stamp) -> None:
        at = f" at step {e.stop_step}" if e.stop_step else ""
        self.line(self.paint(f"   resumed by {e.by}" + (f": {e.reason}" if e.reason else "") +
                             f" (the earlier attempt {e.previous}{at}; {format_duration(e.downtime)} ago)", "dim"))
        plan = [f"from {e.from_step}"] if e.from_step else []
        plan += [f"running again: {', '.join(e.rerun)}"] if e.rerun else []
        plan += [f"skipping: {', '.join(e.skip)}"] if e.skip else []
        plan += [f"{'stopped' if lo.get('action') == 'stop' else 'waited for'} {lo.get('step')} "
                 f"(process group {lo.get('pgid')} on {lo.get('host') or 'this machine'})" for lo in e.leftovers]
        if plan:
            self.line(self.paint(f"   {'; '.join(plan)}", "dim"))

    def _phase_started(self, e: PhaseStarted, s: Stamp) -> None:
        rule = self.sym("─", "-")
        self.line()
        self.line(self.paint(f"{rule * 2} {e.phase} {rule * max(2, 60 - len(e.phase))}", "bold", "blue"))

    def _phase_finished(self, e: PhaseFinished, s: Stamp) -> None:
        return None

    def _step_started(self, e: StepStarted, s: Stamp) -> None:
        where = ""
        if e.target:
            where = f"  [{e.target}: {_host_list(e.hosts)}]"
        prefix = "undo " if e.rollback_of else ""
        item = f"  (item {_short(e.item)})" if e.item is not None else ""
        if e.block:  # a step of a block (or a case): which one, and for which of its items
            item = f"  (in {e.block}" + (f", item {e.index}: {_short(e.item, 40)})" if e.index is not None else ")")
        title = f"  {e.title}" if e.title else ""
        depth = self._depths[e.step] = self._depths.get(e.block, -1) + 1 if e.block else 0
        pad = "  " * depth
        color = self.color  # without, paint() returns its text: a call spared (most runs' output, piped)
        step = self.paint(e.step, "bold") if color else e.step
        # The clock's mark made again only in a new second, the arrow chosen inline: no calls.
        mark = self._mark[1] if int(s.elapsed) == self._mark[0] else self._clock_mark(s)
        text = f"{mark} {pad}{'▶' if self.unicode else '>'} {prefix}{step}{title}" \
            f"{self.paint(where, 'cyan') if color else where}{item}\n"
        if e.command:
            command = f"        {pad}$ {e.command}"
            text += (self.paint(command, "dim") if color else command) + "\n"
        if e.instructions:
            # What the person must do, before anything asks them: shown in full, not dimmed.
            text += "".join(f"        {line}".rstrip() + "\n" for line in e.instructions.splitlines())
        self.terminal.write(text)  # one write (and flush) for the step's start

    def _output(self, e: StepOutput, s: Stamp) -> None:
        if not self.show_output:
            return
        if e.stream == "info":
            self.line(self.paint(f"        {'  ' * self._depths.get(e.step, 0)}{e.text}", "dim"))
            return
        # Items of a block running at once: each line says which item it is for.
        who = e.host if e.item is None else f"item {e.item}" + (f" {e.host}" if e.host else "")
        # A later poll's output is held, and shown when the poll ends if it changed.
        for stream, host, text in self._polls.take(e.step, e.stream, who, e.text):
            self._show(e.step, stream, host, text)

    def _show(self, step: str, stream: str, host: str | None, chunk: str) -> None:
        key = (step, stream, host)
        text = self._partial.pop(key, "") + chunk
        whole, newline, rest = text.rpartition("\n")
        if len(rest) > PARTIAL_LIMIT:
            # A line that never ends (binary output, a progress bar) must not grow
            # without bound, nor be copied again with every chunk: show it in pieces.
            whole, newline, rest = whole + newline + rest, "\n", ""
        if rest:
            self._partial[key] = rest
        if newline:
            self._write_lines(whole, stream, host, step)

    def _write_lines(self, text: str, stream: str, host: str | None, step: str) -> None:
        # One write per chunk, the prefix added with str.replace: a step printing
        # millions of lines must not cost a Python call per line.
        start, end = ("\033[31m", "\033[0m") if stream == "stderr" and self.color else ("", "")
        pad = "  " * self._depths.get(step, 0)
        prefix = f"        {pad}{self.sym('│', '|')} {host + ': ' if host else ''}{start}"
        self.terminal.write(prefix + text.replace("\n", f"{end}\n{prefix}") + end + "\n")

    def _flush_partial(self, step: str) -> None:
        for key in [k for k in self._partial if k[0] == step]:
            self._write_lines(self._partial.pop(key), key[1], key[2], step)

    def _end_attempt(self, step: str) -> None:
        """An attempt or poll is over: its last line is shown even without a newline (the
        next poll's output must not run on from it), and a poll's held output is shown
        only if it differs from the poll before."""
        held = self._polls.end(step)
        if held is _UNCHANGED:
            self.line(self.paint("        (output unchanged since the last poll)", "dim"))
        elif held:
            for stream, host, text in held:
                self._show(step, stream, host, text)
        self._flush_partial(step)

    def _attempt(self, e: StepAttempt, s: Stamp) -> None:
        if self.show_output:
            self._end_attempt(e.step)
            if e.polling:
                self._polls.polling(e.step)
        wait = format_duration(e.next_in)
        if e.polling:
            self.line(self.paint(f"        {self.sym('…', '..')} not yet (poll {e.attempt}); next check in {wait}",
                                 "yellow"))
        else:
            why = e.error or (f"exit code {e.exit_code}" if e.exit_code is not None else "failed")
            self.line(self.paint(f"        {self.sym('↻', '<>')} attempt {e.attempt} failed ({why}); "
                                 f"retrying in {wait}", "yellow"))
        if e.command:  # the next try runs another command (it names `attempt`)
            self.line(self.paint(f"        $ {e.command}", "dim"))

    def barrier(self) -> None:
        """Before an effect outside the run (a command, a prompt, a wait): show what is held (a line)."""
        if self.terminal._held[0]:  # flush()'s own test first: most barriers have nothing held
            self.terminal.flush()

    def _step_finished(self, e: StepFinished, s: Stamp) -> None:
        if self._polls.active(e.step) or self._partial:
            if self.show_output:
                self._end_attempt(e.step)
            self._polls.forget(e.step)
        mark, word, style = _STATUS.get(e.status, ("?", e.status, "yellow"))
        mark = mark if self.unicode else {"✓": "ok", "✗": "XX", "–": "--"}.get(mark, mark)
        detail = ""
        if e.status == "skipped":
            detail = f" ({e.reason})" if e.reason else ""
        elif e.error and e.status != "ok":
            detail = f": {e.error}"
        tries = f", {e.attempts} attempts" if e.attempts > 1 else ""
        outputs = ""
        if e.outputs and e.status == "ok":
            outputs = self.paint("  " + " ".join(f"{k}={_short(v)}" for k, v in e.outputs.items()), "dim")
        item = self.paint(f"  (item {e.index})", "dim") if e.block and e.index is not None else ""
        pad = "  " * self._depths.get(e.step, 0)
        # Held by the terminal (write(flush=False)) until the next line or the next barrier
        # (before a command, a request, a prompt, a wait; the run's end): the two go out in
        # one write.
        status, took = f"{mark} {e.step} {word}", f" {format_duration(e.duration)}{tries}"
        if self.color:
            status, took = self.paint(status, style), self.paint(took, "dim")
        table, mark = len(e.hosts) > 1, self._mark[1] if int(s.elapsed) == self._mark[0] else self._clock_mark(s)
        self.terminal.write(f"{mark} {pad}{status}{took}{detail}{outputs}{item}\n", flush=table)
        if table:
            self._host_table(e.hosts)

    # -- fan-out: progress while hosts finish, a table when the step is done -------------------

    def _host_finished(self, e: HostFinished, s: Stamp) -> None:
        if e.command is not None:  # each host ran its own command: say which
            self.line(self.paint(f"        {e.host} ran: {e.command}", "dim"))
        if e.status not in ("ok", "not_run"):
            why = f": {_short(e.error, 100)}" if e.error else ""
            self.line(self.paint(f"        {self.sym('✗', 'XX')} {e.host} {e.status}{why}", "red"))
        last = self._progress_at.get(e.step)
        if e.total > 1 and (last is None or e.done == e.total or s.elapsed - last >= PROGRESS_EVERY):
            self._progress_at[e.step] = s.elapsed
            dot = self.sym("·", "|")
            self.line(self.paint(f"        [{e.done}/{e.total}] {e.done - e.failed} ok {dot} "
                                 f"{e.failed} failed {dot} {e.running} running", "dim"))

    def _host_table(self, hosts: dict[str, dict[str, Any]]) -> None:
        """Failed hosts first, then the rest; long runs of ok hosts are counted, not listed."""
        bad = [(h, r) for h, r in hosts.items() if r.get("status") != "ok"]
        good = [(h, r) for h, r in hosts.items() if r.get("status") == "ok"]
        shown = bad + good[:max(TABLE_OK_ROWS, 0)]
        width = max(len("host"), *(len(h) for h, _ in shown))  # short names: the heading sets the width
        self.line(self.paint(f"        {'host'.ljust(width)}  {'status':<11} {'exit':>4}  {'time':>6}  error", "dim"))
        for host, r in shown:
            code = "" if r.get("exit_code") is None else str(r.get("exit_code"))
            row = (f"        {host.ljust(width)}  {r.get('status')!s:<11} {code:>4}  "
                   f"{format_duration(float(r.get('duration') or 0)):>6}  {_short(r.get('error') or '', 80)}")
            self.line(self.paint(row.rstrip(), "dim" if r.get("status") == "ok" else "red"))
        if len(good) > TABLE_OK_ROWS:
            self.line(self.paint(f"        ... and {len(good) - TABLE_OK_ROWS} more host(s) ok", "dim"))

    def _approval(self, e: Approval, s: Stamp) -> None:
        who = f" by {e.by}" + (f" ({e.role})" if e.role else "") if e.by else ""
        if e.approved:
            self.line(self.paint(f"        approved{who}", "green"))
        else:
            self.line(self.paint(f"        not approved{who}: {e.message}", "red"))

    def _answered(self, e: PromptAnswered, s: Stamp) -> None:
        who = f" by {e.by}" + (f" ({e.role})" if e.role else "") if e.by else ""
        answers = " ".join(f"{k}={_short(v)}" for k, v in e.answers.items())
        self.line(self.paint(f"        answered{who}" + (f": {answers}" if answers else ""), "dim"))

    def _notified(self, e: NotifySent, s: Stamp) -> None:
        arrow = self.sym("→", "->")
        label = {"update": "update", "escalation": "escalation"}.get(e.purpose, "notify")
        first, *rest = e.message.split("\n")
        self.line(f"        {arrow} {label} [{e.channel}] {first}{self._delivery(e)}")
        for more in rest:
            self.line(f"          {more}")
        if e.note == NO_CONFIG and not self._told_console_only:
            self._told_console_only = True  # once per run: nobody else is told, and how to change that
            self.line(self.paint("          (messages are shown here only: no channels config. Name the channels "
                                 "in channels.yaml in the runbook home, $RUNBOOK_CHANNELS or --channels FILE)",
                                 "yellow"))

    def _delivery(self, e: NotifySent) -> str:
        if not e.ok:
            return self.paint(f"  (not delivered: {e.error})", "red")
        if e.note:
            return self.paint(f"  ({e.note})", "dim")
        return self.paint(f"  (delivered on attempt {e.attempts})", "dim") if e.attempts > 1 else ""

    def _rollback_started(self, e: RollbackStarted, s: Stamp) -> None:
        self.line()
        self.line(self.paint(f"{self.sym('↺', '<-')} rollback ({e.reason}): {', '.join(e.steps)}", "bold", "yellow"))

    def _rollback_finished(self, e: RollbackFinished, s: Stamp) -> None:
        text = "rollbacks skipped" if e.skipped else f"rollback {e.status}"
        self.line(self.paint(f"{self.sym('↺', '<-')} {text}", "yellow"))

    def _inject(self, e: InjectFired, s: Stamp) -> None:
        # The team sees the message as it would reach them; its kind (a red herring?) and
        # the state it changes are the trainer's notes.
        if e.message:
            self.line(self.paint(f"{self._clock_mark(s)} {self.sym('⚡', '!!')} {e.message}", "magenta"))
        elif e.manual:
            self.line(f"   event {e.index + 1} fired: it changes the simulated world and tells the team nothing")

    def _hint(self, e: HintShown, s: Stamp) -> None:
        self.line(self.paint(f"        hint for {e.step}: {e.hint}", "cyan"))

    def _priority(self, e: PriorityChanged, s: Stamp) -> None:
        was = f" (was {e.previous})" if e.previous and e.previous != e.priority else ""
        who = f" by {e.by}" if e.by else ""
        self.line(self.paint(f"        priority {e.priority or '?'}{was}: impact {e.impact}, "
                             f"urgency {e.urgency}{who}", "bold"))

    def _escalation(self, e: EscalationFired, s: Stamp) -> None:
        self.line(self.paint(f"{self._clock_mark(s)} escalation to {e.channel}: {e.reason}", "bold", "red"))

    def _clock(self, e: ClockControl, s: Stamp) -> None:
        self.line(self.paint(f"{self._clock_mark(s)} clock {e.action}", "dim"))

    def _run_finished(self, e: RunFinished, s: Stamp) -> None:
        style = _OUTCOME_STYLE.get(e.outcome, "yellow")
        self.line()
        at = f" at step {e.failed_step}" if e.failed_step and e.outcome != "resolved" else ""
        self.line(self.paint(f"{self.sym('■', '==')} outcome: {e.outcome}", "bold", style) +
                  f"{at} in {format_duration(e.duration)}" + (f": {e.reason}" if e.reason else ""))
        if e.phases:
            parts = f" {self.sym('·', '|')} ".join(f"{k} {format_duration(v)}" for k, v in e.phases.items())
            self.line(self.paint(f"   {parts}", "dim"))


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."  # ASCII: any terminal shows it


_Chunk = tuple[str, str | None, str]  # stream, host, text
_UNCHANGED: list[_Chunk] = []  # a distinct object: "the same output as the poll before"


class _Polls:
    """The output of polled steps (`until`): from the second poll on, a poll's output is
    held until the poll ends, then shown only if it differs from the poll before (a
    health check answering the same page every 10 seconds is shown once)."""

    def __init__(self) -> None:
        self._polling: set[str] = set()
        self._held: dict[str, list[_Chunk]] = {}
        self._seen: dict[str, dict[tuple[str, str | None], str] | None] = {}  # this attempt's output
        self._last: dict[str, dict[tuple[str, str | None], str] | None] = {}  # the previous poll's

    def take(self, step: str, stream: str, host: str | None, text: str) -> list[_Chunk]:
        """Note a chunk of output; what to show now ([] while a later poll's is held)."""
        chunk = (stream, host, text)
        seen = self._seen.setdefault(step, {})
        if seen is not None:
            key = (stream, host)
            seen[key] = seen.get(key, "") + text
            if sum(map(len, seen.values())) > POLL_COMPARE_LIMIT:
                self._seen[step] = seen = None  # too much to compare: show it as it comes
        if step not in self._polling:
            return [chunk]
        if seen is None:
            return [*self._held.pop(step, []), chunk]  # what was held goes out first, in order
        self._held.setdefault(step, []).append(chunk)
        return []

    def polling(self, step: str) -> None:
        self._polling.add(step)

    def end(self, step: str) -> list[_Chunk]:
        """The held output of the attempt that ended ([] if none, _UNCHANGED if the same)."""
        seen = self._seen.pop(step, {})
        held = self._held.pop(step, [])
        last = self._last.get(step)
        self._last[step] = seen
        if step in self._polling and seen is not None and last is not None and seen == last:
            return _UNCHANGED if any(seen.values()) else []
        return held

    def active(self, step: str) -> bool:
        """Whether the step has output noted or held, or polls (else end() and forget() have
        nothing to do: most steps)."""
        return step in self._seen or step in self._polling or step in self._last or step in self._held

    def forget(self, step: str) -> None:
        for table in (self._held, self._seen, self._last):
            table.pop(step, None)
        self._polling.discard(step)


def _host_list(hosts: Sequence[str]) -> str:
    """The hosts of a step's first line: all of them, or the first few and how many more."""
    if not hosts:
        return "?"
    if len(hosts) <= HEADER_HOSTS:
        return ", ".join(hosts)
    return f"{', '.join(hosts[:HEADER_HOSTS - 2])}, ... and {len(hosts) - HEADER_HOSTS + 2} more ({len(hosts)} hosts)"
