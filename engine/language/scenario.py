"""The scenario file as frozen dataclasses: the world, its faults, the scripted people."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .duration import parse_duration
from .inventory import Inventory, inventory_from_data, load_inventory
from .loader import Document
from .model import empty_map, frozen_map
from .source_map import SourceMap

# The reserved `participants` key of the one who takes the page, and when (a drill's
# acknowledgement), beside the keys that name steps.
ACKNOWLEDGE = "acknowledge"

# z-score of the 90th percentile of a standard normal: a lognormal's p90 is
# median * exp(sigma * Z90).
_Z90 = 1.2815515655446004


@dataclass(frozen=True, slots=True)
class Dist:
    """A simulated duration: fixed, uniform {min, max} or lognormal {median, p90}."""

    kind: str
    a: float
    b: float = 0.0

    def sample(self, rng: random.Random | None) -> float:
        if self.kind == "fixed" or rng is None:
            return self.a if self.kind != "uniform" else (self.a + self.b) / 2
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        sigma = math.log(self.b / self.a) / _Z90 if self.b > self.a > 0 else 0.0
        return self.a * math.exp(rng.gauss(0.0, sigma)) if self.a > 0 else 0.0

    @property
    def is_random(self) -> bool:
        return self.kind != "fixed"


def dist(value: Any) -> Dist | None:
    if value is None:
        return None
    if isinstance(value, str):
        return Dist("fixed", parse_duration(value))
    if "min" in value:
        return Dist("uniform", parse_duration(value["min"]), parse_duration(value["max"]))
    return Dist("lognormal", parse_duration(value["median"]), parse_duration(value["p90"]))


@dataclass(frozen=True, slots=True)
class Reply:
    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0
    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=empty_map)
    duration: Dist | None = None
    set: Mapping[str, Any] = field(default_factory=empty_map)
    message: str | None = None
    series: Any = None  # a promql step's answer: a list of {labels, value}, or a template giving one
    targets: Any = None  # a scrape_targets step's answer: a list of {labels, health, last_error}, or a template


@dataclass(frozen=True, slots=True)
class Match:
    command: str | None = None
    command_regex: str | None = None
    host: str | None = None
    url: str | None = None
    method: str | None = None
    query: str | None = None
    query_regex: str | None = None


@dataclass(frozen=True, slots=True)
class Response:
    index: int
    step: str | None
    match: Match | None
    when: str | None
    reply: Reply
    attempts: tuple[Reply, ...] = ()
    description: str = ""

    def reply_for(self, attempt: int) -> Reply:
        """The reply for attempt number `attempt` (1-based); the last one repeats."""
        if not self.attempts:
            return self.reply
        return self.attempts[min(attempt, len(self.attempts)) - 1]


@dataclass(frozen=True, slots=True)
class Event:
    at: float
    set: Mapping[str, Any] = field(default_factory=empty_map)
    message: str | None = None
    kind: str = "info"
    index: int = 0


@dataclass(frozen=True, slots=True)
class Participant:
    step: str
    answers: Mapping[str, Any] = field(default_factory=empty_map)
    approve: bool | None = None
    after: Dist | None = None
    by: str | None = None
    role: str | None = None
    hint: bool = False
    set: Mapping[str, Any] = field(default_factory=empty_map)  # world changes once they answer


@dataclass(frozen=True, slots=True)
class Objectives:
    outcome: str | None = None
    time_to_acknowledge: float | None = None
    time_to_triage: float | None = None
    time_to_mitigate: float | None = None
    time_to_recover: float | None = None
    must_run: tuple[str, ...] = ()
    must_not_run: tuple[str, ...] = ()
    max_retries: int | None = None
    first_update_within: float | None = None
    escalated: bool | None = None
    priority: str | None = None
    approved_by_role: Mapping[str, str] = field(default_factory=empty_map)
    order: tuple[str, ...] = ()  # these steps first started in this order
    items: tuple[ItemObjective, ...] = ()


@dataclass(frozen=True, slots=True)
class ItemObjective:
    """What a step's runs over the items of its (block's) for_each must show: how many,
    and what the first, the last and every run has (dotted paths into each run's
    {index, item, status, error} -> expected values), e.g. the leader last."""

    step: str
    index: int  # its position in `objectives.items`
    count: int | None = None
    first: Mapping[str, Any] = field(default_factory=empty_map)
    last: Mapping[str, Any] = field(default_factory=empty_map)
    each: Mapping[str, Any] = field(default_factory=empty_map)


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    file: str
    runbook: str
    description: str = ""
    inputs: Mapping[str, Any] = field(default_factory=empty_map)
    alert: Mapping[str, Any] | None = None
    briefing: str = ""
    page: str = ""
    seed: int | None = None
    state: Mapping[str, Any] = field(default_factory=empty_map)
    roles: Mapping[str, str] = field(default_factory=empty_map)
    responses: tuple[Response, ...] = ()
    events: tuple[Event, ...] = ()
    participants: Mapping[str, Participant] = field(default_factory=empty_map)
    hints: Mapping[str, str] = field(default_factory=empty_map)
    objectives: Objectives = Objectives()
    mitigated_when: str | None = None  # an expression over the world's state: true once mitigated
    # Kubernetes target -> the pods it lists in the drill: names, or a template on `state`.
    pods: Mapping[str, tuple[str, ...] | str] = field(default_factory=empty_map)
    # The hosts `group:` targets fan out to in the drill: a file (beside the scenario) or inline.
    inventory: str | Mapping[str, Any] | None = None
    source: SourceMap | None = field(default=None, compare=False, repr=False)

    @property
    def runbook_path(self) -> Path:
        """The runbook file, resolved against the scenario file's directory."""
        return (Path(self.file).parent / self.runbook).resolve()

    def load_inventory(self) -> Inventory | None:
        """The scenario's inventory, read now (InventoryError if it cannot be): a path is
        resolved against the scenario file's directory, as `runbook:` is."""
        if self.inventory is None:
            return None
        if isinstance(self.inventory, str):
            return load_inventory(Path(self.file).parent / self.inventory)
        return inventory_from_data(self.inventory, f"{self.file} (inventory)")

    @cached_property
    def _responses_by_step(self) -> dict[str | None, list[Response]]:
        index: dict[str | None, list[Response]] = {None: [r for r in self.responses if r.step is None]}
        for step in {r.step for r in self.responses if r.step is not None}:
            index[step] = [r for r in self.responses if r.step is None or r.step == step]
        return index

    @cached_property
    def state_json(self) -> str:
        """The state as JSON text (what JSON cannot hold, as its text), made once: every
        drill's world starts from its own copy (the trials of an estimate share this)."""
        return json.dumps(dict(self.state), default=str)

    @cached_property
    def plain_first(self) -> dict[str, Response]:
        """Per step, its first response when that names only the step (no `match`, no
        `when`): it answers every time without a look. Filled by the simulated world as
        steps are answered, so the trials of an estimate share it."""
        return {}

    def responses_for(self, step: str) -> list[Response]:
        """Responses that could answer `step`, in file order (the first match wins). A step
        of an included runbook (`fix_api/restart`) is answered by responses naming it so,
        or naming its own id (`restart`: in every runbook that includes it)."""
        index = self._responses_by_step
        if "/" not in step:  # a step of the runbook itself
            return index.get(step, index[None])
        leaf = step.rsplit("/", 1)[-1]
        if leaf not in index:
            return index.get(step, index[None])
        if step not in index:
            return index[leaf]
        return sorted({r.index: r for r in [*index[step], *index[leaf]]}.values(), key=lambda r: r.index)

    def participant(self, step: str) -> Participant | None:
        """The scripted person for `step`: its entry by the step's path (`fix_api/ok`), else
        by its own id (`ok`)."""
        found = self.participants.get(step)
        return found if found is not None else self.participants.get(step.rsplit("/", 1)[-1])

    def page_text(self, runbook_title: str) -> str:
        """The page as the trainees get it: `page:`, else the alert's name and summary as
        the alert would read, else the runbook's title. Never the scenario's title or
        description: those are for the trainer and give the answer away."""
        if self.page:
            return self.page
        alert = self.alert or {}
        name = (alert.get("labels") or {}).get("alertname")
        notes = alert.get("annotations") or {}
        summary = notes.get("summary") or notes.get("description")
        if name and summary:
            return f"{name}: {summary}"
        return str(name or summary or runbook_title)

    def has_randomness(self) -> bool:
        durations = [r.reply.duration for r in self.responses]
        durations += [a.duration for r in self.responses for a in r.attempts]
        durations += [p.after for p in self.participants.values()]
        return any(d is not None and d.is_random for d in durations)


