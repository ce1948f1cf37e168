"""Lint rules for scenarios: does the drill fit the runbook it exercises?"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

from . import includes
from .diagnostics import Diagnostic
from .inventory import InventoryError
from .loader import Document
from .model import MISSING, AskField, BlockSpec, HttpSpec, IncludeSpec, ManualSpec, Runbook, RunSpec, Step
from .monitoring import PromqlSpec, ScrapeTargetsSpec
from .rules import ERROR, WARNING, Finding, did_you_mean, rule, run_rules
from .scenario import ACKNOWLEDGE, Match, Participant, Response, Scenario

_TEMPLATE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


@dataclass
class ScenarioCheck:
    doc: Document
    scenario: Scenario
    runbook: Runbook | None
    runbook_errors: int = 0
    runbook_exists: bool = True
    runbook_kind: str | None = None  # set when the file is not a runbook

    @cached_property
    def steps(self) -> dict[str, Step]:
        """Every step by the id a drill knows it by: the runbook's own, and those of the
        runbooks it includes as `include_step/inner_step` (includes of includes nested)."""
        return dict(_steps_of(self.runbook, "", ())) if self.runbook else {}

    @cached_property
    def step_ids(self) -> set[str]:
        """The ids a response may name: steps, and blocks' background helpers."""
        helpers = {f"{sid[:-len(step.id)]}{h.id}" for sid, step in self.steps.items()
                   if isinstance(step.spec, BlockSpec) for h in step.spec.background}
        return set(self.steps) | helpers

    def step(self, step_id: str) -> Step | None:
        return self.steps.get(step_id)

    def unknown(self, step_id: str) -> bool:
        return self.runbook is not None and step_id not in self.step_ids


def _steps_of(book: Runbook, prefix: str, chain: tuple[str, ...]) -> Iterator[tuple[str, Step]]:
    for step in book.steps(rollbacks=True):
        yield prefix + step.id, step
        spec = step.spec
        if not isinstance(spec, IncludeSpec) or _TEMPLATE.search(spec.runbook) or len(chain) >= includes.MAX_DEPTH:
            continue
        path = includes.target(book.file, spec.runbook)
        child = includes.referenced(path).model
        if child is not None and str(path) not in chain:  # a cycle is the runbook's own error (RB131)
            yield from _steps_of(child, f"{prefix}{step.id}/", (*chain, str(path)))


def lint_scenario(doc: Document, scenario: Scenario, runbook: Runbook | None, *,
                  runbook_errors: int = 0, runbook_exists: bool = True,
                  runbook_kind: str | None = None) -> list[Diagnostic]:
    check = ScenarioCheck(doc, scenario, runbook, runbook_errors, runbook_exists, runbook_kind)
    return run_rules("scenario", check, doc)


@rule("RB201", "scenario-runbook-missing", ERROR,
      "A scenario can only rehearse a runbook that exists.", kind="scenario")
def _missing_runbook(c: ScenarioCheck) -> Iterator[Finding]:
    if not c.runbook_exists:
        yield Finding(("runbook",), f"runbook '{c.scenario.runbook}' does not exist "
                                    f"(looked for {c.scenario.runbook_path})")
    elif c.runbook_kind is not None:
        yield Finding(("runbook",), f"'{c.scenario.runbook}' is a {c.runbook_kind}, not a runbook")
    elif c.runbook is None:
        yield Finding(("runbook",), f"runbook '{c.scenario.runbook}' is not valid "
                                    f"({c.runbook_errors} error(s)); validate it first")


def _unknown_steps(c: ScenarioCheck, ids: Iterator[tuple[tuple[str | int, ...], str]],
                   what: str) -> Iterator[Finding]:
    for path, step_id in ids:
        if c.unknown(step_id):
            qualified = sorted(i for i in c.step_ids if i.endswith("/" + step_id))
            hint = (f" as its own; it is a step of an included runbook: name it "
                    f"{' or '.join(repr(q) for q in qualified)}") if qualified else did_you_mean(step_id, c.step_ids)
            yield Finding(path, f"{what} names step '{step_id}', which the runbook lacks{hint}",
                          key=isinstance(path[-1], str) and path[-1] == step_id)


@rule("RB202", "unknown-response-step", ERROR,
      "A response for a step the runbook lacks never fires: the fault is not injected.",
      kind="scenario")
