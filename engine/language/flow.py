"""The steps that decide which steps run, as the model holds them: a block (`block:`),
a multi-way branch (`switch:` with `cases:` and `default:`), the end of a run (`end:`)
and what a refused approval does (`on_refuse:`). engine/language/model.py re-exports
them; a Step holds them as its spec.
"""

# Annotations are evaluated (no `from __future__ import annotations`): typing.NamedTuple
# makes a ForwardRef of each one given as text, compiled and compared at every start
# (2.5M instructions of a run's start-up for these three modules). Only a name defined
# further down is written as text.

from collections.abc import Iterable, Iterator
from typing import Any, Generic, NamedTuple, TypeVar

# A step, as engine/language/model.py defines it: the model imports this module, so the
# records here are generic over it (the model uses BlockSpec[Step], ...).
S = TypeVar("S")

END_OUTCOMES = ("resolved", "not_confirmed", "escalated", "failed")  # what an `end:` step may end a run with


class Background(NamedTuple):
    """A helper process that lives while a block runs (a port-forward, a tunnel): started
    before the block's first step, ready when its `port` accepts connections on 127.0.0.1
    or its output shows `output` (within `timeout` seconds), stopped when the block ends."""

    id: str
    run: str
    port: int | None = None
    output: str | None = None
    timeout: float = 30.0


class BlockSpec(NamedTuple, Generic[S]):
    """A `block:` step: its steps run in order as one step (per item with `for_each`),
    with its `background` helpers running around them."""

    steps: tuple[S, ...]
    background: tuple[Background, ...] = ()


class Case(NamedTuple, Generic[S]):
    """One branch of a switch: the case value as the YAML key gave it, and its steps."""

    value: Any
    steps: tuple[S, ...]


class SwitchSpec(NamedTuple, Generic[S]):
    """A `switch:` step: the expression, its cases in file order, and the default branch."""

    on: str
    cases: tuple[Case[S], ...] = ()
    default: tuple[S, ...] | None = None

    def pick(self, value: Any) -> Case[S] | None:
        """The first case whose value equals `value` (see case_matches), or None."""
        return next((c for c in self.cases if case_matches(c.value, value)), None)


def case_matches(key: Any, value: Any) -> bool:
    """A case key equals the switched value once converted to the value's type: YAML keys
    are strings or scalars, values may be numbers (`3` matches 3) or booleans (`true`)."""
    if isinstance(value, bool):
        if isinstance(key, bool):
            return key is value
        return str(key).strip().lower() == str(value).lower()
    if isinstance(value, (int, float)) and not isinstance(key, bool):
        try:
            return float(key) == value
        except (TypeError, ValueError):
            return False
    if value is None:
        return key is None or str(key).strip().lower() in ("null", "none", "~")
    return not isinstance(key, bool) and str(key) == str(value)


class EndSpec(NamedTuple):
    """An `end:` step (also a refusal's `on_refuse: {end: ...}`): the run ends here."""

    outcome: str
    reason: str


class OnRefuse(NamedTuple, Generic[S]):
    """What a refused approval does: skip the step, end the run, or run other steps."""

    skip: bool = False
    end: EndSpec | None = None
    steps: tuple[S, ...] = ()


def branches(spec: Any, confirm: Any) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """The steps a step (with this spec and confirm) may run as part of itself, by branch:
    a block's steps, a switch's cases (`case tls`) and default, a refusal's `on refuse`."""
    if isinstance(spec, BlockSpec):
        return (("block", spec.steps),)
    if isinstance(spec, SwitchSpec):
        cases = tuple((f"case {c.value}", c.steps) for c in spec.cases)
        return cases + ((("default", spec.default),) if spec.default else ())
    refuse = confirm.on_refuse if confirm is not None else None
    return (("on refuse", refuse.steps),) if refuse is not None and refuse.steps else ()


def in_order(steps: Iterable[Any], rollbacks: bool, found: list[Any] | None = None) -> list[Any]:
    """nested's order, as a list: no generator resumed per step, and branches() asked only
    of a step that can have any (a block, a switch, a confirm's on_refuse). Every run walks
    all its steps this way once."""
    found = [] if found is None else found
    for step in steps:
        found.append(step)
        if rollbacks and step.rollback:  # (few steps have any: nested walks them)
            found.extend(nested(step.rollback, rollbacks=True))
        if step.confirm is not None or isinstance(step.spec, (BlockSpec, SwitchSpec)):
            for _, inner in step.branches():
                in_order(inner, rollbacks, found)
    return found


def nested(steps: Iterable[Any], *, rollbacks: bool = False) -> Iterator[Any]:
    """Steps in run order, each followed by the steps inside it (and, with rollbacks=True,
    by its rollback steps and theirs, before the steps inside it)."""
    for step in steps:
        yield step
        if rollbacks and step.rollback:  # most steps have none: no generator made for them
            yield from nested(step.rollback, rollbacks=True)
        for _, inner in step.branches():
            yield from nested(inner, rollbacks=rollbacks)
