"""The timeline of a run: phases and steps on a time axis, built from journal records.

Every bar is split into the time the step waited for people (prompts, approvals),
retry and poll delays, and the rest (machine time). Injected events, notifications,
escalations, hints and priority changes are markers. Fan-out hosts and for_each items
are sub-runs of their step. A journal that stops without `run.finished` gets a `Stop`
saying where it stopped.

A resumed run (a crash resumed, a service run taken over from a dead worker, or parked
for a person and answered) keeps one bar per step and one span per phase: a step the
resume runs again continues the bar that was cut off, the time between the attempts
being the person's wait or, after a worker died, a `stopped` segment.

Host times come from `host.finished` events when the journal has them; older journals
only have `step.finished.hosts` (durations, no start), so those hosts are placed at the
end of their step and marked estimated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._resumed import resumed_text
from ._spans import Bar, Marker, PhaseSpan, Segment, Stop, SubRun, Timeline

__all__ = ["Bar", "Marker", "PhaseSpan", "Segment", "Stop", "SubRun", "Timeline", "build_timeline", "resumed_text"]

Record = Mapping[str, Any]

TAIL = 600  # characters of output kept per step: enough to show why it failed
# run.resumed's `previous` when a service run parked at a question (engine/service/execution.py)
PARKED = "stopped to wait for a person"


def _at(r: Record) -> float:
    return float(r.get("elapsed") or 0.0)


def _seq(r: Record) -> int:
    try:
        return int(r.get("seq") or 0)
    except (TypeError, ValueError):
        return 0


def _tail(text: Any) -> str:
    value = str(text or "")
    return value[-TAIL:]


class _Builder:
    """Folds records into a Timeline, one event kind at a time."""

    def __init__(self) -> None:
        self.tl = Timeline()
        self.open: dict[str, Bar] = {}
        self.phase_stack: list[PhaseSpan] = []
        self.last: Record = {}
        self.before = 0.0  # the time of the record before this one
        self.host_events: dict[str, dict[str, SubRun]] = {}
        self.bars: dict[str, Bar] = {}  # the last bar of each step: a block's steps go under it
        # What a resume cut off, by step and by phase: the attempt that runs it again continues
        # the same bar (one step, one bar, however many workers it took), and so does its phase.
        self.cut: dict[str, Bar] = {}
        self.cut_phases: dict[str, PhaseSpan] = {}
        self.parked = False  # the earlier attempt stopped to wait for a person (a service run)

    def add(self, r: Record) -> None:
        self.last, self.before = r, self.tl.end
        self.tl.end = max(self.tl.end, _at(r))
        handler = getattr(self, "_" + str(r.get("event", "")).replace(".", "_"), None)
        if handler is not None:
            handler(r)

    # -- phases and steps -------------------------------------------------------------------

    def _run_started(self, r: Record) -> None:
        """A second run.started is a resume: what was open when the engine stopped was cut off."""
        if r.get("resumed_from"):
            self.tl.markers.append(Marker(_at(r), "resume", "run resumed", str(r.get("resumed_from"))))
        cut: list[Bar | PhaseSpan] = [*self.open.values(), *self.phase_stack]
        for item in cut:
            item.end, item.status = self.before, "interrupted"
        self.cut = {step: bar for step, bar in self.open.items() if not bar.items}
        self.cut_phases = {span.phase: span for span in self.phase_stack}
        self.parked = False
        self.phase_stack.clear()
        self.open.clear()

    def _run_resumed(self, r: Record) -> None:
        """Who resumed the run and why, on the marker its run.started put on the axis."""
        marker = next((m for m in reversed(self.tl.markers) if m.kind == "resume"), None)
        if marker is not None:
            marker.detail = resumed_text(r)
        self.parked = r.get("previous") == PARKED

    def _continued(self, r: Record) -> Bar | None:
        """The bar a resume cut off for this step, open again: the time between the attempts
        is the person's wait (its answer's `waited` says so) or, after a worker died, `stopped`."""
        bar = self.cut.pop(str(r.get("step")), None)
        if bar is None or r.get("item") is not None:
            return None
        cut_at, bar.end, bar.status = bar.end or bar.start, None, "running"
        if not self.parked and _at(r) > cut_at:
            bar.segments.append(Segment("stopped", cut_at, _at(r), "the run stopped here until it was taken over"))
        return bar

    def _phase_started(self, r: Record) -> None:
        span = self.cut_phases.pop(str(r.get("phase")), None)
        if span is not None:  # entered again after a resume: the same span goes on
            span.end, span.status = None, "running"
        else:
            span = PhaseSpan(str(r.get("phase")), _at(r), depth=len(self.phase_stack), seq=_seq(r))
            self.tl.phases.append(span)
        self.phase_stack.append(span)

    def _phase_finished(self, r: Record) -> None:
        if self.phase_stack:
            span = self.phase_stack.pop()
            span.end, span.status = _at(r), str(r.get("status") or "ok")

    def _step_started(self, r: Record) -> None:
        step, item = str(r.get("step")), r.get("item")
        self._tag_block_item(r)
        bar = self.bars.get(step)  # a step of a block with for_each, for another item: one bar for all
        if bar is not None and r.get("index") is not None and bar.block == r.get("block") and bar.items:
            self.open[step] = bar  # (items may run at once: each is told apart by its index)
        elif (bar := self.open.get(step)) is not None and item is not None:  # the next for_each item
            _close_item(bar, _at(r))
        elif (bar := self._continued(r)) is not None:  # run again after a resume: its bar goes on
            self.open[step] = self.bars[step] = bar
            return
        else:
            bar = self.open[step] = self.bars[step] = _new_bar(r, depth=self._depth(r))
            self.tl.bars.append(bar)
            if item is None:
                return
        bar.items.append(SubRun(_item_name(item), "running", _at(r), _at(r), index=r.get("index")))

    def _tag_block_item(self, r: Record) -> None:
        """Which of its block's items a step inside it runs for (they end with their last step)."""
        block, index = self.bars.get(str(r.get("block") or "")), r.get("index")
        if block is None or index is None or r.get("item") is None or any(i.index == index for i in block.items):
            return
        untagged = [i for i in block.items if i.index is None and i.name == _item_name(r.get("item"))]
        if untagged:
            untagged[0].index = index

    def _depth(self, r: Record) -> int:
        """Under its block (or switch), a step is one deeper; else as deep as its phase."""
        block = self.bars.get(str(r.get("block") or ""))
        return block.depth + 1 if block is not None else max(len(self.phase_stack) - 1, 0)

    def _step_finished(self, r: Record) -> None:
        step, block = str(r.get("step")), self.bars.get(str(r.get("block") or ""))
        for sub in block.items if block is not None and r.get("index") is not None else []:
            sub.end = max(sub.end, _at(r)) if sub.index == r.get("index") else sub.end
        bar = self.open.pop(step, None)
        if bar is None and (cut := self.cut.pop(step, None)) is not None:  # skipped on resume: how it ends
            cut.status, cut.error, cut.reason = str(r.get("status") or "skipped"), r.get("error"), r.get("reason")
            return
        if bar is None:  # skipped (never started), restored on resume, or another item's is done
            bar = self.bars.get(step) if r.get("index") is not None else None
            if bar is None or bar.block != r.get("block") or not bar.items:
                bar = _new_bar(r, depth=self._depth(r), at=_at(r))
                self.tl.bars.append(bar)
        if bar.block is not None and r.get("index") is not None and bar.items:
            _finish_item(bar, r)
            if any(i.status == "running" for i in bar.items):
                self.open[step] = bar  # items running at once: the others are not done yet
            return
        _finish_bar(bar, r)
        bar.hosts = list(self.host_events.pop(step, {}).values()) or _hosts_from_step(bar, r.get("hosts") or {})

    def _step_attempt(self, r: Record) -> None:
        bar = self.open.get(str(r.get("step")))
        if bar is None:
            return
        bar.retries.append({k: r.get(k) for k in ("attempt", "exit_code", "error", "polling", "next_in", "command")}
                           | {"at": _at(r), "stderr": _tail(r.get("stderr"))})
        kind = "poll" if r.get("polling") else "retry"
        wait = float(r.get("next_in") or 0.0)
        if wait > 0:
            bar.segments.append(Segment(kind, _at(r), _at(r) + wait, f"{kind} delay after attempt {r.get('attempt')}"))

    def _host_finished(self, r: Record) -> None:
        """A host of a fan-out step is done; with retries, its last attempt is the one shown."""
        end, duration = _at(r), float(r.get("duration") or 0.0)
        sub = SubRun(str(r.get("host")), str(r.get("status") or "ok"), max(end - duration, 0.0), end,
                     r.get("exit_code"), r.get("error"), command=r.get("command"))
        self.host_events.setdefault(str(r.get("step")), {})[sub.name] = sub

    # -- people -----------------------------------------------------------------------------

    def _people(self, r: Record, label: str) -> None:
        bar = self.open.get(str(r.get("step")))
        waited = float(r.get("waited") or 0.0)
        if bar is not None and waited > 0:
            bar.segments.append(Segment("people", max(_at(r) - waited, bar.start), _at(r), label))
        elif waited > 0 and str(r.get("step")).startswith("gate:"):  # between phases: no step holds it
            self.tl.waits.append(Segment("people", max(_at(r) - waited, 0.0), _at(r), f"{r.get('step')}: {label}"))

    def _prompt_answered(self, r: Record) -> None:
        self._people(r, f"waiting for an answer ({r.get('by') or 'someone'})")

    def _approval(self, r: Record) -> None:
        who = r.get("by") or "someone"
        self._people(r, f"waiting for approval ({who}{', refused' if not r.get('approved') else ''})")

    # -- markers ----------------------------------------------------------------------------

    def _mark(self, r: Record, kind: str, label: str, detail: Any = "", ok: bool = True) -> None:
        self.tl.markers.append(Marker(_at(r), kind, label, str(detail or ""), ok))

    def _inject_fired(self, r: Record) -> None:
        # The kind (a red herring?) is a trainer's note: a trainee's view of the journal has none.
        kind = f" ({r['kind']})" if r.get("kind") else ""
        self._mark(r, "inject", f"injected{kind}", r.get("message") or r.get("set"))

    def _notify_sent(self, r: Record) -> None:
        purpose = str(r.get("purpose") or "notify")
        kind = purpose if purpose in ("update", "escalation") else "notify"
        self._mark(r, kind, f"{purpose} to {r.get('channel')}", r.get("message") if r.get("ok", True)
                   else f"not delivered: {r.get('error')}", bool(r.get("ok", True)))

    def _escalation_fired(self, r: Record) -> None:
        self._mark(r, "escalation", f"escalated to {r.get('channel')}", r.get("reason"))

    def _hint_shown(self, r: Record) -> None:
        self._mark(r, "hint", f"hint for {r.get('step')}", r.get("hint"))

    def _priority_changed(self, r: Record) -> None:
        who = f", by {r.get('by')}" if r.get("by") else ""
        self._mark(r, "priority", f"priority {r.get('previous') or 'unset'} → {r.get('priority')}",
                   f"impact {r.get('impact')}, urgency {r.get('urgency')}{who}")

    def _rollback_started(self, r: Record) -> None:
        self._mark(r, "rollback", "rollback started", f"{r.get('reason')}: {', '.join(r.get('steps') or [])}")

    def _incident_acknowledged(self, r: Record) -> None:
        self._mark(r, "acknowledged", "acknowledged", r.get("by") or "")

    def _clock_control(self, r: Record) -> None:
        self._mark(r, "clock", f"trainer: {r.get('action')}", r.get("by") or "")

    def _run_finished(self, r: Record) -> None:
        for bar in self.open.values():
            bar.end = _at(r)
        self.open.clear()

    def result(self, *, complete: bool, torn: bool = False, bad_lines: Iterable[int] = ()) -> Timeline:
        if not complete:
            self.tl.stop = Stop(self.tl.end, str(self.last.get("event", "nothing")),
                                self.last.get("seq"), self.phase_stack[-1].phase if self.phase_stack else None,
                                list(self.open), torn, list(bad_lines), str(self.last.get("t") or ""))
        for bar in self.tl.bars:
            bar.segments.sort(key=lambda s: s.start)
        # Numbered in time order everywhere (chart, tables, Markdown); the journal's order
        # differs when a record carries an earlier time than the one before it (resumes).
        self.tl.markers.sort(key=lambda m: m.at)
        return self.tl


