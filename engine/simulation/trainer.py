"""`runbook drill`: an interactive game day on a real clock, with trainer controls.

The team reads the briefing, acknowledges the page, and works the runbook at the
terminal while the simulated world answers. At any prompt, `hint` shows the step's
hint (its use is recorded) and the trainer can type:

    :pause   :resume   :inject N   :inject TEXT   :end   :help
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from engine.executors.prompts import Participant, TerminalPrompter
from engine.language.duration import format_duration
from engine.language.model import Runbook
from engine.language.scenario import Scenario
from engine.run.clock import DrillClock
from engine.run.console import Console
from engine.run.events import ClockControl, HintShown, InjectFired
from engine.run.journal_writer import JournalWriter, new_run_id
from engine.run.runner import Runner

from .drill import DrillRun, DrillSetup, render_scorecard, run_scenario
from .world import World

HELP = ("trainer commands: :pause  :resume  :inject N (scenario event N, from 1)  :inject (list them)  "
        ":inject TEXT  :end  :help; participants: `hint` at any prompt, `as NAME` to answer as someone else")


@dataclass
class DrillOptions:
    participants: tuple[Participant, ...] = ()
    speed: float = 1.0
    seed: int | None = None
    runs_dir: Path = Path(".runbook/runs")
    color: bool = False
    stream: TextIO | None = None
    read: Callable[[str], str] | None = None
    scripted: bool = False  # the scenario's scripted participants play (demos, rehearsing the script)
    channels: Any = None  # the channels config (notify.Channels): deliveries are recorded as to them, never sent


@dataclass
class Trainer:
    """Holds what trainer commands act on, once the drill has started."""

    clock: DrillClock
    scenario: Scenario
    write: Callable[[str], None]
    runner: Runner | None = None
    world: World | None = None
    log: list[str] = field(default_factory=list)

    def ready(self, runner: Runner, world: World) -> None:
        self.runner, self.world = runner, world

    def command(self, line: str) -> None:
        verb, _, rest = line[1:].strip().partition(" ")
        handler = {"pause": self._pause, "resume": self._resume, "inject": self._inject,
                   "end": self._end, "help": self._help}.get(verb)
        if handler is None:
            self.write(f"   unknown trainer command :{verb} ({HELP})")
            return
        handler(rest.strip())

    def hint(self, step: str, text: str, by: str | None = None) -> None:
        """A participant asked for the hint: record it (it counts in the scorecard)."""
        self._emit(HintShown(step, text, by))

    def _emit(self, event: Any) -> None:
        if self.runner is not None:
            self.runner.bus.emit(event)

    def _pause(self, _: str) -> None:
        self.clock.pause()
        self._emit(ClockControl("pause", "trainer"))

    def _resume(self, _: str) -> None:
        self.clock.resume()
        self._emit(ClockControl("resume", "trainer"))

    def _inject(self, what: str) -> None:
        if self.world is None:
            return
        events = self.scenario.events
        number = int(what) if what.isdigit() else None
        if number is not None and 1 <= number <= len(events):
            self.world.fire(events[number - 1], manual=True)
        elif number is not None:  # a typo in an event number must not go out as a message
            self.write(f"   no event {what}: the scenario's events are numbered 1 to {len(events)}" if events
                       else f"   no event {what}: the scenario has no events")
        elif what:
            self._emit(InjectFired(-1, self.clock.monotonic(), what, "info", {}, True))
        elif events:
            self.write("   events (`:inject N` fires one now):")
            for i, event in enumerate(events, 1):
                self.write(f"     {_event_line(i, event)}")
        else:
            self.write("   the scenario has no events")

    def events_summary(self) -> str:
        """The scenario's events by number and time (their messages only on `:inject`)."""
        events = self.scenario.events
        if not events:
            return "the scenario has no events"
        return "events: " + ", ".join(f"{i} at {format_duration(e.at)}" for i, e in enumerate(events, 1)) + \
            " (`:inject` shows what each says, `:inject N` fires one now)"

    def _end(self, _: str) -> None:
        self._emit(ClockControl("end", "trainer"))
        if self.runner is not None:
            self.runner.interrupt(hard=True, reason="ended by the trainer")
        raise KeyboardInterrupt

    def _help(self, _: str) -> None:
        self.write(f"   {HELP}")
        self.write(f"   {self.events_summary()}")


