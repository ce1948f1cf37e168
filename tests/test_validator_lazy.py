"""The lazily compiled schema validator (what the engine validates with): it compiles only
the parts of a schema a document reaches, and says exactly what the eager one says."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from strategies import mutated
from support import ROOT, fixture_documents, shipped_documents

from engine.language import _validator, schema
from engine.language._validator import Compiler, Issue, compile_schema
from engine.language.loader import load_file

Data = dict[str, Any]
ALL_KINDS = schema.KINDS + schema.CONFIGS
VALID_RUNBOOK: Data = load_file(ROOT / "tests" / "fixtures" / "valid-runbook.yaml").data
ONE_STEP: Data = {"kind": "runbook", "version": 1, "id": "one", "title": "One step",
                  "detection": [{"id": "a", "run": "true"}]}


def _schema(kind: str) -> Data:
    data: Data = json.loads((ROOT / "schemas" / f"{kind}.schema.json").read_text(encoding="utf-8"))
    return data


def _issues(check: _validator.Check, data: Any) -> list[Issue]:
    found: list[Issue] = []
    check(data, (), found)
    return found


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_shipped_schema_compiles_eagerly(kind: str) -> None:
    # The guard for an unknown keyword, which a lazy compile meets only when it is used.
    check = compile_schema(_schema(kind))
    assert callable(check)


def test_a_one_step_runbook_compiles_few_of_the_schemas_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = []
    original = Compiler.compile

    def counting(self: Compiler, sub: Any = None, name: str = "") -> Any:
        compiled.append(sub)
        return original(self, sub, name)

    monkeypatch.setattr(Compiler, "compile", counting)
    schema._validator.cache_clear()
    try:
        assert schema.issues("runbook", ONE_STEP) == []
        reached = len(compiled)
        compiled.clear()
        compile_schema(_schema("runbook"))
    finally:
        schema._validator.cache_clear()
    assert reached * 4 < len(compiled), (reached, len(compiled))


@pytest.mark.parametrize("path", [*shipped_documents(), *fixture_documents()],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_lazy_and_eager_report_the_same_issues_on_shipped_files(path: Path) -> None:
    data = load_file(path).data
    kind = data["kind"]
    assert _issues(compile_schema(_schema(kind), lazy=True), data) == _issues(compile_schema(_schema(kind)), data)


_EAGER = compile_schema(_schema("runbook"))
_LAZY = compile_schema(_schema("runbook"), lazy=True)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(VALID_RUNBOOK))
def test_lazy_and_eager_report_the_same_issues_on_mutated_runbooks(data: Data) -> None:
    # One lazy validator for every example: it fills in as documents reach new parts.
    assert _issues(_LAZY, data) == _issues(_EAGER, data)


def _first_use_by_threads(check: _validator.Check, data: Data, count: int) -> list[list[Issue]]:
    results: list[list[Issue]] = []
    start = threading.Barrier(count)

    def validate() -> None:
        start.wait()
        results.append(_issues(check, data))

    threads = [threading.Thread(target=validate) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_threads_first_using_one_lazy_validator_all_get_the_full_answer() -> None:
    broken = dict(VALID_RUNBOOK, detection=[{"id": "A", "run": 3, "http": {}}])
    expected = _issues(_EAGER, broken)
    assert expected
    for _ in range(20):
        check = compile_schema(_schema("runbook"), lazy=True)
        assert _first_use_by_threads(check, broken, 4) == [expected] * 4
