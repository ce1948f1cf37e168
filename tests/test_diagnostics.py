"""engine.language.diagnostics and formats: the Diagnostic record and the text, json, github, sarif, junit formats."""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree as ET

import jsonschema
import pytest
from support import FIXTURES

from engine import __version__
from engine.language.diagnostics import Diagnostic, Report, Severity, dotted, json_pointer
from engine.language.formats import FORMATS, format_github, format_json, format_junit, format_sarif, format_text, render
from engine.language.lint import rule_catalog

ERROR, WARNING = Severity.ERROR, Severity.WARNING

SOURCE = "kind: runbook\nversion: 1\nid: Bad_Id\n\ttimout: 5s\n"


def diag(line: int, column: int, rule: str = "RB010", message: str = "problem",
         severity: Severity = ERROR, file: str = "a.yaml",
         path: tuple[str | int, ...] = ()) -> Diagnostic:
    return Diagnostic(file, line, column, severity, rule, message, path)


@pytest.fixture
def report() -> Report:
    """Two files: a.yaml with an error and a warning (given out of order), b.yaml clean."""
    return Report(
        files=["a.yaml", "b.yaml"],
        diagnostics=[
            diag(4, 2, "RB010", "unknown key 'timout' in runbook (did you mean 'timeout'?)"),
            diag(3, 5, "RB111", "runbook has no detection phase", WARNING, path=("id",)),
        ],
        sources={"a.yaml": SOURCE},
    )


# -- the record ------------------------------------------------------------------------------


def test_json_pointer_escapes_tilde_and_slash() -> None:
    assert json_pointer(("triage", 0, "a/b", "c~d")) == "/triage/0/a~1b/c~0d"
    assert json_pointer(()) == ""


def test_dotted_path_reads_like_the_yaml() -> None:
    assert dotted(("triage", 0, "run")) == "triage[0].run"
    assert dotted(()) == "(top level)"


def test_report_counts_and_sorts_by_file_then_position(report: Report) -> None:
    report.diagnostics.append(diag(1, 1, file="0.yaml"))
    assert (report.errors, report.warnings) == (2, 1)
    assert [(d.file, d.line) for d in report.sorted()] == [("0.yaml", 1), ("a.yaml", 3), ("a.yaml", 4)]


def test_diagnostics_compare_without_their_path() -> None:
    assert diag(1, 2, path=("a",)) == diag(1, 2, path=("b",))


# -- text ------------------------------------------------------------------------------------


def test_text_has_location_severity_message_and_rule(report: Report) -> None:
    lines = format_text(report).splitlines()
    assert lines[0] == "a.yaml:3:5: warning: runbook has no detection phase [RB111]"
    assert lines[3] == ("a.yaml:4:2: error: unknown key 'timout' in runbook "
                        "(did you mean 'timeout'?) [RB010]")


def test_text_shows_the_source_line_and_a_caret_under_the_column(report: Report) -> None:
    lines = format_text(report).splitlines()
    assert lines[1] == "  id: Bad_Id"
    assert lines[2] == "      ^"
    assert lines[2].index("^") == lines[1].index("B")


def test_caret_keeps_tabs_so_it_lines_up_in_a_terminal(report: Report) -> None:
    lines = format_text(report).splitlines()
    assert lines[4] == "  \ttimout: 5s"
    assert lines[5] == "  \t^"


def test_text_ends_with_a_summary(report: Report) -> None:
    assert format_text(report).endswith("\n2 files checked: 1 error(s), 1 warning(s)\n")
    assert format_text(Report(files=["x.yaml"])) == "1 file checked: no problems\n"


def test_text_without_a_source_line_prints_only_the_location() -> None:
    text = format_text(Report(files=["gone.yaml"], diagnostics=[diag(1, 1, "RB000", "cannot read file",
                                                                       file="gone.yaml")]))
    assert text == "gone.yaml:1:1: error: cannot read file [RB000]\n1 file checked: 1 error(s), 0 warning(s)\n"


def test_text_past_the_end_of_the_source_has_no_source_line() -> None:
    report = Report(files=["a.yaml"], diagnostics=[diag(99, 1)], sources={"a.yaml": SOURCE})
    assert len(format_text(report).splitlines()) == 2


