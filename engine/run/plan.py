"""Dry-run: the rendered plan of a run. Nothing is executed, nothing is connected to.

Every template is rendered with what is known before the run (inputs, vars); what a
step will produce shows as a placeholder such as `<steps.usage.outputs.pct>`. Both
branches of every `when` are listed, with the condition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.errors import TemplateError
from engine.language.duration import format_duration
from engine.language.model import (
    BlockSpec,
    EndSpec,
    HttpSpec,
    IncludeSpec,
    ManualSpec,
    NotifySpec,
    OnRefuse,
    Runbook,
    RunSpec,
    SetSpec,
    Step,
    SwitchSpec,
    WaitSpec,
)
from engine.language.monitoring import AlertSpec, PromqlSpec, ScrapeTargetsSpec, SilenceSpec, UnsilenceSpec
from engine.templates import templating
from engine.templates.templating import Masked, Placeholder

from .masking import Masker


@dataclass
class PlannedStep:
    number: str
    step: Step
    lines: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    # The steps it runs as part of itself: a block's, a switch's cases, a refusal's steps.
    branches: list[tuple[str, list[PlannedStep]]] = field(default_factory=list)


@dataclass
class Plan:
    runbook: Runbook
    inputs: Mapping[str, Any]
    targets: dict[str, str]
    phases: list[tuple[str, list[PlannedStep]]]


class _Steps(dict[str, Any]):
    """`steps` in a dry-run: every step id resolves to a placeholder."""

    def __missing__(self, key: str) -> Placeholder:
        return Placeholder(f"steps.{key}")


def _context(runbook: Runbook, inputs: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    # The plan is shown: secret inputs are *** before anything is rendered from them.
    shown = {k: Masked() if k in runbook.inputs and runbook.inputs[k].secret else v for k, v in inputs.items()}
    ctx = {
        "inputs": shown, "vars": {**runbook.vars}, "steps": _Steps(),
        "run": {"id": "<run.id>", "mode": "dry-run", "phase": Placeholder("run.phase"),
                "started_at": Placeholder("run.started_at"), "alert": Placeholder("run.alert")},
        "runbook": {"id": runbook.id, "title": runbook.title},
        "incident": {"impact": Placeholder("incident.impact"), "urgency": Placeholder("incident.urgency"),
                     "priority": Placeholder("incident.priority")},
        "item": Placeholder("item"), "index": Placeholder("index"), "host": Placeholder("host"),
        "attempt": Placeholder("attempt"), "now": _now,
    }
    for name in ("stdout", "stderr", "exit_code", "status", "json", "body", "headers", "outputs",
                 "answers", "hosts", "duration"):
        ctx[name] = Placeholder(name)
    if extra:
        ctx.update(extra)
    return ctx


def _now() -> Placeholder:
    return Placeholder("now()")


class _VarsFromSets(dict[str, Any]):
    def __missing__(self, key: str) -> Placeholder:
        return Placeholder(f"vars.{key}")


def build_plan(runbook: Runbook, inputs: Mapping[str, Any],
               hosts_of: Callable[[str], list[str]] | None = None) -> Plan:
    ctx = _context(runbook, inputs)
    ctx["vars"] = _VarsFromSets(runbook.vars)
    targets = {}
    for name, target in runbook.targets.items():
        if hosts_of is not None:
            resolved = hosts_of(name)
        else:
            from engine.fleet.hosts import decided_later

            later = decided_later(target)
            resolved = [later] if later else [_render(h, ctx) for h in target.hosts] or [
                f"<group {_render(target.group or '', ctx)}>"]
        user = f" as {target.user}" if target.user and hosts_of is None else ""  # hosts_of shows users
        targets[name] = ", ".join(resolved) + user
    phases = []
    counter = 0
    for phase in runbook.phases:
        planned = []
        for step in phase.steps:
            counter += 1
            planned.append(_plan_step(runbook, step, str(counter), ctx, targets))
        phases.append((phase.name, planned))
    return Plan(runbook, inputs, targets, phases)


def _render(text: str, ctx: Mapping[str, Any], *, shell: bool = False) -> str:
    try:
        return templating.render(text, ctx, shell=shell)
    except TemplateError as exc:
        if "undefined name" in exc.reason:
            return f"{text}  (cannot render: {exc.reason})"
        # Arithmetic or filters on values only known at run time: show the template.
        return f"{text}  (computed at run time)"


def _plan_step(runbook: Runbook, step: Step, number: str, ctx: dict[str, Any],
               targets: Mapping[str, str], *, certain: bool = True) -> PlannedStep:
    """The plan of a step; `certain`: it runs whenever the run gets there (not a rollback,
    nor inside a conditional block, a switch case or a refusal's steps)."""
    planned = PlannedStep(number, step)
    add = planned.lines.append
    if step.when:
        add(f"when: {step.when}")
    if step.for_each is not None:
        add(f"for each: {step.for_each if isinstance(step.for_each, str) else list(step.for_each)}")
    if step.confirm is not None:
        who = f" (role {step.confirm.role})" if step.confirm.role else ""
        add(f"asks for approval{who}: {_render(step.confirm.message or 'Run this step?', ctx)}")
        if step.confirm.on_refuse is not None:  # without it a refusal ends the run refused, as always
            add(_on_refuse(step.confirm.on_refuse, ctx))
    _spec_lines(runbook, step, ctx, targets, add)
    certain = certain and step.when is None and step.for_each is None
    if isinstance(step.spec, SetSpec):
        _assign(step.spec, ctx, certain=certain)
    _behaviour_lines(runbook, step, add)
    for name, text in step.outputs.items():
        add(f"output {name} = {text}")
    if step.expect:
        note = " (false ends the run: not_confirmed)" if step.phase == "detection" else ""
        add(f"expect: {step.expect}{note}")
    for i, undo in enumerate(step.rollback, 1):
        # A rollback runs after the run failed: what it sets no later step reads.
        apart = {**ctx, "vars": _VarsFromSets(ctx["vars"])}
        sub = _plan_step(runbook, undo, f"{number}.undo{i}", apart, targets, certain=False)
        add(f"rollback {undo.id}: " + "; ".join(sub.lines))
    count = 0
    for label, steps in step.branches():  # numbered on across branches: 3.1, 3.2 (case a), 3.3 (case b)
        inner = []
        for sub_step in steps:
            count += 1
            inner.append(_plan_step(runbook, sub_step, f"{number}.{count}", ctx, targets,
                                    certain=certain and label == "block"))
        planned.branches.append((label, inner))
    return planned


def _spec_lines(runbook: Runbook, step: Step, ctx: dict[str, Any], targets: Mapping[str, str],
                add: Callable[[str], None]) -> None:
    spec = step.spec
    if isinstance(spec, RunSpec):
        target = step.target or runbook.defaults.target
        add(f"on {target}: {targets.get(target, '?')}" if target else "on this machine")
        fan = _fan_out(step, runbook.targets.get(target)) if target else ""
        if fan:
            add(f"fan-out: {fan}")
        add(f"$ {_render(spec.command, ctx, shell=True)}")
        if spec.stdin:
            add(f"stdin: {_render(spec.stdin, ctx)}")
        if spec.exit_codes != (0,):
            add(f"success exit codes: {', '.join(map(str, spec.exit_codes))}")
    elif isinstance(spec, HttpSpec):
        add(f"{spec.method} {_render(spec.url, ctx)}" + ("" if spec.verify else "  (TLS not verified)"))
    elif isinstance(spec, ManualSpec):
        add(f"manual{f' ({step.role})' if step.role else ''}: {_render(spec.text, ctx)}")
        for f in spec.ask:
            choices = f" [{'/'.join(map(str, f.choices))}]" if f.choices else ""
            sets = f" -> {f.sets}" if f.sets else ""
            add(f"asks {f.name}{choices}{sets}")
            if f.sets and f.sets.startswith("vars."):  # a person's answer: known only then
                ctx["vars"][f.sets[5:]] = Placeholder(f.sets)
    elif isinstance(spec, WaitSpec):
        add(f"wait {format_duration(spec.seconds)}")
    elif isinstance(spec, NotifySpec):
        action = f" ({spec.action})" if spec.action else ""
        add(f"notify [{_render(spec.channel, ctx)}]{action}: {_render(spec.message, ctx)}")
        if spec.handoff:
            add("hands the incident over: once delivered, the run ends escalated")
    elif isinstance(spec, SetSpec):
        add("set " + ", ".join(f"{k} = {_render(str(v), ctx)}" for k, v in spec.values.items()))
    elif isinstance(spec, IncludeSpec):
        add(f"include {spec.runbook}" + (f" with {dict(spec.inputs)}" if spec.inputs else ""))
    elif isinstance(spec, PromqlSpec):
        add(_query_line(runbook, spec, ctx))
    elif isinstance(spec, ScrapeTargetsSpec):
        add("scrape targets: " + (", ".join(f"{k}={_render(v, ctx)}" for k, v in spec.labels.items()) or "all"))
    elif isinstance(spec, (AlertSpec, SilenceSpec, UnsilenceSpec)):
        add(_alerting_line(step.kind, spec, ctx))
    elif isinstance(spec, BlockSpec):
        _block_lines(step, add)
        for helper in spec.background:
            ready = f"port {helper.port}" if helper.port else (f"output {helper.output!r}" if helper.output else "")
            add(f"background {helper.id} while the block runs (started here, stopped after"
                f"{'; ready on ' + ready if ready else ''}): $ {_render(helper.run, ctx, shell=True)}")
    elif isinstance(spec, SwitchSpec):
        add(f"switch on {spec.on}: the first case equal to its value runs"
            + ("" if spec.default else " (none: nothing runs)"))
    elif isinstance(spec, EndSpec):
        add(f"ends the run {spec.outcome}: {_render(spec.reason, ctx)}")


def _alerting_line(kind: str, spec: AlertSpec | SilenceSpec | UnsilenceSpec, ctx: dict[str, Any]) -> str:
    """`alert on am: alertname="TargetDown", job="api"` as the step would ask it."""
    where = f" on {spec.alertmanager}" if spec.alertmanager else ""
    if isinstance(spec, UnsilenceSpec):
        what = f"the silence step {spec.step} created" if spec.step else _render(spec.silence, ctx)
        return f"unsilence{where}: {what}"
    shown = [f'{m.name}{m.op}"{_render(m.value, ctx)}"' for m in spec.matchers]
    if isinstance(spec, AlertSpec):
        named = [f'alertname="{_render(spec.name, ctx)}"'] if spec.name else []
        finger = [f"fingerprint {_render(spec.fingerprint, ctx)}"] if spec.fingerprint else []
        return f"alert{where}: {', '.join(named + shown + finger)}"
    return f"silence{where} for {format_duration(spec.duration)}: {', '.join(shown)} ({_render(spec.comment, ctx)})"


def _query_line(runbook: Runbook, spec: PromqlSpec, ctx: dict[str, Any]) -> str:
    """`promql on prom (http://...), range 30m: up == 0` as the step would ask it."""
    conn = runbook.connections.get(spec.prometheus or "") or next(
        (c for c in runbook.connections.values() if c.type == "prometheus"), None)
    where = f"{conn.name} ({_render(conn.url, ctx)})" if conn is not None else "(no prometheus connection)"
    how = f", range {format_duration(spec.range)}" if spec.range else ""
    return f"promql on {where}{how}: {_render(spec.query, ctx)}"


# Names whose values only the run knows: a `set` value that reads one stays a placeholder.
_RUN_TIME = frozenset({"steps", "item", "host", "attempt", "run", "incident", "now"})


def _assign(spec: SetSpec, ctx: dict[str, Any], *, certain: bool) -> None:
    """What a `set:` step leaves in `vars` for the steps after it: the value itself when
    inputs and known vars decide it (`echo {{ vars.url }}` shows the URL), else a
    placeholder, as when the step may not run (`when`, a switch case, a rollback) or runs
    once per item."""
    for key, value in spec.values.items():
        if key.startswith("incident."):
            continue
        planned: Any = Placeholder(f"vars.{key}")
        if certain and not any(_run_time(text, ctx) for text in _texts(value)):
            try:
                planned = templating.render_value(value, ctx)
            except TemplateError:
                pass  # the step line already says it cannot be rendered
        ctx["vars"][key] = planned


def _run_time(text: str, ctx: Mapping[str, Any]) -> bool:
    analysis = templating.analyze(text)
    if analysis.names & _RUN_TIME:
        return True
    return any(len(ref) > 1 and ref[0] == "vars" and isinstance(ctx["vars"][ref[1]], Placeholder)
               for ref in analysis.refs)


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _texts(v)]
    return []


