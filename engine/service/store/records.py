"""What the Store API takes and gives: frozen records, never rows or SQL."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import UsageError

from .tables import RUN_MODES


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def loads(text: str | None, default: Any = None) -> Any:
    if text is None:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


@dataclass(frozen=True)
class NewRun:
    """A run to queue: which runbook file, with which inputs, for which workers."""

    runbook: str  # the runbook's id
    file: str  # its file, as the workers will load it (an absolute path)
    inputs: Mapping[str, Any] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()  # names of inputs that are secret (blanked once the run ends)
    answers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # step -> field -> value
    alert: Mapping[str, Any] | None = None  # what the journal keeps of the alert (run.alerts.record)
    pool: Mapping[str, str] = field(default_factory=dict)  # labels a worker must have
    origin: str = ""  # who or what queued it, e.g. "cli:alice"
    run_id: str | None = None  # default: a new id (run.journal_writer.new_run_id)
    mode: str = "live"  # live, dry-run or drill (tables.RUN_MODES)

    def __post_init__(self) -> None:
        if self.mode not in RUN_MODES:
            raise UsageError(f"a run's mode is one of {', '.join(RUN_MODES)}, not {self.mode!r}")


@dataclass(frozen=True)
class RunRow:
    """A run as the store knows it. Its journal is read with Store.records."""

    id: str
    runbook: str
    file: str
    inputs: dict[str, Any]
    secrets: tuple[str, ...]
    answers: dict[str, dict[str, Any]]
    alert: dict[str, Any] | None
    pool: dict[str, str]
    origin: str
    status: str  # queued, running, waiting (for a person), finished, cancelled
    outcome: str | None
    reason: str | None
    lease_owner: str | None
    lease_expires: float | None
    claims: int
    last_seq: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    mode: str = "live"  # live, dry-run or drill
    resumes: int = 0  # how many times a person resumed it (Store.resume)

    @classmethod
    def from_row(cls, row: Any) -> RunRow:
        m = row._mapping
        return cls(m["id"], m["runbook"], m["file"], loads(m["inputs"], {}), tuple(loads(m["secrets"], [])),
                   loads(m["answers"], {}), loads(m["alert"]), loads(m["pool"], {}), m["origin"], m["status"],
                   m["outcome"], m["reason"], m["lease_owner"], m["lease_expires"], m["claims"], m["last_seq"],
                   m["created_at"], m["started_at"], m["finished_at"], m["mode"], m["resumes"])

    def to_dict(self) -> dict[str, Any]:
        """For JSON: every field but the inputs of secret names (shown as ***)."""
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["inputs"] = {k: "***" if k in self.secrets else v for k, v in self.inputs.items()}
        data["secrets"] = list(self.secrets)
        return data


@dataclass(frozen=True)
class Claim:
    """A run this worker now holds the lease of. `takeover`: it ran before (its journal has
    records), so it continues from its journal; `previous_owner` held it last."""

    run: RunRow
    takeover: bool
    previous_owner: str | None


@dataclass(frozen=True)
class NewQuestion:
    """A decision a run waits for (it holds no lease meanwhile)."""

    step: str
    kind: str  # "interrupted": run an interrupted step again or skip it; "resume": anything else
    text: str
    fields: tuple[Mapping[str, Any], ...] = ()  # {name, type, prompt, choices}
    role: str | None = None


@dataclass(frozen=True)
class QuestionRow:
    id: int
    run_id: str
    step: str
    kind: str
    text: str
    fields: list[dict[str, Any]]
    role: str | None
    status: str  # open, answered, closed (applied to the run), cancelled
    asked_at: float
    answered_by: str | None
    answer: dict[str, Any] | None
    answered_at: float | None

    @classmethod
    def from_row(cls, row: Any) -> QuestionRow:
        m = row._mapping
        return cls(m["id"], m["run_id"], m["step"], m["kind"], m["text"], loads(m["fields"], []), m["role"],
                   m["status"], m["asked_at"], m["answered_by"], loads(m["answer"]), m["answered_at"])

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class PersonRow:
    """Someone who answers questions: their roles, and who they are on Slack."""

    name: str
    roles: tuple[str, ...] = ()
    slack: str | None = None
    email: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> PersonRow:
        m = row._mapping
        return cls(m["name"], tuple(loads(m["roles"], [])), m["slack"], m["email"])


@dataclass(frozen=True)
class RunQuery:
    """Which runs a list shows (every filter optional), newest first, a page at a time.
    `since` and `until` bound when the run was queued (epoch seconds). Pages are found by
    the run they follow (`before`, `after`: keyset pagination, as fast on the last page
    as on the first); `offset` remains for the API."""

    runbook: str | None = None
    status: str | None = None
    outcome: str | None = None
    mode: str | None = None
    since: float | None = None
    until: float | None = None
    offset: int = 0
    limit: int = 50
    before: tuple[float, str] | None = None  # only runs older than this (created_at, id): the next page
    after: tuple[float, str] | None = None  # only runs newer than this: the previous page


@dataclass(frozen=True)
class LogChunk:
    """Output of a step written to its log (name as in logs/: run.journal.log_name)."""

    name: str
    data: bytes


@dataclass(frozen=True)
class NewAlert:
    """One alert of a delivery, parsed and routed (service/payloads.py, routing.py): what
    the store records of it, and the run it starts if it is a new firing occurrence."""

    occurrence: str  # hash of source, fingerprint and startsAt: one firing of one alert
    fingerprint: str
    name: str
    status: str  # firing, resolved, or the sender's word (acknowledged, ...)
    labels: Mapping[str, str] = field(default_factory=dict)
    label_key: str = ""  # hash of the label set (once_within counts per label set)
    starts_at: str | None = None
    ends_at: str | None = None
    route: str | None = None  # None: no route matches (stored and shown, never dropped)
    policy: Mapping[str, Any] = field(default_factory=dict)
    once_within: float | None = None
    run: NewRun | None = None  # what a firing occurrence starts


@dataclass(frozen=True)
class NewDelivery:
    """A body posted to /hooks/<source>, stored raw before it is answered."""

    source: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    dedup_key: str | None = None  # None: rejected (nothing to dedup)
    alerts: tuple[NewAlert, ...] = ()
    reason: str | None = None  # why it is rejected


@dataclass(frozen=True)
class AlertOutcome:
    """What the intake did with one alert: `action` in words, the run it concerns."""

    fingerprint: str
    name: str
    status: str
    action: str  # queued, duplicate, throttled, unrouted, cancelled, recorded
    detail: str
    run_id: str | None = None


@dataclass(frozen=True)
class Received:
    """The answer to a delivery."""

    delivery: int
    duplicate_of: int | None = None
    alerts: tuple[AlertOutcome, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"delivery": self.delivery, "duplicate_of": self.duplicate_of,
                "alerts": [{k: getattr(a, k) for k in a.__dataclass_fields__} for a in self.alerts]}


@dataclass(frozen=True)
class AlertRow:
    """An alert as the store knows it (one firing of it: source, fingerprint, startsAt)."""

    id: int
    source: str
    fingerprint: str
    name: str
    labels: dict[str, str]
    status: str
    starts_at: str | None
    ends_at: str | None
    route: str | None
    policy: dict[str, Any]
    run_id: str | None
    action: str
    received_at: float
    updated_at: float

    @classmethod
    def from_row(cls, row: Any) -> AlertRow:
        m = row._mapping
        return cls(m["id"], m["source"], m["fingerprint"], m["name"], loads(m["labels"], {}), m["status"],
                   m["starts_at"], m["ends_at"], m["route"], loads(m["policy"], {}), m["run_id"], m["action"],
                   m["received_at"], m["updated_at"])

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit trail: who did what, when (epoch seconds), to which run, and
    how (`detail`: the address, the channel an answer came by, the step ...)."""

    id: int
    at: float
    who: str
    what: str
    run_id: str | None
    detail: dict[str, Any]

    @classmethod
    def from_row(cls, row: Any) -> AuditEntry:
        m = row._mapping
        return cls(m["id"], m["at"], m["who"], m["what"], m["run_id"], loads(m["detail"], {}))
