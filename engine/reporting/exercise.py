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
    """A journal's lines: a small one read whole and split (much faster than a readline
    per line), a large one line by line with journal_lines' bound on a line's length."""
    if os.fstat(handle.fileno()).st_size > _WHOLE:
        yield from journal_lines(handle)
    else:
        yield from handle.read().split(b"\n")


def _step_head(line: bytes) -> dict[str, Any] | None:
    """A step.finished record, its output left unparsed when nothing after it counts: the
    journal writes step, kind, status, attempts and reason before the output, and a step
    with no items and no case says so in plain `"items": []` and `"case": null`."""
    end = line.find(_OUTPUT)
    # Each key once: an output or answer named `items` or `case` would make the test ambiguous.
    if end < 0 or not _plain(line, b'"items": ', _NO_ITEMS) or not _plain(line, b'"case": ', _NO_CASE):
        return decode(line)
    try:  # json.loads of bytes would guess their encoding first: the journal is UTF-8
        head = _DECODER.decode(line[:end].decode("utf-8", "replace") + "}")
    except (ValueError, RecursionError):
        return decode(line)
    if not isinstance(head, dict):
        return None
    head["items"] = []
    return head


def _plain(line: bytes, key: bytes, empty: bytes) -> bool:
    """The key is absent (an older journal), or there once with its empty value."""
    count = line.count(key)
    return count == 0 or (count == 1 and empty in line)


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
