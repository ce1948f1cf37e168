"""What the console's pages show, read from the store: a page of runs with its filters, one
run as its stored journal tells it (phases and steps by the reports' timeline, with the
output's last lines), its report once it has ended, and the alerts received.

Every value goes to a template as data; the templates escape it.
"""

from __future__ import annotations

import calendar
import dataclasses
import json
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from engine.reporting.html import render_html
from engine.reporting.report import build_report
from engine.reporting.timeline import Timeline, build_timeline
from engine.run.records import clean

from .store import RUN_MODES as MODES
from .store import AlertRow, AuditEntry, QuestionRow, RunQuery, RunRow, Store
from .store.rooms import Rooms

PAGE = 50
STATUSES = ("queued", "running", "waiting", "finished", "cancelled")
FILTERS = ("runbook", "status", "outcome", "mode", "since", "until")
TAIL_LINES = 20


class BadFilter(ValueError):
    """A filter a person typed that means nothing (shown on the page, not a 500)."""


@dataclass(frozen=True)
class RunsPage:
    runs: list[RunRow]
    filters: dict[str, str]
    newer: str | None  # the query string of the previous page, None on the first
    older: str | None  # of the next page, None on the last
    problem: str = ""


@dataclass(frozen=True)
class Waited:
    """An open question, and who may answer it (everyone, when it needs no role)."""

    question: QuestionRow
    people: list[str]


@dataclass(frozen=True)
class RunPage:
    run: RunRow
    timeline: Timeline
    questions: list[QuestionRow]
    started: dict[str, Any] = field(default_factory=dict)
    waited: list[Waited] = field(default_factory=list)  # who the run waits on
    done: list[AuditEntry] = field(default_factory=list)  # what people did to it, oldest first


def _day(text: str, name: str) -> float:
    """The start of a YYYY-MM-DD day (UTC) in epoch seconds."""
    try:
        return float(calendar.timegm(time.strptime(text, "%Y-%m-%d")))
    except ValueError:
        raise BadFilter(f"{name}: {text!r} is not a date like 2026-12-04") from None


def _cursor(text: str | None, name: str) -> tuple[float, str] | None:
    """A page's edge as its link gives it: `<queued at>,<run id>`."""
    if not text:
        return None
    at, _, run_id = text.partition(",")
    try:
        return float(at), run_id
    except ValueError:
        raise BadFilter(f"{name}: {text!r} is not a page of this list") from None


def _edge(run: RunRow) -> str:
    return f"{run.created_at!r},{run.id}"


def run_query(params: Mapping[str, str]) -> tuple[RunQuery, dict[str, str]]:
    """The store's query for a runs page's parameters, and the filters as given."""
    given = {k: params[k].strip() for k in FILTERS if params.get(k, "").strip()}
    if given.get("mode", MODES[0]) not in MODES:
        raise BadFilter(f"mode: {given['mode']!r} is not one of {', '.join(MODES)}")
    since = _day(given["since"], "since") if "since" in given else None
    until = _day(given["until"], "until") + 86400 if "until" in given else None  # the whole day
    return RunQuery(runbook=given.get("runbook"), status=given.get("status"), outcome=given.get("outcome"),
                    mode=given.get("mode"), since=since, until=until, limit=PAGE,
                    before=_cursor(params.get("before"), "before"), after=_cursor(params.get("after"), "after")), given


def runs_page(store: Store, params: Mapping[str, str]) -> RunsPage:
    """A page of runs, newest first, and the links to the pages beside it: each names the
    run it follows, so the thousandth page costs what the first does."""
    try:
        query, given = run_query(params)
    except BadFilter as exc:
        return RunsPage([], {k: v for k, v in params.items() if k in FILTERS}, None, None, str(exc))
    rows = store.find_runs(query)
    more = len(rows) > PAGE  # beyond this page, on the side it was asked from
    shown = rows[-PAGE:] if query.after is not None else rows[:PAGE]
    if not shown:
        return RunsPage([], given, None, None)
    has_newer = query.before is not None or (query.after is not None and more)
    has_older = query.after is not None or more
    newer = urlencode({**given, "after": _edge(shown[0])}) if has_newer else None
    older = urlencode({**given, "before": _edge(shown[-1])}) if has_older else None
    return RunsPage(shown, given, newer, older)


