"""Lint rules for runbooks: steps, targets, templates, inputs, vars, roles and channels."""

from __future__ import annotations

from collections.abc import Iterator

from engine.templates import templating
from engine.templates.patterns import deferred

from .channels import channel_uses
from .fields import RESULT_NAMES, Field, spot_line
from .model import BlockSpec, ManualSpec, Runbook, SetSpec
from .monitoring import KIND_CONNECTION, UnsilenceSpec, connection_of, connection_problem
from .rules import ERROR, WARNING, Finding, did_you_mean, rule
from .runbook_check import RunbookCheck


@rule("RB101", "duplicate-step-id", ERROR,
      "`steps.ID` must name exactly one step (or a block's background helper); a second one with the same id "
      "hides the first.")
def _duplicate_ids(c: RunbookCheck) -> Iterator[Finding]:
    seen: set[str] = set()
    for step in c.runbook.steps(rollbacks=True):
        if step.id in seen:
            yield Finding((*step.path, "id"), f"duplicate step id '{step.id}'")
        seen.add(step.id)
        helpers = step.spec.background if isinstance(step.spec, BlockSpec) else ()
        for i, helper in enumerate(helpers):
            if helper.id in seen:
                yield Finding((*step.path, "background", i, "id"), f"background helper id '{helper.id}' is "
                                                                   "already a step's or a helper's")
            seen.add(helper.id)


def _step_refs(c: RunbookCheck) -> list[tuple[Field, str]]:
    return c.refs("steps")


@rule("RB102", "undefined-step", ERROR,
      "A reference to a step that does not exist fails at run time, mid-incident.")
def _undefined_step(c: RunbookCheck) -> Iterator[Finding]:
    for f, ref in _step_refs(c):
        if ref not in c.all_ids:
            hint = did_you_mean(ref, c.all_ids)
            yield Finding(f.path, f"steps.{ref} refers to a step that does not exist{hint}",
                          at=f.spot(f"steps.{ref}"))


@rule("RB103", "step-used-before-run", ERROR,
      "A step's results exist only after it ran; using them earlier is always undefined.")
def _used_before(c: RunbookCheck) -> Iterator[Finding]:
    for f, ref in _step_refs(c):
        if f.step is None and f.path[0] == "targets" and ref in c.order:
            yield from _target_used_before(c, f, ref)
        if f.step is None or _in_rollback(f) or ref not in c.all_ids:
            continue  # runbook-level templates and rollbacks may use any step; RB102 unknowns
        at = f.spot(f"steps.{ref}")
        if ref not in c.order:
            yield Finding(f.path, f"steps.{ref} is a rollback step: it runs only after a "
                                  "failure, never before this one", at=at)
            continue
        mine, theirs = c.position[f.step.path], c.order[ref]
        if theirs > mine:
            yield Finding(f.path, f"steps.{ref} is used before it runs (it comes later)", at=at)
        elif theirs == mine:
            yield Finding(f.path, f"step '{ref}' refers to itself through steps.{ref}: "
                                  "use stdout, outputs, exit_code directly", at=at)


def _target_used_before(c: RunbookCheck, f: Field, ref: str) -> Iterator[Finding]:
    """A target whose hosts come from steps.X, used by a step that runs before X."""
    name = f.path[1]
    default = c.runbook.defaults.target
    for step in c.runbook.steps():
        uses = step.target == name or (step.target is None and default == name and step.kind == "run")
        if uses and step.path in c.position and c.position[step.path] <= c.order[ref]:
            yield Finding(f.path, f"steps.{ref} decides the hosts of target '{name}', but step "
                                  f"'{step.id}' uses the target before {ref} runs", at=f.spot(f"steps.{ref}"))
            return


def _in_rollback(f: Field) -> bool:
    return "rollback" in f.path


@rule("RB104", "undefined-target", ERROR,
      "A step on an undefined target cannot know which hosts to run on.")
