"""The drill room: a game day played from browsers, on the engine's drill.

Design. A trainer (a signed-in person holding one of the serve config's `trainers:`
roles, default `trainer`) opens a room on a scenario found in the config's `scenarios:`
directories. The room has an id (in its address) and a join code (in the join link,
`/drills/join/CODE`, 128 random bits): the code lets a signed-in person become a
participant of that room and nothing else; without an account nobody gets in. The trainer
gives participants the runbook's roles (and may change them until the end).

Starting queues the drill as a run in the store: a worker claims it like any run and
carries it out with `engine.simulation.drill.run_scenario` on a `DrillClock` at the
room's speed (drill_run.py), its journal going to the store like a live run's. The
drill's questions, approvals and the page are stored as the room's prompts; each goes to
the participant holding the step's role (a step without a role, and the page, to any
participant), and only they may answer it (`answer` checks the room's roles, never the
person's word). The drill does not park while it waits, as a live run does: its simulated
world lives in the worker, which holds the lease and keeps the drill clock running.

Everything else a person does reaches the drill through the store as a control the
worker picks up within a fraction of a second: the trainer's pause, resume, inject (a
scenario event by number, or a free text), speed and end, and a participant's request
for a hint. The worker journals each with who did it (`clock.control`, `hint.shown`), and
the audit trail has it too. What each person may see is room_views.py's concern.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import EngineError, UsageError
from engine.language.model import Runbook
from engine.language.scenario import Scenario
from engine.run.journal_writer import new_run_id

from .config import ServeConfig
from .prompts import APPROVAL, Forbidden, _checked
from .store import NewRun, PersonRow, QuestionRow, Store
from .store.rooms import PromptRow, RoomRow, Rooms

VERBS = ("pause", "resume", "inject", "end", "speed")
ACK = "acknowledge"  # the prompt kind of the page: whoever takes it first acknowledges
MAX_SPEED = 1000.0


class NoSuchRoom(UsageError):
    """No room of that id or join code."""


@dataclass(frozen=True)
class ScenarioChoice:
    """A scenario a trainer may start, as the start form lists it."""

    path: str
    id: str
    title: str
    runbook: str


# Scenarios and runbooks as last loaded, with the files' stamps: a room's page is drawn
# again at every live update, and validating the pair each time costs tens of milliseconds.
# (A runbook the runbook includes is read again when the scenario or the runbook changes.)
_LOADED: dict[str, tuple[tuple[Any, ...], tuple[Scenario, Runbook]]] = {}


def load_pair(path: str) -> tuple[Scenario, Runbook]:
    """The scenario at `path` and its runbook, both validated (again once either changed)."""
    from engine.language.validation import load_runbook, load_scenario

    kept = _LOADED.get(path)
    if kept is not None and kept[0] == _stamps(path, kept[1][0].runbook_path):
        return kept[1]
    scenario: Scenario = load_scenario(path)
    pair = (scenario, load_runbook(scenario.runbook_path))
    _LOADED[path] = (_stamps(path, scenario.runbook_path), pair)
    return pair


def _stamps(*paths: str | Path) -> tuple[Any, ...]:
    stamps: list[Any] = []
    for path in paths:
        try:
            found = os.stat(path)
        except OSError:
            return ()
        stamps.append((found.st_mtime_ns, found.st_size, found.st_ino))
    return tuple(stamps)


def catalogue(config: ServeConfig) -> list[ScenarioChoice]:
    """Every valid scenario under the config's `scenarios:` (one that fails validation is
    left out: `runbook validate` names its problems)."""
    from engine.language.validation import discover

    found = []
    for path in discover(str(p) for p in config.scenarios):
        try:
            scenario, runbook = load_pair(path)
        except EngineError:
            continue
        found.append(ScenarioChoice(str(Path(path).resolve()), scenario.id, scenario.title, runbook.title))
    return sorted(found, key=lambda c: c.id)


def may_train(config: ServeConfig, person: PersonRow) -> bool:
    return any(role in config.trainers for role in person.roles)


def roles_of(scenario: Scenario, runbook: Runbook) -> list[str]:
    """The roles a trainer hands out: the runbook's, its steps', and the scenario's cast."""
    named = [*runbook.roles, *(s.role for s in runbook.steps(rollbacks=True) if s.role), *scenario.roles]
    return list(dict.fromkeys(str(r) for r in named))


