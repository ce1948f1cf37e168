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
)
Index("runs_by_status", runs.c.status, runs.c.created_at)

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
)
