"""Lint rules on the steps that choose the way a run goes: a `switch:` whose cases its
question never offers, a case no value can reach, a switch that runs nothing for some
answers, steps after an `end:` that can never run, and how a block's items run
on a block without items."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

from .model import AskField, Input, ManualSpec, Runbook, Step, SwitchSpec, case_matches
from .rules import ERROR, WARNING, Finding, rule
from .runbook_check import RunbookCheck


def _switches(rb: Runbook) -> Iterator[tuple[Step, SwitchSpec[Step]]]:
    for step in rb.steps(rollbacks=True):
        if isinstance(step.spec, SwitchSpec):
            yield step, step.spec


def _asked(rb: Runbook, spec: SwitchSpec[Step]) -> AskField | Input | None:
    """The question (`switch: steps.X.answers.F`) or input (`switch: inputs.N`) with
    choices a switch is on, if it is one."""
    parts = spec.on.strip().split(".")
    if len(parts) == 2 and parts[0] == "inputs":
        given = rb.inputs.get(parts[1])
        return given if given is not None and given.choices is not None else None
    if len(parts) != 4 or parts[0] != "steps" or parts[2] != "answers":
        return None
    step = rb.step(parts[1])
    if step is None or not isinstance(step.spec, ManualSpec):
        return None
    return next((a for a in step.spec.ask if a.name == parts[3] and a.choices is not None), None)


@rule("RB180", "case-not-a-choice", ERROR,
      "A switch on an answer (or an input) can only see the values its choices offer: a case for "
      "another value never runs (a typo, or a choice renamed since).")
def _case_choices(c: RunbookCheck) -> Iterator[Finding]:
    for step, spec in _switches(c.runbook):
        ask = _asked(c.runbook, spec)
        if ask is None:
            continue
        choices = ask.choices or ()
        for case in spec.cases:
            if any(case_matches(case.value, choice) for choice in choices):
                continue
            offered = ", ".join(repr(x) for x in choices)
            import difflib  # only when a problem is worded

            close = difflib.get_close_matches(str(case.value), [str(x) for x in choices], n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            yield Finding((*step.path, "cases", case.value),
                          f"case {case.value!r} is not one of the choices of {spec.on} ({offered}){hint}", key=True)


@rule("RB181", "unreachable-case", ERROR,
      "The first case equal to the value runs: a later case for the same value never does.")
def _case_twice(c: RunbookCheck) -> Iterator[Finding]:
    for step, spec in _switches(c.runbook):
        for i, case in enumerate(spec.cases):
            earlier = next((e for e in spec.cases[:i] if _same(e.value, case.value)), None)
            if earlier is not None:
                yield Finding((*step.path, "cases", case.value),
                              f"case {case.value!r} can never run: case {earlier.value!r} before it takes the "
                              "same value", key=True)


def _same(a: object, b: object) -> bool:
    """Two case keys that take the same value (`3` and '3', `true` and 'true')."""
    return case_matches(a, b) or case_matches(b, a)


@rule("RB182", "switch-not-exhaustive", WARNING,
      "A switch on a question with choices that has no case for some of them, and no `default:`, "
      "runs nothing when that answer comes: say so with an empty-handed default, or cover it.")
def _uncovered(c: RunbookCheck) -> Iterator[Finding]:
    for step, spec in _switches(c.runbook):
        ask = _asked(c.runbook, spec)
        if ask is None or spec.default:
            continue
        missing = [x for x in ask.choices or () if not any(case_matches(k.value, x) for k in spec.cases)]
        if missing:
            yield Finding((*step.path, "switch"),
                          f"switch has no case for {', '.join(repr(x) for x in missing)} and no default: "
                          "nothing runs for that answer (add the case, or a `default:`)")


@rule("RB183", "unreachable-after-end", WARNING,
      "An `end:` step without `when` ends the run: the steps after it in the same list never run.")
def _after_end(c: RunbookCheck) -> Iterator[Finding]:
    lists = [p.steps for p in c.runbook.phases]
    lists += [steps for s in c.runbook.steps(rollbacks=True) for _, steps in s.branches()]
    for steps in lists:
        for step, after in pairwise(steps):
            if step.kind == "end" and step.when is None:
                yield Finding((*after.path, "id"), f"step '{after.id}' can never run: step '{step.id}' before "
                              "it always ends the run")
                break


@rule("RB184", "items-policy-without-items", WARNING,
      "`parallel`, `serial` and `max_failures` on a block say how its `for_each` items run: a "
      "block without `for_each` runs once, so they change nothing (a `for_each` left out?).")
def _items_policy(c: RunbookCheck) -> Iterator[Finding]:
    for step in c.runbook.steps(rollbacks=True):
        if step.kind != "block" or step.for_each is not None:
            continue
        for name in ("parallel", "serial", "max_failures"):
            if getattr(step, name) is not None:
                yield Finding((*step.path, name), f"`{name}` has no effect on block '{step.id}': it has no "
                              "for_each, so it runs once (they say how a block's items run)", key=True)