def _undefined_target(c: RunbookCheck) -> Iterator[Finding]:
    targets = set(c.runbook.targets)
    default = c.runbook.defaults.target
    if default is not None and default not in targets:
        yield Finding(("defaults", "target"), f"default target '{default}' is not defined in "
                      f"targets{did_you_mean(default, targets)}")
    for step in c.runbook.steps(rollbacks=True):
        if step.target is not None and step.target not in targets:
            yield Finding((*step.path, "target"), f"target '{step.target}' is not defined in "
                          f"targets{did_you_mean(step.target, targets)}")
    groups = c.inventory_groups
    if groups is not None:
        for name, target in c.runbook.targets.items():
            if target.group is not None and target.group not in groups and "{" not in target.group:
                yield Finding(("targets", name, "group"),
                              f"group '{target.group}' is not in the inventory"
                              f"{did_you_mean(target.group, groups)}")


@rule("RB105", "template-syntax", ERROR,
      "A template that does not parse fails the step when it is reached.")
def _template_syntax(c: RunbookCheck) -> Iterator[Finding]:
    for f in c.fields:
        if f.analysis.error is not None and not f.braced:
            line = f.analysis.error_line
            where = f" (line {line} of the template)" if line > 1 else ""
            what = "expression" if f.expression else "template"
            yield Finding(f.path, f"{what} syntax error{where}: {f.analysis.error}",
                          at=None if f.expression else spot_line(f.text, line))


@rule("RB106", "unknown-name", ERROR,
      "An undefined name is an error at run time, never an empty string.")
def _unknown_names(c: RunbookCheck) -> Iterator[Finding]:
    for f in c.analysed:
        if not f.analysis.names:
            continue
        allowed = f.allowed_names()
        for name in sorted(f.analysis.names - allowed):
            if name == "item" and f.step is not None:
                msg = "'item' is only defined in a step with for_each"
            elif name == "attempt" and f.step is not None:
                msg = ("'attempt' is only defined while the step tries its action (run, http, env, "
                       "expect, until, outputs), not before its first try")
            elif name in RESULT_NAMES and f.step is not None:
                msg = (f"'{name}' is a result of the step and is not known yet here; "
                       "use it in outputs, expect or until")
            else:
                msg = f"unknown name '{name}'{did_you_mean(name, allowed)}"
            yield Finding(f.path, msg, at=f.spot(name))


@rule("RB107", "braces-in-expression", ERROR,
      "`when`, `expect` and `until` are bare expressions; `{{ }}` inside them is a mistake.")
def _braces(c: RunbookCheck) -> Iterator[Finding]:
    for f in c.fields:
        if f.braced:
            yield Finding(f.path, f"'{f.path[-1]}' is a bare expression: remove the {{{{ }}}}")


@rule("RB108", "destructive-unguarded", ERROR,
      "A destructive step needs a human confirmation or a way back.")
def _destructive(c: RunbookCheck) -> Iterator[Finding]:
    for step in c.runbook.steps(rollbacks=True):
        if step.destructive and step.confirm is None and not step.rollback:
            yield Finding((*step.path, "destructive"),
                          f"destructive step '{step.id}' has neither confirm nor rollback", key=True)


@rule("RB109", "no-timeout", WARNING,
      "A command without a timeout can hang the whole incident response.")
def _no_timeout(c: RunbookCheck) -> Iterator[Finding]:
    rb = c.runbook
    if rb.defaults.timeout is not None or rb.timeout is not None:
        return
    for step in rb.steps(rollbacks=True):
        if step.kind == "run" and step.timeout is None:
            yield Finding((*step.path, "run"),
                          f"step '{step.id}' has no timeout (set timeout, defaults.timeout "
                          "or a run timeout)", key=True)


@rule("RB110", "until-without-timeout", ERROR,
      "Polling with `until` needs its own `timeout`, or it may poll for the default step time.")
def _until_timeout(c: RunbookCheck) -> Iterator[Finding]:
    for step in c.runbook.steps(rollbacks=True):
        if step.until and step.timeout is None:
            yield Finding((*step.path, "until"),
                          f"step '{step.id}' polls with until but has no timeout", key=True)


@rule("RB111", "missing-detection", WARNING,
      "Without detection a runbook acts on an alert it never confirmed.")
