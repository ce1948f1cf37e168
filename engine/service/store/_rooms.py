"""Drill rooms in SQL: the room, who joined with which role, the prompts the drill waits
on, and the trainer's controls waiting for the drill's worker. Every change bumps the
room's `version`, which the live views watch."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, insert, select, update

from engine.run.journal_writer import new_run_id

from . import tables
from ._leases import audit
from ._runs import enqueue
from .database import now
from .records import NewRun, dumps, loads

ROOMS, MEMBERS = tables.drill_rooms, tables.drill_members
PROMPTS, CONTROLS = tables.drill_prompts, tables.drill_controls


def run_of(conn: Connection, room_id: str) -> str | None:
    """The room's run (None before it starts): the audit trail files what people did under it."""
    return conn.execute(select(ROOMS.c.run_id).where(ROOMS.c.id == room_id)).scalar_one_or_none()


def bump(conn: Connection, room_id: str) -> None:
    conn.execute(update(ROOMS).where(ROOMS.c.id == room_id).values(version=ROOMS.c.version + 1))


def create(conn: Connection, room: Mapping[str, Any]) -> None:
    conn.execute(insert(ROOMS).values(**room, status="lobby", version=1, created_at=now(conn)))
    audit(conn, room["trainer"], "drill.created", None, {"room": room["id"], "scenario": room["scenario"]})


def room(conn: Connection, *, room_id: str | None = None, code: str | None = None,
         run_id: str | None = None) -> Any:
    column, value = ((ROOMS.c.id, room_id) if room_id is not None else
                     (ROOMS.c.code, code) if code is not None else (ROOMS.c.run_id, run_id))
    return conn.execute(select(ROOMS).where(column == value)).first()


def rooms(conn: Connection, limit: int) -> list[Any]:
    return list(conn.execute(select(ROOMS).order_by(ROOMS.c.created_at.desc(), ROOMS.c.id).limit(limit)))


def members(conn: Connection, room_id: str) -> list[Any]:
    return list(conn.execute(select(MEMBERS).where(MEMBERS.c.room_id == room_id).order_by(MEMBERS.c.joined_at,
                                                                                          MEMBERS.c.person)))


def join(conn: Connection, room_id: str, person: str) -> bool:
    """Add `person` (False: they were in already)."""
    there = conn.execute(select(MEMBERS.c.person).where(MEMBERS.c.room_id == room_id,
                                                        MEMBERS.c.person == person)).first()
    if there is not None:
        return False
    conn.execute(insert(MEMBERS).values(room_id=room_id, person=person, role=None, joined_at=now(conn)))
    audit(conn, person, "drill.joined", None, {"room": room_id})
    bump(conn, room_id)
    return True


def assign(conn: Connection, room_id: str, roles: Mapping[str, str | None], by: str) -> None:
    """Give each member the role named (None: no role)."""
    for person, role in roles.items():
        conn.execute(update(MEMBERS).where(MEMBERS.c.room_id == room_id, MEMBERS.c.person == person)
                     .values(role=role))
    audit(conn, by, "drill.roles", run_of(conn, room_id), {"room": room_id, "roles": dict(roles)})
    bump(conn, room_id)


def start(conn: Connection, room_id: str, run: NewRun, by: str) -> str | None:
    """Queue the room's drill and tie it to the room, in one transaction: no worker can
    claim the run before it knows the run is a room's drill. None: it had started."""
    run_id = run.run_id or new_run_id(run.runbook)
    done = conn.execute(update(ROOMS).where(ROOMS.c.id == room_id, ROOMS.c.status == "lobby")
                        .values(status="running", run_id=run_id, version=ROOMS.c.version + 1))
    if not done.rowcount:
        return None
    enqueue(conn, dataclasses.replace(run, run_id=run_id))
    audit(conn, by, "drill.started", run_id, {"room": room_id})
    return run_id


def ended(conn: Connection, room_id: str) -> None:
    conn.execute(update(ROOMS).where(ROOMS.c.id == room_id).values(status="ended", version=ROOMS.c.version + 1))
    conn.execute(update(PROMPTS).where(PROMPTS.c.room_id == room_id, PROMPTS.c.status == "open")
                 .values(status="cancelled"))


def ask(conn: Connection, room_id: str, prompt: Mapping[str, Any]) -> int:
    result = conn.execute(insert(PROMPTS).values(
        room_id=room_id, step=prompt["step"], kind=prompt["kind"], text=prompt["text"],
        fields=dumps(list(prompt["fields"])), role=prompt.get("role"), status="open", asked_at=now(conn)))
    bump(conn, room_id)
    key: Any = result.inserted_primary_key
    return int(key[0])


def prompts(conn: Connection, room_id: str, status: str | None) -> list[Any]:
    query = select(PROMPTS).where(PROMPTS.c.room_id == room_id).order_by(PROMPTS.c.id)
    if status is not None:
        query = query.where(PROMPTS.c.status == status)
    return list(conn.execute(query))


def prompt(conn: Connection, prompt_id: int) -> Any:
    return conn.execute(select(PROMPTS).where(PROMPTS.c.id == prompt_id)).first()


def answer(conn: Connection, prompt_id: int, values: Mapping[str, Any], by: str) -> bool:
    """Record the answer (False: the prompt is no longer open)."""
    done = conn.execute(update(PROMPTS).where(PROMPTS.c.id == prompt_id, PROMPTS.c.status == "open").values(
        status="answered", answer=dumps(dict(values)), answered_by=by, answered_at=now(conn)))
    row = prompt(conn, prompt_id)
    if done.rowcount and row is not None:
        audit(conn, by, "drill.answered", run_of(conn, row.room_id),
              {"room": row.room_id, "step": row.step, "answer": dict(values)})
        bump(conn, row.room_id)
    return done.rowcount > 0


def control(conn: Connection, room_id: str, verb: str, arg: str, by: str) -> int:
    result = conn.execute(insert(CONTROLS).values(room_id=room_id, verb=verb, arg=arg, by=by, at=now(conn)))
    if verb == "speed":  # the room says the speed the drill runs at now
        conn.execute(update(ROOMS).where(ROOMS.c.id == room_id).values(speed=float(arg)))
    audit(conn, by, f"drill.{verb}", run_of(conn, room_id), {"room": room_id, "arg": arg})
    bump(conn, room_id)
    key: Any = result.inserted_primary_key
    return int(key[0])


def take_controls(conn: Connection, room_id: str) -> list[Any]:
    """The controls not yet applied, in order, marked taken."""
    rows = list(conn.execute(select(CONTROLS).where(CONTROLS.c.room_id == room_id, CONTROLS.c.taken_at.is_(None))
                             .order_by(CONTROLS.c.id)))
    if rows:
        conn.execute(update(CONTROLS).where(CONTROLS.c.id.in_([r.id for r in rows])).values(taken_at=now(conn)))
    return rows


def fields_of(row: Any) -> list[dict[str, Any]]:
    return list(loads(row.fields, []))