def _on_refuse(refuse: OnRefuse[Step], ctx: dict[str, Any]) -> str:
    if refuse.end is not None:
        return f"if refused: the run ends {refuse.end.outcome}: {_render(refuse.end.reason, ctx)}"
    return "if refused: the step is skipped" + (", its on_refuse steps run instead" if refuse.steps else "")


def _block_lines(step: Step, add: Callable[[str], None]) -> None:
    """What a block shares with its steps, and how its items run."""
    shared = [f"{name} {getattr(step, name)}" for name in ("target", "role") if getattr(step, name)]
    if shared:
        add("its steps default to " + ", ".join(shared))
    if step.for_each is not None:
        tolerated = f", up to {step.max_failures} may fail" if step.max_failures is not None else ""
        add(f"{_items_at_once(step)}{tolerated}")
    if step.timeout:
        add(f"timeout {format_duration(step.timeout)} for the whole block")


def _items_at_once(step: Step) -> str:
    """How a block's items run: one at a time, `parallel` at once, in `serial` batches."""
    if step.parallel is None and step.serial is None:
        return "items one at a time"
    batches = f"in batches of {step.serial}" if step.serial is not None else ""
    at_once = f"{step.parallel} at a time" if step.parallel is not None else "each batch's items at once"
    return "items " + ", ".join(p for p in (batches, at_once) if p)


