"""The drill room's store and worker side, on SQLite and PostgreSQL: a room opened by a
trainer, joined by code, roles given; the drill run by a worker in its simulated world;
each prompt answered only by the participant holding its role; the trainer's controls and
a participant's hint journaled with who gave them; the end by the trainer."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from postgres import wait_for
from roomkit import write_drill_files

from engine.service.config import ServeConfig, load_config
from engine.service.drill_room import NoSuchRoom, Room, catalogue
from engine.service.prompts import Forbidden, people_of
from engine.service.store import NewRun, Store
from engine.service.store.rooms import PromptRow, RoomRow, Rooms
from engine.service.worker import Worker, WorkerOptions

pytestmark = pytest.mark.integration


def _room(store: Store, tmp_path: Path) -> tuple[Room, RoomRow, ServeConfig]:
    config = load_config(write_drill_files(tmp_path))
    store.set_people(people_of(config))
    room = Room(store, config)
    opened = room.open(_p(store, "tess"), catalogue(config)[0].path, 50)
    for name in ("rita", "ivan"):
        room.join(opened.code, _p(store, name))
    room.assign(opened, _p(store, "tess"), {"rita": "responder", "ivan": "incident_commander"})
    return room, room.get(opened.id), config


def _p(store: Store, name: str) -> Any:
    person = store.person(name)
    assert person is not None
    return person


def _prompt(store: Store, room_id: str, step: str) -> PromptRow:
    found: list[PromptRow] = []

    def asked() -> bool:
        found[:] = [p for p in Rooms(store).prompts(room_id) if p.step == step]
        return bool(found)
    wait_for(asked, 60, f"the drill to ask at {step}")
    return found[0]


def _records(store: Store, run_id: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in store.records(run_id)]


def _worker(store: Store, tmp_path: Path) -> Worker:
    return Worker(store, WorkerOptions(slots=1, lease=5.0, poll=0.1, scratch=tmp_path / "scratch")).start()


def test_each_prompt_goes_to_its_role_and_every_action_is_journaled_with_who(store: Store, tmp_path: Path) -> None:
    room, opened, _ = _room(store, tmp_path)
    run_id = room.start(opened, _p(store, "tess"))
    worker = _worker(store, tmp_path)
    try:
        running = room.get(opened.id)
        page = _prompt(store, opened.id, "acknowledge")
        room.answer(running, page.id, _p(store, "ivan"), {})
        cause = _prompt(store, opened.id, "cause")
        assert cause.role == "responder"
        wrong = re.escape("step cause is for the responder (your role here: incident_commander)")
        with pytest.raises(Forbidden, match=wrong):
            room.answer(running, cause.id, _p(store, "ivan"), {"cause": "consumers"})
        with pytest.raises(Forbidden, match="olga is not a participant"):
            room.answer(running, cause.id, _p(store, "olga"), {"cause": "consumers"})
        room.hint(running, cause.id, _p(store, "rita"))
        room.control(running, _p(store, "tess"), "pause")
        wait_for(lambda: any(r.get("action") == "pause" for r in _records(store, run_id)), 30, "the pause")
        room.control(running, _p(store, "tess"), "resume")
        room.control(running, _p(store, "tess"), "inject", "1")
        room.control(running, _p(store, "tess"), "inject", "A customer is on the phone")
        wait_for(lambda: len([r for r in _records(store, run_id) if r["event"] == "inject.fired"]) == 2, 30,
                 "both injects")
        room.answer(running, cause.id, _p(store, "rita"), {"cause": "consumers"})
        restart = _prompt(store, opened.id, "restart")
        room.answer(running, restart.id, _p(store, "ivan"), {"approved": "yes"})
        wait_for(lambda: (store.run(run_id) or opened).status == "finished", 60, "the drill to end")
    finally:
        worker.stop()
    run = store.run(run_id)
    assert run is not None and run.outcome == "resolved" and run.mode == "drill", run
    records = _records(store, run_id)
    by = {(r["event"], r.get("action") or r.get("step")): (r.get("by"), r.get("role")) for r in records}
    assert by[("incident.acknowledged", None)] == ("ivan", "incident_commander")
    assert by[("prompt.answered", "cause")] == ("rita", "responder")
    assert by[("approval", "restart")] == ("ivan", "incident_commander")
    assert by[("hint.shown", "cause")][0] == "rita"
    assert by[("clock.control", "pause")][0] == by[("clock.control", "inject 1")][0] == "tess"
    injected = [(r["message"], r["manual"]) for r in records if r["event"] == "inject.fired"]
    assert injected == [("Payments team asks whether orders are being lost.", True),
                        ("A customer is on the phone", True)]
    assert records[0]["participants"] == [{"name": "rita", "role": "responder"},
                                          {"name": "ivan", "role": "incident_commander"}]
    assert room.get(opened.id).status == "ended" and not Rooms(store).prompts(opened.id)


def test_the_trainer_ends_the_drill(store: Store, tmp_path: Path) -> None:
    room, opened, _ = _room(store, tmp_path)
    run_id = room.start(opened, _p(store, "tess"))
    worker = _worker(store, tmp_path)
    try:
        _prompt(store, opened.id, "acknowledge")
        with pytest.raises(Forbidden, match=re.escape("only the trainer of this drill (tess)")):
            room.control(room.get(opened.id), _p(store, "rita"), "end")
        room.control(room.get(opened.id), _p(store, "tess"), "end")
        wait_for(lambda: (store.run(run_id) or opened).status == "finished", 60, "the drill to end")
    finally:
        worker.stop()
    ends = [r for r in _records(store, run_id) if r.get("action") == "end"]
    assert ends and ends[0]["by"] == "tess"
    assert _records(store, run_id)[-1]["event"] == "run.finished"
    assert room.get(opened.id).status == "ended"
    assert {a["what"] for a in store.audit_trail(run_id)} >= {"drill.started"}


def test_who_may_open_join_and_steer_a_room(store: Store, tmp_path: Path) -> None:
    room, opened, config = _room(store, tmp_path)
    path = catalogue(config)[0].path
    with pytest.raises(Forbidden, match="rita may not run game days: it needs one of the roles trainer"):
        room.open(_p(store, "rita"), path, 1)
    with pytest.raises(NoSuchRoom, match=re.escape("not (or no longer) a drill room's")):
        room.join(opened.code[:-1] + "x", _p(store, "olga"))
    with pytest.raises(Exception, match="no scenario /etc/passwd"):
        room.open(_p(store, "tess"), "/etc/passwd", 1)
    with pytest.raises(Exception, match="the runbook has no role dba"):
        room.assign(opened, _p(store, "tess"), {"rita": "dba"})
    with pytest.raises(Exception, match="the drill is not running"):
        room.control(opened, _p(store, "tess"), "pause")
    room.start(opened, _p(store, "tess"))
    with pytest.raises(Exception, match="no event 7: the scenario's events are numbered 1 to 1"):
        room.control(room.get(opened.id), _p(store, "tess"), "inject", "7")
    with pytest.raises(Exception, match="speed 'fast': expected a number"):
        room.control(room.get(opened.id), _p(store, "tess"), "speed", "fast")
    room.control(room.get(opened.id), _p(store, "tess"), "speed", "10")
    assert room.get(opened.id).speed == 10  # the room shows the speed the drill runs at now
    joined = room.join(opened.code, _p(store, "olga"))
    assert joined.id == opened.id and "olga" in {m.person for m in Rooms(store).members(opened.id)}


def test_a_drill_whose_worker_drains_ends_saying_so(store: Store, tmp_path: Path) -> None:
    """A drill's simulated world lives in its worker: handed over, it could not go on
    elsewhere, so it ends failed at once instead of waiting in the queue for nobody."""
    room, opened, _ = _room(store, tmp_path)
    run_id = room.start(opened, _p(store, "tess"))
    worker = Worker(store, WorkerOptions(slots=1, lease=5.0, poll=0.1, drain_timeout=0.5,
                                         scratch=tmp_path / "scratch")).start()
    try:
        _prompt(store, opened.id, "acknowledge")
        room.control(room.get(opened.id), _p(store, "tess"), "pause")
    finally:
        worker.stop()
    run = store.run(run_id)
    assert run is not None and run.status == "finished" and run.outcome == "failed", run
    assert "start the game day again" in (run.reason or "")
    assert room.get(opened.id).status == "ended"
    assert "drill.pause" in {a["what"] for a in store.audit_trail(run_id)}  # filed under the run


def test_a_drill_is_never_carried_out_live(store: Store, tmp_path: Path) -> None:
    """Found by the HTTP test under load: a worker claimed a room's drill between its
    queueing and its tie to the room, and ran the runbook live (a real /bin/sh ran its
    command). The drill is now queued and tied in one transaction, and a run of mode
    `drill` that no room holds ends failed instead of running."""
    marker = tmp_path / "touched"
    runbook = tmp_path / "touches.yaml"
    runbook.write_text("kind: runbook\nversion: 1\nid: touches\ntitle: Touches\nremediation:\n"
                       f"  - {{id: touch, run: 'touch {marker}'}}\n", encoding="utf-8")
    run_id = store.enqueue(NewRun("touches", str(runbook), mode="drill")).id
    worker = _worker(store, tmp_path)
    try:
        wait_for(lambda: (store.run(run_id) or _never()).status == "finished", 60, "the run to end")
    finally:
        worker.stop()
    run = store.run(run_id)
    assert run is not None and run.outcome == "failed" and "runs only from a drill room" in (run.reason or "")
    assert not marker.exists() and not store.records(run_id)
    room, opened, _ = _room(store, tmp_path)
    started = room.start(opened, _p(store, "tess"))
    assert (store.run(started) or _never()).mode == "drill" and room.get(opened.id).run_id == started


def _never() -> Any:
    raise AssertionError("no such run")


def test_an_abort_from_the_console_stops_a_drill_waiting_for_a_person(store: Store, tmp_path: Path) -> None:
    """The console's abort reaches a running drill as it reaches any run (its worker stops
    the runner); a drill waiting at a prompt stopped waiting for it (found reading the
    console's abort beside the room: the drill's prompt loop looked only at the trainer's end)."""
    room, opened, _ = _room(store, tmp_path)
    run_id = room.start(opened, _p(store, "tess"))
    worker = _worker(store, tmp_path)
    try:
        _prompt(store, opened.id, "acknowledge")
        assert store.abort(run_id, "tess", "enough for today", {"via": "test"}) == "stopping"
        wait_for(lambda: (store.run(run_id) or _never()).status == "finished", 60, "the drill to stop")
    finally:
        worker.stop()
    run = store.run(run_id)
    assert run is not None and run.outcome != "resolved", run
    assert _records(store, run_id)[-1]["event"] == "run.finished"
    assert room.get(opened.id).status == "ended" and not Rooms(store).prompts(opened.id)