def _response_steps(c: ScenarioCheck) -> Iterator[Finding]:
    ids = (((("responses", r.index, "step")), r.step) for r in c.scenario.responses if r.step)
    yield from _unknown_steps(c, ids, "response")


@rule("RB203", "unknown-participant-step", ERROR,
      "Scripted answers for a missing step are never given.", kind="scenario")
def _participant_steps(c: ScenarioCheck) -> Iterator[Finding]:
    ids = ((("participants", k), k) for k in c.scenario.participants if k != ACKNOWLEDGE)
    yield from _unknown_steps(c, ids, "participants")


@rule("RB204", "unknown-hint-step", ERROR,
      "A hint for a missing step can never be shown.", kind="scenario")
def _hint_steps(c: ScenarioCheck) -> Iterator[Finding]:
    ids = ((("hints", k), k) for k in c.scenario.hints)
    yield from _unknown_steps(c, ids, "hints")


@rule("RB206", "unknown-objective-step", ERROR,
      "An objective about a missing step can never be met or is met vacuously.", kind="scenario")
def _objective_steps(c: ScenarioCheck) -> Iterator[Finding]:
    obj = c.scenario.objectives
    ids: list[tuple[tuple[str | int, ...], str]] = []
    ids += [(("objectives", "must_run", i), s) for i, s in enumerate(obj.must_run)]
    # must_not_run may name steps of other runbooks on purpose ("never reboot"):
    # only must_run and approvals must exist.
    ids += [(("objectives", "approved_by_role", s), s) for s in obj.approved_by_role]
    ids += [(("objectives", "order", i), s) for i, s in enumerate(obj.order)]
    ids += [(("objectives", "items", o.index, "step"), o.step) for o in obj.items]
    yield from _unknown_steps(c, iter(ids), "objectives")


@rule("RB217", "item-objective-step", ERROR,
      "An objective on a step's items needs a step that runs per item: one with for_each, or inside "
      "a block with for_each.", kind="scenario")
def _item_objective_steps(c: ScenarioCheck) -> Iterator[Finding]:
    for wanted in c.scenario.objectives.items:
        step = c.step(wanted.step)
        if step is not None and step.for_each is None and not step.in_loop:
            yield Finding(("objectives", "items", wanted.index, "step"),
                          f"step '{wanted.step}' runs once, not per item (no for_each on it or its block): "
                          "use must_run, order or a response's match instead")


def _pattern_text(text: str) -> str:
    return _TEMPLATE.sub("*", text)


def _could_match(resp: Response, step: Step) -> bool:
    match = resp.match
    if match is None:
        return False
    if isinstance(step.spec, RunSpec):
        command = _pattern_text(step.spec.command)
        if match.command is not None:
            return _may_render_to(command, match.command)
        if match.command_regex is not None:
            return re.search(match.command_regex, command) is not None or "*" in command
        return match.url is None and match.method is None and match.query is None and match.query_regex is None
    if isinstance(step.spec, HttpSpec):
        if match.url is not None:
            return _may_render_to(_pattern_text(step.spec.url), match.url)
        return match.command is None and match.command_regex is None and match.query is None \
            and match.query_regex is None
    if isinstance(step.spec, PromqlSpec):
        return _query_could_match(match, _pattern_text(step.spec.query))
    if isinstance(step.spec, ScrapeTargetsSpec):  # the URL depends on the connection: a url glob may match
        return match.url is not None and match.query is None and match.command is None
    return False


def _query_could_match(match: Match, query: str) -> bool:
    if match.query is not None:
        return _may_render_to(query, match.query)
    if match.query_regex is not None:
        return re.search(match.query_regex, query) is not None or "*" in query
    return match.command is None and match.command_regex is None and match.method is None


_WILDCARD = re.compile(r"[*?\[]")


def _may_render_to(text: str, glob: str) -> bool:
    """Could a step's text (its templates written as `*`) render to something `glob` matches?

    Without templates the text is what the simulated world sees: an exact glob match.
    With templates, a literal glob the text can produce (`systemctl restart db-1` for
    `systemctl restart {{ host }}`) matches, and so does a glob whose fixed start and end
    agree with the text's: a warning about a step the glob does cover would be noise.
    """
    if fnmatch.fnmatchcase(text, glob):
        return True
    if "*" not in text:
        return False
    if fnmatch.fnmatchcase(glob, text):
        return True
    head, tail = text.split("*", 1)[0], text.rsplit("*", 1)[-1]
    glob_head, glob_tail = _WILDCARD.split(glob)[0], _WILDCARD.split(glob)[-1]
    return _agree(head, glob_head, str.startswith) and _agree(tail, glob_tail, str.endswith)


