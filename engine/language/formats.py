"""Formats of a validation report: text (with the source line and a caret), json, GitHub
Actions annotations, SARIF 2.1.0 and JUnit XML, each from the sorted diagnostics.

SARIF names every rule it uses with its rationale and level: it reads the whole rule
catalog (engine/language/lint.py), which is complete whether the diagnostics came from
lint just now or from the validation cache.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from .diagnostics import Diagnostic, Report, caret_line, printable

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



def _source_line(lines: dict[str, list[str]], report: Report, diag: Diagnostic) -> str | None:
    if diag.file not in lines:
        text = report.sources.get(diag.file)
        # Split each file once: 20,000 diagnostics in one file must not split it 20,000 times.
        lines[diag.file] = text.splitlines() if text is not None else []
    found = lines[diag.file]
    return found[diag.line - 1] if 0 < diag.line <= len(found) else None



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



SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


@formatter("sarif")
def format_sarif(report: Report) -> str:
    """SARIF 2.1.0, as GitHub code scanning and editors read it."""
    from engine import __version__

    from .lint import rule_catalog

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
