"""Diagnostics: one positioned problem in one file, and the formats that print them.

A Diagnostic is plain data. The formatters (text, json, github, sarif, junit) turn a
sorted list of them into the text CI systems and editors read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from enum import Enum
from typing import NamedTuple


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


Formatter = Callable[[Report], str]
FORMATS: dict[str, Formatter] = {}


def formatter(name: str) -> Callable[[Formatter], Formatter]:
    def register(func: Formatter) -> Formatter:
        FORMATS[name] = func
        return func

    return register


def render(report: Report, fmt: str, **options: object) -> str:
    """Render a report in one of FORMATS; options go to formatters that take them."""
    if fmt == "text":
        return format_text(report, color=bool(options.get("color")))
    return FORMATS[fmt](report)


def caret_line(source_line: str, column: int) -> str:
    """Spaces (and the line's own tabs, so it lines up in a terminal) then `^` under `column`."""
    prefix = "".join(c if c == "\t" else " " for c in source_line[: max(column - 1, 0)])
    return prefix + "^"


def _source_line(lines: dict[str, list[str]], report: Report, diag: Diagnostic) -> str | None:
    if diag.file not in lines:
        text = report.sources.get(diag.file)
        # Split each file once: 20,000 diagnostics in one file must not split it 20,000 times.
        lines[diag.file] = text.splitlines() if text is not None else []
    found = lines[diag.file]
    return found[diag.line - 1] if 0 < diag.line <= len(found) else None


# Control characters (a tab aside): YAML escapes such as "\n" or "\x1b" put them in keys and
# values that messages quote. Printed raw they would start a new log line (a forged
# `::error` annotation in CI), drive the terminal, or make the JUnit XML ill-formed.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\ufffe\uffff]")


def printable(text: str) -> str:
    """`text` with control characters shown as escapes: 'a\\nb' for a line break."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


_COLORS = {"error": "\033[1;31m", "warning": "\033[1;33m", "bold": "\033[1m", "dim": "\033[2m"}
_RESET = "\033[0m"


def format_text(report: Report, *, color: bool = False) -> str:
    """`file:line:col: error: message [RULE]`, the source line, a caret, then a summary."""

    def paint(text: str, style: str) -> str:
        return f"{_COLORS[style]}{text}{_RESET}" if color else text

    out: list[str] = []
    lines: dict[str, list[str]] = {}
    for diag in report.sorted():
        sev = paint(diag.severity.value, diag.severity.value)
        where = paint(f"{printable(diag.file)}:{diag.line}:{diag.column}", "bold")
        out.append(f"{where}: {sev}: {printable(diag.message)} [{diag.rule}]")
        line = _source_line(lines, report, diag)
        if line is not None:
            out.append(f"  {line}")
            out.append("  " + paint(caret_line(line, diag.column), diag.severity.value))
    out.append(_summary(report))
    return "\n".join(out) + "\n"


def _summary(report: Report) -> str:
    files = len(report.files)
    noun = "file" if files == 1 else "files"
    if not report.diagnostics:
        return f"{files} {noun} checked: no problems"
    return (
        f"{files} {noun} checked: {report.errors} error(s), {report.warnings} warning(s)"
    )


@formatter("json")
def format_json(report: Report) -> str:
    payload = {
        "files": report.files,
        "errors": report.errors,
        "warnings": report.warnings,
        "diagnostics": [d.to_dict() for d in report.sorted()],
    }
    return json.dumps(payload, indent=2) + "\n"


def _escape_github(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


@formatter("github")
def format_github(report: Report) -> str:
    """GitHub Actions workflow commands: `::error file=F,line=L,col=C,title=RULE::message`."""
    lines = []
    for d in report.sorted():
        props = f"file={_escape_github(d.file, prop=True)},line={d.line},col={d.column}"
        title = _escape_github(d.rule, prop=True)
        lines.append(f"::{d.severity.value} {props},title={title}::{_escape_github(d.message)}")
    return "\n".join(lines) + ("\n" if lines else "")


def iter_unique_rules(diags: Iterable[Diagnostic]) -> list[str]:
    return sorted({d.rule for d in diags})


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


def rule_catalog() -> dict[str, dict[str, str]]:
    """Every rule id -> {name, rationale, severity}: structural rules and lint rules."""
    from . import lint

    catalog = {
        rid: {"name": name, "rationale": why, "severity": "warning" if rid in STRUCTURAL_WARNINGS else "error"}
        for rid, (name, why) in STRUCTURAL_RULES.items()
    }
    for entry in lint.describe_rules():
        catalog[entry["id"]] = {k: entry[k] for k in ("name", "rationale", "severity")}
    return catalog


SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


@formatter("sarif")
def format_sarif(report: Report) -> str:
    """SARIF 2.1.0, as GitHub code scanning and editors read it."""
    from engine import __version__

    catalog = rule_catalog()
    used = iter_unique_rules(report.diagnostics)
    index = {rid: i for i, rid in enumerate(used)}
    rules = [
        {
            "id": rid,
            "name": catalog.get(rid, {}).get("name", rid),
            "shortDescription": {"text": catalog.get(rid, {}).get("rationale", rid)},
            "defaultConfiguration": {"level": catalog.get(rid, {}).get("severity", "error")},
        }
        for rid in used
    ]
    results = [
        {
            "ruleId": d.rule,
            "ruleIndex": index[d.rule],
            "level": d.severity.value,
            "message": {"text": d.message},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": _uri(d.file)},
                "region": {"startLine": max(d.line, 1), "startColumn": max(d.column, 1)},
            }}],
        }
        for d in report.sorted()
    ]
    driver = {"name": "runbook", "informationUri": "https://runbook-engine.dev",
              "version": __version__, "rules": rules}
    doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0",
           "runs": [{"tool": {"driver": driver}, "results": results}]}
    return json.dumps(doc, indent=2) + "\n"


def _uri(file: str) -> str:
    from urllib.parse import quote

    return quote(file.replace("\\", "/").removeprefix("./"))


@formatter("junit")
def format_junit(report: Report) -> str:
    """JUnit XML: one test case per file; its errors are the failure, warnings go to output."""
    from xml.etree import ElementTree as ET

    grouped = report.by_file()
    failing = sum(1 for diags in grouped.values() if any(d.is_error for d in diags))
    suite = ET.Element("testsuite", name="runbook validate", tests=str(len(grouped)),
                       failures=str(failing), errors="0", skipped="0")
    for file, diags in grouped.items():
        case = ET.SubElement(suite, "testcase", classname="runbook.validate", name=printable(file))
        errors = [d for d in diags if d.is_error]
        lines = [printable(f"{d.file}:{d.line}:{d.column}: {d.severity.value}: {d.message} [{d.rule}]")
                 for d in diags]
        if errors:
            failure = ET.SubElement(case, "failure", type=errors[0].rule,
                                    message=printable(f"{len(errors)} error(s): {errors[0].message}"))
            failure.text = "\n".join(lines)
        elif lines:
            ET.SubElement(case, "system-out").text = "\n".join(lines)
    root = ET.Element("testsuites", tests=str(len(grouped)), failures=str(failing))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
