"""engine.service.history.StatsCache: the stats page reads each finished run once, not every
finished run on every view."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from servicekit import queue_run, takeover_runbook

from engine.language.validation import load_runbook
from engine.run.session import LiveOptions, run_at
from engine.service import history
from engine.service.journal import StoreJournal
from engine.service.store import Store


class CountingStore:
    """A store as the stats page reads it, counting the journals exported."""

    def __init__(self, store: Store) -> None:
        self.store, self.exported = store, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def export(self, run_id: str, run_dir: str | Path) -> Path:
        self.exported += 1
        return self.store.export(run_id, run_dir)


def finished_run(store: Store, tmp_path: Path) -> str:
    runbook = takeover_runbook(tmp_path)
    run_id = queue_run(store, runbook, tmp_path / "work")
    store.claim("w1", {}, 60)
    options = LiveOptions(install_signals=False, show_output=False, stream=io.StringIO(), machine_lock=False,
                          journal=lambda d: StoreJournal(store, run_id, "w1"))
    run_at(load_runbook(runbook), {"dir": str(tmp_path / "work"), "token": "x"}, options, run_id=run_id,
           run_dir=tmp_path / run_id)
    store.finish(run_id, "w1", "resolved")
    return run_id


def test_each_finished_run_is_read_once_across_views_of_the_stats_page(store: Store, tmp_path: Path) -> None:
    finished_run(store, tmp_path)
    counting, cache = CountingStore(store), history.StatsCache()
    stats, total = cache.stats_of(counting)  # type: ignore[arg-type]
    assert (total, counting.exported, stats.journals) == (1, 1, 1)
    assert [len(group.runs) for group in stats.groups] == [1]
    again, _ = cache.stats_of(counting)  # type: ignore[arg-type]
    assert counting.exported == 1 and again.groups[0].runs == stats.groups[0].runs
    finished_run(store, tmp_path)
    third, total = cache.stats_of(counting)  # type: ignore[arg-type]
    assert (total, counting.exported) == (2, 2)  # only the new run was read
    assert sum(len(group.runs) for group in third.groups) == 2
