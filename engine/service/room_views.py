"""What each person in a drill room sees, read from the store: the trainee's view and the
trainer's, as data for the templates and as the room's live stream.

A trainee sees what a responder would in the incident: the page as the alert reads, the
briefing, the runbook's steps as they run (with the simulated world's output), what
happened around them (an injected event's message, never its kind or what it changed),
the questions put to them, that others' questions wait on someone (not what they ask),
and the hints they asked for. Never the scenario's title or notes, its faults, the
events to come, or the scorecard before the end: the trainer's view adds those, with the
controls and the join link. At the end everyone sees the scorecard and the debrief's
times per person and per role.

The stream sends a trainee each journal record cut down to the fields of `SHOWN` (a
record of another kind goes as its name only), so a script listening to it learns no
more than the page shows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from engine.language.scenario import Scenario
from engine.reporting.debrief import TrainerNotes, trainee_view, trainer_notes
from engine.reporting.timeline import Timeline, build_timeline
from engine.run.metrics import timings
from engine.simulation.drill import Scorecard, score

from .drill_room import ACK, load_pair, roles_of
from .store import Store
from .store.rooms import MemberRow, PromptRow, RoomRow, Rooms
from .views import records_of

# A trainee's stream: per event, the fields they may read (every record keeps seq and event).
SHOWN: dict[str, tuple[str, ...]] = {
    "phase.started": ("phase",), "phase.finished": ("phase", "status"),
    "step.started": ("step", "phase", "role"), "step.finished": ("step", "status", "duration"),
    "prompt.answered": ("step", "by", "role"), "approval": ("step", "by", "role", "approved"),
    "incident.acknowledged": ("by", "role"), "inject.fired": ("message",), "clock.control": ("action", "by"),
    "run.finished": ("outcome",),
}


@dataclass
class Waiting:
    """An open prompt as one person sees it: theirs to answer, or someone else's."""

    prompt: PromptRow
    mine: bool
    who: str  # whom it waits on, in words


@dataclass
class RoomView:
    room: RoomRow
    me: str
    trainer: bool
    member: MemberRow | None
    members: list[MemberRow]
    roles: list[str]
    runbook: str
    page: str
    briefing: str
    timeline: Timeline
    happened: list[dict[str, Any]]  # injected events and the trainer's controls, as the viewer may read them
    waiting: list[Waiting]
    hints: list[dict[str, Any]]  # the hints this person asked for (the trainer: everyone's)
    paused: bool
    card: Scorecard | None = None  # live for the trainer, for everyone at the end
    notes: TrainerNotes | None = None
    events: list[tuple[int, Any]] = field(default_factory=list)  # the scenario's, numbered (trainer)
    scenario_title: str = ""

    @property
    def ended(self) -> bool:
        return self.room.status == "ended"


def room_view(store: Store, room: RoomRow, me: str) -> RoomView:
    """The room as `me` may see it (the trainer, or a participant)."""
    rooms = Rooms(store)
    scenario, runbook = load_pair(room.scenario)
    members = rooms.members(room.id)
    member = next((m for m in members if m.person == me), None)
    trainer = room.trainer == me
    records = records_of(store, room.run_id) if room.run_id else []
    shown = records if trainer else trainee_view(records)
    view = RoomView(room, me, trainer, member, members, roles_of(scenario, runbook), runbook.title,
                    scenario.page_text(runbook.title), scenario.briefing.strip(), build_timeline(shown),
                    [r for r in shown if r.get("event") == "inject.fired" or _control_shown(r, trainer)],
                    _waiting(rooms.prompts(room.id), members, member, trainer),
                    [r for r in records if r.get("event") == "hint.shown" and (trainer or r.get("by") == me)],
                    _paused(records))
    if trainer or view.ended:
        view.card = score(scenario, timings(records)) if records else None
    if trainer:
        _trainer_side(view, scenario, records)
    return view


def _trainer_side(view: RoomView, scenario: Scenario, records: list[dict[str, Any]]) -> None:
    view.notes = trainer_notes(scenario, records)
    view.events = list(enumerate(scenario.events, 1))
    view.scenario_title = scenario.title


def _control_shown(record: dict[str, Any], trainer: bool) -> bool:
    """A trainer's control as a person in the room hears of it: the trainees learn of a
    pause, a new speed or the end, not that an event they saw was the trainer's doing."""
    action = str(record.get("action") or "")
    return record.get("event") == "clock.control" and (trainer or not action.startswith("inject"))


def _paused(records: list[dict[str, Any]]) -> bool:
    actions = [r.get("action") for r in records if r.get("event") == "clock.control"]
    return bool(actions) and actions[-1] == "pause"


def _waiting(prompts: list[PromptRow], members: list[MemberRow], member: MemberRow | None,
             trainer: bool) -> list[Waiting]:
    out = []
    for prompt in prompts:
        holders = [m.person for m in members if prompt.role is None or m.role == prompt.role]
        mine = member is not None and member.person in holders
        if prompt.kind == ACK:
            who = "anyone in the room"
        elif holders:
            who = ", ".join(holders) + (f" ({prompt.role})" if prompt.role else "")
        else:
            who = f"the {prompt.role}, whom nobody holds yet: the trainer gives roles"
        out.append(Waiting(prompt, mine, who))
    return out


def stream_line(line: str, trainer: bool) -> str:
    """A journal line as the room's stream sends it to this viewer."""
    if trainer:
        return line
    try:
        record = json.loads(line)
    except ValueError:
        return "{}"
    if not isinstance(record, dict):
        return "{}"
    keep = SHOWN.get(str(record.get("event")), ())
    if record.get("event") == "inject.fired" and not record.get("message"):
        keep = ()  # a silent change of the world: the trainees learn nothing of it
    if not _control_shown(record, False) and record.get("event") == "clock.control":
        keep = ()
    cut = {k: record[k] for k in ("seq", "event", *keep) if k in record}
    return json.dumps(cut, ensure_ascii=False, sort_keys=True)