class _Journals:
    """The parsed records of the runs last shown, read incrementally: a live page asks for
    its run again at each event, and parsing its whole journal each time (a 200-step run's
    600 records) was most of the time to show the event. Journals only grow, so only the
    records after the last one kept are read. The records are shared: readers never change them."""

    def __init__(self, size: int = 64) -> None:
        self.size, self._lock = size, threading.Lock()
        self._runs: OrderedDict[str, tuple[int, list[dict[str, Any]]]] = OrderedDict()

    def records(self, store: Store, run_id: str) -> list[dict[str, Any]]:
        key = f"{store.url}\n{run_id}"
        with self._lock:
            last, kept = self._runs.get(key, (0, []))
        new, last = _parsed(store.records(run_id, after=last), last)
        records = kept + new
        with self._lock:
            if last >= self._runs.get(key, (0, []))[0]:
                self._runs[key] = (last, records)
                self._runs.move_to_end(key)
            while len(self._runs) > self.size:
                self._runs.popitem(last=False)
        return records


def _parsed(lines: list[str], last: int) -> tuple[list[dict[str, Any]], int]:
    """Records as a run directory's reader gets them (damaged lines dropped), and the seq of the last line."""
    records = []
    for line in lines:
        last += 1
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(clean(record))
            last = record["seq"] if isinstance(record.get("seq"), int) else last
    return records, last


_JOURNALS = _Journals()


def records_of(store: Store, run_id: str) -> list[dict[str, Any]]:
    """The run's journal records, as a run directory's reader gets them (damaged lines
    dropped); shared with other readers: never change them."""
    return _JOURNALS.records(store, run_id)


def run_page(store: Store, run_id: str) -> RunPage | None:
    run = store.run(run_id)
    if run is None:
        return None
    records = records_of(store, run_id)
    started = next((r for r in records if r.get("event") == "run.started"), {})
    questions = store.questions(run_id=run_id, status=None)
    return RunPage(run, build_timeline(records), questions, started, _waited(store, questions),
                   _done(store, run_id))


PEOPLES_DOINGS = ("question.answered", "run.abort", "run.resume")


def doing(entry: AuditEntry) -> str:
    """What a person did to a run, in words: `approved step restart (from the console)`."""
    d, how = entry.detail, f" (via {entry.detail['via']})" if entry.detail.get("via") else ""
    if entry.what == "question.answered":
        given = d.get("answer")
        answer: dict[str, Any] = given if isinstance(given, dict) else {}
        if "approved" in answer:
            verb = "approved" if str(answer["approved"]).lower() in ("yes", "true", "1") else "refused"
        else:
            verb = "answered"
        values = ", ".join(f"{k}={v}" for k, v in sorted(answer.items()) if k != "approved")
        return f"{verb} step {d.get('step', '?')}" + (f": {values}" if values else "") + how
    reason = f": {d['reason']}" if d.get("reason") else ""
    return f"{'aborted' if entry.what == 'run.abort' else 'resumed'} the run{reason}{how}"


def _waited(store: Store, questions: list[QuestionRow]) -> list[Waited]:
    open_ = [q for q in questions if q.status == "open"]
    people = store.people() if open_ else []
    return [Waited(q, [p.name for p in people if q.role is None or q.role in p.roles]) for q in open_]


def _done(store: Store, run_id: str) -> list[AuditEntry]:
    return [e for e in reversed(store.audit_entries(run_id=run_id, limit=200)) if e.what in PEOPLES_DOINGS]


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last lines of a step's output, as the console shows them."""
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def report_html(store: Store, run_id: str, reader: str = "") -> str | None:
    """The run's HTML report, as `runbook report -f html` makes it (None: no journal yet):
    a live run's review draft, a drill's debrief. A drill room's debrief is scored against
    the room's scenario file, and is the trainer's (with the trainer notes) when `reader`
    is the room's trainer."""
    if not store.records(run_id):
        return None
    room = Rooms(store).of_run(run_id)
    with tempfile.TemporaryDirectory(prefix="runbook-console-") as tmp:
        run_dir = store.export(run_id, Path(tmp) / run_id).parent
        built = build_report(run_dir, scenario_file=room.scenario if room is not None else None,
                             trainer=room is not None and room.trainer == reader)
    # Named as `runbook report --database` names it: the temporary directory is gone.
    return render_html(dataclasses.replace(built, source=f"run {run_id} in the store {store}"))


def alerts_page(store: Store, unrouted: bool) -> tuple[list[AlertRow], dict[str, int]]:
    """The newest alerts (only those no route took, when `unrouted`) and the deliveries by what became of them."""
    return store.alerts(unrouted=unrouted, limit=200), store.deliveries()
