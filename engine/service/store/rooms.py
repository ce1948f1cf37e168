"""The store's door for drill rooms (the tables of schema step 6): records in and out,
one transaction per method, through the Store's retrying reads and writes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import _rooms
from .api import Store
from .records import NewRun, loads


@dataclass(frozen=True)
class RoomRow:
    """A game day: who runs it, which scenario, its join code, its run once started."""

    id: str
    code: str
    trainer: str
    scenario: str
    speed: float
    run_id: str | None
    status: str  # lobby, running, ended
    version: int
    created_at: float

    @classmethod
    def from_row(cls, row: Any) -> RoomRow:
        m = row._mapping
        return cls(m["id"], m["code"], m["trainer"], m["scenario"], float(m["speed"]), m["run_id"], m["status"],
                   int(m["version"]), float(m["created_at"]))


@dataclass(frozen=True)
class MemberRow:
    person: str
    role: str | None
    joined_at: float


@dataclass(frozen=True)
class PromptRow:
    """A question, approval or page the drill waits on, for the participant holding `role`."""

    id: int
    room_id: str
    step: str
    kind: str  # ask, approval, acknowledge
    text: str
    fields: list[dict[str, Any]]
    role: str | None
    status: str  # open, answered, cancelled
    asked_at: float
    answered_by: str | None
    answer: dict[str, Any] | None
    answered_at: float | None

    @classmethod
    def from_row(cls, row: Any) -> PromptRow:
        m = row._mapping
        return cls(m["id"], m["room_id"], m["step"], m["kind"], m["text"], _rooms.fields_of(row), m["role"],
                   m["status"], m["asked_at"], m["answered_by"], loads(m["answer"]), m["answered_at"])


@dataclass(frozen=True)
class ControlRow:
    """A trainer's (or, for `hint`, a participant's) action, for the drill's worker."""

    id: int
    verb: str
    arg: str
    by: str
    at: float

    @classmethod
    def from_row(cls, row: Any) -> ControlRow:
        return cls(row.id, row.verb, row.arg, row.by, row.at)


class Rooms:
    """Drill rooms in `store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, room_id: str, code: str, trainer: str, scenario: str, speed: float) -> RoomRow:
        values = {"id": room_id, "code": code, "trainer": trainer, "scenario": scenario, "speed": speed}
        self.store._write(lambda c: _rooms.create(c, values), "create the drill room")
        found = self.get(room_id)
        assert found is not None
        return found

    def get(self, room_id: str) -> RoomRow | None:
        return self._room("read the drill room", room_id=room_id)

    def by_code(self, code: str) -> RoomRow | None:
        return self._room("read the drill room", code=code)

    def of_run(self, run_id: str) -> RoomRow | None:
        """The room whose drill is this run (None: the run is no drill room's)."""
        return self._room("read the drill room", run_id=run_id)

    def _room(self, doing: str, **key: str) -> RoomRow | None:
        row = self.store._read(lambda c: _rooms.room(c, **key), doing)
        return RoomRow.from_row(row) if row is not None else None

    def listing(self, limit: int = 50) -> list[RoomRow]:
        return [RoomRow.from_row(r) for r in self.store._read(lambda c: _rooms.rooms(c, limit), "list drill rooms")]

    def members(self, room_id: str) -> list[MemberRow]:
        rows = self.store._read(lambda c: _rooms.members(c, room_id), "read the participants")
        return [MemberRow(r.person, r.role, r.joined_at) for r in rows]

    def join(self, room_id: str, person: str) -> bool:
        return self.store._write(lambda c: _rooms.join(c, room_id, person), "join the drill")

    def assign(self, room_id: str, roles: Mapping[str, str | None], by: str) -> None:
        self.store._write(lambda c: _rooms.assign(c, room_id, roles, by), "assign roles")

    def start(self, room_id: str, run: NewRun, by: str) -> str | None:
        """Queue `run` as the room's drill (its id; None: the drill had started already)."""
        return self.store._write(lambda c: _rooms.start(c, room_id, run, by), "start the drill")

    def end(self, room_id: str) -> None:
        self.store._write(lambda c: _rooms.ended(c, room_id), "end the drill")

    def ask(self, room_id: str, step: str, kind: str, text: str, fields: Sequence[Mapping[str, Any]],
            role: str | None) -> int:
        prompt = {"step": step, "kind": kind, "text": text, "fields": [dict(f) for f in fields], "role": role}
        return self.store._write(lambda c: _rooms.ask(c, room_id, prompt), "store the drill's question")

    def prompts(self, room_id: str, status: str | None = "open") -> list[PromptRow]:
        rows = self.store._read(lambda c: _rooms.prompts(c, room_id, status), "read the drill's questions")
        return [PromptRow.from_row(r) for r in rows]

    def prompt(self, prompt_id: int) -> PromptRow | None:
        row = self.store._read(lambda c: _rooms.prompt(c, prompt_id), "read the drill's question")
        return PromptRow.from_row(row) if row is not None else None

    def answer(self, prompt_id: int, values: Mapping[str, Any], by: str) -> bool:
        """Record the answer (False: no longer open). Who may answer is checked above."""
        return self.store._write(lambda c: _rooms.answer(c, prompt_id, values, by), "record the answer")

    def control(self, room_id: str, verb: str, arg: str, by: str) -> int:
        """A control for the drill's worker to apply (on the audit trail at once)."""
        return self.store._write(lambda c: _rooms.control(c, room_id, verb, arg, by), "send the control")

    def take_controls(self, room_id: str) -> list[ControlRow]:
        rows = self.store._write(lambda c: _rooms.take_controls(c, room_id), "take the trainer's controls")
        return [ControlRow.from_row(r) for r in rows]
