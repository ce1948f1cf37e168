"""Semantic rules over the model, each with a stable id and a one-line rationale.

Rules see a Runbook (or Scenario) and yield Findings; the driver positions them with
the document's source map. `# runbook: ignore[RB101]` on a line silences a rule there.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import Any, NamedTuple

from engine.templates import templating

from .diagnostics import Diagnostic, Severity
from .loader import Document
from .model import HttpSpec, IncludeSpec, ManualSpec, NotifySpec, Runbook, RunSpec, SetSpec, Step

DataPath = tuple[str | int, ...]


class Rule(NamedTuple):
    id: str
    name: str
    severity: Severity
    rationale: str
    kind: str  # "runbook", "scenario" or "inventory"
    check: Callable[[Any], Iterator[Finding]]


class Finding(NamedTuple):
    path: DataPath
    message: str
    key: bool = False  # position at the key of path[-1]
    at: tuple[int, int] | None = None  # (line, column) inside the string at `path`


_REGIONS = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


def spot(text: str, needle: str, *, expression: bool = False, prefix: str = "",
         ) -> tuple[int, int] | None:
    """(line, column), 1-based, of `needle` used as a name in a template or expression.

    The needle must stand alone (`steps.check` is not found inside `steps.checks`, nor
    `item` inside `inputs.item`) and, in a template, inside `{{ }}` or `{% %}`: the word
    `item` in the text around them is not the name `item`. `prefix` is a regex that must
    come just before it (`\\|\\s*` for a filter).
    """
    pattern = re.compile(rf"{prefix}(?<![\w.])(?P<needle>{re.escape(needle)})(?!\w)")
    regions = [(0, len(text))] if expression else [m.span() for m in _REGIONS.finditer(text)]
    for start, end in [*regions, (0, len(text))]:
        match = pattern.search(text, start, end)
        if match is not None:
            return _line_col(text, match.start("needle"))
    index = text.find(needle)
    return _line_col(text, index) if index >= 0 else None


def _line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def spot_line(text: str, line: int) -> tuple[int, int]:
    """The first `{{` or `{%` on a template line (Jinja reports lines, not columns)."""
    lines = text.split("\n")
    content = lines[line - 1] if 0 < line <= len(lines) else ""
    cols = [c for c in (content.find("{{"), content.find("{%")) if c >= 0]
    return line, (min(cols) + 1 if cols else 1)


RULES: dict[str, Rule] = {}


def rule(rule_id: str, name: str, severity: Severity, rationale: str, kind: str = "runbook",
         ) -> Callable[[Callable[[Any], Iterator[Finding]]], Callable[[Any], Iterator[Finding]]]:
    """Register a rule function under a stable id."""

    def register(func: Callable[[Any], Iterator[Finding]]) -> Callable[[Any], Iterator[Finding]]:
        RULES[rule_id] = Rule(rule_id, name, severity, rationale, kind, func)
        return func

    return register


ERROR, WARNING = Severity.ERROR, Severity.WARNING

# -- template fields --------------------------------------------------------------------------

BASE_NAMES = frozenset({"inputs", "vars", "steps", "run", "runbook", "incident"})
BEFORE_NAMES = BASE_NAMES | {"host", "attempt"}
RESULT_NAMES = frozenset(
    {"stdout", "stderr", "exit_code", "status", "json", "body", "headers", "outputs", "answers",
     "hosts", "duration", "items"}
)
STAGE_NAMES = {
    "before": BEFORE_NAMES,
    "after": BEFORE_NAMES | RESULT_NAMES,
    "runbook": frozenset({"inputs", "vars", "run", "runbook", "incident"}),
    "update": BASE_NAMES | {"update", "escalation"},
}


class Field:
    """One string of the runbook that may hold templates (or is an expression)."""

    __slots__ = ("analysis", "braced", "expression", "notify", "path", "stage", "step", "text")

    def __init__(self, path: DataPath, text: str, expression: bool = False, stage: str = "before",
                 step: Step | None = None, notify: bool = False) -> None:
        self.path, self.text, self.expression, self.stage = path, text, expression, stage
        self.step = step
        self.notify = notify  # a message that leaves the run (secrets must not be in it)
        # Every field is analysed by some rule: do it once, here (analysis is cached by text).
        self.braced = self.expression and templating.has_template(self.text)  # `{{ }}` in an expression
        # `when: "{{ x }}"` is RB107's; the names inside are still real references.
        expression = self.expression and not self.braced
        self.analysis = templating.analyze(self.text, expression=expression)

    def spot(self, needle: str, prefix: str = "") -> tuple[int, int] | None:
        """Where `needle` is used in this field, for the diagnostic's position."""
        return spot(self.text, needle, expression=self.expression and not self.braced,
                    prefix=prefix)

    def allowed_names(self) -> frozenset[str]:
        names = STAGE_NAMES[self.stage]
        if self.step is not None and self.step.for_each is not None and "for_each" not in self.path:
            names = names | {"item"}
        return names | templating.known_globals()