def _item_name(item: Any) -> str:
    if isinstance(item, Mapping) and "key" in item:
        return str(item["key"])
    return str(item)


def _close_item(bar: Bar, at: float) -> None:
    if bar.items and bar.items[-1].status == "running":
        bar.items[-1].end = at
        bar.items[-1].status = "done"


def _finish_item(bar: Bar, r: Record) -> None:
    """A step inside a block with for_each, done for one item: the item says how; the bar
    spans every item and fails when an item did."""
    running = [i for i in bar.items if i.status == "running"]
    item = next((i for i in running if i.index == r.get("index")), running[-1] if running else bar.items[-1])
    item.end, item.status, item.exit_code, item.error = _at(r), str(r.get("status") or "ok"), \
        r.get("exit_code"), r.get("error")
    bar.end, bar.attempts = _at(r), bar.attempts + int(r.get("attempts") or 0)
    if bar.status in ("running", "ok", "skipped") or item.status not in ("ok", "skipped"):
        bar.status, bar.error = item.status, r.get("error") or bar.error
    bar.stdout, bar.stderr = _tail(r.get("stdout")), _tail(r.get("stderr"))


def _new_bar(r: Record, *, depth: int, at: float | None = None) -> Bar:
    return Bar(str(r.get("step")), str(r.get("phase") or ""), str(r.get("kind") or ""),
               _at(r) if at is None else at, title=str(r.get("title") or ""), depth=depth, seq=_seq(r),
               role=r.get("role"), command=r.get("command"), instructions=r.get("instructions") or None,
               target=r.get("target"),
               rollback_of=r.get("rollback_of"), block=r.get("block"))


