"""YAML syntax errors point where the fix goes and say how to write it (engine/language/_yaml_hints.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import unmark

from engine.language.formats import render
from engine.language.loader import LoadError, load_text
from engine.language.validation import validate_paths

HEAD = "kind: runbook\nversion: 1\nid: x\ntitle: X\ndetection:\n"

# (case, text with ‸ where the error must point, words the message must contain)
CASES = [
    ("colon inside a value", HEAD + "  - id: a\n    run: curl -H Authorization‸: Bearer {{ x }}\n",
     ["inside the value of 'run'", 'run: "curl -H Authorization: Bearer {{ x }}"', "run: |"]),
    ("colon inside a header value", HEAD + "  - id: a\n    http:\n      url: http://127.0.0.1/\n"
     "      headers:\n        Authorization: Bearer {{ x }}‸: y\n",
     ["inside the value of 'Authorization'", "quote the whole value"]),
    ("template at the start of a value", HEAD + "  - id: a\n    run: ‸{{ inputs.x }} --force\n",
     ["starts with '{{' must be quoted", 'run: "{{ inputs.x }} --force"']),
    ("template alone as a value", HEAD + "  - id: a\n    run: ‸{{ inputs.x }}\n",
     ["starts with '{{' must be quoted", 'run: "{{ inputs.x }}"']),
    ("template as a list item", HEAD + "  - id: a\n    for_each:\n      - ‸{{ inputs.x }}\n",
     ["starts with '{{' must be quoted"]),
    ("template with single quotes inside", HEAD + "  - id: a\n    run: ‸{{ x | default('a') }}\n",
     ["""run: "{{ x | default('a') }}\""""]),
    ("tab indentation", HEAD + "  - id: a\n‸\trun: x\n", ["tab", "spaces"]),
    ("unclosed double quote", HEAD + '  - id: a\n    run: ‸"echo hi\n    timeout: 5s\n',
     ["quote is never closed"]),
    ("unclosed bracket", HEAD + "  - id: a\n    run: x\n    exit_codes: ‸[0, 1\n    timeout: 5s\n",
     ["'[' is never closed", "add the ']'"]),
    ("unclosed brace", HEAD + "  - ‸{id: a, run: x\n", ["'{' is never closed"]),
    ("stray dash", HEAD + "  - id: a\n    run: x\n    ‸- id: b\n", ["list item ('-')", "stray '-'"]),
    ("key where a list item belongs", HEAD + "  - id: a\n  ‸run: x\n", ["start each item with '- '"]),
    ("no space after a key's colon", HEAD + "  - id: a\n    run:‸x\n    timeout: 5s\n",
     ["space after its colon"]),
    ("backslash in double quotes", HEAD + '  - id: a\n    run: "grep ‸\\d+ x"\n',
     ["backslash", "single quotes"]),
    ("leading star", HEAD + "  - id: a\n    run: ‸*.log\n", ["'*' starts an alias", '"*.log"']),
    ("text after a closing quote", HEAD + "  - id: a\n    run: 'echo' ‸x\n", ["after the closing quote"]),
    ("leading at sign", HEAD + "  - id: a\n    run: ‸@here\n", ["'@' cannot start", 'run: "@here"']),
]


@pytest.mark.parametrize(("text", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_common_mistakes_get_a_hint_at_the_place_to_fix(text: str, words: list[str]) -> None:
    clean, marks = unmark(text)
    with pytest.raises(LoadError) as caught:
        load_text(clean, "rb.yaml")
    diag = caught.value.diagnostic
    assert diag.rule == "RB001"
    assert [(diag.line, diag.column)] == marks, diag.message
    assert diag.message.startswith("YAML syntax error: ")
    for word in words:
        assert word in diag.message


def test_other_errors_keep_the_parser_words() -> None:
    with pytest.raises(LoadError) as caught:
        load_text("a: b\n---\nc: d\n", "rb.yaml")
    assert "more than one YAML document" in caught.value.diagnostic.message


def test_a_template_in_the_middle_of_a_plain_value_is_fine() -> None:
    doc = load_text(HEAD + "  - id: a\n    run: echo {{ x }} done\n", "rb.yaml")
    assert doc.data["detection"][0]["run"] == "echo {{ x }} done"


@pytest.mark.parametrize("text", [c[1] for c in CASES[:4]] + [HEAD + "  - id: a\n‸\trun: x\n"])
def test_validate_shows_the_source_line_and_a_caret_for_syntax_errors(text: str, tmp_path: Path) -> None:
    """The README promises `file:line:col: severity: message [RULE]`, the line and a caret."""
    clean, [(line, column)] = unmark(text)
    path = tmp_path / "rb.yaml"
    path.write_text(clean, encoding="utf-8")
    out = render(validate_paths([path]), "text").splitlines()
    assert out[0].startswith(f"{path}:{line}:{column}: error: YAML syntax error")
    source = clean.splitlines()[line - 1]
    assert out[1] == f"  {source}"
    assert out[2] == "  " + "".join(c if c == "\t" else " " for c in source[: column - 1]) + "^"


def test_validate_shows_the_line_of_a_byte_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"kind: runbook\ntitle: caf\xe9\n")
    out = render(validate_paths([path]), "text").splitlines()
    assert out[0].startswith(f"{path}:2:11: error: file is not UTF-8")
    assert out[1] == "  title: caf\ufffd" and out[2] == "  " + " " * 10 + "^"
