"""Fields: every string of a runbook that may hold a template or is an expression, with
the stage it is evaluated in (before the step runs, after it, outside steps) and where it
is in the file. Lint rules read them; the run loop asks which names a runbook mentions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from engine.templates import templating
from engine.templates.patterns import deferred

from .model import (
    EndSpec,
    HttpSpec,
    IncludeSpec,
    ManualSpec,
    NotifySpec,
    Runbook,
    RunSpec,
    SetSpec,
    Step,
    SwitchSpec,
)
from .model import Path as DataPath
from .monitoring import KIND_CONNECTION, KIND_RESULTS, connection_strings, template_strings

_REGIONS = deferred(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


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
            return line_col(text, match.start("needle"))
    index = text.find(needle)
    return line_col(text, index) if index >= 0 else None


def line_col(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def spot_line(text: str, line: int) -> tuple[int, int]:
    """The first `{{` or `{%` on a template line (Jinja reports lines, not columns)."""
    lines = text.split("\n")
    content = lines[line - 1] if 0 < line <= len(lines) else ""
    cols = [c for c in (content.find("{{"), content.find("{%")) if c >= 0]
    return line, (min(cols) + 1 if cols else 1)



BASE_NAMES = frozenset({"inputs", "vars", "steps", "run", "runbook", "incident", "now"})
BEFORE_NAMES = BASE_NAMES | {"host", "attempt"}
RESULT_NAMES = frozenset(
    {"stdout", "stderr", "exit_code", "status", "json", "body", "headers", "outputs", "answers",
     "hosts", "duration", "items"}
)
LOOP_NAMES = frozenset({"item", "index"})  # in a step with for_each, and inside a block with one
STAGE_NAMES = {
    "before": BEFORE_NAMES,
    "start": BEFORE_NAMES - {"attempt"},  # evaluated once, before the first try (when, confirm)
    "after": BEFORE_NAMES | RESULT_NAMES,
    "runbook": frozenset({"inputs", "vars", "run", "runbook", "incident", "now"}),
    # A target's hosts and group are resolved as a step using it starts: earlier steps are known.
    "target": frozenset({"inputs", "vars", "run", "runbook", "incident", "now", "steps"}),
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
        step = self.step
        loop = step is not None and (step.in_loop or (step.for_each is not None and step.kind != "block"
                                                      and "for_each" not in self.path))
        kind = step.kind if self.stage == "after" and step is not None else None
        return _allowed_names(self.stage, loop, kind)


@cache
def _allowed_names(stage: str, loop: bool, kind: str | None) -> frozenset[str]:
    """The names a field may use, by what decides them (a handful of sets in all)."""
    names = STAGE_NAMES[stage]
    if loop:
        names = names | LOOP_NAMES
    if kind is not None:
        names = names | KIND_RESULTS.get(kind, frozenset())  # a promql step's `value`...
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
        yield f(("when",), step.when, expression=True, stage="start")
    if isinstance(step.for_each, str):
        yield f(("for_each",), step.for_each, expression=True, stage="start")
    elif step.for_each is not None:  # a literal list: its strings are templates
        for sub, text in _strings(step.for_each, ("for_each",)):
            yield f(sub, text, stage="start")
    yield from _spec_fields(step, spec, f)
    for k, v in step.env.items():
        yield f(("env", k), v)
    if step.confirm is not None and step.confirm.message:
        # `confirm: text` or `confirm: {message: text}`; RunbookCheck.fields tells them apart
        yield f(("confirm",), step.confirm.message, stage="start")
    for k, v in step.outputs.items():
        yield f(("outputs", k), v, stage="after")
    for name in ("expect", "until"):
        if getattr(step, name):
            yield f((name,), getattr(step, name), expression=True, stage="after")
    for undo in step.rollback:  # a rollback's own steps too: Runbook.steps() lists no rollback
        for part in (undo, *undo.inner()):
            yield from step_fields(part)


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
    elif isinstance(spec, ManualSpec):  # shown once, as the step starts
        yield f(("manual",), spec.text, stage="start")
        for ask in spec.ask:
            if ask.prompt:
                yield f(("ask", ask.name, "prompt"), ask.prompt, stage="start")
    elif isinstance(spec, NotifySpec):
        if templating.has_template(spec.channel):
            yield f(("notify", "channel"), spec.channel)
        yield f(("notify", "message"), spec.message, notify=True)
        if spec.title:
            yield f(("notify", "title"), spec.title, notify=True)
    elif isinstance(spec, SetSpec):
        for sub, text in _strings(dict(spec.values), ("set",)):
            yield f(sub, text)
    elif isinstance(spec, IncludeSpec):
        for sub, text in _strings(dict(spec.inputs), ("include", "inputs")):
            yield f(sub, text)
    elif step.kind in KIND_CONNECTION:
        for sub, text in template_strings(step.kind, spec):
            yield f(sub, text)
    elif isinstance(spec, SwitchSpec):
        yield f(("switch",), spec.on, expression=True)
    elif isinstance(spec, EndSpec):
        yield f(("end", "reason"), spec.reason)
    refuse = step.confirm.on_refuse if step.confirm is not None else None
    if refuse is not None and refuse.end is not None:
        yield f(("confirm", "on_refuse", "end", "reason"), refuse.end.reason)


def runbook_fields(rb: Runbook) -> Iterator[Field]:
    """Templates outside steps: target hosts, links, updates, escalation."""
    for name, target in rb.targets.items():
        for i, host in enumerate(target.hosts):
            yield Field(("targets", name, "hosts", i), host, stage="target")
        if target.group is not None and templating.has_template(target.group):
            yield Field(("targets", name, "group"), target.group, stage="target")
        if target.kube is not None:
            for key, text in target.kube.fields():
                yield Field(("targets", name, target.kube.kind, key), text, stage="runbook")
    for name, conn in rb.connections.items():
        if conn.file is not None:
            continue  # the connections file's: not in this runbook's text
        for sub, text in connection_strings(conn):
            yield Field(("connections", name, *sub), text, stage="runbook")
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