def _event_line(number: int, event: Any) -> str:
    said = event.message or "(no message: changes the world silently)"
    return f"{number} at {format_duration(event.at)}: {said}"


def _reader(trainer: Trainer, read: Callable[[str], str]) -> Callable[[str], str]:
    def read_line(prompt: str) -> str:
        while True:
            line = read(prompt)
            if line.strip().startswith(":"):
                trainer.command(line)
                continue
            return line

    return read_line


@contextmanager
def _interrupts(trainer: Trainer) -> Iterator[None]:
    presses = {"n": 0}

    def on_int(signum: int, frame: Any) -> None:
        presses["n"] += 1
        runner = trainer.runner
        if runner is not None:
            runner.interrupt(hard=presses["n"] > 1, reason="interrupted by Ctrl-C")
            if runner.prompting:
                raise KeyboardInterrupt

    old = signal.signal(signal.SIGINT, on_int)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _console_read(console: Console) -> Callable[[str], str]:
    """Read at the console, which redraws the prompt around injected events and updates."""

    def read(prompt: str) -> str:
        try:
            return console.ask(prompt)
        except EOFError:
            raise KeyboardInterrupt from None  # end of input: the session is over

    return read


def run_drill(scenario: Scenario, runbook: Runbook, options: DrillOptions) -> tuple[DrillRun, Path]:
    stream = options.stream or sys.stdout
    console = Console(stream, color=options.color)
    clock = DrillClock(options.speed)
    trainer = Trainer(clock, scenario, console.line)
    read = _reader(trainer, options.read or _console_read(console))
    prompter = TerminalPrompter(options.participants, on_hint=trainer.hint, read=read, write=console.line)

    page = scenario.page_text(runbook.title)

    def acknowledge() -> tuple[str | None, str | None, float]:
        t0 = time.monotonic()
        mine = " (or type your name)" if len(options.participants) > 1 else ""
        typed = read(f"{console.paint('PAGE', 'bold', 'red')} {page}: press Enter to acknowledge{mine} ").strip()
        who = next((p for p in options.participants if p.name == typed),
                   options.participants[0] if options.participants else None)
        if who is not None:
            prompter.answering(who.name)  # who took the page answers first
        return (who.name if who else None, who.role if who else None, time.monotonic() - t0)

    # Named after the runbook: the scenario's id is the trainer's and may give the fault away.
    run_id = new_run_id(f"drill-{runbook.id}", clock.now())
    _briefing(console, scenario, runbook, options)
    with JournalWriter(options.runs_dir / run_id) as journal:
        scripted = options.scripted
        setup = DrillSetup(clock=clock, prompter=None if scripted else prompter,
                           acknowledge=None if scripted else acknowledge,
                           observers=[journal, console], seed=options.seed,
                           mode="drill", run_id=run_id, participants=options.participants, ready=trainer.ready,
                           channels=options.channels)
        with _interrupts(trainer):
            drill = run_scenario(scenario, runbook, setup)
        console.line()
        console.line(render_scorecard(drill.scorecard).rstrip())
        console.line(f"   journal: {journal.path}")
    return drill, options.runs_dir / run_id


def _briefing(console: Console, scenario: Scenario, runbook: Runbook, options: DrillOptions) -> None:
    """What the trainees see first. The scenario's title and description are the trainer's
    notes (they say what is broken), so they never appear here."""
    console.line(console.paint("GAME DAY", "bold")
                 + f"  a drill of the runbook {runbook.title!r}: nothing real is touched")
    if options.participants:
        console.line("   team: " + ", ".join(str(p) for p in options.participants))
    if options.speed != 1:
        console.line(f"   simulated durations run {options.speed:g}x faster")
    console.line(f"   {HELP}")
    console.line()
    console.line(console.paint("BRIEFING", "bold") + f"  {scenario.briefing.strip()}")
    console.line(console.paint("ALERT at t=0", "bold", "red"))