def _agree(a: str, b: str, test: Callable[[str, str], bool]) -> bool:
    return test(a, b) or test(b, a)


def _needs_response(step: Step) -> bool:
    return step.kind in ("run", "http", "promql", "scrape_targets")


@rule("RB205", "unscripted-step", WARNING,
      "A step the scenario does not script fails the drill as 'unscripted'.", kind="scenario")
def _unscripted(c: ScenarioCheck) -> Iterator[Finding]:
    if c.runbook is None:
        return
    scripted = {r.step for r in c.scenario.responses if r.step and r.match is None}
    matchers = [r for r in c.scenario.responses if r.match is not None]
    for step in c.runbook.steps():
        covered = step.id in scripted or any(_could_match(r, step) for r in matchers)
        if _needs_response(step) and not covered:
            yield Finding(("responses",) if c.scenario.responses else ("runbook",),
                          f"step '{step.id}' has no response: it would run unscripted", key=True)
        needs_person = isinstance(step.spec, ManualSpec) or step.confirm is not None
        if needs_person and step.id not in c.scenario.participants:
            yield Finding(("participants",) if c.scenario.participants else ("runbook",),
                          f"step '{step.id}' waits for a person but participants has no "
                          "entry for it", key=True)


@rule("RB207", "bad-participant-answer", ERROR,
      "Scripted answers must fit the questions the runbook asks.", kind="scenario")
def _answers(c: ScenarioCheck) -> Iterator[Finding]:
    if c.runbook is None:
        return
    for step_id, who in c.scenario.participants.items():
        step = c.step(step_id)
        if step is None:
            continue  # RB203
        yield from _answer_problems(step, who)
        if who.approve is not None and step.confirm is None:
            yield Finding(("participants", step_id, "approve"),
                          f"step '{step_id}' asks for no confirmation", key=True)
        if who.set and not isinstance(step.spec, ManualSpec) and step.confirm is None:
            yield Finding(("participants", step_id, "set"), f"step '{step_id}' asks nobody anything (no "
                                                            "question, no confirmation): its set never applies",
                          key=True)


def _answer_problems(step: Step, who: Participant) -> Iterator[Finding]:
    fields = {a.name: a for a in step.spec.ask} if isinstance(step.spec, ManualSpec) else {}
    base = ("participants", who.step, "answers")
    for name, value in who.answers.items():
        ask = fields.get(name)
        if ask is None:
            yield Finding((*base, name), f"step '{step.id}' asks no question '{name}'"
                                         f"{did_you_mean(name, fields)}", key=True)
        elif (problem := _misfit(ask, value)) is not None:
            yield Finding((*base, name), problem)
    # An unattended drill has nobody to type the answer to a question without default.
    missing = [n for n, a in fields.items() if n not in who.answers and a.default is MISSING]
    if missing:
        where = base if who.answers else ("participants", who.step)
        yield Finding(where, f"no answer for {', '.join(map(repr, missing))}, which "
                             f"step '{step.id}' asks without a default", key=True)


def _misfit(ask: AskField, value: object) -> str | None:
    """Why `value` cannot be the answer to `ask`, or None if it can."""
    if ask.choices is not None and value not in ask.choices:
        return f"answer {value!r} is not one of {', '.join(map(str, ask.choices))}"
    if ask.type == "confirm" and not isinstance(value, bool):
        return f"answer {value!r} to '{ask.name}' must be true or false"
    if ask.type != "number":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"answer {value!r} to '{ask.name}' is not a number"
    if ask.minimum is not None and value < ask.minimum:
        return f"answer {value} to '{ask.name}' is too small: at least {ask.minimum}"
    if ask.maximum is not None and value > ask.maximum:
        return f"answer {value} to '{ask.name}' is too large: at most {ask.maximum}"
    return None


@rule("RB208", "scenario-inputs", ERROR,
      "The scenario must give the runbook the inputs it requires, and only those.",
      kind="scenario")
