"""engine.templates.templating: shell quoting, the Ansible-style filters and tests, strict and
sandboxed rendering, typed values."""

from __future__ import annotations

import shlex
import subprocess
from typing import Any

import pytest
from support import python_calls

from engine.errors import TemplateError
from engine.templates import templating


def render(text: str, shell: bool = False, **ctx: Any) -> str:
    return templating.render(text, ctx, shell=shell)


# -- shell quoting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [
    "x; touch /tmp/pwned", "$(reboot)", "`id`", "a b", "it's", "*", "", "-rf /", "a\nb", '"; echo "',
])
def test_a_substituted_value_stays_one_shell_argument(value: str) -> None:
    command = render("printf '%s\\n' {{ v }}", shell=True, v=value)
    assert shlex.split(command) == ["printf", "%s\\n", value]
    out = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, check=True).stdout
    assert out == value + "\n"


def test_raw_substitutes_without_quoting() -> None:
    assert render("ls {{ opts | raw }} {{ path }}", shell=True, opts="-l -a", path="my dir") == "ls -l -a 'my dir'"


def test_quote_is_not_quoted_a_second_time() -> None:
    assert render("echo {{ v | quote }}", shell=True, v="a b") == "echo 'a b'"
    assert render("echo {{ v | quote }}", v="a b") == "echo 'a b'"  # and quotes outside `run` too


def test_shell_rendering_quotes_numbers_booleans_none_and_structures_as_text() -> None:
    assert render("x {{ n }} {{ b }} {{ z }}", shell=True, n=42, b=True, z=None) == "x 42 true ''"
    assert render("x {{ d }}", shell=True, d={"b": 1, "a": [1, 2]}) == """x '{"a": [1, 2], "b": 1}'"""


def test_plain_text_rendering_does_not_quote() -> None:
    assert render("Host {{ h }} is {{ ok }}", h="db 1; x", ok=False) == "Host db 1; x is false"


def test_text_without_template_markers_is_returned_as_is() -> None:
    assert templating.render("echo {not a template}", {}) == "echo {not a template}"
    assert not templating.has_template("a } b {")


# -- filters and tests ---------------------------------------------------------------------------------


def test_int_and_float_convert_text_and_fail_loudly_on_garbage() -> None:
    assert templating.evaluate("'  42\\n' | int", {}) == 42
    assert templating.evaluate("'ff' | int(base=16)", {}) == 255
    assert templating.evaluate("'0.5' | float", {}) == 0.5
    assert templating.evaluate("'n/a' | int(7)", {}) == 7
    with pytest.raises(TemplateError, match="cannot convert 'n/a' to an integer"):
        templating.evaluate("'n/a' | int", {})
    with pytest.raises(TemplateError, match="to a number"):
        templating.evaluate("'x' | float", {})


def test_regex_search_returns_the_match_or_a_group_or_none() -> None:
    ctx = {"s": "usage 96% on /var"}
    assert templating.evaluate("s | regex_search('[0-9]+%')", ctx) == "96%"
    assert templating.evaluate("s | regex_search('([0-9]+)%', '\\\\1')", ctx) == "96"
    assert templating.evaluate("s | regex_search('nothing')", ctx) is None
    assert templating.evaluate("s | regex_search('USAGE', ignorecase=True)", ctx) == "usage"


def test_regex_replace_substitutes_every_match() -> None:
    assert templating.evaluate("'a1b22c' | regex_replace('[0-9]+', '#')", {}) == "a#b#c"
    assert templating.evaluate("'k=v' | regex_replace('(\\\\w)=(\\\\w)', '\\\\2=\\\\1')", {}) == "v=k"


def test_from_json_and_to_json_round_trip() -> None:
    value = templating.evaluate("'{\"b\": [1, 2], \"a\": null}' | from_json", {})
    assert value == {"b": [1, 2], "a": None}
    assert templating.evaluate("v | to_json", {"v": value}) == '{"a": null, "b": [1, 2]}'
    with pytest.raises(TemplateError, match="from_json: not valid JSON"):
        templating.evaluate("'{' | from_json", {})


def test_urlencode_escapes_for_a_url() -> None:
    assert render("q={{ v | urlencode }}", v="a b&c/d") == "q=a%20b%26c/d"
    assert render("{{ d | urlencode }}", d={"vhost": "/", "q": "x y"}) == "vhost=%2F&q=x+y"  # a query string
    assert render("{{ v | urlencode | replace('/', '%2F') }}", v="/") == "%2F"  # a path segment


def test_search_and_match_tests() -> None:
    ctx = {"s": "error: disk full"}
    assert templating.evaluate("s is search('disk')", ctx) is True
    assert templating.evaluate("s is match('disk')", ctx) is False
    assert templating.evaluate("s is match('ERROR', ignorecase=True)", ctx) is True


def test_trim_and_the_other_jinja_builtins_are_available() -> None:
    assert render("[{{ v | trim }}] {{ l | join(',') }} {{ l | length }}", v="  x \n", l=[1, 2]) == "[x] 1,2 2"


