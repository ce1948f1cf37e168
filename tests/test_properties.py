"""Property tests: whatever a file holds, `runbook validate` reports, never crashes.

Arbitrary YAML-ish text (fragments of real runbooks, YAML syntax, random mutations) and
arbitrary bytes go through the CLI: there is never a traceback or an internal error,
and the exit code is always 0, 1 or 2.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import mutated as mutated_data
from support import FIXTURES, MINIMAL_RUNBOOK

from engine.cli.commands import cli
from engine.language.loader import load_file, load_text
from engine.language.validation import check_document

FORMATS = ["text", "json", "github", "sarif", "junit"]
SEEDS = [
    MINIMAL_RUNBOOK,
    (FIXTURES / "valid-runbook.yaml").read_text(encoding="utf-8"),
    (FIXTURES / "valid-scenario.yaml").read_text(encoding="utf-8"),
    (FIXTURES / "ten-mistakes.yaml").read_text(encoding="utf-8"),
]

KEYS = ["kind", "version", "id", "title", "inputs", "targets", "defaults", "detection", "triage",
        "remediation", "recovery", "run", "manual", "ask", "wait", "notify", "set", "http", "when",
        "expect", "until", "every", "timeout", "retries", "rollback", "confirm", "target", "hosts",
        "runbook", "responses", "step", "attempts", "participants", "objectives", "on", "<<", "? x"]
VALUES = ["runbook", "scenario", "1", "2", "yes", "no", "~", "null", "5s", "30", "-1", "0x_", ".inf",
          "2001-12-14", '"{{ inputs.host }}"', "'{{ steps.a.stdout }}'", "{{ x", "steps.nope == 1",
          "[a, b]", "{a: 1}", "[]", "{}", "&a {x: 1}", "*a", "*nope", "!vault x", "!!str 1", "!!binary x",
          "|", ">", "|-", '"\\x01\\n::error::x"', "'it''s'", "é", "- a", "[", "{", "}", "]", "::", "%YAML"]
INDENTS = ["", "  ", "    ", "      ", "  - ", "    - ", "\t"]


@st.composite
def yaml_lines(draw: st.DrawFn) -> str:
    indent = draw(st.sampled_from(INDENTS))
    key = draw(st.sampled_from(KEYS))
    if draw(st.booleans()):
        return f"{indent}{key}: {draw(st.sampled_from(VALUES))}"
    if draw(st.integers(0, 5)) == 0:
        return f"{indent}{draw(st.sampled_from(['---', '...', '# runbook: ignore[RB109]', '- ']))}"
    return f"{indent}{key}:"


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """`text` after a few edits: lines dropped, repeated or replaced, characters inserted."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            lines.append(draw(yaml_lines()))
            continue
        at = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["drop", "repeat", "replace", "insert", "char", "cut"]))
        if edit == "drop":
            del lines[at]
        elif edit == "repeat":
            lines.insert(at, lines[at])
        elif edit == "replace":
            lines[at] = draw(yaml_lines())
        elif edit == "insert":
            lines.insert(at, draw(yaml_lines()))
        elif edit == "char":
            pos = draw(st.integers(0, len(lines[at])))
            lines[at] = lines[at][:pos] + draw(st.sampled_from(list(":-[]{}#&*!|>'\"\t ,?%@`\\"))) + lines[at][pos:]
        else:
            lines[at] = lines[at][: draw(st.integers(0, len(lines[at])))]
    return "\n".join(lines) + "\n"


yaml_ish = st.one_of(
    st.sampled_from(SEEDS).flatmap(mutated),
    st.lists(yaml_lines(), max_size=25).map(lambda lines: "\n".join(lines) + "\n"),
    st.text(max_size=200),
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("properties")


_counter = itertools.count()


def validate_bytes(workdir: Path, data: bytes, fmt: str, strict: bool = False) -> None:
    # The runbook a mutated scenario names must exist for its lint to run too.
    (workdir / "valid-runbook.yaml").write_bytes((FIXTURES / "valid-runbook.yaml").read_bytes())
    path = workdir / f"case{next(_counter)}.yaml"
    path.write_bytes(data)
    args = ["validate", "-f", fmt, str(path)] + (["--strict"] if strict else [])
    result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1, 2), result.output
    assert "Traceback" not in result.output
    assert "internal error" not in result.output
    if result.exit_code == 0 and fmt == "text":
        assert ": error: " not in result.stdout


_settings = settings(max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "250")), deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@_settings
@given(text=yaml_ish, fmt=st.sampled_from(FORMATS), strict=st.booleans())
def test_yaml_ish_text_never_crashes_validate(workdir: Path, text: str, fmt: str, strict: bool) -> None:
    validate_bytes(workdir, text.encode("utf-8"), fmt, strict)


@_settings
@given(data=st.binary(max_size=300), fmt=st.sampled_from(FORMATS))
def test_arbitrary_bytes_never_crash_validate(workdir: Path, data: bytes, fmt: str) -> None:
    validate_bytes(workdir, data, fmt)


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(prefix=st.sampled_from(SEEDS), data=st.binary(min_size=1, max_size=20))
def test_valid_files_with_random_bytes_appended_never_crash_validate(
    workdir: Path, prefix: str, data: bytes
) -> None:
    validate_bytes(workdir, prefix.encode("utf-8") + data, "text")


VALID_DOCUMENTS = {name: load_file(FIXTURES / name).data for name in ("valid-runbook.yaml", "valid-scenario.yaml")}


@settings(max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "250")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=st.sampled_from(sorted(VALID_DOCUMENTS)).flatmap(lambda name: mutated_data(VALID_DOCUMENTS[name])))
def test_schema_invalid_documents_are_still_linted_without_crashing(data: dict[str, Any]) -> None:
    """Mutated documents go through schema, pruning, model and lint; each problem is positioned."""
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    checked = check_document(load_text(text, str(FIXTURES / "mutated.yaml")))
    lines = text.count("\n")
    for diag in checked.diagnostics:
        assert 1 <= diag.line <= lines and diag.column >= 1, diag
    assert (checked.model is None) == any(d.is_error for d in checked.diagnostics)
