"""The store's tables as the code queries them (the latest schema version). The tables
are made by migrations.py, one numbered step at a time; a change here is a new step
there (tests/integration/test_service_store.py checks the two agree).

Values that are data, not keys (inputs, labels, answers, a question's fields), are JSON
text; times are epoch seconds from the database's clock. `events.record` is a journal
line exactly as `journal.jsonl` holds it, without its newline.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

RUN_STATUSES = ("queued", "running", "waiting", "finished", "cancelled")
RUN_MODES = ("live", "dry-run", "drill")  # as the journal's run.started says (schema version 5)

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", Text, nullable=False),
    Column("applied_at", Float, nullable=False),
)

runs = Table(
    "runs", metadata,
    Column("id", String(200), primary_key=True),
    Column("runbook", String(200), nullable=False),  # the runbook's id
    Column("file", Text, nullable=False),  # the runbook file the workers load
    Column("inputs", Text, nullable=False),
    Column("secrets", Text, nullable=False),  # names of secret inputs: blanked when the run ends
    Column("answers", Text, nullable=False),  # scripted answers, step -> field -> value
    Column("alert", Text),  # what the journal keeps of the alert that started it
    Column("pool", Text, nullable=False),  # labels a worker must have to claim it
    Column("origin", Text, nullable=False),  # who or what queued it
    Column("status", String(16), nullable=False),
    Column("outcome", String(32)),
    Column("reason", Text),
    Column("lease_owner", String(200)),
    Column("lease_expires", Float),
    Column("claims", Integer, nullable=False),  # how many times a worker took it
    Column("last_seq", Integer, nullable=False),  # the seq of its last journal record
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("mode", String(16), nullable=False, server_default="live"),  # RUN_MODES
    Column("abort", Text),  # schema version 9: who asked a running run to stop, and why (JSON)
    Column("resumes", Integer, nullable=False, server_default="0"),  # how many times a person resumed it
)
Index("runs_by_status", runs.c.status, runs.c.created_at)
# Schema version 7: the console's runs list, newest first, whole or by runbook or mode.
runs_by_time = Index("runs_by_time", runs.c.created_at, runs.c.id)
runs_by_runbook = Index("runs_by_runbook", runs.c.runbook, runs.c.created_at)
runs_by_mode = Index("runs_by_mode", runs.c.mode, runs.c.created_at)

events = Table(
    "events", metadata,
    Column("run_id", String(200), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("event", String(64), nullable=False),
    Column("record", Text, nullable=False),
)

logs = Table(
    "logs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(200), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),  # the file's name in logs/ (journal.log_name)
    Column("data", LargeBinary, nullable=False),  # bytes, as the file holds them (NUL included)
)
Index("logs_by_run", logs.c.run_id, logs.c.id)

questions = Table(
    "questions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(200), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("step", Text, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("fields", Text, nullable=False),  # [{name, type, prompt, choices}]
    Column("role", String(200)),
    Column("status", String(16), nullable=False),  # open, answered, cancelled
    Column("asked_at", Float, nullable=False),
    Column("answered_by", Text),
    Column("answer", Text),
    Column("answered_at", Float),
)
Index("questions_by_run", questions.c.run_id, questions.c.status)

workers = Table(
    "workers", metadata,
    Column("id", String(200), primary_key=True),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("labels", Text, nullable=False),
    Column("state", String(16), nullable=False),  # running, draining, stopped
    Column("started_at", Float, nullable=False),
    Column("seen_at", Float, nullable=False),
)

audit = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("who", Text, nullable=False),
    Column("what", String(64), nullable=False),
    Column("run_id", String(200)),
    Column("detail", Text, nullable=False),
    Column("address", String(64)),  # where a sign-in came from (schema version 8): what throttling counts
)
Index("audit_by_kind", audit.c.what, audit.c.at)

# -- intake (schema version 2): what senders posted, and the alerts in it ---------------------

deliveries = Table(
    "deliveries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(200), nullable=False),  # the name in POST /hooks/<source>
    Column("received_at", Float, nullable=False),
    Column("status", String(16), nullable=False),  # accepted, duplicate, rejected
    Column("reason", Text),  # why it was rejected
    Column("dedup_key", String(64)),  # the notification's identity (payloads.py)
    Column("duplicate_of", Integer),  # the delivery that first brought it
    Column("headers", Text, nullable=False),  # the headers worth keeping (never credentials)
    Column("body", LargeBinary, nullable=False),  # the body, byte for byte
)
Index("deliveries_by_status", deliveries.c.status)

# One row per notification ever accepted: inserting a key that is there already is how a
# duplicate finds out, atomically, on both databases.
delivery_keys = Table(
    "delivery_keys", metadata,
    Column("key", String(64), primary_key=True),
    Column("delivery_id", Integer, nullable=False),
)

alerts = Table(
    "alerts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("occurrence", String(64), nullable=False, unique=True),  # source, fingerprint, startsAt
    Column("source", String(200), nullable=False),
    Column("fingerprint", String(200), nullable=False),
    Column("name", Text, nullable=False),
    Column("labels", Text, nullable=False),
    Column("label_key", String(64), nullable=False),  # the label set, for once_within
    Column("status", String(32), nullable=False),  # firing, resolved, or the sender's word
    Column("starts_at", Text),
    Column("ends_at", Text),
    Column("route", String(200)),  # the route that matched; NULL: unrouted
    Column("policy", Text, nullable=False),  # the route's policy (unattended phases, approvals)
    Column("run_id", String(200)),  # the run it started
    Column("action", Text, nullable=False),  # what the intake did with it last, in words
    Column("first_delivery", Integer, nullable=False),
    Column("last_delivery", Integer, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
Index("alerts_by_label_set", alerts.c.route, alerts.c.label_key, alerts.c.received_at)
Index("alerts_by_run", alerts.c.run_id)

# -- people (schema version 3): who answers questions, and the API tokens that prove it ---------

people = Table(
    "people", metadata,
    Column("name", String(200), primary_key=True),
    Column("roles", Text, nullable=False),  # JSON list
    Column("slack", String(200)),  # the Slack user id that is this person
    Column("email", Text),
    Column("updated_at", Float, nullable=False),
)

tokens = Table(
    "tokens", metadata,
    Column("hash", String(64), primary_key=True),  # SHA-256 of the token: the token itself is never kept
    Column("person", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
)

# -- accounts (schema version 4): the console's passwords and browser sessions ---------------

passwords = Table(
    "passwords", metadata,
    Column("person", String(200), primary_key=True),
    Column("hash", Text, nullable=False),  # scrypt$N$r$p$salt$key (accounts.py): never the password
    Column("updated_at", Float, nullable=False),
)

sessions = Table(
    "sessions", metadata,
    Column("hash", String(64), primary_key=True),  # SHA-256 of the cookie's value: a copy of the database opens none
    Column("person", String(200), nullable=False),
    Column("csrf", String(64), nullable=False),  # the token every form of this session carries
    Column("via", String(32), nullable=False),  # password or header (an authenticating proxy)
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

# -- drill rooms (schema version 6): game days played from browsers ----------------------------

drill_rooms = Table(
    "drill_rooms", metadata,
    Column("id", String(64), primary_key=True),
    Column("code", String(64), nullable=False, unique=True),  # the join link's secret part
    Column("trainer", String(200), nullable=False),
    Column("scenario", Text, nullable=False),  # the scenario file the worker loads
    Column("speed", Float, nullable=False),
    Column("run_id", String(200)),  # the drill's run, once started
    Column("status", String(16), nullable=False),  # lobby, running, ended
    Column("version", Integer, nullable=False),  # bumped on every change, for the live views
    Column("created_at", Float, nullable=False),
)
Index("drill_rooms_by_run", drill_rooms.c.run_id)

drill_members = Table(
    "drill_members", metadata,
    Column("room_id", String(64), ForeignKey("drill_rooms.id", ondelete="CASCADE"), primary_key=True),
    Column("person", String(200), primary_key=True),
    Column("role", String(200)),  # the runbook role the trainer gave them
    Column("joined_at", Float, nullable=False),
)

drill_prompts = Table(
    "drill_prompts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("room_id", String(64), ForeignKey("drill_rooms.id", ondelete="CASCADE"), nullable=False),
    Column("step", Text, nullable=False),
    Column("kind", String(32), nullable=False),  # ask, approval, acknowledge
    Column("text", Text, nullable=False),
    Column("fields", Text, nullable=False),
    Column("role", String(200)),  # only the participant holding it answers
    Column("status", String(16), nullable=False),  # open, answered, cancelled
    Column("asked_at", Float, nullable=False),
    Column("answered_by", Text),
    Column("answer", Text),
    Column("answered_at", Float),
)
Index("drill_prompts_by_room", drill_prompts.c.room_id, drill_prompts.c.status)

drill_controls = Table(
    "drill_controls", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("room_id", String(64), ForeignKey("drill_rooms.id", ondelete="CASCADE"), nullable=False),
    Column("verb", String(32), nullable=False),  # pause, resume, inject, end, speed, hint
    Column("arg", Text, nullable=False),
    Column("by", String(200), nullable=False),
    Column("at", Float, nullable=False),
    Column("taken_at", Float),  # when the drill's worker applied it
)
Index("drill_controls_pending", drill_controls.c.room_id, drill_controls.c.taken_at)
