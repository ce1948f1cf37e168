"""Diagnostics: one positioned problem in one file, and a validation's report of them.

A Diagnostic is plain data, produced by the loader, the schema and the lint rules alike;
the formats that print a Report (text, json, github, sarif, junit) are in
engine/language/formats.py. The ids of the structural rules (loading and schema) are
listed here; lint rules register their own (engine/language/rules.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import NamedTuple

from engine.templates.patterns import deferred


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


class Diagnostic(NamedTuple):
    """A problem at file:line:column (1-based), identified by a stable rule id."""

    file: str
    line: int
    column: int
    severity: Severity
    rule: str
    message: str
    path: tuple[str | int, ...] = ()

    # Two reports of the same problem at the same place are equal, whatever data path
    # led there (the path is for tools; the place is what people see).
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Diagnostic) and self[:6] == other[:6]

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self[:6])

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file, self.line, self.column, self.rule, self.message)

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity.value,
            "rule": self.rule,
            "message": self.message,
            "path": json_pointer(self.path),
        }


def json_pointer(path: Sequence[str | int]) -> str:
    """RFC 6901 pointer for a data path, e.g. ('triage', 0, 'run') -> /triage/0/run."""
    parts = (str(p).replace("~", "~0").replace("/", "~1") for p in path)
    return "".join("/" + p for p in parts)


def dotted(path: Sequence[str | int]) -> str:
    """Readable path for messages: ('triage', 0, 'run') -> triage[0].run."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


class Report:
    """Every diagnostic of one validation, plus the files that were checked."""

    def __init__(self, files: list[str] | None = None, diagnostics: list[Diagnostic] | None = None,
                 sources: dict[str, str] | None = None) -> None:
        self.files: list[str] = files if files is not None else []
        self.diagnostics: list[Diagnostic] = diagnostics if diagnostics is not None else []
        self.sources: dict[str, str] = sources if sources is not None else {}

    def sorted(self) -> list[Diagnostic]:
        return sorted(self.diagnostics, key=Diagnostic.sort_key)

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.is_error)

    @property
    def warnings(self) -> int:
        return len(self.diagnostics) - self.errors

    def by_file(self) -> dict[str, list[Diagnostic]]:
        grouped: dict[str, list[Diagnostic]] = {f: [] for f in self.files}
        for diag in self.sorted():
            grouped.setdefault(diag.file, []).append(diag)
        return grouped



def caret_line(source_line: str, column: int) -> str:
    """Spaces (and the line's own tabs, so it lines up in a terminal) then `^` under `column`."""
    prefix = "".join(c if c == "\t" else " " for c in source_line[: max(column - 1, 0)])
    return prefix + "^"



# Control characters (a tab aside): YAML escapes such as "\n" or "\x1b" put them in keys and
# values that messages quote. Printed raw they would start a new log line (a forged
# `::error` annotation in CI), drive the terminal, or make the JUnit XML ill-formed.
_CONTROL = deferred(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\ufffe\uffff]")


def printable(text: str) -> str:
    """`text` with control characters shown as escapes: 'a\\nb' for a line break."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


# Rules enforced before lint (loading and schema); lint registers its own.
STRUCTURAL_RULES: dict[str, tuple[str, str]] = {
    "RB000": ("io", "The file must be readable; an I/O error exits with status 2."),
    "RB001": ("yaml-syntax", "The file must be readable UTF-8 YAML."),
    "RB002": ("limits", "Size, nesting and alias limits keep hostile files from hurting the tool."),
    "RB003": ("document-shape", "A file is one mapping with `kind: runbook`, `kind: scenario` or `kind: inventory`."),
    "RB004": ("duplicate-key", "YAML silently keeps the last of duplicate keys; that hides mistakes."),
    "RB005": ("not-a-file", "A FIFO, socket or device named like a YAML file is skipped, never opened: "
                            "reading one could block forever (a warning)."),
    "RB010": ("unknown-key", "A misspelt key (e.g. `timout`) would otherwise be ignored."),
    "RB011": ("missing-key", "Required keys must be present."),
    "RB012": ("wrong-type", "Values must have the type the format defines."),
    "RB013": ("invalid-value", "Values must be in range, match their pattern, or be a known choice."),
    "RB014": ("step-kind", "A step has exactly one kind (run, http, manual, ...)."),
    "RB015": ("misplaced-key", "Some keys only make sense together with another (ask with manual)."),
}


STRUCTURAL_WARNINGS = frozenset({"RB005"})
