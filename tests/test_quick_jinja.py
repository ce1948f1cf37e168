"""The quick template scan (no Jinja) must agree with Jinja's own parse wherever it
answers, and leave to Jinja everything it does not fully understand."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.language.builder import build_runbook
from engine.language.fields import runbook_fields, step_fields
from engine.language.loader import load_file
from engine.templates import templating
from engine.templates._quick_jinja import scan

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


# -- evaluation agrees with Jinja ----------------------------------------------------------------

from collections import deque  # noqa: E402
from types import MappingProxyType  # noqa: E402
from typing import Any  # noqa: E402

from engine.templates import _quick_eval as quick  # noqa: E402

CONTEXT: dict[str, Any] = {
    "inputs": {"host": "db-1", "threshold": 90, "evil": "x; rm -rf /", "hosts": ["a", "b"], "flag": False},
    "steps": {"usage": {"stdout": " 96\n", "outputs": {"pct": 96}, "status": "ok", "items": [1, 2],
                        "json": {"a": [1, {"b": 2}]}}},
    "vars": {"count": 3, "name": None, "ratio": 0.5},
    "stdout": "42\n", "exit_code": 0, "outputs": {"pct": 96}, "item": "web-1",
    "text": "abc", "things": [3, 1, 2], "mapping": {"k": 1}, "view": MappingProxyType({"k": 2, "keys": 3}),
}

EVAL_EXPRESSIONS = [
    "outputs.pct >= inputs.threshold", "stdout | int < inputs.threshold", "inputs.flag or vars.count > 2",
    "not inputs.flag and steps.usage.status == 'ok'", "1 < vars.count < 5", "3 < vars.count < 5",
    "inputs.host in ['db-1', 'db-2']", "inputs.host not in inputs.hosts", "stdout is search('4')",
    "stdout is not match('x')", "-vars.count", "+vars.ratio", "vars.count ** 2 // 4 % 3",
    "vars.count / 2 - 1", "'a' ~ inputs.host ~ 1", "steps.usage.json.a[1].b", "steps['usage'].items[0]",
    "steps.usage.items", "inputs.hosts.0", "vars.name", "vars.name is none if false else 2",
    "inputs.host if inputs.flag else 'none'", "stdout | regex_search('[0-9]+') | int",
    "stdout | trim is defined", "things | sort", "text.upper", "mapping.keys", "view.k", "view.keys",
    "view.items", "exit_code.real",
]
FAILING_EXPRESSIONS = [
    "nosuch", "inputs.nosuch", "steps.missing.stdout", "inputs.hosts[5]", "mapping['x']",
    "inputs.host | int", "vars.count + inputs.host", "''.__class__", "things.append", "mapping.update",
    "vars.count / 0", "inputs.host if inputs.flag", "inputs['_secret']", "nosuch.attr", "view.nosuch",
    "exit_code.nosuch", "text.__class__",
]


def _jinja_eval(text: str) -> Any:
    env = templating.environment(False)
    return env.compile_expression(text, undefined_to_none=False)(**CONTEXT)


def _outcome(fn: Any) -> tuple[str, Any]:
    try:
        value = fn()
        str(value)  # Jinja defers some errors until a value is used
        return "ok", value
    except Exception as exc:
        return "error", type(exc).__name__


@pytest.mark.parametrize("text", EVAL_EXPRESSIONS + FAILING_EXPRESSIONS)
def test_quick_evaluation_agrees_with_jinja(text: str) -> None:
    compiled = quick.compile_expression(text, templating._quick())
    slow = _outcome(lambda: _jinja_eval(text))
    if compiled is None:
        return  # left to Jinja
    fast = _outcome(lambda: compiled(CONTEXT))
    if slow[0] == "ok" and callable(slow[1]):
        assert fast[0] == "ok" and repr(fast[1]).split(" at ")[0] == repr(slow[1]).split(" at ")[0]
        return
    assert fast == slow, text


@pytest.mark.parametrize("text", [e for e in EVAL_EXPRESSIONS
                                  if "defined" not in e and "sort" not in e and "is none" not in e])
def test_simple_expressions_take_the_quick_path(text: str) -> None:
    assert quick.compile_expression(text, templating._quick()) is not None


@pytest.mark.parametrize("shell", [False, True])
@pytest.mark.parametrize("text", [
    "df {{ inputs.host }} | tail", "echo {{ inputs.evil }}", "echo {{ inputs.evil | raw }}",
    "{{ vars.name }} {{ inputs.flag }} {{ inputs.hosts }} {{ steps.usage.json }}", "{{ stdout | int + 1 }}",
    "a{{ 'x' if inputs.flag else '' }}b", "{{ inputs.evil | quote }}",
])
def test_quick_rendering_agrees_with_jinja(text: str, shell: bool) -> None:
    assert quick.compile_parts(text, templating._quick()) is not None
    assert templating.renderer(text, shell, tier="quick")(CONTEXT) == \
        templating.renderer(text, shell, tier="jinja")(CONTEXT)


@pytest.mark.parametrize("obj", [{"a": 1}, [1], {1}, deque([1]), "s", 1, str, (x for x in ()), None])
@pytest.mark.parametrize("attribute", ["append", "pop", "update", "clear", "upper", "keys", "mro",
                                       "gi_frame", "_x", "__class__", "add", "rotate"])
def test_the_sandbox_rules_match_jinjas(obj: Any, attribute: str) -> None:
    env = templating.environment(False)
    value = getattr(obj, attribute, None)
    jinja_refuses = not env.is_safe_attribute(obj, attribute, value)
    assert quick.unsafe(obj, attribute) == jinja_refuses
