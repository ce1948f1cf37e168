"""Deliveries and the alerts in them, one transaction per delivery: the raw body is stored
first; a notification seen before (its dedup key is taken) stops there; otherwise each
alert is recorded once per occurrence (source, fingerprint, startsAt) and a new firing
one queues its run, unless its route throttles it; a resolved one cancels its run if no
worker has started it yet, or is recorded on it."""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import Any

from sqlalchemy import Connection, Executable, bindparam, case, func, insert, literal_column, select, true, update
from sqlalchemy.dialects import postgresql, sqlite

from engine.run.journal_writer import new_run_id

from . import tables
from ._leases import audit
from ._runs import enqueue, get, row_values
from .database import clock_of, now
from .records import AlertOutcome, AlertRow, NewAlert, NewDelivery, NewRun, Received, dumps

DELIVERIES, KEYS, ALERTS, RUNS = tables.deliveries, tables.delivery_keys, tables.alerts, tables.runs


# The statements are made once per database and given their values when executed: built
# with .values(...) at each delivery, SQLAlchemy spent most of an intake's time coercing
# and cache-keying the values (a third of the deliveries a second).


@cache
def _statement(dialect: str, name: str) -> Executable:
    module: Any = postgresql if dialect == "postgresql" else sqlite
    clock = clock_of(dialect)
    made: dict[str, Any] = {
        "raw": lambda: insert(DELIVERIES).values(received_at=clock),
        "key": lambda: module.insert(KEYS).on_conflict_do_nothing().returning(KEYS.c.key),
        "change": lambda: update(ALERTS).where(ALERTS.c.occurrence == bindparam("the_occurrence"))
        .values(updated_at=clock),
        "first": lambda: select(KEYS.c.delivery_id).where(KEYS.c.key == bindparam("the_key")),
        "duplicate": lambda: update(DELIVERIES).where(DELIVERIES.c.id == bindparam("the_id"))
        .values(status="duplicate"),
        "known": lambda: select(ALERTS).where(ALERTS.c.occurrence == bindparam("the_occurrence")),
        "throttle": lambda: select(ALERTS.c.run_id)
        .where(ALERTS.c.route == bindparam("the_route"), ALERTS.c.label_key == bindparam("the_label_key"),
               ALERTS.c.run_id.is_not(None), ALERTS.c.occurrence != bindparam("the_occurrence"),
               ALERTS.c.received_at >= clock - bindparam("window"))
        .order_by(ALERTS.c.received_at.desc()).limit(1),
    }
    statement: Executable = made[name]()
    return statement


def _run(conn: Connection, name: str, values: dict[str, Any]) -> Any:
    return conn.execute(_statement(conn.dialect.name, name), values)


def _raw_values(new: NewDelivery, status: str) -> dict[str, Any]:
    return {"source": new.source, "status": status, "reason": new.reason, "dedup_key": new.dedup_key,
            "headers": dumps(dict(new.headers)), "body": new.body}


def store_raw(conn: Connection, new: NewDelivery, status: str) -> int:
    key: Any = _run(conn, "raw", _raw_values(new, status)).inserted_primary_key
    return int(key[0])


def receive(conn: Connection, new: NewDelivery) -> Received:
    delivery, first = _taken(conn, new)
    if first is not None:
        _run(conn, "duplicate", {"the_id": delivery, "duplicate_of": first})
        return Received(delivery, first)
    return Received(delivery, None, tuple(_alert(conn, new.source, delivery, alert) for alert in new.alerts))


def _taken(conn: Connection, new: NewDelivery) -> tuple[int, int | None]:
    """The raw body stored (its delivery id), and the delivery that first brought the same
    notification when its dedup key is taken already (None: this one is the first)."""
    if new.dedup_key is None:
        return store_raw(conn, new, "accepted"), None
    if conn.dialect.name == "postgresql":
        delivery, fresh, first = conn.execute(_raw_and_key(), _raw_values(new, "accepted")).one()
    else:
        delivery = store_raw(conn, new, "accepted")
        fresh, first = _run(conn, "key", {"key": new.dedup_key, "delivery_id": delivery}).first() is not None, None
    if fresh:
        return int(delivery), None
    if first is None:  # taken by a delivery that committed while this statement ran: look again
        first = _run(conn, "first", {"the_key": new.dedup_key}).scalar_one()
    return int(delivery), int(first)


@cache
def _raw_and_key() -> Executable:
    """PostgreSQL: the raw body and the dedup key inserted, and the first delivery of a
    key taken already read, in one statement (one round trip instead of three for a
    duplicate, two for a new notification). The lookup sees the key as it was when the
    statement began: a key committed meanwhile is looked up again (_taken)."""
    columns = {name: bindparam(name, type_=DELIVERIES.c[name].type)
               for name in ("source", "status", "reason", "dedup_key", "headers", "body")}
    raw = insert(DELIVERIES).values(received_at=clock_of("postgresql"), **columns).returning(DELIVERIES.c.id).cte("raw")
    key = (postgresql.insert(KEYS).from_select(["key", "delivery_id"], select(columns["dedup_key"], raw.c.id))
           .on_conflict_do_nothing().returning(KEYS.c.key).cte("taken"))
    fresh = select(func.count()).select_from(key).scalar_subquery()
    first = select(KEYS.c.delivery_id).where(KEYS.c.key == columns["dedup_key"]).scalar_subquery()
    statement: Executable = select(raw.c.id, fresh > 0, first)
    return statement