def _reply(data: Mapping[str, Any]) -> Reply:
    return Reply(
        stdout=data.get("stdout", ""), stderr=data.get("stderr", ""),
        exit_code=data.get("exit_code", 0), status=data.get("status", 200),
        body=data.get("body"), headers=frozen_map(data.get("headers")),
        duration=dist(data.get("duration")), set=frozen_map(data.get("set")),
        message=data.get("message"), series=data.get("series"), targets=data.get("targets"),
    )


def _response(index: int, data: Mapping[str, Any]) -> Response:
    match = data.get("match")
    return Response(
        index=index, step=data.get("step"),
        match=Match(**match) if match else None, when=data.get("when"),
        reply=_reply(data), attempts=tuple(_reply(a) for a in data.get("attempts", ())),
        description=data.get("description", ""),
    )


def _participant(step: str, data: Mapping[str, Any]) -> Participant:
    return Participant(
        step=step, answers=frozen_map(data.get("answers")), approve=data.get("approve"),
        after=dist(data.get("after")), by=data.get("by"), role=data.get("role"),
        hint=data.get("hint", False), set=frozen_map(data.get("set")),
    )


def _objectives(data: Mapping[str, Any]) -> Objectives:
    def d(key: str) -> float | None:
        return parse_duration(data[key]) if key in data else None

    return Objectives(
        outcome=data.get("outcome"),
        time_to_acknowledge=d("time_to_acknowledge"), time_to_triage=d("time_to_triage"),
        time_to_mitigate=d("time_to_mitigate"), time_to_recover=d("time_to_recover"),
        must_run=tuple(data.get("must_run", ())), must_not_run=tuple(data.get("must_not_run", ())),
        max_retries=data.get("max_retries"), first_update_within=d("first_update_within"),
        escalated=data.get("escalated"), priority=data.get("priority"),
        approved_by_role=frozen_map(data.get("approved_by_role")),
        order=tuple(data.get("order", ())),
        items=tuple(ItemObjective(o["step"], i, o.get("count"), frozen_map(o.get("first")),
                                  frozen_map(o.get("last")), frozen_map(o.get("each")))
                    for i, o in enumerate(data.get("items", ()))),
    )


