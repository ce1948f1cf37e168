"""The catalog coverage counts (engine/reporting/catalog.py): many runbooks are outlined
over the CPUs, and the result is the one a single process gives, errors included."""

from __future__ import annotations

from pathlib import Path

import pytest

import engine.reporting.catalog as catalog
from engine.errors import RunbookError

FIXTURE = Path(__file__).parent / "fixtures" / "coverage" / "branches.yaml"


def _books(folder: Path, count: int) -> None:
    text = FIXTURE.read_text()
    folder.mkdir()
    for n in range(count):
        (folder / f"rb{n:03d}.yaml").write_text(text.replace("id: branches", f"id: branches-{n}"))


def test_many_runbooks_are_outlined_in_workers_as_one_process_would(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    count = catalog._PARALLEL_MIN + 2
    _books(tmp_path / "books", count)
    files = sorted(str(p) for p in (tmp_path / "books").iterdir())
    found = catalog._outline_all(files)
    assert len(found) == count and all(f is not None for f in found)  # outlined by the workers
    parallel = catalog.load_catalog([tmp_path / "books"], use_cache=False)
    monkeypatch.setattr(catalog, "_PARALLEL_MIN", 10**6)
    serial = catalog.load_catalog([tmp_path / "books"], use_cache=False)
    assert [(r.id, r.file, r.steps, r.branches, r.digest) for r in parallel.runbooks] == \
        [(r.id, r.file, r.steps, r.branches, r.digest) for r in serial.runbooks]
    assert len(parallel.runbooks) == count


def test_a_runbook_with_an_error_among_many_is_reported_with_its_place(tmp_path: Path) -> None:
    _books(tmp_path / "books", catalog._PARALLEL_MIN + 2)
    bad = tmp_path / "books" / "rb007.yaml"
    bad.write_text(bad.read_text().replace("  - id: by_cause\n", "  - id: by_cause  # runbook: unreachable[nope]\n"))
    with pytest.raises(RunbookError) as caught:
        catalog.load_catalog([tmp_path / "books"], use_cache=False)
    assert "step by_cause has no branch 'nope'" in str(caught.value)
    assert (caught.value.file, caught.value.line) == (str(bad), 22)
