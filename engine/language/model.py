"""The runbook as immutable records (NamedTuples), built from schema-valid data (builder.py).

Nothing past this module reads raw dicts: the runner, lint and reports see these types.
Every step keeps its JSON path so a problem found later can still be positioned.
"""

# Annotations are evaluated, not text (see flow.py): a name defined further down is quoted.

import re
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from .duration import MAX_SECONDS
from .flow import END_OUTCOMES, BlockSpec, Case, EndSpec, OnRefuse, SwitchSpec, branches, case_matches, nested  # noqa: F401
from .monitoring import Connection, MonitoringSpec

if TYPE_CHECKING:  # a model kept on disk is used without PyYAML, which source_map imports
    from .source_map import SourceMap

PHASES = ("detection", "triage", "remediation", "recovery")
STEP_KINDS = ("run", "http", "manual", "wait", "notify", "set", "include",
              "promql", "scrape_targets", "alert", "silence", "unsilence",  # monitoring.py
              "block", "switch", "end")  # flow.py
CONTAINERS = ("block", "switch")  # kinds whose action is to run steps of their own
OUTCOMES = ("resolved", "not_confirmed", "failed", "refused", "aborted", "escalated")

Path = tuple[str | int, ...]
EMPTY: Mapping[str, Any] = MappingProxyType({})


def empty_map() -> Mapping[str, Any]:
    return EMPTY


def frozen_map(data: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(data)) if data else EMPTY


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def compile_pattern(pattern: str) -> re.Pattern[str] | str:
    """An input's `pattern` compiled, or why it cannot be: `re` refuses some patterns with
    OverflowError (`a{99999999999}`) or RecursionError (groups nested thousands deep), not
    only re.error."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        return exc.msg
    except OverflowError as exc:
        return str(exc)
    except RecursionError:
        return "nested too deeply"


def _bounded_fullmatch(pattern: re.Pattern[str], value: str) -> bool | str:
    """Whether `value` matches `pattern` whole, under the template render deadline: a
    pattern that backtracks (`(a+)+$`) would otherwise hold the run before it starts.
    Text when the deadline passed."""
    from engine.templates import templating

    matched = templating.fullmatch_within_deadline(pattern, value)
    if matched is None:
        return (f"cannot be checked: its pattern {pattern.pattern!r} backtracks for too long on this value; "
                "write a pattern without nested repetition")
    return matched


class Input(NamedTuple):
    name: str
    type: str = "string"
    description: str = ""
    default: Any = MISSING
    secret: bool = False
    env: str | None = None
    alert: str | None = None
    choices: tuple[Any, ...] | None = None
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    file: str | None = None  # a file holding the value (a mounted secret), read when none is given
    command: str | None = None  # a command printing the value (`vault kv get ...`), run when none is given

    @property
    def required(self) -> bool:
        return self.default is MISSING

    @property
    def sourced(self) -> bool:
        """Whether the input names where a run finds it unasked (env, a file, a command)."""
        return self.env is not None or self.file is not None or self.command is not None

    def violation(self, value: Any) -> str | None:
        """Why `value` (already of the input's type) breaks choices, pattern, minimum or
        maximum; None when it does not."""
        if self.choices is not None and value not in self.choices:
            return f"must be one of {', '.join(map(str, self.choices))}, got {value!r}"
        if self.pattern is not None and isinstance(value, str):
            compiled = compile_pattern(self.pattern)
            if isinstance(compiled, str):
                return f"cannot be checked: its pattern is not a valid regular expression ({compiled})"
            matched = _bounded_fullmatch(compiled, value)
            if isinstance(matched, str):
                return matched
            if not matched:
                return f"must match {self.pattern}, got {value!r}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                return f"must be at least {self.minimum}, got {value}"
            if self.maximum is not None and value > self.maximum:
                return f"must be at most {self.maximum}, got {value}"
        return None

    def wrong_type(self, value: Any) -> str | None:
        """Why a value as written in YAML (a default) is not of the input's type; None if it is."""
        if value is None or _TYPES[self.type](value):
            return None
        return f"is not {_TYPE_WORDS[self.type]}: {value!r}"


_TYPES: Mapping[str, Any] = MappingProxyType({
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list),
    "map": lambda v: isinstance(v, dict),
})
_TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number",
               "boolean": "true or false", "list": "a list", "map": "a mapping"}


