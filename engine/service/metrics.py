"""What /metrics tells Prometheus, read from the store at each scrape (so every serve
process of a team reports the same runs): runs by status, the queue's depth, finished
runs by outcome, lease takeovers, and this process's workers."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from .intake import Intake
from .store import Store, StoreError, tables
from .worker import Worker


class StoreCollector(Collector):
    """Prometheus collector over the store (and the embedded worker, if any)."""

    def __init__(self, store: Store, worker: Worker | None, intake: Intake | None = None) -> None:
        self.store, self.worker, self.intake = store, worker, intake

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("runbook_store_up", "Whether the store answered this scrape (1) or not (0).")
        try:
            counts, outcomes, takeovers = self.store.counts(), self.store.outcomes(), self.store.takeovers()
        except StoreError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _runs(counts, outcomes, takeovers)
        if self.intake is not None:
            yield from _deliveries(self.store, self.intake)
        if self.worker is not None:
            active = GaugeMetricFamily("runbook_worker_active_runs", "Runs this process's workers carry out now.")
            active.add_metric([], len(self.worker.active))
            yield active


def _runs(counts: dict[str, int], outcomes: dict[str, int], takeovers: int) -> Iterator[Metric]:
    runs = GaugeMetricFamily("runbook_runs", "Runs in the store by status.", labels=["status"])
    for status in tables.RUN_STATUSES:
        runs.add_metric([status], counts.get(status, 0))
    yield runs
    queue = GaugeMetricFamily("runbook_queue_depth", "Runs queued and not yet claimed by a worker.")
    queue.add_metric([], counts.get("queued", 0))
    yield queue
    finished = CounterMetricFamily("runbook_runs_finished", "Finished runs by outcome.", labels=["outcome"])
    for outcome, n in sorted(outcomes.items()):
        finished.add_metric([outcome], n)
    yield finished
    taken = CounterMetricFamily("runbook_lease_takeovers", "Runs taken over from a worker whose lease expired.")
    taken.add_metric([], takeovers)
    yield taken


def _deliveries(store: Store, intake: Intake) -> Iterator[Metric]:
    """Deliveries the store took (accepted, duplicate, rejected: every serve process's),
    and those this process refused before storing (unknown source, unauthenticated, too
    large, too slow)."""
    try:
        stored = store.deliveries()
    except StoreError:
        return
    taken = CounterMetricFamily("runbook_deliveries", "Deliveries to /hooks/<source> by what became of them.",
                                labels=["status"])
    for status in ("accepted", "duplicate", "rejected"):
        taken.add_metric([status], stored.get(status, 0))
    yield taken
    refused = CounterMetricFamily("runbook_deliveries_refused",
                                  "Deliveries this process refused without storing them, by reason.", labels=["reason"])
    for reason in ("unknown", "unauthenticated", "too_large", "too_slow"):
        refused.add_metric([reason], intake.refused.get(reason, 0))
    yield refused


def registry(store: Store, worker: Worker | None, intake: Intake | None = None) -> CollectorRegistry:
    """A registry of its own (not the process-wide default): one per app."""
    found = CollectorRegistry(auto_describe=False)
    found.register(StoreCollector(store, worker, intake))
    return found
