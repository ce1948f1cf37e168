"""An objective's check (what was expected, what happened), and the objectives on the
sequence of a run: steps in an order, and a step's runs over the items of a for_each
("defragment each member, the leader last")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.language.scenario import ItemObjective, Objectives
from engine.run.metrics import Timings

_MISSING = object()


@dataclass
class Check:
    """One objective: what was expected, what happened, met or missed (and by how much)."""

    objective: str
    expected: str
    actual: str
    met: bool
    note: str = ""


def sequence_checks(obj: Objectives, t: Timings) -> list[Check]:
    """The `order` and `items` objectives, judged from the run's timings."""
    checks = [_order_check(obj.order, t)] if obj.order else []
    for wanted in obj.items:
        checks.extend(_item_checks(wanted, t.items.get(wanted.step, [])))
    return checks


def _order_check(order: tuple[str, ...], t: Timings) -> Check:
    """The steps of `order` ran, and first started in that order (t.steps keeps the order
    of first starts)."""
    started = [s for s in t.steps if s in order and t.ran(s)]
    missing = [s for s in order if s not in started]
    actual = " → ".join(started) or "none ran"
    if missing:
        actual += f" ({', '.join(missing)} did not run)"
    return Check("order", " → ".join(order), actual, not missing and started == list(order))


def _item_checks(wanted: ItemObjective, runs: list[dict[str, Any]]) -> list[Check]:
    name = f"items {wanted.step}"
    checks = []
    if wanted.count is not None:
        checks.append(Check(f"{name} count", str(wanted.count), str(len(runs)), len(runs) == wanted.count))
    for which, expected in (("first", wanted.first), ("last", wanted.last)):
        if expected:
            run = runs[0 if which == "first" else -1] if runs else None
            checks.append(_matching(f"{name} {which}", expected, run))
    if wanted.each:
        odd = next((r for r in runs if _differences(wanted.each, r)), None)
        check = _matching(f"{name} each", wanted.each, odd if odd is not None else (runs[0] if runs else None))
        check.note = f"item {odd.get('index')} differs" if odd is not None else f"all {len(runs)} item(s)"
        checks.append(check)
    return checks


def _matching(objective: str, expected: Mapping[str, Any], run: Mapping[str, Any] | None) -> Check:
    wanted = _describe(expected)
    if run is None:
        return Check(objective, wanted, "no items ran", False)
    seen = {path: _at(run, path) for path in expected}
    actual = ", ".join(f"{p} = {_show(v)}" for p, v in seen.items())
    return Check(objective, wanted, actual, not _differences(expected, run), f"item {run.get('index')}")


def _differences(expected: Mapping[str, Any], run: Mapping[str, Any]) -> list[str]:
    return [path for path, value in expected.items() if not _same(_at(run, path), value)]


def _same(actual: Any, expected: Any) -> bool:
    """Equal, or equal once the scenario's value is read as the run's type would write it
    (an item's `index: '2'` written as text)."""
    if actual is _MISSING:
        return False
    return bool(actual == expected or (isinstance(expected, str) and not isinstance(actual, str)
                                       and _show(actual) == expected))


def _at(run: Mapping[str, Any], path: str) -> Any:
    node: Any = run
    for part in path.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(absent)"
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    return str(value)


def _describe(expected: Mapping[str, Any]) -> str:
    return ", ".join(f"{p} = {_show(v)}" for p, v in expected.items())
