"""Building the model (engine/language/model.py) from data that passed schema validation:
durations parsed, defaults filled in, every step with the JSON path it was written at.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from .duration import parse_duration
from .flow import Background
from .loader import Document
from .model import (
    DEFAULT_MATRIX,
    MISSING,
    PHASES,
    AskField,
    BlockSpec,
    Case,
    Confirm,
    Defaults,
    EndSpec,
    EscalationRule,
    HttpSpec,
    IncludeSpec,
    Input,
    Kube,
    Link,
    ManualSpec,
    NotifySpec,
    OnRefuse,
    Path,
    Phase,
    Retries,
    Runbook,
    RunSpec,
    SetSpec,
    Severity,
    Spec,
    Step,
    SwitchSpec,
    Target,
    Updates,
    WaitSpec,
    frozen_map,
)
from .monitoring import build_connections, build_spec


def _dur(value: Any) -> float | None:
    return parse_duration(value) if value is not None else None


def _retries(value: Any) -> Retries | None:
    if value is None:
        return None
    if isinstance(value, int):
        return Retries(attempts=max(value, 1))
    return Retries(
        attempts=value["attempts"],
        delay=_dur(value.get("delay", "1s")) or 0.0,
        backoff=float(value.get("backoff", 1)),
        max_delay=_dur(value.get("max_delay")),
    )


class Scope(NamedTuple):
    """What a step inherits from the block or switch holding it (nothing at the top)."""

    parent: str | None = None
    target: str | None = None
    role: str | None = None
    in_loop: bool = False


TOP = Scope()


def _end(value: Mapping[str, Any]) -> EndSpec:
    return EndSpec(value["outcome"], value["reason"])


def _confirm(value: Any, phase: str, path: Path, scope: Scope) -> Confirm | None:
    if value is None or value is False:
        return None
    if value is True:
        return Confirm()
    if isinstance(value, str):
        return Confirm(message=value)
    refuse = value.get("on_refuse")
    on_refuse: OnRefuse[Step] | None = None
    if refuse == "skip":
        on_refuse = OnRefuse(skip=True)
    elif isinstance(refuse, Mapping):
        on_refuse = OnRefuse(end=_end(refuse["end"]))
    elif isinstance(refuse, list):
        on_refuse = OnRefuse(steps=_steps(refuse, phase, (*path, "confirm", "on_refuse"), scope))
    return Confirm(message=value.get("message"), role=value.get("role"), on_refuse=on_refuse)


def _steps(items: Any, phase: str, path: Path, scope: Scope) -> tuple[Step, ...]:
    return tuple(build_step(s, phase, (*path, i), scope) for i, s in enumerate(items or ()))


def _ask_field(name: str, data: Mapping[str, Any]) -> AskField:
    kind = data.get("type") or ("choice" if "choices" in data else "text")
    choices = data.get("choices")
    return AskField(
        name=name,
        type=kind,
        prompt=data.get("prompt", ""),
        choices=tuple(choices) if choices is not None else None,
        default=data.get("default", MISSING),
        minimum=data.get("minimum"),
        maximum=data.get("maximum"),
        sets=data.get("sets"),
    )


def _http(data: Mapping[str, Any]) -> HttpSpec:
    status = data.get("status")
    return HttpSpec(
        url=data["url"],
        method=data.get("method", "GET"),
        headers=frozen_map(data.get("headers")),
        body=data.get("body"),
        status=(status,) if isinstance(status, int) else (tuple(status) if status else None),
        verify=data.get("verify", True),
        follow_redirects=data.get("follow_redirects", "same-origin"),
    )


def _include(value: Any) -> IncludeSpec:
    if isinstance(value, str):
        return IncludeSpec(runbook=value)
    return IncludeSpec(runbook=value["runbook"], inputs=frozen_map(value.get("inputs")))


def _background(data: Mapping[str, Any]) -> Background:
    ready = data.get("ready") or {}
    timeout = parse_duration(data["timeout"]) if "timeout" in data else 30.0
    return Background(data["id"], data["run"], ready.get("port"), ready.get("output"), timeout)


def _flow(data: Mapping[str, Any], phase: str, path: Path, scope: Scope) -> tuple[str, Spec] | None:
    """A block, switch or end step's spec; None for the other kinds."""
    if "block" in data:
        return "block", BlockSpec(_steps(data["block"], phase, (*path, "block"), scope),
                                  tuple(_background(h) for h in data.get("background") or ()))
    if "switch" in data:
        cases = tuple(Case(key, _steps(steps, phase, (*path, "cases", key), scope))
                      for key, steps in (data.get("cases") or {}).items())
        default = data.get("default")
        return "switch", SwitchSpec(data["switch"], cases,
                                    _steps(default, phase, (*path, "default"), scope) if default else None)
    if "end" in data:
        return "end", _end(data["end"])
    return None


