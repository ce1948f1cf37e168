"""A run journals the digest of the runbook's text and of every runbook it includes in
`run.started` (engine/run/digest.py), so coverage and staleness match a journal with the
exact version of the runbook it ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from simkit import drill, records

from engine.language import includes
from engine.language.validation import load_runbook
from engine.reporting.catalog import _MIN_FILES, CACHE_FILE, load_catalog
from engine.run.digest import digest_of, included_files, runbook_digest
from engine.testing import run_text

CHILD = """\
kind: runbook
version: 1
id: child
title: Restart a service
library: true
defaults: {timeout: 1m}
remediation:
  - {id: restart, run: systemctl restart api}
"""
GRANDCHILD_USER = CHILD.replace("id: child", "id: middle").replace(
    "  - {id: restart, run: systemctl restart api}", "  - {id: inner, include: lib/child.yaml}")
RUNBOOK = """\
defaults: {timeout: 1m}
remediation:
  - {id: first, include: middle.yaml}
  - {id: again, include: lib/child.yaml}
"""
SCENARIO = "responses:\n  - {step: first/inner/restart, stdout: ok}\n  - {step: again/restart, stdout: ok}\n"


def _tree(folder: Path) -> None:
    (folder / "lib").mkdir(parents=True, exist_ok=True)
    (folder / "lib" / "child.yaml").write_text(CHILD, encoding="utf-8")
    (folder / "middle.yaml").write_text(GRANDCHILD_USER, encoding="utf-8")


def _started_digest(folder: Path) -> str:
    includes.forget()  # validate's per-process memory of included files is keyed by size and mtime
    run = drill(folder, RUNBOOK, SCENARIO)
    [started] = records(run, "run.started")
    return str(started["digest"])


def test_run_started_carries_the_digest_of_the_runbook_and_everything_it_includes(tmp_path: Path) -> None:
    _tree(tmp_path)
    digest = _started_digest(tmp_path)
    files = [tmp_path / "rb.yaml", tmp_path / "middle.yaml", tmp_path / "lib" / "child.yaml"]
    assert digest == digest_of(p.read_bytes() for p in files)  # each included file once, depth-first
    assert included_files(load_runbook(tmp_path / "rb.yaml")) == [p.resolve() for p in files[1:]]
    assert _started_digest(tmp_path) == digest  # the same text, the same digest
    child = tmp_path / "lib" / "child.yaml"
    child.write_text(CHILD.replace("systemctl restart api", "systemctl restart api --no-block"), encoding="utf-8")
    assert _started_digest(tmp_path) != digest  # an included runbook two levels down changed


def test_the_digest_frames_each_file_and_a_runbook_without_a_file_has_none(tmp_path: Path) -> None:
    assert digest_of([b"ab", b"c"]) != digest_of([b"a", b"bc"])
    assert digest_of([b"", b"x"]) != digest_of([None, b"x"])  # an unreadable include is not an empty one
    _, recorder = run_text("kind: runbook\nversion: 1\nid: mem\ntitle: In memory\nremediation:\n"
                           "  - {id: a, manual: Look}\n", file=str(tmp_path / "never-written.yaml"))
    [started] = recorder.named("run.started")
    assert started.record()["digest"] is None


def test_an_outline_from_the_cache_is_parsed_again_when_an_included_runbook_changed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOK_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RUNBOOK_NO_CACHE", raising=False)
    books = tmp_path / "books"
    _tree(books)
    head = "kind: runbook\nversion: 1\ntitle: Uses the child\n"
    for n in range(_MIN_FILES):
        (books / f"rb{n}.yaml").write_text(f"{head}id: rb{n}\n{RUNBOOK}", encoding="utf-8")
    first = {r.id: r.digest for r in load_catalog([books]).runbooks}
    assert json.loads((tmp_path / "home" / "cache" / CACHE_FILE).read_text())["entries"]
    assert first["rb0"] == runbook_digest(load_runbook(books / "rb0.yaml"))
    assert {r.id: r.digest for r in load_catalog([books]).runbooks} == first  # from the cache
    (books / "lib" / "child.yaml").write_text(CHILD + "# reviewed\n", encoding="utf-8")
    includes.forget()
    again = {r.id: r.digest for r in load_catalog([books]).runbooks}
    assert again["rb0"] != first["rb0"] and again["rb0"] == runbook_digest(load_runbook(books / "rb0.yaml"))