class Room:
    """What people do in drill rooms, checked: who may do it, and whether it makes sense now."""

    def __init__(self, store: Store, config: ServeConfig) -> None:
        self.store, self.rooms, self.config = store, Rooms(store), config

    def get(self, room_id: str) -> RoomRow:
        room = self.rooms.get(room_id)
        if room is None:
            raise NoSuchRoom(f"no drill room {room_id}")
        return room

    def open(self, person: PersonRow, scenario_path: str, speed: float) -> RoomRow:
        """A new room on a scenario of the catalogue, `person` its trainer."""
        self._trainer_role(person)
        offered = {c.path for c in catalogue(self.config)}
        if scenario_path not in offered:
            raise UsageError(f"no scenario {scenario_path} in the serve config's scenarios: directories")
        if not 0 < speed <= MAX_SPEED:
            raise UsageError(f"speed {speed:g}: expected more than 0 and at most {MAX_SPEED:g}")
        return self.rooms.create(secrets.token_hex(6), secrets.token_urlsafe(16), person.name, scenario_path, speed)

    def join(self, code: str, person: PersonRow) -> RoomRow:
        room = self.rooms.by_code(code) if code else None
        if room is None:
            raise NoSuchRoom("this join link is not (or no longer) a drill room's")
        if room.trainer != person.name:  # the trainer watches; they do not play
            self.rooms.join(room.id, person.name)
        return room

    def assign(self, room: RoomRow, person: PersonRow, roles: Mapping[str, str]) -> None:
        """The trainer gives each participant a role of the runbook ('' for none)."""
        self._trainer_of(room, person)
        if room.status == "ended":
            raise UsageError("the drill has ended")
        scenario, runbook = load_pair(room.scenario)
        known, members = roles_of(scenario, runbook), {m.person for m in self.rooms.members(room.id)}
        for name, role in roles.items():
            if name not in members:
                raise UsageError(f"{name} has not joined this drill")
            if role and role not in known:
                raise UsageError(f"the runbook has no role {role} (its roles: {', '.join(known) or 'none'})")
        self.rooms.assign(room.id, {n: r or None for n, r in roles.items()}, person.name)

    def start(self, room: RoomRow, person: PersonRow) -> str:
        """Queue the drill (a worker runs it); its run id."""
        self._trainer_of(room, person)
        if room.status != "lobby":
            raise UsageError("the drill has started already")
        if not self.rooms.members(room.id):
            raise UsageError("nobody has joined yet: send the join link first")
        _, runbook = load_pair(room.scenario)
        # Named after the runbook, as `runbook drill` names it: the scenario's id may give the fault away.
        run = NewRun(runbook.id, str(Path(runbook.file).resolve()), mode="drill", origin=f"drill:{person.name}",
                     run_id=new_run_id(f"drill-{runbook.id}"))
        run_id = self.rooms.start(room.id, run, person.name)
        if run_id is None:
            raise UsageError("the drill has started already")
        return run_id

    def control(self, room: RoomRow, person: PersonRow, verb: str, arg: str = "") -> None:
        """A trainer's control, for the drill's worker (UsageError for one that makes no sense)."""
        self._trainer_of(room, person)
        if verb not in VERBS:
            raise UsageError(f"no control {verb!r} (controls: {', '.join(VERBS)})")
        if room.status != "running":
            raise UsageError("the drill is not running" if room.status == "lobby" else "the drill has ended")
        arg = arg.strip()
        if verb == "speed":
            _speed(arg)
        if verb == "inject":
            _event_number(arg, load_pair(room.scenario)[0])
        self.rooms.control(room.id, verb, arg, person.name)

    def answer(self, room: RoomRow, prompt_id: int, person: PersonRow, values: Mapping[str, Any]) -> PromptRow:
        """Answer a prompt as `person`, who must hold its role in this room."""
        prompt = self.rooms.prompt(prompt_id)
        if prompt is None or prompt.room_id != room.id or prompt.status != "open":
            raise UsageError("this question is no longer open (answered, or the drill moved on)")
        self.may_answer(room, prompt, person.name)
        checked = _checked(_as_question(prompt), values) if prompt.kind != ACK else {}
        if not self.rooms.answer(prompt.id, checked, person.name):
            raise UsageError("this question is no longer open (someone answered it first)")
        return prompt

    def may_answer(self, room: RoomRow, prompt: PromptRow, name: str) -> None:
        """Forbidden unless `name` is a participant holding the prompt's role."""
        role = next((m.role for m in self.rooms.members(room.id) if m.person == name), "-")
        if role == "-":
            raise Forbidden(f"{name} is not a participant of this drill")
        if prompt.role is not None and role != prompt.role:
            raise Forbidden(f"step {prompt.step} is for the {prompt.role} (your role here: {role or 'none'})")

    def hint(self, room: RoomRow, prompt_id: int, person: PersonRow) -> None:
        """A participant asks for the hint of the step they are asked about (recorded for them)."""
        prompt = self.rooms.prompt(prompt_id)
        if prompt is None or prompt.room_id != room.id:
            raise UsageError("no such question in this drill")
        self.may_answer(room, prompt, person.name)
        self.rooms.control(room.id, "hint", prompt.step, person.name)

    def _trainer_role(self, person: PersonRow) -> None:
        if not may_train(self.config, person):
            raise Forbidden(f"{person.name} may not run game days: it needs one of the roles "
                            f"{', '.join(self.config.trainers)} (the serve config's trainers:)")

    def _trainer_of(self, room: RoomRow, person: PersonRow) -> None:
        if room.trainer != person.name:
            raise Forbidden(f"only the trainer of this drill ({room.trainer}) may do that")


