"""What the runbook rules look at, computed once per file: the runbook, its fields placed
in the file, the run order of its steps, and what the check was told (inventory groups,
the channels config)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from engine.templates.templating import PLAIN

from .channels import KnownChannels
from .fields import DataPath, Field, runbook_fields, step_fields
from .loader import Document
from .model import Runbook


class RunbookCheck:
    """What the runbook rules look at, computed once per file."""

    def __init__(self, doc: Document, runbook: Runbook, inventory_groups: frozenset[str] | None = None,
                 channels: KnownChannels | None = None) -> None:
        self.doc, self.runbook, self.inventory_groups = doc, runbook, inventory_groups
        self.channels = channels
        self._refs: dict[str, list[tuple[Field, str]]] | None = None  # root -> references, made once

    @cached_property
    def fields(self) -> list[Field]:
        out = [self._placed(f) for s in self.runbook.steps() for f in step_fields(s)]
        return out + list(runbook_fields(self.runbook))

    def _placed(self, f: Field) -> Field:
        """The field with the path of its string in the file: `confirm: {message: ...}`
        holds it one level deeper than `confirm: text`. Read from the data: the source
        map would compose the node tree of a file that may need no position at all."""
        if f.path[-1] == "confirm" and isinstance(_data_at(self.doc.data, f.path), dict):
            return Field((*f.path, "message"), f.text, f.expression, f.stage, f.step, f.notify)
        return f

    @cached_property
    def order(self) -> dict[str, int]:
        """Step id -> position in run order (first occurrence)."""
        order: dict[str, int] = {}
        for i, step in enumerate(self.runbook.steps()):
            order.setdefault(step.id, i)
        return order

    @cached_property
    def position(self) -> dict[DataPath, int]:
        """Step path -> position in run order (a duplicate id keeps its own place)."""
        return {step.path: i for i, step in enumerate(self.runbook.steps())}

    @cached_property
    def all_ids(self) -> set[str]:
        return {s.id for s in self.runbook.steps(rollbacks=True)}

    @cached_property
    def parsed(self) -> list[Field]:
        """Fields that parse (syntax errors are reported by their own rule)."""
        return [f for f in self.fields if f.analysis.error is None]

    @cached_property
    def analysed(self) -> list[Field]:
        """Fields that parse and use anything (names, filters, tests): most fields are
        plain text, and rules about what a template uses need not visit them."""
        return [f for f in self.parsed if f.analysis is not PLAIN]

    def refs(self, root: str) -> list[tuple[Field, str]]:
        """(field, name) of every `root.name...` reference (`steps.check`, `inputs.host`)."""
        index = self._refs
        if index is None:
            index = self._refs = {}
            for f in self.analysed:
                for ref in f.analysis.refs:
                    if len(ref) > 1:
                        index.setdefault(ref[0], []).append((f, ref[1]))
        return index.get(root, [])


def _data_at(data: Any, path: DataPath) -> Any:
    """The value at `path` in the document's data, or None where the path leaves it."""
    for part in path:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data