def test_colour_only_when_asked(report: Report) -> None:
    plain = format_text(report)
    coloured = render(report, "text", color=True)
    assert "\033[" not in plain
    assert "\033[1;31merror\033[0m" in coloured
    assert "\033[1;33mwarning\033[0m" in coloured
    assert render(report, "text") == plain


def test_control_characters_from_the_file_cannot_forge_log_lines() -> None:
    """A key like "a\\n::error ..." must not start a new line (a fake CI annotation)."""
    evil = diag(5, 1, message="unknown key 'a\n::error file=x.yaml::fake\x1b[31m' in runbook")
    text = format_text(Report(files=["a.yaml"], diagnostics=[evil]))
    assert not any(line.startswith("::") for line in text.splitlines())
    assert "\x1b" not in text
    assert "a\\n::error" in text


# -- json ------------------------------------------------------------------------------------


def test_json_parses_back_with_counts_and_sorted_diagnostics(report: Report) -> None:
    payload = json.loads(format_json(report))
    assert payload["files"] == ["a.yaml", "b.yaml"]
    assert (payload["errors"], payload["warnings"]) == (1, 1)
    assert payload["diagnostics"][0] == {
        "file": "a.yaml", "line": 3, "column": 5, "severity": "warning", "rule": "RB111",
        "message": "runbook has no detection phase", "path": "/id",
    }
    assert [d["rule"] for d in payload["diagnostics"]] == ["RB111", "RB010"]


def test_json_of_a_clean_report() -> None:
    assert json.loads(format_json(Report(files=["x.yaml"]))) == {
        "files": ["x.yaml"], "errors": 0, "warnings": 0, "diagnostics": []}


# -- github ----------------------------------------------------------------------------------


def test_github_workflow_commands(report: Report) -> None:
    assert format_github(report).splitlines() == [
        "::warning file=a.yaml,line=3,col=5,title=RB111::runbook has no detection phase",
        "::error file=a.yaml,line=4,col=2,title=RB010::unknown key 'timout' in runbook "
        "(did you mean 'timeout'?)",
    ]


def test_github_escapes_percent_and_newlines_in_messages() -> None:
    out = format_github(Report(files=["a.yaml"], diagnostics=[diag(1, 1, message="100% sure\r\nnext")]))
    assert out == "::error file=a.yaml,line=1,col=1,title=RB010::100%25 sure%0D%0Anext\n"


def test_github_escapes_commas_and_colons_in_properties() -> None:
    out = format_github(Report(files=["c:a,b.yaml"], diagnostics=[diag(1, 1, file="c:a,b%.yaml")]))
    assert out.startswith("::error file=c%3Aa%2Cb%25.yaml,line=1,col=1,title=RB010::")


def test_github_of_a_clean_report_is_empty() -> None:
    assert format_github(Report(files=["a.yaml"])) == ""


# -- sarif -----------------------------------------------------------------------------------

SARIF_SCHEMA: dict[str, Any] = json.loads((FIXTURES / "sarif-2.1.0.json").read_text(encoding="utf-8"))


def assert_valid_sarif(text: str) -> dict[str, Any]:
    """Validate against the official schema with the draft it declares (draft-04)."""
    document: dict[str, Any] = json.loads(text)
    validator_class = jsonschema.validators.validator_for(SARIF_SCHEMA)
    validator_class.check_schema(SARIF_SCHEMA)
    errors = [f"{list(e.absolute_path)}: {e.message}"
              for e in validator_class(SARIF_SCHEMA).iter_errors(document)]
    assert errors == []
    return document


def test_the_sarif_schema_fixture_is_the_official_one() -> None:
    assert SARIF_SCHEMA["id"].startswith("https://docs.oasis-open.org/sarif/sarif/v2.1.0/")
    assert jsonschema.validators.validator_for(SARIF_SCHEMA) is jsonschema.Draft4Validator


def test_sarif_validates_against_the_official_schema(report: Report) -> None:
    report.diagnostics.append(diag(0, 0, "RB999", "a rule no catalog knows", file="dir with space/c.yaml"))
    document = assert_valid_sarif(format_sarif(report))
    assert document["version"] == "2.1.0"
    assert document["runs"][0]["tool"]["driver"]["version"] == __version__