def _fan_out(step: Step, target: Any) -> str:
    """parallel / serial / max_failures as the step will use them (the step's, else the target's)."""
    parts = []
    for name in ("parallel", "serial", "max_failures"):
        value = getattr(step, name)
        value = value if value is not None else getattr(target, name, None)
        if value is not None:
            parts.append(f"{name} {value}")
    return ", ".join(parts)


def _behaviour_lines(runbook: Runbook, step: Step, add: Callable[[str], None]) -> None:
    timeout = step.timeout or runbook.defaults.timeout or runbook.timeout
    if step.until:
        add(f"until: {step.until} (every {format_duration(step.every or 5)}, "
            f"up to {format_duration(timeout or 0)})")
    elif timeout and step.kind in ("run", "http", "promql", "scrape_targets", "alert", "silence", "unsilence"):
        add(f"timeout {format_duration(timeout)}")
    retries = step.retries or runbook.defaults.retries
    if retries and retries.attempts > 1:
        backoff = f" x{retries.backoff:g}" if retries.backoff != 1 else ""
        add(f"retries: {retries.attempts} attempts, {format_duration(retries.delay)} apart{backoff}")
    flags = [name for name in ("destructive", "idempotent", "continue_on_error") if getattr(step, name)]
    if flags:
        add("flags: " + ", ".join(flags))