def _alert(conn: Connection, source: str, delivery: int, alert: NewAlert) -> AlertOutcome:
    """One alert of a new notification. Its outcome, should it be new here, is decided
    before it is written (the once_within lookup, its run's id), so a new alert is one
    insert holding its final action and its run one more (on PostgreSQL the three are
    one statement); only an alert seen before is read back and changed."""
    values = {
        "occurrence": alert.occurrence, "source": source, "fingerprint": alert.fingerprint, "name": alert.name,
        "labels": dumps(dict(alert.labels)), "label_key": alert.label_key, "status": alert.status,
        "starts_at": alert.starts_at, "ends_at": alert.ends_at, "route": alert.route,
        "policy": dumps(dict(alert.policy)), "first_delivery": delivery, "last_delivery": delivery,
    }
    written, outcome = _written(conn, values, alert)
    return outcome if written else _again(conn, source, delivery, alert)


def _written(conn: Connection, values: dict[str, Any], alert: NewAlert) -> tuple[bool, AlertOutcome]:
    """The alert's row with its outcome, then its run (on PostgreSQL in the same
    statement): False when its occurrence is known already (nothing written). The row is
    sent with the outcome it has unless throttled; its insert makes the once_within
    lookup and takes the earlier run's id and words instead when it finds one."""
    outcome, run = _decided(alert, None)
    head, _, tail = _throttled_detail(alert, _MARK).partition(_MARK)
    window = _window(alert) if _throttles(alert) else {**_window(alert), "window": None}
    params = {**values, **window, "action": outcome.detail, "run_id": outcome.run_id, "head": head, "tail": tail}
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        params.update({f"run_{k}": v for k, v in row_values(run, outcome.run_id or "").items()} if run else _NO_RUN)
    stored = conn.execute(_alert_row(conn.dialect.name), params).first()
    if stored is None:
        return False, outcome
    if stored.run_id != outcome.run_id:  # throttled: the earlier run's
        return True, _decided(alert, str(stored.run_id))[0]
    if run is not None and not postgres:
        enqueue(conn, run)
    return True, outcome


_MARK = "\x00run\x00"
_RUN_COLUMNS = ("id", "runbook", "file", "inputs", "secrets", "answers", "alert", "pool", "origin", "mode")
_NO_RUN = {f"run_{k}": None for k in _RUN_COLUMNS}


