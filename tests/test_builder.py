"""Building a step from its data (engine/language/builder.py): every field as written, the
rest Step's defaults, and only the fields a step has are passed on."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from engine.language import builder
from engine.language.builder import Scope, build_step
from engine.language.model import EMPTY, Confirm, Retries, RunSpec, Step


def test_a_step_is_built_with_only_the_fields_it_has(monkeypatch: pytest.MonkeyPatch) -> None:
    given: list[set[str]] = []

    def spy(*args: Any, **kwargs: Any) -> Step:
        given.append(set(kwargs))
        return Step(*args, **kwargs)

    monkeypatch.setattr(builder, "Step", spy)
    build_step({"id": "a", "run": "true"}, "remediation", ("remediation", 0))
    build_step({"id": "b", "run": "true", "timeout": "5s", "title": "B"}, "remediation", ("remediation", 1))
    inherited = {"role", "target", "parent", "in_loop"}
    assert given == [inherited, {*inherited, "timeout", "title"}]


def test_a_plain_step_has_steps_defaults() -> None:
    step = build_step({"id": "a", "run": "true"}, "detection", ("detection", 0))
    assert step == Step("a", "run", RunSpec("true", None, (0,)), "detection", ("detection", 0))
    assert step.outputs is EMPTY and step.env is EMPTY


def test_every_field_of_a_step_is_built_as_written() -> None:
    data = {
        "id": "s", "run": "echo {{ item }}", "title": "S", "description": "d", "when": "true", "expect": "ok",
        "until": "done", "every": "2s", "timeout": "1m", "retries": {"attempts": 3, "delay": "5s"},
        "confirm": "sure?", "rollback": [{"id": "undo", "run": "undo"}], "continue_on_error": True,
        "env": {"N": 1}, "outputs": {"x": "stdout"}, "destructive": True, "idempotent": True, "parallel": 2,
        "serial": "50%", "max_failures": 1, "for_each": ["a", "b"], "role": "ops", "target": "web",
    }
    step = build_step(data, "remediation", ("remediation", 4), Scope("block", "db", "dba", True))
    assert step._asdict() == {
        "id": "s", "kind": "run", "spec": RunSpec("echo {{ item }}", None, (0,)), "phase": "remediation",
        "path": ("remediation", 4), "title": "S", "description": "d", "role": "ops", "target": "web",
        "when": "true", "expect": "ok", "outputs": MappingProxyType({"x": "stdout"}), "timeout": 60.0,
        "retries": Retries(attempts=3, delay=5.0), "until": "done", "every": 2.0, "confirm": Confirm(message="sure?"),
        "rollback": (build_step({"id": "undo", "run": "undo"}, "remediation", ("remediation", 4, "rollback", 0),
                                Scope(None, "db", "dba", True)),),
        "continue_on_error": True, "env": MappingProxyType({"N": "1"}), "destructive": True, "idempotent": True,
        "parallel": 2, "serial": "50%", "max_failures": 1, "for_each": ("a", "b"), "parent": "block", "in_loop": True,
    }


def test_the_steps_with_their_rollbacks_are_walked_without_a_walk_of_each_empty_rollback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.language import flow
    from engine.language.model import Phase, Runbook

    steps = tuple(build_step({"id": f"s{i}", "run": "true"}, "remediation", ("remediation", i)) for i in range(3))
    undo = build_step({"id": "u", "run": "true", "rollback": [{"id": "r", "run": "undo"}]}, "remediation",
                      ("remediation", 3))
    book = Runbook(id="b", title="B", file="b.yaml", phases=(Phase("remediation", (*steps, undo)),))
    walks: list[int] = []
    real = flow.nested

    def counting(items: Any, **kwargs: Any) -> Any:
        walks.append(1)
        return real(items, **kwargs)

    monkeypatch.setattr(flow, "nested", counting)
    assert [s.id for s in book.steps(rollbacks=True)] == ["s0", "s1", "s2", "u", "r"]
    assert len(walks) == 1  # inside the walk of the phase's steps: the one rollback there is


def test_the_records_annotations_are_evaluated_at_import_not_kept_as_text() -> None:
    """typing.NamedTuple makes a ForwardRef of each annotation given as text (compiled, and
    compared with six special forms, at every start), and `dataclass` matches each against
    a pattern three times: only a name defined further down in its module stays text."""
    import dataclasses
    from typing import ForwardRef

    from engine.language import flow, model, monitoring
    from engine.run import events

    def records(module: Any) -> list[Any]:
        return [value for value in vars(module).values()
                if isinstance(value, type) and value.__module__ == module.__name__ and hasattr(value, "_fields")]

    text = [f"{cls.__name__}.{name}" for module in (model, monitoring, flow) for cls in records(module)
            for name, kind in cls.__annotations__.items() if isinstance(kind, (str, ForwardRef))]
    assert text == ["Confirm.on_refuse", "Step.rollback"]
    assert [f"{cls.__name__}.{f.name}" for cls in events.EVENT_TYPES.values() for f in dataclasses.fields(cls)
            if isinstance(f.type, str)] == []
    assert model.Step.__annotations__["retries"] == model.Retries | None