def build_scenario(doc: Document) -> Scenario:
    """Build the model from a document that passed schema validation."""
    data = doc.data
    events = sorted(
        (Event(parse_duration(e["at"]), frozen_map(e.get("set")), e.get("message"),
               e.get("kind", "info"), i) for i, e in enumerate(data.get("events", ()))),
        key=lambda e: (e.at, e.index),
    )
    return Scenario(
        id=data["id"], title=data["title"], file=doc.file, runbook=data["runbook"],
        description=data.get("description", ""), inputs=frozen_map(data.get("inputs")),
        alert=frozen_map(data["alert"]) if "alert" in data else None,
        briefing=data.get("briefing", ""), page=data.get("page", ""), seed=data.get("seed"),
        state=frozen_map(data.get("state")), roles=frozen_map(data.get("roles")),
        responses=tuple(_response(i, r) for i, r in enumerate(data.get("responses", ()))),
        events=tuple(events),
        participants=frozen_map(
            {k: _participant(k, v) for k, v in (data.get("participants") or {}).items()}
        ),
        hints=frozen_map(data.get("hints")),
        objectives=_objectives(data.get("objectives") or {}),
        mitigated_when=data.get("mitigated_when"),
        pods=frozen_map({k: v if isinstance(v, str) else tuple(v) for k, v in (data.get("pods") or {}).items()}),
        inventory=data["inventory"] if isinstance(data.get("inventory"), str) else (
            frozen_map(data["inventory"]) if "inventory" in data else None),
        source=doc.source,
    )
