"""The quick template scan (no Jinja) must agree with Jinja's own parse wherever it
answers, and leave to Jinja everything it does not fully understand."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import templating
from engine._template_scan import scan
from engine.lint import runbook_fields, step_fields
from engine.loader import load_file
from engine.model import build_runbook

ROOT = Path(__file__).resolve().parent.parent


def _jinja(text: str, expression: bool) -> templating.Analysis:
    return templating._analyze_with_jinja(text, expression)


def _agrees(text: str, expression: bool) -> None:
    quick = scan(text, expression=expression)
    slow = _jinja(text, expression)
    if quick is None:
        return  # left to Jinja: always allowed
    assert slow.error is None, f"scan accepted what Jinja rejects: {text!r}: {slow.error}"
    assert frozenset(quick.names) == slow.names, text
    assert sorted(quick.refs) == sorted(slow.refs), text
    assert frozenset(quick.filters) == slow.filters, text
    assert frozenset(quick.tests) == slow.tests, text
    assert frozenset(quick.private) == slow.private, text


def _fields() -> list[tuple[str, bool]]:
    out = []
    for path in sorted(glob.glob(str(ROOT / "runbooks" / "*.yaml"))):
        rb = build_runbook(load_file(path))
        fields = [f for s in rb.steps(rollbacks=True) for f in step_fields(s)] + list(runbook_fields(rb))
        out += [(f.text, f.expression) for f in fields]
    return out


@pytest.mark.parametrize(("text", "expression"), _fields())
def test_scan_agrees_with_jinja_on_the_shipped_runbooks(text: str, expression: bool) -> None:
    _agrees(text, expression)


CASES = [
    ("df {{ inputs.mount }} | tail -n1", False),
    ("{{ steps.usage.outputs.pct + 1 }} and {{ vars.count * 2 }}", False),
    ("{{ steps['usage']['status'] }} {{ steps[item].stdout }} {{ a.0 }}", False),
    ("{{ stdout | regex_search('[0-9]+') | int(0) }}", False),
    ("{{ x if y else z }}", False),
    ("{{ ''.__class__.__mro__ }} {{ inputs['_secret'] }}", False),
    ("outputs.pct >= inputs.threshold and not vars.flag", True),
    ("stdout is search('ok') or exit_code in [0, 3]", True),
    ("x is not defined", True),
    ("1 < vars.count < 5", True),
    ("-vars.count | abs", True),
    ("inputs.host not in ['db-1']", True),
    ("'a' ~ inputs.x ~ (1 + 2) ** 2 // 3 % 4", True),
]


@pytest.mark.parametrize(("text", "expression"), CASES)
def test_scan_agrees_with_jinja_on_hand_written_cases(text: str, expression: bool) -> None:
    assert scan(text, expression=expression) is not None, "this is in the subset"
    _agrees(text, expression)


@pytest.mark.parametrize(("text", "expression"), [
    ("{% if x %}y{% endif %}", False), ("{# note #}", False), ("{{- x -}}", False),
    ("{{ x }", False), ("{{ }}", False), ("{{ x y }}", False), ("{{ f(x) }}", False),
    ("{{ a[1:2] }}", False), ("{{ {'a': 1} }}", False), ("{{ 'a' 'b' }}", False),
    ("x is divisibleby 3", True), ("x is defined if y else z", True), ("x | f(k=1)", True),
    ("1_000", True), ("1e3", True), ("a == = b", True), ("'\\n'", True),
])
def test_scan_leaves_anything_unusual_or_invalid_to_jinja(text: str, expression: bool) -> None:
    assert scan(text, expression=expression) is None


_ATOMS = st.sampled_from(["x", "inputs.host", "steps.a.stdout", "1", "2.5", "'s'", "true", "none",
                          "steps['a']", "a[b]", "a.0", "(x)", "[1, x]", "vars._p",
                          # found by longer runs: leading zeros, attributes of parenthesised names
                          "0", "01", ".5", "(x).y", "[x][0]", "x['_z']", "{", "=", "\n"])
_OPS = st.sampled_from([" and ", " or ", " == ", " != ", " < ", " >= ", " in ", " not in ", " + ",
                        " - ", " * ", " / ", " // ", " % ", " ** ", " ~ ", " | int", " | default(y)",
                        " is defined", " is not none", " is search('a')", " if ", " else ", " not ",
                        ".", "[", "]", "(", ")", ",", " "])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_ATOMS, _OPS), min_size=1, max_size=9))
def test_scan_never_accepts_what_jinja_rejects(parts: list[str]) -> None:
    _agrees("".join(parts), True)
    _agrees("echo {{ " + "".join(parts) + " }}", False)


def test_static_filter_test_and_global_names_match_the_real_environment() -> None:
    env = templating.environment(False)
    assert templating.known_filters() == frozenset(env.filters)
    assert templating.known_tests() == frozenset(env.tests)
    assert templating.known_globals() == frozenset(env.globals)