def _inputs(c: ScenarioCheck) -> Iterator[Finding]:
    if c.runbook is None:
        return
    declared = c.runbook.inputs
    for name in c.scenario.inputs:
        if name not in declared:
            yield Finding(("inputs", name), f"the runbook has no input '{name}'"
                                            f"{did_you_mean(name, declared)}", key=True)
    labels = dict(c.scenario.alert or {})
    for name, spec in declared.items():
        from_alert = spec.alert is not None and _alert_has(labels, spec.alert)
        if spec.required and not spec.sourced and name not in c.scenario.inputs and not from_alert:
            yield Finding(("inputs",) if c.scenario.inputs else ("runbook",),
                          f"required input '{name}' is not given", key=True)


def _alert_has(alert: dict[str, object], dotted: str) -> bool:
    value: object = alert
    for part in dotted.split("."):
        if not isinstance(value, dict) and not hasattr(value, "get"):
            return False
        value = value.get(part)
        if value is None:
            return False
    return True


_WORLD_NAMES = frozenset(("state", "inputs"))


@rule("RB209", "bad-mitigated-when", ERROR,
      "`mitigated_when` is checked on the simulated world whenever its state changes: it must "
      "be an expression over `state` and `inputs`, or the drill could never count as mitigated.",
      kind="scenario")
def _mitigated_when(c: ScenarioCheck) -> Iterator[Finding]:
    from engine.templates import templating

    text = c.scenario.mitigated_when
    if text is None:
        return
    found = templating.analyze(text, expression=True)
    if found.error is not None:
        yield Finding(("mitigated_when",), f"`{text}` is not a valid expression: {found.error}")
        return
    for name in sorted(found.names - _WORLD_NAMES):
        yield Finding(("mitigated_when",), f"`{text}` uses '{name}'; the world's condition sees only "
                                           f"`state` and `inputs`{did_you_mean(name, _WORLD_NAMES)}")


@rule("RB215", "scenario-pods-target", ERROR,
      "A scenario's `pods:` lists the pods of a Kubernetes target of the runbook; an entry for a "
      "target the runbook lacks, or one that is not a `pods:`/`nodes:` target, is never used.",
      kind="scenario")
def _pods_targets(c: ScenarioCheck) -> Iterator[Finding]:
    if c.runbook is None:
        return
    targets = c.runbook.targets
    kube = [name for name, target in targets.items() if target.kube is not None]
    for name in c.scenario.pods:
        if name not in targets:
            yield Finding(("pods", name), f"pods: the runbook has no target '{name}'{did_you_mean(name, kube)}",
                          key=True)
        elif targets[name].kube is None:
            yield Finding(("pods", name), f"pods: target '{name}' reaches its hosts over SSH, not through "
                                          "kubectl; its hosts come from the runbook", key=True)


@rule("RB216", "scenario-inventory", ERROR,
      "A scenario's `inventory:` gives the hosts of the runbook's `group:` targets in the drill: one "
      "that cannot be read, or that lacks a group the runbook names, fails the drill's steps.",
      kind="scenario")
def _inventory(c: ScenarioCheck) -> Iterator[Finding]:
    if c.scenario.inventory is None:
        return
    try:
        inventory = c.scenario.load_inventory()
    except InventoryError as exc:
        yield Finding(("inventory",), exc.message)
        return
    if c.runbook is None or inventory is None:
        return
    known = sorted(g for g in inventory.groups if g not in ("all", "ungrouped"))
    for name, target in c.runbook.targets.items():
        group = target.group
        if group is None or _TEMPLATE.search(group):
            continue  # a templated group is decided at run time
        if group not in inventory.groups:
            at = _inventory_at(c, "groups")
            yield Finding(at, f"target '{name}' uses group '{group}', which the scenario's inventory "
                              f"lacks{did_you_mean(group, known)}", key=len(at) > 1)
        elif not inventory.members(group):
            at = _inventory_at(c, "groups", group)
            yield Finding(at, f"group '{group}' (target '{name}') has no hosts in the scenario's inventory",
                          key=len(at) > 1)


def _inventory_at(c: ScenarioCheck, *path: str) -> tuple[str, ...]:
    """Where to point: into an inline inventory as deep as it goes, else at the file's path."""
    data, found = c.scenario.inventory, ["inventory"]
    for key in path:
        if not isinstance(data, Mapping) or key not in data:
            break
        data, found = data[key], [*found, key]
    return tuple(found)