def _strings(value: Any, path: DataPath) -> Iterator[tuple[DataPath, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict) or hasattr(value, "items"):
        for k, v in value.items():
            yield from _strings(v, (*path, k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _strings(v, (*path, i))


def step_fields(step: Step) -> Iterator[Field]:
    """Every template and expression of a step, with the stage it is evaluated in."""
    p, spec = step.path, step.spec

    def f(sub: DataPath, text: str, **kw: Any) -> Field:
        return Field((*p, *sub), text, step=step, **kw)

    for name in ("title", "description"):
        if getattr(step, name):
            yield f((name,), getattr(step, name))
    if step.when:
        yield f(("when",), step.when, expression=True)
    if isinstance(step.for_each, str):
        yield f(("for_each",), step.for_each, expression=True)
    elif step.for_each is not None:  # a literal list: its strings are templates
        for sub, text in _strings(step.for_each, ("for_each",)):
            yield f(sub, text)
    yield from _spec_fields(step, spec, f)
    for k, v in step.env.items():
        yield f(("env", k), v)
    if step.confirm is not None and step.confirm.message:
        # `confirm: text` or `confirm: {message: text}`; RunbookCheck.fields tells them apart
        yield f(("confirm",), step.confirm.message)
    for k, v in step.outputs.items():
        yield f(("outputs", k), v, stage="after")
    for name in ("expect", "until"):
        if getattr(step, name):
            yield f((name,), getattr(step, name), expression=True, stage="after")
    for undo in step.rollback:
        yield from step_fields(undo)


def _spec_fields(step: Step, spec: Any, f: Callable[..., Field]) -> Iterator[Field]:
    if isinstance(spec, RunSpec):
        yield f(("run",), spec.command)
        if spec.stdin:
            yield f(("stdin",), spec.stdin)
    elif isinstance(spec, HttpSpec):
        yield f(("http", "url"), spec.url)
        for sub, text in _strings(dict(spec.headers), ("http", "headers")):
            yield f(sub, text)
        for sub, text in _strings(spec.body, ("http", "body")):
            yield f(sub, text)
    elif isinstance(spec, ManualSpec):
        yield f(("manual",), spec.text)
        for ask in spec.ask:
            if ask.prompt:
                yield f(("ask", ask.name, "prompt"), ask.prompt)
    elif isinstance(spec, NotifySpec):
        yield f(("notify", "message"), spec.message, notify=True)
        if spec.title:
            yield f(("notify", "title"), spec.title, notify=True)
    elif isinstance(spec, SetSpec):
        for sub, text in _strings(dict(spec.values), ("set",)):
            yield f(sub, text)
    elif isinstance(spec, IncludeSpec):
        for sub, text in _strings(dict(spec.inputs), ("include", "inputs")):
            yield f(sub, text)


def runbook_fields(rb: Runbook) -> Iterator[Field]:
    """Templates outside steps: target hosts, links, updates, escalation."""
    for name, target in rb.targets.items():
        for i, host in enumerate(target.hosts):
            yield Field(("targets", name, "hosts", i), host, stage="runbook")
    for i, link in enumerate(rb.links):
        yield Field(("links", i, "url"), link.url, stage="runbook")
    if rb.updates is not None and rb.updates.message:
        yield Field(("updates", "message"), rb.updates.message, stage="update", notify=True)
    for rule_ in rb.escalation:
        if rule_.when:
            yield Field(("escalation", rule_.number, "when"), rule_.when, expression=True,
                        stage="update")
        if rule_.message:
            yield Field(("escalation", rule_.number, "message"), rule_.message, stage="update",
                        notify=True)


class KnownChannels(NamedTuple):
    """The channels config a check knows: its file and the channel names in it."""

    file: str
    names: frozenset[str]


class RunbookCheck:
    """What the runbook rules look at, computed once per file."""

    def __init__(self, doc: Document, runbook: Runbook, inventory_groups: frozenset[str] | None = None,
                 channels: KnownChannels | None = None) -> None:
        self.doc, self.runbook, self.inventory_groups = doc, runbook, inventory_groups
        self.channels = channels

    @cached_property
    def fields(self) -> list[Field]:
        out = [self._placed(f) for s in self.runbook.steps() for f in step_fields(s)]
        return out + list(runbook_fields(self.runbook))

    def _placed(self, f: Field) -> Field:
        """The field with the path of its string in the file (`confirm: {message: ...}`)."""
        if f.path[-1] == "confirm" and self.doc.source.node((*f.path, "message")) is not None:
            return Field((*f.path, "message"), f.text, f.expression, f.stage, f.step, f.notify)
        return f

    @cached_property
    def order(self) -> dict[str, int]:
        """Step id -> position in run order (first occurrence)."""
        order: dict[str, int] = {}
        for i, step in enumerate(self.runbook.steps()):
            order.setdefault(step.id, i)
        return order

    @cached_property
    def position(self) -> dict[DataPath, int]:
        """Step path -> position in run order (a duplicate id keeps its own place)."""
        return {step.path: i for i, step in enumerate(self.runbook.steps())}

    @cached_property
    def all_ids(self) -> set[str]:
        return {s.id for s in self.runbook.steps(rollbacks=True)}

    @cached_property
    def parsed(self) -> list[Field]:
        """Fields that parse (syntax errors are reported by their own rule)."""
        return [f for f in self.fields if f.analysis.error is None]


def lint_runbook(doc: Document, runbook: Runbook, *, inventory_groups: frozenset[str] | None = None,
                 channels: KnownChannels | None = None) -> list[Diagnostic]:
    """Run every runbook rule; findings positioned in `doc`."""
    from . import _include_rules, _value_rules  # noqa: F401  (register their rules)

    check = RunbookCheck(doc, runbook, inventory_groups, channels)
    return _run_rules("runbook", check, doc)


def _run_rules(kind: str, subject: Any, doc: Document) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    for rule_ in RULES.values():
        if rule_.kind != kind:
            continue
        for finding in rule_.check(subject):
            if finding.at is not None:
                pos = doc.source.inside_scalar(finding.path, *finding.at)
                out.append(Diagnostic(doc.file, pos.line, pos.column, rule_.severity, rule_.id,
                                      finding.message, finding.path))
                continue
            out.append(doc.diagnostic(finding.path, finding.message, rule_.id, rule_.severity,
                                      key=finding.key))
    return out


# -- runbook rules ----------------------------------------------------------------------------


@rule("RB101", "duplicate-step-id", ERROR,
      "`steps.ID` must name exactly one step; a second step with the same id hides the first.")
def _duplicate_ids(c: RunbookCheck) -> Iterator[Finding]:
    seen: set[str] = set()
    for step in c.runbook.steps(rollbacks=True):
        if step.id in seen:
            yield Finding((*step.path, "id"), f"duplicate step id '{step.id}'")
        seen.add(step.id)


def _step_refs(c: RunbookCheck) -> Iterator[tuple[Field, str]]:
    for f in c.parsed:
        for ref in f.analysis.refs:
            if ref[0] == "steps" and len(ref) > 1:
                yield f, ref[1]


@rule("RB102", "undefined-step", ERROR,
      "A reference to a step that does not exist fails at run time, mid-incident.")
def _undefined_step(c: RunbookCheck) -> Iterator[Finding]:
    for f, ref in _step_refs(c):
        if ref not in c.all_ids:
            hint = _did_you_mean(ref, c.all_ids)
            yield Finding(f.path, f"steps.{ref} refers to a step that does not exist{hint}",
                          at=f.spot(f"steps.{ref}"))


@rule("RB103", "step-used-before-run", ERROR,
      "A step's results exist only after it ran; using them earlier is always undefined.")
def _used_before(c: RunbookCheck) -> Iterator[Finding]:
    for f, ref in _step_refs(c):
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


def _in_rollback(f: Field) -> bool:
    return "rollback" in f.path


@rule("RB104", "undefined-target", ERROR,
      "A step on an undefined target cannot know which hosts to run on.")
def _undefined_target(c: RunbookCheck) -> Iterator[Finding]:
    targets = set(c.runbook.targets)
    default = c.runbook.defaults.target
    if default is not None and default not in targets:
        yield Finding(("defaults", "target"), f"default target '{default}' is not defined in "
                      f"targets{_did_you_mean(default, targets)}")
    for step in c.runbook.steps(rollbacks=True):
        if step.target is not None and step.target not in targets:
            yield Finding((*step.path, "target"), f"target '{step.target}' is not defined in "
                          f"targets{_did_you_mean(step.target, targets)}")
    groups = c.inventory_groups
    if groups is not None:
        for name, target in c.runbook.targets.items():
            if target.group is not None and target.group not in groups:
                yield Finding(("targets", name, "group"),
                              f"group '{target.group}' is not in the inventory"
                              f"{_did_you_mean(target.group, groups)}")


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
    for f in c.parsed:
        allowed = f.allowed_names()
        for name in sorted(f.analysis.names - allowed):
            if name == "item" and f.step is not None:
                msg = "'item' is only defined in a step with for_each"
            elif name in RESULT_NAMES and f.step is not None:
                msg = (f"'{name}' is a result of the step and is not known yet here; "
                       "use it in outputs, expect or until")
            else:
                msg = f"unknown name '{name}'{_did_you_mean(name, allowed)}"
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
    if phase is None or not phase.steps:  # `detection: []` confirms nothing either
        yield Finding(("id",), "runbook has no detection phase to confirm the alert", key=True)


@rule("RB112", "missing-recovery-check", WARNING,
      "Without a recovery check nobody knows whether the remediation worked.")
def _no_recovery(c: RunbookCheck) -> Iterator[Finding]:
    phase = c.runbook.phase("recovery")
    if phase is None:
        yield Finding(("id",), "runbook has no recovery phase to verify the fix", key=True)
    elif not any(s.expect or s.until for s in phase.steps):
        yield Finding(("recovery",), "recovery has no step that checks anything "
                      "(add expect or until)", key=True)


def _input_refs(c: RunbookCheck) -> Iterator[tuple[Field, str]]:
    for f in c.parsed:
        for ref in f.analysis.refs:
            if ref[0] == "inputs" and len(ref) > 1:
                yield f, ref[1]


@rule("RB113", "secret-in-message", ERROR,
      "A message leaves the run (chat, webhook, file); a secret in it is a leak.")
def _secret_in_notify(c: RunbookCheck) -> Iterator[Finding]:
    secrets = {n for n, i in c.runbook.inputs.items() if i.secret}
    for f, name in _input_refs(c):
        if f.notify and name in secrets:
            yield Finding(f.path, f"secret input '{name}' is interpolated into a message",
                          at=f.spot(f"inputs.{name}"))


_INPUT_TEXT = re.compile(r"\binputs\s*(?:\.\s*(\w+)|\[\s*['\"](\w+)['\"]\s*\])")


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
            yield Finding(f.path, f"inputs.{name} is not declared{_did_you_mean(name, declared)}",
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
    for f in c.parsed:
        for ref in f.analysis.refs:
            if ref[0] == "vars" and len(ref) > 1 and ref[1] not in assigned:
                yield Finding(f.path, f"vars.{ref[1]} is never assigned"
                                      f"{_did_you_mean(ref[1], assigned)}",
                              at=f.spot(f"vars.{ref[1]}"))


@rule("RB117", "undeclared-role", ERROR,
      "A role not declared under roles: can never be taken, so its approvals never come.")
def _undeclared_roles(c: RunbookCheck) -> Iterator[Finding]:
    roles = set(c.runbook.roles)
    if not roles:
        return
    default = c.runbook.defaults.role
    if default and default not in roles:
        yield Finding(("defaults", "role"), f"role '{default}' is not declared in roles"
                      f"{_did_you_mean(default, roles)}")
    for step in c.runbook.steps(rollbacks=True):
        if step.role and step.role not in roles:
            yield Finding((*step.path, "role"), f"role '{step.role}' is not declared in roles"
                          f"{_did_you_mean(step.role, roles)}")
        if step.confirm and step.confirm.role and step.confirm.role not in roles:
            yield Finding((*step.path, "confirm", "role"),
                          f"role '{step.confirm.role}' is not declared in roles"
                          f"{_did_you_mean(step.confirm.role, roles)}")


@rule("RB118", "unknown-filter", ERROR,
      "An unknown filter or test fails the template when it is rendered.")
def _unknown_filters(c: RunbookCheck) -> Iterator[Finding]:
    filters, tests = templating.known_filters(), templating.known_tests()
    for f in c.parsed:
        for name in sorted(f.analysis.filters - filters):
            yield Finding(f.path, f"unknown filter '{name}'{_did_you_mean(name, filters)}",
                          at=f.spot(name, prefix=r"\|\s*"))
        for name in sorted(f.analysis.tests - tests):
            yield Finding(f.path, f"unknown test '{name}'{_did_you_mean(name, tests)}",
                          at=f.spot(name, prefix=r"\bis\s+(?:not\s+)?"))


@rule("RB120", "private-attribute", ERROR,
      "Templates cannot reach Python internals (`__class__`, `_private`): the sandbox refuses them at run time.")
def _private_attributes(c: RunbookCheck) -> Iterator[Finding]:
    for f in c.parsed:
        for name in sorted(f.analysis.private):
            yield Finding(f.path, f"'{name}' is a private attribute: the template sandbox refuses it",
                          at=f.spot(name))


@rule("RB140", "template-in-shell-quotes", WARNING,
      "A value inside the command's own quotes, a heredoc or a comment is escaped for that place, and one "
      "inside a nested shell (sh -c \"…\", ssh, eval, backticks) is refused unless it is a plain word: "
      "passing it through `env:` and writing \"$VAR\" is plain to read and safe everywhere.")
def _templates_in_shell_quotes(c: RunbookCheck) -> Iterator[Finding]:
    from engine.templates import _shell

    for f in c.parsed:
        if f.path[-1] != "run" or f.step is None or not isinstance(f.step.spec, RunSpec):
            continue
        for start, expression, slot in _shell_slots(f.text):
            if slot.kind != _shell.PLAIN and not _RAW_OR_QUOTED.search(expression) and \
                    not _a_number(c.runbook, expression):
                yield Finding(f.path, _quoting_advice(expression, slot), at=_line_col(f.text, start))


_TEMPLATE_PARTS = re.compile(r"\{\{-?(?P<expr>.*?)-?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
# The author chose (raw, quote), or the value is a number: nothing to say.
_RAW_OR_QUOTED = re.compile(r"\|\s*(raw|quote|int|float)\s*(\(.*\))?\s*$", re.DOTALL)


_INPUT = re.compile(r"^inputs\.(\w+)$")


def _a_number(runbook: Runbook, expression: str) -> bool:
    """`inputs.port` of an integer, number or boolean input: its value cannot hold shell syntax."""
    match = _INPUT.match(expression)
    spec = runbook.inputs.get(match.group(1)) if match else None
    return spec is not None and spec.type in ("integer", "number", "boolean")


@functools.lru_cache(maxsize=4096)
def _shell_slots(text: str) -> tuple[tuple[int, str, Any], ...]:
    """(offset, expression, shell context) of every `{{ }}` of a `run` command, read as the
    shell reads it (`{% %}` and comments taken out)."""
    from engine.templates import _shell

    if _shell.MARK in text or not _shell.may_quote(text):
        return ()  # a NUL byte is another rule's business; nothing to quote, nothing to say
    skeleton, found = [], []
    last = 0
    for match in _TEMPLATE_PARTS.finditer(text):
        skeleton.append(text[last:match.start()])
        if match.group("expr") is not None:
            skeleton.append(_shell.MARK)
            found.append((match.start(), match.group("expr").strip()))
        last = match.end()
    skeleton.append(text[last:])
    slots = _shell.scan("".join(skeleton))
    return tuple((start, expr, slot) for (start, expr), slot in zip(found, slots, strict=True))


def _quoting_advice(expression: str, slot: Any) -> str:
    from engine.templates import _shell

    shown = f"{{{{ {expression} }}}}"
    plainly = "pass it through `env:` (env: {VALUE: \"" + shown + "\"}) and write \"$VALUE\" instead"
    if slot.kind in (_shell.DOUBLE, _shell.SINGLE):
        return (f"{shown} is inside the command's own quotes: the engine escapes it for them, but values "
                f"are quoted for you; drop the quotes around it, or {plainly}")
    if slot.kind in (_shell.HEREDOC, _shell.LITERAL):
        return (f"{shown} is inside a heredoc: it is escaped for it, and a value holding the line "
                f"{slot.detail} fails the step; {plainly}")
    if slot.kind == _shell.COMMENT:
        return f"{shown} is inside a comment: a value with a line break fails the step; take it out"
    return f"{shown} {_shell.nested_advice(slot.detail)}"


def channel_uses(runbook: Runbook) -> Iterator[tuple[DataPath, str]]:
    """Every channel a runbook names, with where: notify steps (rollbacks too),
    escalation rules and updates."""
    for step in runbook.steps(rollbacks=True):
        if isinstance(step.spec, NotifySpec):
            yield (*step.path, "notify", "channel"), step.spec.channel
    for rule_ in runbook.escalation:
        yield ("escalation", rule_.number, "notify"), rule_.notify
    if runbook.updates is not None:
        yield ("updates", "channel"), runbook.updates.channel


@rule("RB121", "unknown-channel", ERROR,
      "A message to a channel the channels config does not name reaches nobody; with a config, it fails "
      "the run before it starts.")
def _unknown_channels(c: RunbookCheck) -> Iterator[Finding]:
    if c.channels is None:
        return  # no channels config known to this check (validate --channels FILE gives one)
    for path, name in channel_uses(c.runbook):
        if name not in c.channels.names:
            yield Finding(path, f"channel '{name}' is not in {c.channels.file}"
                                f"{_did_you_mean(name, c.channels.names)}")


def _did_you_mean(word: str, options: Any) -> str:
    import difflib

    close = difflib.get_close_matches(word, sorted(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def describe_rules() -> list[dict[str, str]]:
    """Rule table for docs and `runbook rules`."""
    from . import _include_rules, _inventory_rules, _scenario_rules, _value_rules  # noqa: F401  (register rules)

    return [
        {"id": r.id, "name": r.name, "severity": r.severity.value, "applies_to": r.kind,
         "rationale": r.rationale}
        for r in sorted(RULES.values(), key=lambda r: r.id)
    ]