# -- strict, positioned errors --------------------------------------------------------------------------


def test_an_undefined_name_is_an_error_never_an_empty_string() -> None:
    with pytest.raises(TemplateError, match="undefined name: 'nope' is undefined"):
        templating.render("echo {{ nope }}", {})


def test_a_missing_attribute_is_an_error_too() -> None:
    with pytest.raises(TemplateError, match="has no attribute 'missing'"):
        templating.render("{{ steps.x.missing }}", {"steps": {"x": {}}})
    with pytest.raises(TemplateError):
        templating.evaluate("steps.x.missing == 1", {"steps": {"x": {}}})


def test_template_errors_name_the_place_they_come_from() -> None:
    with pytest.raises(TemplateError) as info:
        templating.render("{{ nope }}", {}, where="runbooks/disk.yaml:12:10")
    assert str(info.value).startswith("runbooks/disk.yaml:12:10: undefined name")
    assert info.value.where == "runbooks/disk.yaml:12:10"


def test_a_syntax_error_is_a_template_error() -> None:
    with pytest.raises(TemplateError, match="template syntax error"):
        templating.render("{{ a + }}", {"a": 1})


def test_a_mapping_key_wins_over_a_method_of_the_same_name() -> None:
    """`steps.x.items` is the per-item results of a for_each step, not dict.items."""
    ctx = {"steps": {"x": {"items": [{"stdout": "a"}], "keys": "k", "values": "v"}}}
    assert templating.evaluate("steps.x.items[0].stdout", ctx) == "a"
    assert render("{{ steps.x.keys }}-{{ steps.x['values'] }}", **ctx) == "k-v"


# -- the sandbox -----------------------------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ inputs.__class__.__base__ }}",
    "{{ inputs['__class__'] }}",
    "{{ inputs | attr('__class__') }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ namespace.__init__ }}",
    "{{ '{0.__class__}'.format(1) }}",
    "{{ [].append(1) }}",
    "{{ inputs.update(x=1) }}",
]


@pytest.mark.parametrize("template", ESCAPES)
@pytest.mark.parametrize("shell", [False, True])
def test_sandbox_escapes_are_refused(template: str, shell: bool) -> None:
    with pytest.raises(TemplateError, match="refused by the sandbox"):
        templating.render(template, {"inputs": {"host": "db-1"}}, shell=shell)


@pytest.mark.parametrize("expression", ["''.__class__", "inputs.__class__.__mro__", "cycler.__init__"])
def test_sandbox_escapes_are_refused_in_expressions(expression: str) -> None:
    with pytest.raises(TemplateError, match="refused by the sandbox"):
        templating.evaluate(expression, {"inputs": {}})


def test_context_data_cannot_be_modified_by_a_template() -> None:
    inputs = {"host": "db-1"}
    with pytest.raises(TemplateError):
        templating.render("{{ inputs.pop('host') }}", {"inputs": inputs})
    assert inputs == {"host": "db-1"}


# -- typed values -----------------------------------------------------------------------------------------


def test_render_value_keeps_the_type_of_a_single_expression() -> None:
    ctx = {"n": "41", "doc": '{"a": [1]}'}
    assert templating.render_value("{{ n | int + 1 }}", ctx) == 42
    assert templating.render_value("  {{ n | int > 40 }}  ", ctx) is True
    assert templating.render_value("{{ doc | from_json }}", ctx) == {"a": [1]}
    assert templating.render_value("{{ none }}", {"none": None}) is None


def test_render_value_gives_text_for_mixed_templates() -> None:
    ctx = {"a": 1, "b": 2}
    assert templating.render_value("n={{ a }}", ctx) == "n=1"
    assert templating.render_value("{{ a }}{{ b }}", ctx) == "12"


def test_render_value_renders_inside_mappings_and_lists() -> None:
    body = {"name": "{{ q }}", "limits": ["{{ n | int }}", 3, True], "note": "q={{ q }}"}
    assert templating.render_value(body, {"q": "jobs", "n": "5"}) == {
        "name": "jobs", "limits": [5, 3, True], "note": "q=jobs"}


# -- the cost of a render (a simulated step renders a command, an output and an expression) ---------


def _python_calls(fn: Any) -> list[str]:
    """The Python functions a call of `fn` enters (after a first call compiled what it needs)."""
    fn()
    return python_calls(fn)


@pytest.mark.parametrize("text, shell", [("check --host {{ inputs.host }} --n 3", True), ("{{ state.n }}", False),
                                         ("{{ state.n }} of {{ inputs.host }}", False)])
def test_rendering_again_runs_no_import_machinery_or_abc_check(text: str, shell: bool) -> None:
    """A render that was compiled before imports nothing and reads a dict without
    ABCMeta.__instancecheck__ (both are Python-level calls, paid at every simulated step)."""
    ctx = {"inputs": {"host": "db-1"}, "state": {"n": 5}}
    entered = _python_calls(lambda: templating.render(text, ctx, shell=shell))
    assert [f for f in entered if f.startswith("<frozen")] == []
    assert any(f.endswith("_quick_eval.py:name_attr") for f in entered)  # the quick tier answered


