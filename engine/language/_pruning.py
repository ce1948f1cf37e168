"""A schema-invalid document cut down until the rest validates, so lint still runs on it.

What the schema rejects is cut from a copy of the data; a step keeps its place as a
placeholder (positions stay right, and references to it stay valid), and a top-level
value the model cannot do without is replaced rather than cut.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from . import schema
from ._validator import Issue
from .loader import Document
from .model import PHASES

# A top-level value the model cannot do without is replaced rather than cut, so a bad
# `id:` or a missing `title:` does not hide every lint finding in the rest of the file.
_TOP_PLACEHOLDERS: dict[str, dict[str, Any]] = {
    "runbook": {"kind": "runbook", "version": 1, "id": "invalid-id", "title": "(invalid)"},
    "scenario": {"kind": "scenario", "version": 1, "id": "invalid-id", "title": "(invalid)"},
    "inventory": {"kind": "inventory", "version": 1},
}
_STEP_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_DROP = object()  # a list item cut this round: removed after the round, so indices stay valid


def pruned(doc: Document, kind: str, rounds: int = 4) -> Document | None:
    """A copy of the document without the parts the schema rejects, or None."""
    data = copy.deepcopy(doc.data)
    for _ in range(rounds):
        issues = schema.issues(kind, data)
        if not issues:
            return Document(doc.file, data, doc.source)
        for issue in sorted(issues, key=lambda i: len(i.path), reverse=True):
            if not _repair(data, issue, kind):
                return None  # the top level itself is broken: nothing sensible to lint
        _sweep(data)
    return None if schema.issues(kind, data) else Document(doc.file, data, doc.source)


def _repair(data: dict[str, Any], issue: Issue, kind: str) -> bool:
    """Cut (or, at the top, replace) what an issue is about; False if that cannot help."""
    placeholders = _TOP_PLACEHOLDERS[kind]
    if not issue.path:
        if issue.keyword != "required":
            return False
        for key, value in placeholders.items():
            data.setdefault(key, value)
        return all(key in data for key in schema.load_schema(kind).get("required", ()))
    if len(issue.path) == 1 and issue.path[0] in placeholders:
        data[str(issue.path[0])] = placeholders[str(issue.path[0])]
        return True
    _cut(data, issue.path)
    return True


def _cut(data: Any, path: tuple[str | int, ...]) -> None:
    parent = data
    for part in path[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return
    last = path[-1]
    if isinstance(parent, dict):
        parent.pop(last, None)
    elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
        if _is_step(path):
            parent[last] = _placeholder_step(parent[last], path)  # keep indices: positions stay right
        else:
            parent[last] = _DROP


def _is_step(path: tuple[str | int, ...]) -> bool:
    """Whether `path` is an item of a phase or of a step's rollback list."""
    if not path or path[0] not in PHASES:
        return False
    return len(path) == 2 or (len(path) >= 4 and path[-2] == "rollback")


def _placeholder_step(original: Any, path: tuple[str | int, ...]) -> dict[str, Any]:
    # Keep a usable id: later steps referring to it must not get a false RB102. Without
    # one, name the place, so two placeholders never look like duplicate ids (RB101).
    step_id = original.get("id") if isinstance(original, dict) else None
    if not (isinstance(step_id, str) and _STEP_ID.match(step_id)):
        step_id = ("invalid_step_" + "_".join(str(p) for p in path))[:64]
    return {"id": step_id, "wait": "0s"}


def _sweep(value: Any) -> None:
    if isinstance(value, dict):
        for item in value.values():
            _sweep(item)
    elif isinstance(value, list):
        value[:] = [item for item in value if item is not _DROP]
        for item in value:
            _sweep(item)