def _spec(data: Mapping[str, Any]) -> tuple[str, Spec]:
    if "run" in data:
        codes = tuple(data.get("exit_codes", (0,)))
        return "run", RunSpec(data["run"], data.get("stdin"), codes)
    if "http" in data:
        return "http", _http(data["http"])
    if "manual" in data:
        fields = tuple(_ask_field(k, v or {}) for k, v in (data.get("ask") or {}).items())
        return "manual", ManualSpec(data["manual"], fields)
    if "wait" in data:
        return "wait", WaitSpec(parse_duration(data["wait"]))
    if "notify" in data:
        n = data["notify"]
        return "notify", NotifySpec(n["channel"], n["message"], n.get("title"), bool(n.get("required", False)),
                                    bool(n.get("handoff", False)), n.get("action"))
    if "set" in data:
        return "set", SetSpec(frozen_map(data["set"]))
    if "include" in data:
        return "include", _include(data["include"])
    monitoring = build_spec(data)
    assert monitoring is not None, "a schema-valid step has one kind"
    return monitoring


# Fields of a step taken as written when its data has them; the rest keep Step's defaults.
_AS_WRITTEN = ("title", "description", "when", "expect", "until", "continue_on_error", "destructive", "idempotent",
               "parallel", "serial", "max_failures")


def build_step(data: Mapping[str, Any], phase: str, path: Path, scope: Scope = TOP) -> Step:
    """A step (and the steps inside it); `scope` is what it inherits from its block or switch."""
    for_each = data.get("for_each")
    target, role = data.get("target") or scope.target, data.get("role") or scope.role
    inner = Scope(data["id"], target, role, scope.in_loop or (for_each is not None and "block" in data))
    kind, spec = _flow(data, phase, path, inner) or _spec(data)
    # Only the fields the step has are given: a step has a few of its 28, and every keyword
    # given costs its binding (a third of building the usual step).
    written = {key: data[key] for key in _AS_WRITTEN if key in data}
    return Step(data["id"], kind, spec, phase, path, role=role, target=target, parent=scope.parent,
                in_loop=scope.in_loop, **written, **_converted(data, phase, path, scope))


def _converted(data: Mapping[str, Any], phase: str, path: Path, scope: Scope) -> dict[str, Any]:
    """The fields of a step made from what is written (durations, maps, steps), for those it has."""
    found: dict[str, Any] = {}
    if "outputs" in data:
        found["outputs"] = frozen_map(data["outputs"])
    if "env" in data:
        found["env"] = frozen_map({k: str(v) for k, v in (data["env"] or {}).items()})
    for key in ("timeout", "every"):
        if key in data:
            found[key] = _dur(data[key])
    if "retries" in data:
        found["retries"] = _retries(data["retries"])
    # The scopes of a confirmation's steps and of rollbacks are made only for steps that have them.
    if data.get("confirm") is not None:
        found["confirm"] = _confirm(data["confirm"], phase, path, Scope(data["id"], *scope[1:]))
    if data.get("rollback"):
        found["rollback"] = _steps(data["rollback"], phase, (*path, "rollback"), Scope(None, *scope[1:]))
    if "for_each" in data:
        for_each = data["for_each"]
        found["for_each"] = tuple(for_each) if isinstance(for_each, list) else for_each
    return found