def _as_question(prompt: PromptRow) -> QuestionRow:
    kind = APPROVAL if prompt.kind == APPROVAL else prompt.kind
    return QuestionRow(prompt.id, prompt.room_id, prompt.step, kind, prompt.text, prompt.fields, prompt.role,
                       prompt.status, prompt.asked_at, None, None, None)


def _speed(arg: str) -> float:
    try:
        speed = float(arg)
    except ValueError:
        raise UsageError(f"speed {arg!r}: expected a number, e.g. 10") from None
    if not 0 < speed <= MAX_SPEED:
        raise UsageError(f"speed {arg}: expected more than 0 and at most {MAX_SPEED:g}")
    return speed


def _event_number(arg: str, scenario: Scenario) -> None:
    """An inject is an event's number (from 1) or a free text; a number out of range is a typo."""
    if arg.isdigit() and not 1 <= int(arg) <= len(scenario.events):
        raise UsageError(f"no event {arg}: the scenario's events are numbered 1 to {len(scenario.events)}"
                         if scenario.events else f"no event {arg}: the scenario has no events")
    if not arg:
        raise UsageError("inject what? an event's number, or a text to send")


def kept_from(store: Store, run_id: str, name: str, *, journal: bool = False) -> str | None:
    """Why `name` may not read run `run_id` on the console's run pages (None: they may).
    A drill room's run is its trainer's to read there: its journal names the scenario,
    each injected event's kind and what it changed. Its participants follow it in the
    room, and read its page and report once it has ended; its raw journal (`journal`)
    stays the trainer's."""
    room = Rooms(store).of_run(run_id)
    if room is None or room.trainer == name:
        return None
    members = {m.person for m in Rooms(store).members(room.id)}
    if name in members and room.status == "ended" and not journal:
        return None
    where = f": follow it in its room, /drills/{room.id}" if name in members else ""
    return f"This run is a game day's drill, shown to its trainer ({room.trainer}){where}."