def test_a_names_attribute_is_read_in_one_call() -> None:
    """`state.n`, `inputs.host`: the name and its key in one closure (no lookup, then
    _getattr), for a dict; anything else still goes through _getattr's rules."""
    ctx = {"inputs": {"host": "db-1"}, "state": {"n": 5}, "text": "abc"}
    entered = _python_calls(lambda: templating.render("{{ state.n }} of {{ inputs.host }}", ctx))
    quick = [f.split(":")[-1] for f in entered if "_quick_eval.py" in f]
    assert quick.count("name_attr") == 2 and "lookup" not in quick and "_getattr" not in quick
    assert templating.render("{{ text.upper() }}", ctx) == "ABC"
    assert "_getattr" in [f.split(":")[-1] for f in _python_calls(lambda: templating.evaluate("text.upper", ctx))]


def test_a_one_expression_template_renders_without_building_a_list() -> None:
    """`{{ state.n }}` renders as the joined parts did, without a comprehension."""
    ctx = {"state": {"n": 5, "on": True, "m": {"a": [1]}}}
    for text, expected in (("{{ state.n }}", "5"), ("{{ state.on }}", "true"), ("{{ state.m }}", '{"a": [1]}')):
        assert templating.render(text, ctx) == expected
        assert not any("<listcomp>" in f for f in _python_calls(lambda t=text: templating.render(t, ctx)))


def test_a_command_of_plain_words_and_text_values_is_quoted_without_the_scanner() -> None:
    """`check --host {{ host }}`: each value quoted in its place, as shell.fill would."""
    ctx = {"inputs": {"host": "db 1; rm -rf /"}}
    text = "check --host {{ inputs.host }} --n 3"
    entered = _python_calls(lambda: templating.render(text, ctx, shell=True))
    assert templating.render(text, ctx, shell=True) == "check --host 'db 1; rm -rf /' --n 3"
    assert not any(f.endswith("shell.py:fill") for f in entered)


COMMANDS = ["run {{ v }}", "run {{ v }} and {{ w }}", 'echo "{{ v }}" {{ w }}', "echo '{{ v }}'", "sh -c {{ v }}",
            "cat <<EOF\n{{ v }}\nEOF", "# {{ v }}", "{{ v }}{{ w }}", "x=$({{ v }})", "echo a\0b {{ v }}",
            "echo a\0b {# no value #}", "echo {# no value #} plain"]
VALUES = ["plain", "two words", "it's", "", "a\0b", "EOF", 7, None, True, [1, "a b"], templating.Raw("raw | x"),
          templating.Placeholder("inputs.v"), templating.Masked()]


@pytest.mark.parametrize("text", COMMANDS)
def test_every_command_is_what_the_general_path_makes_of_it(text: str) -> None:
    """The quoted-in-place command equals Jinja's (the general way: skeleton, slots,
    shell.fill) for every kind of value, and fails with the same message."""
    jinja = templating.renderer(text, True, tier="jinja")
    for v in VALUES:
        for w in ("w", templating.Raw("|"), 3):
            ctx = {"v": v, "w": w}
            try:
                expected: object = jinja(ctx)
            except Exception as exc:  # Unsafe: the same message must come out of render
                expected = f"TemplateError: {templating._explain(exc)}"
            try:
                got: object = templating.render(text, ctx, shell=True)
            except TemplateError as exc:
                got = f"TemplateError: {exc}"
            assert got == expected, (v, w)


def test_a_command_evaluates_each_value_once_in_order_when_one_is_raw() -> None:
    """A raw value after a plain one sends the command the general way with the value
    already evaluated: nothing is evaluated twice (a `random` filter would draw again)."""
    calls: list[int] = []

    def tick() -> str:
        calls.append(1)
        return "a b" if len(calls) == 1 else templating.Raw("| c")

    assert templating.render("run {{ tick() }} {{ tick() }}", {"tick": tick}, shell=True) == "run 'a b' | c"
    assert len(calls) == 2


@pytest.mark.parametrize("value", ["db-1", "db 1; rm -rf /", "", 7, ["a b", "c"], {"k": "v w"}, None, "a\0b", "é'\""])
@pytest.mark.parametrize("text", ["check --host {{ h }} --n 3", "{{ h }}", "ping {{ h }}", "{{ h }} | wc"])
def test_a_command_with_one_value_renders_as_the_general_path_does(text: str, value: Any) -> None:
    """One value between two texts: joined once and quoted between them (no loop over the
    parts); a value that is not plain text goes the general way. Jinja's tier agrees."""
    ctx = {"h": value}
    quick = templating.renderer(text, True, tier="quick")
    assert quick.__qualname__.startswith("_one_value_renderer")
    assert _outcome(lambda: quick(ctx)) == _outcome(lambda: templating.renderer(text, True, tier="jinja")(ctx))


def _outcome(render: Any) -> tuple[str, str]:
    try:
        return "ok", render()
    except Exception as exc:
        return "error", type(exc).__name__