def render_plan(plan: Plan, masker: Masker | None = None) -> str:
    masker = masker or Masker()
    rb = plan.runbook
    out = [f"Plan: {rb.title} (runbook {rb.id}) - dry-run, nothing is executed"]
    shown = " ".join(f"{k}={'***' if rb.inputs[k].secret else v}" for k, v in plan.inputs.items())
    out.append(f"inputs: {shown}" if shown else "inputs: (none)")
    for name, hosts in plan.targets.items():
        out.append(f"target {name}: {hosts}")
    for phase, steps in plan.phases:
        out.append("")
        out.append(phase)
        _render_steps(steps, "  ", out)
    return masker.text("\n".join(out)) + "\n"


def _render_steps(steps: list[PlannedStep], indent: str, out: list[str]) -> None:
    for planned in steps:
        title = f" - {planned.step.title}" if planned.step.title else ""
        out.append(f"{indent}{planned.number}. {planned.step.id}{title}")
        # A multi-line manual text or command stays inside its step's block.
        out.extend(f"{indent}     " + line.rstrip("\n").replace("\n", f"\n{indent}       ")
                   for line in planned.lines)
        for label, inner in planned.branches:
            if label != "block":  # a block's steps are simply under it; a branch says when it runs
                out.append(f"{indent}     {label}:")
            _render_steps(inner, indent + "     ", out)
