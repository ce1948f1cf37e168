"""Service: `runbook serve` and `runbook worker`, the engine as a team shares it. The
`store` keeps runs, their journals (the same records as journal.jsonl), leases and the
questions waiting for people, in SQLite under $RUNBOOK_HOME or in PostgreSQL; `journal`
is the run package's journal writer with the store as its home; `worker` claims queued
runs with a lease and `execution` carries one out with the runner, continuing (from its
stored journal) a run whose worker died; `config` is the serve config file; `app` the
ASGI application (routes in one place, /healthz, /readyz, /metrics from `metrics`,
request ids from `request_ids`) and `server` what runs it on uvicorn with the embedded
workers. Alerts come in through `intake` (POST /hooks/<source>): `authentication` checks
the sender, `payloads` reads its format, `routing` picks the runbook, and the store takes
it all in one transaction.

Its third-party dependencies (the `server` extra: SQLAlchemy, psycopg, Starlette,
uvicorn, prometheus-client) are imported only here, and only by the commands that serve.

Layer: above reporting. It may import `engine.reporting`, `engine.simulation`,
`engine.run` and everything below; only the CLI imports it.
"""

__all__ = ["app", "authentication", "config", "drill_room", "drill_run", "execution", "intake", "journal", "metrics",
           "payloads", "request_ids", "room_pages", "room_views", "routing", "server", "store", "worker"]
