"""A step with `for_each`: its items (a list, a mapping's entries, a text's lines), each
run in turn as the step itself, and one record for them all. The items write one
output stream, so a secret printed a piece per item is still masked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from engine.errors import TemplateError
from engine.language.model import Step
from engine.templates import templating

from ._driver import Driver
from ._items import run_items, width, within_items
from .events import StepOutput
from .state import StepRecord

# Runs the step once (`when`, then the step) with the names an item adds to the context.
Guarded = Callable[[Step, str, "str | None", dict[str, Any]], StepRecord]


def for_each(d: Driver, step: Step, sid: str, rollback_of: str | None, guarded: Guarded) -> StepRecord:
    """Every item of the step in turn; the first that does not succeed ends the step."""
    r = d.r
    try:
        items = items_of(d, step, d.context(dict(d.scope)))
        shown_items = d.shown.items(items, lambda: items_of(d, step, d.seen(dict(d.scope))))
    except TemplateError as exc:
        return StepRecord(step.id, status="failed", error=str(exc))
    rec = StepRecord(step.id, status="ok")
    shown: list[dict[str, Any]] = []
    # A block's items run steps of their own, each with its own output streams.
    d.streams.in_items = step.kind != "block"
    try:
        _each(d, step, sid, rollback_of, guarded, rec, items, shown_items, shown)
    finally:
        d.streams.in_items = False
        d.streams.flush(r.bus, sid)
    if d.shown.active:
        rec.shown["items"] = shown
    if items and all(i["status"] == "skipped" for i in rec.items):
        rec.status = "skipped"  # the finished line says so; a count would only contradict it
    else:
        r.bus.emit(StepOutput(sid, "info", items_done(rec.items, len(items)), None))
    return rec


def _each(d: Driver, step: Step, sid: str, rollback_of: str | None, guarded: Guarded, rec: StepRecord,
          items: list[Any], shown_items: list[Any], shown: list[dict[str, Any]]) -> None:
    if width(step, len(items)) == 1 or within_items(d):
        _in_turn(d, step, sid, rollback_of, guarded, rec, items, shown_items, shown)
    else:
        _at_once(d, step, sid, rollback_of, guarded, rec, items, shown_items, shown)


def _at_once(d: Driver, step: Step, sid: str, rollback_of: str | None, guarded: Guarded, rec: StepRecord,
             items: list[Any], shown_items: list[Any], shown: list[dict[str, Any]]) -> None:
    """A block's items `parallel` at a time, in `serial` batches (_items.py); the items'
    results are kept in the items' order whatever order they end in."""
    left = {"tolerated": _tolerated(step, len(items))}
    ends: dict[int, dict[str, Any]] = {}
    runs: dict[str, dict[int, dict[str, Any]]] = {}  # each inner step's run per item (_block._collect)

    def run(index: int) -> StepRecord:
        extra = {"item": items[index], "index": index, "_shown": {"item": shown_items[index]}, "_items": runs}
        return guarded(step, sid, rollback_of, extra)

    def ended(index: int, sub: StepRecord, stop: Any) -> bool:
        ends[index] = {"item": items[index], "index": index, **sub.view(), "_shown": sub.shown}
        if sub.status == "failed" and left["tolerated"] > 0:
            left["tolerated"] -= 1  # max_failures: this item's failure does not end the run
            return True
        if sub.status in ("failed", "aborted", "refused", "not_confirmed") or stop is not None:
            if d.stop is None and rec.error is None:  # the first to stop the block says why
                d.stop = stop
                rec.status, rec.error = sub.status, f"item {index} ({shown_items[index]!r}): {sub.error}"
            return False
        return True

    run_items(d, step, len(items), run, ended)
    rec.attempts = 1
    for index in sorted(ends):
        one = ends[index]
        rec.items.append({k: v for k, v in one.items() if k != "_shown"})
        shown.append({**rec.items[-1], "item": shown_items[index], **one["_shown"]})


def _in_turn(d: Driver, step: Step, sid: str, rollback_of: str | None, guarded: Guarded, rec: StepRecord,
          items: list[Any], shown_items: list[Any], shown: list[dict[str, Any]]) -> None:
    tolerated = _tolerated(step, len(items))
    runs: dict[str, dict[int, dict[str, Any]]] = {}  # a block's inner steps' run per item (_block._collect)
    for index, (item, shown_item) in enumerate(zip(items, shown_items, strict=True)):
        extra = {"item": item, "index": index, "_shown": {"item": shown_item}, "_items": runs}
        sub = guarded(step, sid, rollback_of, extra)
        rec.items.append({"item": item, "index": index, **sub.view()})
        shown.append({**rec.items[-1], "item": shown_item, **sub.shown})
        rec.attempts = rec.attempts + sub.attempts if step.kind != "block" else 1  # a block is not retried
        if sub.status == "failed" and tolerated > 0:
            tolerated -= 1  # a block's max_failures: this item's failure does not end the run
            d.take_stop()
            continue
        if sub.status in ("failed", "aborted", "refused", "not_confirmed") or d.stop is not None:
            rec.status, rec.error = sub.status, f"item {index} ({shown_item!r}): {sub.error}"
            break


def _tolerated(step: Step, total: int) -> int:
    """Failed items a block goes on after (its max_failures: a count or a percentage of
    the items, as over hosts); a step's max_failures is about its hosts, not its items."""
    if step.kind != "block":
        return 0
    from engine.fleet.fanout import Policy  # the fan-out's own rule; a run without blocks never loads it

    return Policy(serial=step.serial, max_failures=step.max_failures).tolerated(total)


def items_of(d: Driver, step: Step, ctx: dict[str, Any]) -> list[Any]:
    if isinstance(step.for_each, tuple):
        # A literal list: its strings are templates like any other (lint checks them so).
        return [templating.render_value(v, ctx, where=d.where(step, "for_each", i))
                for i, v in enumerate(step.for_each)]
    value = templating.evaluate(str(step.for_each), ctx, where=d.where(step, "for_each"))
    if isinstance(value, str):
        return [line for line in value.splitlines() if line.strip()]
    if isinstance(value, Mapping):
        return [{"key": k, "value": v} for k, v in value.items()]
    try:
        return list(value)
    except TypeError:
        raise TemplateError(f"for_each must give a list, got {type(value).__name__}",
                            where=d.where(step, "for_each")) from None


def items_done(items: list[dict[str, Any]], total: int) -> str:
    """`3 of 3 item(s) done`, with the skipped and the failed counted apart."""
    done = sum(1 for i in items if i["status"] == "ok")
    parts = [f"{done} of {total} item(s) done"]
    skipped = sum(1 for i in items if i["status"] == "skipped")
    if skipped:
        parts.append(f"{skipped} skipped (when was false)")
    for status in dict.fromkeys(i["status"] for i in items):  # failed, refused, ... in the order met
        if status not in ("ok", "skipped"):
            parts.append(f"{sum(1 for i in items if i['status'] == status)} {status}")
    return ", ".join(parts)