def test_sarif_results_point_at_their_rules_and_regions(report: Report) -> None:
    run = json.loads(format_sarif(report))["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    first = run["results"][0]
    assert (first["ruleId"], first["level"], first["message"]["text"]) == (
        "RB111", "warning", "runbook has no detection phase")
    assert first["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "a.yaml"}, "region": {"startLine": 3, "startColumn": 5}}
    levels = {rule["id"]: rule["defaultConfiguration"]["level"] for rule in rules}
    assert levels == {"RB010": "error", "RB111": rule_catalog()["RB111"]["severity"]}
    assert levels["RB111"] == "warning"


def test_sarif_uris_are_relative_and_percent_encoded() -> None:
    report = Report(files=["x"], diagnostics=[diag(1, 1, file="./dir with space/a#1.yaml"),
                                              diag(1, 1, file="win\\path.yaml")])
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in json.loads(format_sarif(report))["runs"][0]["results"]]
    assert uris == ["dir%20with%20space/a%231.yaml", "win/path.yaml"]


def test_sarif_of_a_clean_report_is_valid() -> None:
    document = assert_valid_sarif(format_sarif(Report(files=["a.yaml"])))
    assert document["runs"][0]["results"] == []


# -- junit -----------------------------------------------------------------------------------


def parse_junit(report: Report) -> ET.Element:
    text = format_junit(report)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(text.split("\n", 1)[1])


def test_junit_has_one_testcase_per_file_and_counts_failures() -> None:
    report = Report(files=["a.yaml", "b.yaml", "c.yaml"],
                    diagnostics=[diag(2, 1, "RB010", "first"), diag(1, 1, "RB012", "second"),
                                 diag(3, 3, "RB109", "slow", WARNING, file="b.yaml")])
    root = parse_junit(report)
    suite = root.find("testsuite")
    assert suite is not None
    assert (root.get("tests"), root.get("failures")) == ("3", "1")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert list(cases) == ["a.yaml", "b.yaml", "c.yaml"]
    failure = cases["a.yaml"].find("failure")
    assert failure is not None
    assert (failure.get("type"), failure.get("message")) == ("RB012", "2 error(s): second")
    assert (failure.text or "").splitlines() == ["a.yaml:1:1: error: second [RB012]",
                                                 "a.yaml:2:1: error: first [RB010]"]


def test_junit_puts_warnings_of_a_passing_file_in_system_out() -> None:
    report = Report(files=["b.yaml"], diagnostics=[diag(3, 3, "RB109", "slow", WARNING, file="b.yaml")])
    case = parse_junit(report).find("testsuite/testcase")
    assert case is not None and case.find("failure") is None
    assert case.findtext("system-out") == "b.yaml:3:3: warning: slow [RB109]"


def test_junit_clean_file_is_an_empty_passing_testcase() -> None:
    case = parse_junit(Report(files=["c.yaml"])).find("testsuite/testcase")
    assert case is not None and list(case) == []


def test_junit_stays_well_formed_with_markup_and_control_characters() -> None:
    message = "unknown key 'a<b>&\"c\x01\x1b' in runbook"
    report = Report(files=["a&b.yaml"], diagnostics=[diag(1, 1, message=message, file="a&b.yaml")])
    failure = parse_junit(report).find("testsuite/testcase/failure")
    assert failure is not None
    assert "a<b>&\"c\\x01\\x1b" in (failure.get("message") or "")


# -- render ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_registered_format_renders_through_render(fmt: str, report: Report) -> None:
    assert render(report, fmt) == FORMATS[fmt](report)


def test_formats_are_the_five_documented_ones() -> None:
    assert sorted([*FORMATS, "text"]) == ["github", "json", "junit", "sarif", "text"]


def test_text_of_many_diagnostics_in_one_file_is_not_quadratic() -> None:
    import time

    source = "".join(f"k{i}: 1\n" for i in range(20_000))
    report = Report(files=["big.yaml"], sources={"big.yaml": source},
                    diagnostics=[diag(i, 1, file="big.yaml") for i in range(1, 20_001)])
    started = time.perf_counter()
    lines = format_text(report).splitlines()
    assert time.perf_counter() - started < 2.0
    assert lines[-4:-1] == ["big.yaml:20000:1: error: problem [RB010]", "  k19999: 1", "  ^"]