def _no_detection(c: RunbookCheck) -> Iterator[Finding]:
    phase = c.runbook.phase("detection")
    if c.runbook.library:
        return  # included by runbooks that detect: it has no alert of its own
    if phase is None or not phase.steps:  # `detection: []` confirms nothing either
        yield Finding(("id",), "runbook has no detection phase to confirm the alert", key=True)


@rule("RB112", "missing-recovery-check", WARNING,
      "Without a recovery check nobody knows whether the remediation worked.")
def _no_recovery(c: RunbookCheck) -> Iterator[Finding]:
    phase = c.runbook.phase("recovery")
    if c.runbook.library:
        return  # the runbook that includes it checks the recovery
    if phase is None:
        yield Finding(("id",), "runbook has no recovery phase to verify the fix", key=True)
    elif not any(s.expect or s.until for top in phase.steps for s in (top, *top.inner())):
        yield Finding(("recovery",), "recovery has no step that checks anything "
                      "(add expect or until)", key=True)


def _input_refs(c: RunbookCheck) -> list[tuple[Field, str]]:
    return c.refs("inputs")


@rule("RB113", "secret-in-message", ERROR,
      "A message leaves the run (chat, webhook, file); a secret in it is a leak.")
def _secret_in_notify(c: RunbookCheck) -> Iterator[Finding]:
    secrets = {n for n, i in c.runbook.inputs.items() if i.secret}
    for f, name in _input_refs(c):
        if f.notify and name in secrets:
            yield Finding(f.path, f"secret input '{name}' is interpolated into a message",
                          at=f.spot(f"inputs.{name}"))


_INPUT_TEXT = deferred(r"\binputs\s*(?:\.\s*(\w+)|\[\s*['\"](\w+)['\"]\s*\])")


@rule("RB114", "unused-input", WARNING,
      "A required input nobody uses makes every operator type a value for nothing.")
def _unused_inputs(c: RunbookCheck) -> Iterator[Finding]:
    used = {name for _, name in _input_refs(c)}
    for f in c.fields:
        if f.analysis.error is not None:  # RB105 reports it; do not add a second warning
            used.update(m.group(1) or m.group(2) for m in _INPUT_TEXT.finditer(f.text))
    for name, spec in c.runbook.inputs.items():
        if spec.required and name not in used:
            yield Finding(("inputs", name), f"input '{name}' has no default and is never used",
                          key=True)


@rule("RB115", "undefined-input", ERROR,
      "`inputs.X` must be declared under inputs: to be given at run time.")
def _undefined_inputs(c: RunbookCheck) -> Iterator[Finding]:
    declared = set(c.runbook.inputs)
    for f, name in _input_refs(c):
        if name not in declared:
            yield Finding(f.path, f"inputs.{name} is not declared{did_you_mean(name, declared)}",
                          at=f.spot(f"inputs.{name}"))


def _assigned_vars(rb: Runbook) -> set[str]:
    names = set(rb.vars)
    for step in rb.steps(rollbacks=True):
        if isinstance(step.spec, SetSpec):
            names.update(k for k in step.spec.values if not k.startswith("incident."))
        if isinstance(step.spec, ManualSpec):
            names.update(a.sets[5:] for a in step.spec.ask if a.sets and a.sets.startswith("vars."))
    return names


@rule("RB116", "undefined-var", ERROR,
      "`vars.X` must be given an initial value in vars: or be assigned by a set step.")
def _undefined_vars(c: RunbookCheck) -> Iterator[Finding]:
    assigned = _assigned_vars(c.runbook)
    for f, name in c.refs("vars"):
        if name not in assigned:
            yield Finding(f.path, f"vars.{name} is never assigned{did_you_mean(name, assigned)}",
                          at=f.spot(f"vars.{name}"))


@rule("RB117", "undeclared-role", ERROR,
      "A role not declared under roles: can never be taken, so its approvals never come.")