def _input(name: str, data: Mapping[str, Any]) -> Input:
    choices = data.get("choices")
    return Input(
        name=name, type=data.get("type", "string"), description=data.get("description", ""),
        default=data.get("default", MISSING), secret=data.get("secret", False),
        env=data.get("env"), alert=data.get("alert"),
        choices=tuple(choices) if choices is not None else None,
        pattern=data.get("pattern"), minimum=data.get("minimum"), maximum=data.get("maximum"),
        file=data.get("file"), command=data.get("command"),
    )


def _target(name: str, data: Mapping[str, Any]) -> Target:
    return Target(
        name=name, hosts=tuple(data.get("hosts", ())), group=data.get("group"),
        user=data.get("user"), port=data.get("port"), identity_file=data.get("identity_file"),
        password_env=data.get("password_env"), proxy_jump=data.get("proxy_jump"),
        connect_timeout=_dur(data.get("connect_timeout")), parallel=data.get("parallel"),
        serial=data.get("serial"), max_failures=data.get("max_failures"), kube=_kube(data),
    )


def _kube(data: Mapping[str, Any]) -> Kube | None:
    kind = "pods" if "pods" in data else "nodes" if "nodes" in data else None
    if kind is None:
        return None
    spec = data[kind]
    return Kube(kind, **{k: spec.get(k) for k in Kube._fields if k != "kind"})


def _severity(data: Mapping[str, Any] | None) -> Severity | None:
    if data is None:
        return None
    matrix = data.get("matrix", "default")
    table = DEFAULT_MATRIX if matrix == "default" else MappingProxyType(
        {k: frozen_map(v) for k, v in matrix.items()}
    )
    return Severity(table, data.get("impact"), data.get("urgency"))


def _escalation(i: int, data: Mapping[str, Any]) -> EscalationRule:
    return EscalationRule(
        notify=data["notify"], after=_dur(data.get("after")),
        unacknowledged=data.get("unacknowledged", False), when=data.get("when"),
        on_failure=data.get("on_failure", False), message=data.get("message"),
        handoff=data.get("handoff", False), number=i,
    )


def _defaults(data: Mapping[str, Any]) -> Defaults:
    return Defaults(
        timeout=_dur(data.get("timeout")), retries=_retries(data.get("retries")),
        target=data.get("target"), role=data.get("role"),
        env=frozen_map({k: str(v) for k, v in (data.get("env") or {}).items()}),
    )


def build_runbook(doc: Document) -> Runbook:
    """Build the model from a document that passed schema validation."""
    data = doc.data
    updates = data.get("updates")
    return Runbook(
        id=data["id"], title=data["title"], file=doc.file,
        summary=data.get("summary", ""), description=data.get("description", ""),
        owner=data.get("owner", ""), tags=tuple(data.get("tags", ())),
        alerts=tuple(data.get("alerts", ())),
        links=tuple(Link(x["url"], x.get("title", "")) for x in data.get("links", ())),
        inputs=frozen_map({k: _input(k, v) for k, v in (data.get("inputs") or {}).items()}),
        targets=frozen_map({k: _target(k, v) for k, v in (data.get("targets") or {}).items()}),
        defaults=_defaults(data.get("defaults") or {}),
        timeout=_dur(data.get("timeout")), vars=frozen_map(data.get("vars")),
        roles=tuple(data.get("roles", ())), severity=_severity(data.get("severity")),
        escalation=tuple(_escalation(i, e) for i, e in enumerate(data.get("escalation", ()))),
        updates=Updates(updates["channel"], _dur(updates.get("every")), updates.get("message"))
        if updates else None,
        phases=tuple(
            Phase(name, tuple(build_step(s, name, (name, i)) for i, s in enumerate(data[name])))
            for name in PHASES
            if data.get(name) is not None
        ),
        source=doc.source, library=bool(data.get("library", False)),
        connections=build_connections(data.get("connections")),
    )