def _finish_bar(bar: Bar, r: Record) -> None:
    bar.end = _at(r)
    bar.status = str(r.get("status") or "ok")
    bar.attempts = int(r.get("attempts") or 0)
    bar.exit_code, bar.error, bar.reason = r.get("exit_code"), r.get("error"), r.get("reason")
    bar.stdout, bar.stderr = _tail(r.get("stdout")), _tail(r.get("stderr"))
    bar.rollback_of = bar.rollback_of or r.get("rollback_of")
    _close_item(bar, bar.end)
    for sub, item in zip(bar.items, r.get("items") or [], strict=False):
        sub.status, sub.exit_code, sub.error = str(item.get("status") or sub.status), item.get("exit_code"), \
            item.get("error")


def _hosts_from_step(bar: Bar, hosts: Mapping[str, Any]) -> list[SubRun]:
    """Hosts from step.finished alone: only durations are known, so each host is placed
    to end with its step (the last attempt ran them all at once)."""
    end = bar.end if bar.end is not None else bar.start
    out = []
    for name, data in hosts.items():
        data = data if isinstance(data, Mapping) else {}
        duration = float(data.get("duration") or 0.0)
        start = max(end - duration, bar.start)
        out.append(SubRun(str(name), str(data.get("status") or "ok"), start, min(start + duration, end),
                          data.get("exit_code"), data.get("error"), estimated=True))
    return out


def build_timeline(records: Iterable[Record], *, complete: bool | None = None, torn: bool = False,
                   bad_lines: Iterable[int] = ()) -> Timeline:
    """The timeline of one run from its journal records. `complete` defaults to whether
    a run.finished record was seen."""
    builder = _Builder()
    finished = False
    for record in records:
        builder.add(record)
        if record.get("event") in ("run.started", "run.finished"):  # a resumed run: its last attempt decides
            finished = record.get("event") == "run.finished"
    return builder.result(complete=finished if complete is None else complete, torn=torn, bad_lines=bad_lines)
