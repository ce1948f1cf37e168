"""The suite's own runbooks are valid and run, so that a hostile case exiting 2 means the
engine refused the hostile part, not that the case was broken from the start."""

from __future__ import annotations

import pytest
import test_hostile_files as test_files
import test_hostile_http as test_http
import test_hostile_injection as test_injection
import test_hostile_secrets as test_secrets
from hostile_corpus import BASES
from hostile_harness import Case, Runner

RUNBOOKS = {
    "base": BASES["runbook"],
    "fleet": test_files.GROUP_RUNBOOK,
    "local": test_files.LOCAL_RUNBOOK,
    "lists": test_files.LIST_RUNBOOK,
    "secrets": test_secrets.RUNBOOK,
    "client": test_http.RUNBOOK.replace("FOLLOW", ""),
    "inject-bare": test_injection._runbook("bare"),
    "inject-env": test_injection._runbook("env"),
}


@pytest.mark.parametrize("name", RUNBOOKS)
def test_baseline_runbook_is_valid(hostile: Runner, name: str) -> None:
    path = hostile.write(f"{name}.yaml", RUNBOOKS[name])
    hostile.check(Case(f"baseline:{name}", "validate", ["validate", str(path)], codes=frozenset({0})))