def _undeclared_roles(c: RunbookCheck) -> Iterator[Finding]:
    roles = set(c.runbook.roles)
    if not roles:
        return
    default = c.runbook.defaults.role
    if default and default not in roles:
        yield Finding(("defaults", "role"), f"role '{default}' is not declared in roles"
                      f"{did_you_mean(default, roles)}")
    for step in c.runbook.steps(rollbacks=True):
        if step.role and step.role not in roles:
            yield Finding((*step.path, "role"), f"role '{step.role}' is not declared in roles"
                          f"{did_you_mean(step.role, roles)}")
        if step.confirm and step.confirm.role and step.confirm.role not in roles:
            yield Finding((*step.path, "confirm", "role"),
                          f"role '{step.confirm.role}' is not declared in roles"
                          f"{did_you_mean(step.confirm.role, roles)}")


@rule("RB118", "unknown-filter", ERROR,
      "An unknown filter or test fails the template when it is rendered.")
def _unknown_filters(c: RunbookCheck) -> Iterator[Finding]:
    filters, tests = templating.known_filters(), templating.known_tests()
    for f in c.analysed:
        for name in sorted(f.analysis.filters - filters):
            yield Finding(f.path, f"unknown filter '{name}'{did_you_mean(name, filters)}",
                          at=f.spot(name, prefix=r"\|\s*"))
        for name in sorted(f.analysis.tests - tests):
            yield Finding(f.path, f"unknown test '{name}'{did_you_mean(name, tests)}",
                          at=f.spot(name, prefix=r"\bis\s+(?:not\s+)?"))


@rule("RB120", "private-attribute", ERROR,
      "Templates cannot reach Python internals (`__class__`, `_private`): the sandbox refuses them at run time.")
def _private_attributes(c: RunbookCheck) -> Iterator[Finding]:
    for f in c.analysed:
        for name in sorted(f.analysis.private):
            yield Finding(f.path, f"'{name}' is a private attribute: the template sandbox refuses it",
                          at=f.spot(name))



@rule("RB121", "unknown-channel", ERROR,
      "A message to a channel the channels config does not name reaches nobody; with a config, it fails "
      "the run before it starts.")
def _unknown_channels(c: RunbookCheck) -> Iterator[Finding]:
    if c.channels is None:
        return  # no channels config known to this check (validate --channels FILE gives one)
    for path, name in channel_uses(c.runbook):
        if name not in c.channels.names:
            yield Finding(path, f"channel '{name}' is not in {c.channels.file}"
                                f"{did_you_mean(name, c.channels.names)}")



@rule("RB170", "unknown-connection", ERROR,
      "A monitoring step must know which server to ask: a connection that is not defined, "
      "or several of its type and no name, fails the step mid-incident.")
def _unknown_connection(c: RunbookCheck) -> Iterator[Finding]:
    conns = c.runbook.connections
    for step in c.runbook.steps(rollbacks=True):
        if step.kind not in KIND_CONNECTION:
            continue
        spec = step.spec
        if isinstance(spec, UnsilenceSpec) and spec.step is not None and spec.alertmanager is None:
            continue  # the silence step's own connection: RB170 checks it there
        kind, name = connection_of(spec)  # type: ignore[arg-type]
        of_kind = sorted(n for n, conn in conns.items() if conn.type == kind)
        problem = connection_problem(kind, name, of_kind)
        if problem is not None:
            where = (*step.path, step.kind) if name is None else (*step.path, step.kind, kind)
            yield Finding(where, f"step '{step.id}': {problem}{did_you_mean(name or '', of_kind)}")


@rule("RB171", "unsilence-not-a-silence", ERROR,
      "`unsilence: ID` expires the silence step ID created; any other step created none.")
def _unsilence_step(c: RunbookCheck) -> Iterator[Finding]:
    kinds = {step.id: step.kind for step in c.runbook.steps(rollbacks=True)}
    for step in c.runbook.steps(rollbacks=True):
        spec = step.spec
        if not isinstance(spec, UnsilenceSpec) or spec.step is None or kinds.get(spec.step) == "silence":
            continue
        where = (*step.path, "unsilence") if spec.short else (*step.path, "unsilence", "silence")
        what = f"a {kinds[spec.step]} step" if spec.step in kinds else "no step"
        silences = [i for i, k in kinds.items() if k == "silence"]
        yield Finding(where, f"step '{step.id}' expires the silence of '{spec.step}', which is {what}"
                             f"{did_you_mean(spec.step, silences)}")
