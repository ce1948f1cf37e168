"""What one journal exercised: the runbook it ran, in which mode, and per step how it
ended and which of its branches it took. `coverage.py` adds these up per runbook.

Branches are named as the journal shows them, without the runbook at hand (the model
decides later which of them a step can take at all):

- `when true` / `when false`: the step (or one of its for_each items) ran, or was
  skipped because its `when` was false;
- `case X` / `default`: the case a switch took (the journal's `case`);
- `approved` / `refused`: an approval, from the `approval` records;
- `retried`: the step succeeded after a failed attempt;
- `rolled back`: one of the step's rollback steps started;
- `items` / `no items`: a for_each step ran over some items, or none.

Thousands of journals are read the way `stats.py` reads them: the event name is taken
from the raw line and only the records named here are decoded.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Container, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from engine.run.journal import decode, journal_lines, open_journal

from .stats import _epoch, _event

WHEN_FALSE = "when was false"  # the reason the run loop journals for a `when` that did not hold
_OUTPUT, _NO_ITEMS, _NO_CASE = b', "stdout": ', b'"items": []', b'"case": null'
_DECODER = json.JSONDecoder()
_WHOLE = 4 << 20  # bytes: journals up to this size are read in one go
_NEEDED = frozenset((b"run.started", b"run.finished", b"step.finished", b"approval", b"step.started"))
# What finds those lines in a journal read whole: the event field as the journal writes it,
# and (for the step.started of a rollback step) a rollback_of that is not null.
_EVENT_KEY = b'"event": "'
_NEEDLES = (*(_EVENT_KEY + name + b'"' for name in sorted(_NEEDED - {b"step.started"})), b'"rollback_of": "')
_JSON_STRING = rb'"(?:[^"\\]|\\.)*"'
# The head of a step.finished line as the engine writes it (field order and separators of
# events.StepFinished and the journal writer); anything else is decoded as JSON.
_HEAD = re.compile(
    rb'"event": "step\.finished", "step": "([^"\\]*)", "phase": (?:null|' + _JSON_STRING + rb'), '
    rb'"kind": "([^"\\]*)", "status": "([^"\\]*)", "duration": [-+.eE0-9]+, "attempts": ([0-9]{1,9}), '
    rb'"exit_code": (?:null|-?[0-9]+), "error": (?:null|' + _JSON_STRING + rb'), "reason": (null|'
    + _JSON_STRING + rb'), "stdout": ')


@dataclass
class Exercise:
    """One run's facts for coverage."""

    path: str
    runbook: str = ""
    mode: str = ""
    scenario: str | None = None
    digest: str | None = None  # of the runbook's text as it ran (older journals have none)
    started: float | None = None  # epoch seconds
    outcome: str = "unfinished"
    ended: Counter[tuple[str, str]] = field(default_factory=Counter)  # (step, status) -> times
    taken: set[tuple[str, str]] = field(default_factory=set)  # (step, branch label)
    succeeded: set[str] = field(default_factory=set)  # steps with a run/http action that ended ok


def read_exercise(path: str | os.PathLike[str], wanted: Container[str] | None = None) -> Exercise | None:
    """One journal's Exercise; None when it has no run.started record (not a run). A run
    of a runbook not `wanted` is read no further than its run.started."""
    out = Exercise(str(path))
    seen_start = False
    with open_journal(Path(path)) as handle:
        for line in _lines(handle):
            name = _event(line)
            if name not in _NEEDED or (name == b"step.started" and (b'"rollback_of"' not in line
                                                                 or b'"rollback_of": null' in line)):
                continue
            record = _step_head(line) if name == b"step.finished" else decode(line)
            if record is None:
                continue
            if name == b"run.started":
                seen_start = _started(out, record, seen_start)
                if wanted is not None and out.runbook not in wanted:
                    return out
            else:
                _take(out, name, record)
    if out.mode == "test":  # a test's clock is virtual (a fixed date): it ran when its journal was written
        out.started = os.stat(path).st_mtime
    return out if seen_start else None


def _lines(handle: BinaryIO) -> Iterator[bytes]:
    """The lines of a journal that may hold a record coverage reads: a small journal is
    read whole and only the lines holding one of _NEEDLES are cut out (most lines are
    never looked at: phases, notifications, hosts, questions); a large one, or one not
    encoded as the engine writes, is read line by line (journal_lines bounds a line)."""
    if os.fstat(handle.fileno()).st_size > _WHOLE:
        yield from journal_lines(handle)
        return
    data = handle.read()
    if _EVENT_KEY not in data:  # not the engine's separators: let _event's slower match judge each line
        yield from data.split(b"\n")
        return
    starts = set()
    for needle in _NEEDLES:
        at = data.find(needle)
        while at >= 0:
            starts.add(data.rfind(b"\n", 0, at) + 1)
            at = data.find(needle, at + len(needle))
    for start in sorted(starts):  # in journal order: the first run.started and the last run.finished count
        end = data.find(b"\n", start)
        yield data[start:end if end >= 0 else len(data)]