class Kube(NamedTuple):
    """A Kubernetes target: its pods (`kubectl exec`) or its nodes (`kubectl debug node/…`).
    Every string may hold a template, rendered when a step on the target starts."""

    kind: str  # "pods" or "nodes"
    context: str | None = None
    namespace: str | None = None
    selector: str | None = None
    name: str | None = None
    container: str | None = None  # pods only
    kubeconfig: str | None = None
    image: str | None = None  # nodes only: the image of the debugging pod
    profile: str | None = None  # nodes only: `kubectl debug --profile`

    def fields(self) -> Iterator[tuple[str, str]]:
        """(property, template) of every templated string set (`kubeconfig` and `profile` are plain)."""
        for key in ("context", "namespace", "selector", "name", "container", "image"):
            value = getattr(self, key)
            if value is not None:
                yield key, value


class Target(NamedTuple):
    name: str
    hosts: tuple[str, ...] = ()
    group: str | None = None
    user: str | None = None
    port: int | None = None
    identity_file: str | None = None
    password_env: str | None = None
    proxy_jump: str | None = None
    connect_timeout: float | None = None
    parallel: int | None = None
    serial: int | str | None = None
    max_failures: int | str | None = None
    kube: Kube | None = None  # pods or nodes of a Kubernetes cluster, instead of SSH hosts