@cache
def _alert_row(dialect: str) -> Executable:
    """The alert's row inserted unless its occurrence is known (then nothing), with the
    once_within lookup in it, returning the run id it holds; on PostgreSQL its run is
    inserted by the same statement (a data-modifying CTE), when the row was written and
    holds the new run's id, not an earlier one's."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    clock = clock_of(dialect)
    found = _statement(dialect, "throttle").scalar_subquery()  # type: ignore[attr-defined]
    row = {name: bindparam(name, type_=ALERTS.c[name].type) for name in (
        "occurrence", "source", "fingerprint", "name", "labels", "label_key", "status", "starts_at", "ends_at",
        "route", "policy", "first_delivery", "last_delivery")}
    words = {name: bindparam(name, type_=ALERTS.c.action.type) for name in ("action", "head", "tail")}
    action = case((found.is_(None), words["action"]), else_=words["head"] + found + words["tail"])
    run_id = func.coalesce(found, bindparam("run_id", type_=ALERTS.c.run_id.type))
    # WHERE true: SQLite reads the ON of ON CONFLICT after a bare SELECT as a join's otherwise
    written = (module.insert(ALERTS).from_select([*row, "action", "run_id", "received_at", "updated_at"],
                                                  select(*row.values(), action, run_id, clock, clock).where(true()))
               .on_conflict_do_nothing().returning(ALERTS.c.run_id))
    if dialect != "postgresql":
        statement: Executable = written
        return statement
    new = written.cte("new")
    run = {name: bindparam(f"run_{name}", type_=RUNS.c[name].type) for name in _RUN_COLUMNS}
    queued = (insert(RUNS).from_select([*run, "status", "claims", "last_seq", "created_at"],
                                       select(*run.values(), literal_column("'queued'"), literal_column("0"),
                                              literal_column("0"), clock)
                                       .where(new.c.run_id == bindparam("run_id", type_=ALERTS.c.run_id.type)))
              .returning(RUNS.c.id).cte("queued"))
    statement = select(new.c.run_id, select(func.count()).select_from(queued).scalar_subquery()).select_from(new)
    return statement


def _again(conn: Connection, source: str, delivery: int, alert: NewAlert) -> AlertOutcome:
    row = AlertRow.from_row(_run(conn, "known", {"the_occurrence": alert.occurrence}).one())
    outcome = _seen_again(conn, source, row, alert)
    changes: dict[str, Any] = {"last_delivery": delivery}
    if outcome.action != "duplicate":
        changes.update(status=alert.status, ends_at=alert.ends_at or row.ends_at, action=outcome.detail)
    _run(conn, "change", {"the_occurrence": alert.occurrence, **changes})
    return outcome


def _outcome(alert: NewAlert, action: str, detail: str, run_id: str | None = None) -> AlertOutcome:
    return AlertOutcome(alert.fingerprint, alert.name, alert.status, action, detail, run_id)


def _throttles(alert: NewAlert) -> bool:
    """Whether the once_within lookup can matter: a new firing alert its route throttles."""
    return alert.status == "firing" and alert.run is not None and alert.route is not None and bool(alert.once_within)


def _window(alert: NewAlert) -> dict[str, Any]:
    return {"the_route": alert.route, "the_label_key": alert.label_key, "the_occurrence": alert.occurrence,
            "window": alert.once_within}


def _decided(alert: NewAlert, earlier: str | None) -> tuple[AlertOutcome, NewRun | None]:
    """What becomes of the alert if it is new here (`earlier`: the run its route started
    for the same labels within once_within), and the run to queue then."""
    if alert.status != "firing":
        return _outcome(alert, "recorded", f"{alert.status}, never seen firing here: no run"), None
    if alert.route is None or alert.run is None:
        return _outcome(alert, "unrouted", "no route matches it: stored, no run"), None
    if earlier is not None:
        return _outcome(alert, "throttled", _throttled_detail(alert, earlier), earlier), None
    run = replace(alert.run, run_id=alert.run.run_id or new_run_id(alert.run.runbook))
    return _outcome(alert, "queued", f"route {alert.route}: run {run.run_id} queued", run.run_id), run


def _throttled_detail(alert: NewAlert, earlier: str) -> str:
    return f"route {alert.route} started run {earlier} for the same labels within once_within " \
           f"({alert.once_within or 0:g}s): no run"


def _seen_again(conn: Connection, source: str, row: AlertRow, alert: NewAlert) -> AlertOutcome:
    if alert.status == row.status or row.status == "resolved":
        return _outcome(alert, "duplicate", f"seen before: {row.action}", row.run_id)
    if alert.status != "resolved":
        return _outcome(alert, "recorded", f"now {alert.status} (was {row.status})", row.run_id)
    if row.run_id is None:
        return _outcome(alert, "recorded", "resolved; it had started no run")
    return _resolved(conn, source, alert, row.run_id)


def _resolved(conn: Connection, source: str, alert: NewAlert, run_id: str) -> AlertOutcome:
    """A resolved alert never remediates: its run is cancelled if no worker has started
    it, else the resolution is recorded on the run (its audit trail) for people to see."""
    cancelled = conn.execute(update(RUNS).where(RUNS.c.id == run_id, RUNS.c.status == "queued", RUNS.c.claims == 0)
                             .values(status="cancelled", reason="its alert resolved before it started",
                                     finished_at=now(conn))).rowcount
    if cancelled:
        audit(conn, f"hook:{source}", "alert.resolved", run_id, {"alert": alert.name, "cancelled": True})
        return _outcome(alert, "cancelled", f"resolved before run {run_id} started: run cancelled", run_id)
    run = get(conn, run_id)
    state = run.status if run is not None else "gone"
    audit(conn, f"hook:{source}", "alert.resolved", run_id,
          {"alert": alert.name, "ends_at": alert.ends_at, "run_status": state})
    if run is not None and run.status in ("finished", "cancelled"):
        ended = f"{run.status}, {run.outcome}" if run.outcome else run.status
        return _outcome(alert, "recorded", f"resolved after run {run_id} ended ({ended})", run_id)
    return _outcome(alert, "recorded", f"resolved while run {run_id} is {state}: recorded on the run", run_id)


def listing(conn: Connection, route: str | None, unrouted: bool, limit: int) -> list[AlertRow]:
    query = select(ALERTS).order_by(ALERTS.c.updated_at.desc(), ALERTS.c.id.desc()).limit(limit)
    if unrouted:
        query = query.where(ALERTS.c.route.is_(None))
    elif route is not None:
        query = query.where(ALERTS.c.route == route)
    return [AlertRow.from_row(r) for r in conn.execute(query)]


def of_run(conn: Connection, run_id: str) -> AlertRow | None:
    """The alert that started the run (its route's policy with it); None for a run queued otherwise."""
    row = conn.execute(select(ALERTS).where(ALERTS.c.run_id == run_id).order_by(ALERTS.c.id).limit(1)).first()
    return AlertRow.from_row(row) if row is not None else None