def _step_head(line: bytes) -> dict[str, Any] | None:
    """A step.finished record, its output left unparsed when nothing after it counts: the
    journal writes step, kind, status, attempts and reason before the output, and a step
    with no items and no case says so in plain `"items": []` and `"case": null`."""
    end = line.find(_OUTPUT)
    # Each key once: an output or answer named `items` or `case` would make the test ambiguous.
    if end < 0 or not _plain(line, b'"items": ', _NO_ITEMS, end) or not _plain(line, b'"case": ', _NO_CASE, end):
        return decode(line)
    head = _HEAD.search(line, 0, end + len(_OUTPUT))
    if head is not None:  # the head as the engine writes it: read without a JSON decoder
        step, kind, status, attempts, reason = head.groups()
        text = [part.decode("utf-8", "replace") for part in (step, kind, status)]
        return {"step": text[0], "kind": text[1], "status": text[2], "attempts": int(attempts),
                "reason": _string(reason), "items": []}
    try:  # json.loads of bytes would guess their encoding first: the journal is UTF-8
        record = _DECODER.decode(line[:end].decode("utf-8", "replace") + "}")
    except (ValueError, RecursionError):
        return decode(line)
    if not isinstance(record, dict):
        return None
    record["items"] = []
    return record


def _string(raw: bytes) -> str | None:
    """A JSON string (or null) matched by _HEAD."""
    if raw == b"null":
        return None
    if b"\\" not in raw:
        return raw[1:-1].decode("utf-8", "replace")
    value = json.loads(raw.decode("utf-8", "replace"))
    return value if isinstance(value, str) else None


def _plain(line: bytes, key: bytes, empty: bytes, after: int) -> bool:
    """The key is absent after the output (an older journal), or there once with its
    empty value (found from both ends: one scan of the line, not a count and a search)."""
    first = line.find(key, after)
    return first < 0 or (first == line.rfind(key) and line.startswith(empty, first))


def _started(out: Exercise, record: dict[str, Any], seen: bool) -> bool:
    if not seen:  # a resumed run writes run.started again: the first says when it began
        out.runbook, out.mode = str(record.get("runbook") or ""), str(record.get("mode") or "")
        out.scenario = str(record["scenario"]) if record.get("scenario") else None
        out.started = _epoch(record.get("t"))
        digest = record.get("digest")
        out.digest = digest if isinstance(digest, str) and digest else None
    return True


def _take(out: Exercise, name: bytes, record: dict[str, Any]) -> None:
    step = str(record.get("step") or "")
    if name == b"step.finished":
        _finished(out, step, record)
    elif name == b"approval":
        out.taken.add((step, "approved" if record.get("approved") else "refused"))
    elif name == b"step.started" and record.get("rollback_of"):
        out.taken.add((str(record["rollback_of"]), "rolled back"))
    elif name == b"run.finished":
        out.outcome = str(record.get("outcome") or "unfinished")


def _finished(out: Exercise, step: str, record: dict[str, Any]) -> None:
    status = str(record.get("status") or "")
    out.ended[(step, status)] += 1
    if status == "ok" and record.get("kind") in ("run", "http"):
        out.succeeded.add(step)
    items = record.get("items")
    runs = [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    for each in runs or [record]:
        _guarded(out, step, str(each.get("status") or ""), each.get("reason", record.get("reason")), each)
    if runs:  # some items ran, however they ended
        out.taken.add((step, "items"))
    elif isinstance(items, list) and status == "ok":  # ran over no items (every step has the list)
        out.taken.add((step, "no items"))
    if record.get("case") is not None:
        case = str(record["case"])
        out.taken.add((step, case if case == "default" else f"case {case}"))


def _guarded(out: Exercise, step: str, status: str, reason: Any, run: dict[str, Any]) -> None:
    """A step's (or one item's) `when`, and whether it succeeded after a failed attempt."""
    if status == "skipped":
        if reason in (None, WHEN_FALSE):
            out.taken.add((step, "when false"))
    elif status:
        out.taken.add((step, "when true"))
    attempts = run.get("attempts")
    if status == "ok" and isinstance(attempts, int) and attempts > 1:
        out.taken.add((step, "retried"))