class Retries(NamedTuple):
    attempts: int = 1
    delay: float = 1.0
    backoff: float = 1.0
    max_delay: float | None = None

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number `attempt` (2 is the first retry)."""
        delay = self.delay * self.backoff ** max(attempt - 2, 0)
        return min(delay, self.max_delay) if self.max_delay is not None else delay


class Confirm(NamedTuple):
    message: str | None = None
    role: str | None = None
    on_refuse: "OnRefuse[Step] | None" = None  # None: the run ends `refused`


class RunSpec(NamedTuple):
    command: str
    stdin: str | None = None
    exit_codes: tuple[int, ...] = (0,)


class HttpSpec(NamedTuple):
    url: str
    method: str = "GET"
    headers: Mapping[str, str] = EMPTY
    body: Any = None
    status: tuple[int, ...] | None = None
    verify: bool = True
    follow_redirects: bool | str = "same-origin"


class AskField(NamedTuple):
    name: str
    type: str = "text"
    prompt: str = ""
    choices: tuple[Any, ...] | None = None
    default: Any = MISSING
    minimum: float | None = None
    maximum: float | None = None
    sets: str | None = None


class ManualSpec(NamedTuple):
    text: str
    ask: tuple[AskField, ...] = ()


class WaitSpec(NamedTuple):
    seconds: float


class NotifySpec(NamedTuple):
    channel: str
    message: str
    title: str | None = None
    required: bool = False  # a failed delivery fails the step (otherwise it is reported only)
    handoff: bool = False  # once delivered, the run ends `escalated` (the incident is handed over)
    action: str | None = None  # to a pager: trigger, acknowledge or resolve the run's alert


class SetSpec(NamedTuple):
    values: Mapping[str, Any]


class IncludeSpec(NamedTuple):
    runbook: str
    inputs: Mapping[str, Any] = EMPTY


Spec = (RunSpec | HttpSpec | ManualSpec | WaitSpec | NotifySpec | SetSpec | IncludeSpec | MonitoringSpec
        | BlockSpec["Step"] | SwitchSpec["Step"] | EndSpec)


class Step(NamedTuple):
    id: str
    kind: str
    spec: Spec
    phase: str
    path: Path
    title: str = ""
    description: str = ""
    role: str | None = None
    target: str | None = None
    when: str | None = None
    expect: str | None = None
    outputs: Mapping[str, str] = EMPTY
    timeout: float | None = None
    retries: Retries | None = None
    until: str | None = None
    every: float | None = None
    confirm: Confirm | None = None
    rollback: "tuple[Step, ...]" = ()
    continue_on_error: bool = False
    env: Mapping[str, str] = EMPTY
    destructive: bool = False
    idempotent: bool = False
    parallel: int | None = None
    serial: int | str | None = None
    max_failures: int | str | None = None
    for_each: str | tuple[Any, ...] | None = None
    parent: str | None = None  # the block, switch or refused step whose steps this is one of
    in_loop: bool = False  # inside a block with for_each: `item` and `index` are the block's

    @property
    def label(self) -> str:
        return self.title or self.id

    def branches(self) -> "tuple[tuple[str, tuple[Step, ...]], ...]":
        """The steps this step may run as part of itself, by branch (see flow.branches)."""
        return branches(self.spec, self.confirm)

    def inner(self) -> "Iterator[Step]":
        """Every step inside this one, at any depth, in run order (rollbacks not counted)."""
        return nested(branch for _, steps in self.branches() for branch in steps)


class Phase(NamedTuple):
    name: str
    steps: tuple[Step, ...]


class Defaults(NamedTuple):
    timeout: float | None = None
    retries: Retries | None = None
    target: str | None = None
    role: str | None = None
    env: Mapping[str, str] = EMPTY


class Severity(NamedTuple):
    matrix: Mapping[str, Mapping[str, str]]
    impact: str | None = None
    urgency: str | None = None


DEFAULT_MATRIX: Mapping[str, Mapping[str, str]] = MappingProxyType({
    "high": MappingProxyType({"high": "P1", "medium": "P2", "low": "P3"}),
    "medium": MappingProxyType({"high": "P2", "medium": "P3", "low": "P4"}),
    "low": MappingProxyType({"high": "P3", "medium": "P4", "low": "P5"}),
})


class EscalationRule(NamedTuple):
    notify: str
    after: float | None = None
    unacknowledged: bool = False
    when: str | None = None
    on_failure: bool = False
    message: str | None = None
    handoff: bool = False
    number: int = 0  # position in `escalation:` (not `index`: that is a tuple method)


class Updates(NamedTuple):
    channel: str
    every: float | None = None
    message: str | None = None


class Link(NamedTuple):
    url: str
    title: str = ""


class Runbook:
    """A whole runbook. Its fields are set once, when it is built; `derived` caches facts
    computed from them later (the step list, "does any template read json?")."""

    __slots__ = ("alerts", "connections", "defaults", "derived", "description", "escalation", "file", "id", "inputs",
                 "library", "links", "owner", "phases", "roles", "severity", "source", "summary", "tags", "targets",
                 "timeout", "title", "updates", "vars")

    def __init__(self, *, id: str, title: str, file: str, summary: str = "", description: str = "",
                 owner: str = "", tags: tuple[str, ...] = (), alerts: tuple[str, ...] = (),
                 links: tuple[Link, ...] = (), inputs: Mapping[str, Input] = EMPTY,
                 targets: Mapping[str, Target] = EMPTY, defaults: Defaults | None = None,
                 timeout: float | None = None, vars: Mapping[str, Any] = EMPTY, roles: tuple[str, ...] = (),
                 severity: Severity | None = None, escalation: tuple[EscalationRule, ...] = (),
                 updates: Updates | None = None, phases: tuple[Phase, ...] = (),
                 source: "SourceMap | None" = None, connections: Mapping[str, Connection] = EMPTY,
                 library: bool = False) -> None:
        self.id, self.title, self.file, self.summary = id, title, file, summary
        self.description, self.owner, self.tags, self.alerts = description, owner, tags, alerts
        self.links, self.inputs, self.targets = links, inputs, targets
        self.defaults = defaults if defaults is not None else Defaults()
        self.timeout, self.vars, self.roles, self.severity = timeout, vars, roles, severity
        self.escalation, self.updates, self.phases, self.source = escalation, updates, phases, source
        self.connections = connections  # the servers monitoring steps talk to (monitoring.py)
        self.library = library  # meant only to be included: whole-run rules stay quiet
        self.derived: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"Runbook(id={self.id!r}, file={self.file!r}, {len(self.steps())} steps)"

    def phase(self, name: str) -> Phase | None:
        return next((p for p in self.phases if p.name == name), None)

    def steps(self, *, rollbacks: bool = False) -> tuple[Step, ...]:
        """Every step in run order, the steps inside blocks, switch cases and `on_refuse`
        included (after the step holding them); with rollbacks=True, each step's rollback
        steps too."""
        key = "steps+rollbacks" if rollbacks else "steps"
        found = self.derived.get(key)
        if found is None:  # computed once: lint rules and the runner ask many times
            found = self.derived[key] = tuple(self._walk(rollbacks))
        return found

    def _walk(self, rollbacks: bool) -> list[Step]:
        from .flow import in_order  # (the import of flow above fills its line)
        return in_order([step for phase in self.phases for step in phase.steps], rollbacks)

    def step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps(rollbacks=True) if s.id == step_id), None)

    def where(self, path: Path, *, key: bool = False) -> str:
        """`file:line:col` of a data path, for messages at run time."""
        if self.source is None:
            return self.file
        pos = self.source.position(path, key=key)
        return f"{self.file}:{pos.line}:{pos.column}"


def _step_durations(step: Step) -> Iterator[tuple[Path, float | None]]:
    p = step.path
    yield (*p, "timeout"), step.timeout
    yield (*p, "every"), step.every
    if isinstance(step.spec, WaitSpec):
        yield (*p, "wait"), step.spec.seconds
    if step.retries is not None:
        yield (*p, "retries", "delay"), step.retries.delay
        yield (*p, "retries", "max_delay"), step.retries.max_delay


def durations(rb: Runbook) -> Iterator[tuple[Path, float | None]]:
    """Every duration of a runbook with the data path it was written at."""
    yield from _runbook_durations(rb)
    for step in rb.steps(rollbacks=True):
        yield from _step_durations(step)


def _runbook_durations(rb: Runbook) -> Iterator[tuple[Path, float | None]]:
    yield ("timeout",), rb.timeout
    yield ("defaults", "timeout"), rb.defaults.timeout
    if rb.defaults.retries is not None:
        yield ("defaults", "retries", "delay"), rb.defaults.retries.delay
        yield ("defaults", "retries", "max_delay"), rb.defaults.retries.max_delay
    for name, target in rb.targets.items():
        yield ("targets", name, "connect_timeout"), target.connect_timeout
    for escalation in rb.escalation:
        yield ("escalation", escalation.number, "after"), escalation.after
    if rb.updates is not None:
        yield ("updates", "every"), rb.updates.every


def too_long(rb: Runbook) -> list[Path]:
    """Where the runbook gives a duration longer than duration.MAX_SECONDS (lint reports them;
    the runner refuses to start a runbook built without that check); found once per runbook."""
    found: list[Path] | None = rb.derived.get("too_long")
    if found is None:  # the usual case, [], without building every path
        found = rb.derived["too_long"] = [] if not any(map(_step_too_long, rb.steps(rollbacks=True))) \
            and all((s or 0.0) <= MAX_SECONDS for _, s in _runbook_durations(rb)) \
            else [path for path, seconds in durations(rb) if seconds is not None and seconds > MAX_SECONDS]
    return found


def _step_too_long(step: Step, limit: float = MAX_SECONDS) -> bool:
    retries = step.retries
    return ((step.timeout or 0.0) > limit or (step.every or 0.0) > limit
            or (retries is not None and max(retries.delay, retries.max_delay or 0.0) > limit)
            or (isinstance(step.spec, WaitSpec) and step.spec.seconds > limit))
