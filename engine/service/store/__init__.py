"""The store: deliveries and alerts, runs, their journals, leases, questions, workers and the audit trail, in
SQLite or PostgreSQL. `api.Store` is the one door (everything else talks to it, never
SQL); `records` what crosses it; `tables` and `migrations` the schema and how it gets
there; `database` which database and how to talk to it; `failures` what can go wrong.
"""

from ._accounts import Session
from .api import Store
from .failures import LeaseLost, StoreError, StoreUnavailable
from .records import (
    AlertOutcome,
    AlertRow,
    AuditEntry,
    Claim,
    LogChunk,
    NewAlert,
    NewDelivery,
    NewQuestion,
    NewRun,
    PersonRow,
    QuestionRow,
    Received,
    RunQuery,
    RunRow,
)
from .tables import RUN_MODES

__all__ = ["RUN_MODES", "AlertOutcome", "AlertRow", "AuditEntry", "Claim", "LeaseLost", "LogChunk", "NewAlert",
           "NewDelivery", "NewQuestion", "NewRun", "PersonRow", "QuestionRow", "Received", "RunQuery", "RunRow",
           "Session", "Store", "StoreError", "StoreUnavailable"]
