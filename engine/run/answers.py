"""What the command line says people will answer, and who they are: `--answer
STEP.FIELD=VALUE` and `--as NAME:ROLE`, parsed and checked against the runbook before
anything runs.

A mistyped step or field would otherwise be ignored, and a value outside a question's
choices would fail only when the run reaches that step, after earlier commands ran.
Every problem is returned at once, with the inputs' problems, so one correction is enough.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from engine.executors.prompts import Participant, coerce
from engine.language.model import AskField, IncludeSpec, ManualSpec, Runbook, Step

Answers = dict[str, dict[str, str]]
LoadRunbook = Callable[[Path], Runbook]


def did_you_mean(word: str, options: Iterable[object]) -> str:
    import difflib  # only when a problem is worded

    close = difflib.get_close_matches(word, sorted(map(str, options)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def parse_answers(pairs: Iterable[str]) -> tuple[Answers, list[str]]:
    """`STEP.FIELD=VALUE` strings -> {step: {field: value}}, and the malformed ones."""
    out: Answers = {}
    problems = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        step, dot, name = key.partition(".")
        if not sep or not dot or not step or not name:
            problems.append(f"--answer expects STEP.FIELD=VALUE, got {pair!r}")
            continue
        out.setdefault(step, {})[name] = value
    return out, problems


def check_answers(runbook: Runbook, answers: Mapping[str, Mapping[str, str]],
                  load: LoadRunbook | None = None) -> list[str]:
    """Problems with scripted answers: an unknown step or field, a value the question
    cannot take. A step inside an included runbook is named `INCLUDE/STEP`."""
    problems = []
    for step_id, values in answers.items():
        step, problem = _find_step(runbook, step_id, load)
        for name, raw in values.items():
            flag = f"--answer {step_id}.{name}={raw}"
            found = problem if step is None else _field_problem(step_id, step, name, raw)
            if found:
                problems.append(f"{flag}: {found}")
    return problems


def _find_step(runbook: Runbook, step_id: str, load: LoadRunbook | None) -> tuple[Step | None, str]:
    head, slash, rest = step_id.partition("/")
    step = runbook.step(head)
    if step is None:
        ids = [s.id for s in runbook.steps(rollbacks=True)]
        return None, f"{_book(runbook)} has no step '{head}'{did_you_mean(head, ids)}"
    if not slash:
        return step, ""
    if not isinstance(step.spec, IncludeSpec) or load is None:
        return None, f"step '{head}' includes no runbook"
    from engine.errors import EngineError

    try:
        child = load((Path(runbook.file).parent / step.spec.runbook).resolve())
    except EngineError as exc:
        return None, f"cannot read the runbook step '{head}' includes: {exc}"
    return _find_step(child, rest, load)


def _book(runbook: Runbook) -> str:
    return f"runbook '{runbook.id}'"


def _field_problem(step_id: str, step: Step, name: str, raw: str) -> str | None:
    if not isinstance(step.spec, ManualSpec):
        return f"step '{step_id}' is a {step.kind} step; only manual steps ask questions"
    fields = {f.name: f for f in step.spec.ask}
    if not fields:
        return f"step '{step_id}' asks no question (pass --yes to acknowledge it)"
    field = fields.get(name)
    if field is None:
        return (f"step '{step_id}' asks no question '{name}'{did_you_mean(name, fields)} "
                f"(it asks: {', '.join(fields)})")
    return _value_problem(field, raw)


def _value_problem(field: AskField, raw: str) -> str | None:
    try:
        coerce(field, raw)
    except ValueError as exc:
        hint = did_you_mean(raw.strip(), field.choices) if field.choices else ""
        return f"{exc}{hint}"
    return None


def parse_participants(pairs: Iterable[str], roles: Iterable[str],
                       flag: str = "--as") -> tuple[tuple[Participant, ...], list[str]]:
    """`NAME` or `NAME:ROLE` strings -> participants; a role the runbook does not declare
    (when it declares roles) is a problem: nobody could ever hold it. `flag` is the option the
    person typed, so the problem names it."""
    declared = tuple(roles)
    people, problems = [], []
    for pair in pairs:
        name, _, role = pair.partition(":")
        if not name:
            problems.append(f"{flag} expects NAME or NAME:ROLE, got {pair!r}")
            continue
        if role and declared and role not in declared:
            problems.append(f"{flag} {pair}: the runbook declares no role {role!r}{did_you_mean(role, declared)} "
                            f"(roles: {', '.join(declared)})")
            continue
        people.append(Participant(name, role or None))
    return tuple(people), problems
