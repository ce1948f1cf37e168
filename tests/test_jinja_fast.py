"""The fast path for simple templates must agree with Jinja itself, result for result
and failure for failure; anything outside its subset must be left to Jinja."""

from __future__ import annotations

from typing import Any

import pytest

from engine.templates import templating
from engine.templates._jinja_fast import compile_expression, compile_template

CONTEXT: dict[str, Any] = {
    "inputs": {"host": "db-1", "mount": "/var", "threshold": 90, "evil": "x; rm -rf /", "hosts": [1, 2, 3]},
    "steps": {"usage": {"stdout": " 96\n", "outputs": {"pct": 96}, "status": "ok", "json": {"a": [1, {"b": 2}]}}},
    "vars": {"count": 3, "flag": False, "name": None},
    "stdout": "42\n",
    "exit_code": 0,
    "outputs": {"pct": 96},
}

TEMPLATES = [
    "plain text",
    "df {{ inputs.mount }} | tail -n1",
    "{{ inputs.host }}:{{ inputs.mount }}",
    "echo {{ inputs.evil }}",
    "echo {{ inputs.evil | raw }}",
    "echo {{ inputs.evil | quote }}",
    "{{ stdout | int }}",
    "{{ stdout | trim }}",
    "{{ steps.usage.outputs.pct + 1 }}",
    "{{ steps.usage.json.a[1].b }}",
    "{{ steps['usage']['status'] }}",
    "{{ vars.count * 2 }} {{ vars.flag }} {{ vars.name }}",
    "{{ inputs.hosts }}",
    "{{ 'a' ~ inputs.host ~ 1 }}",
    "{{ inputs.host if vars.flag else 'none' }}",
    "{{ inputs.host | upper | replace('DB', 'pg') }}",
    "{{ inputs.threshold / 7 }} {{ inputs.threshold // 7 }} {{ inputs.threshold % 7 }}",
    "{{ [1, 2] }} {{ (1, 2) }} {{ {'k': inputs.host} }}",
    "{{ stdout | regex_search('[0-9]+') }}",
    "line one\nline two {{ inputs.host }}\n",
]

EXPRESSIONS = [
    "outputs.pct >= inputs.threshold",
    "stdout | int < inputs.threshold",
    "steps.usage.status == 'ok' and not vars.flag",
    "vars.flag or vars.count > 2",
    "1 < vars.count < 5",
    "inputs.host in ['db-1', 'db-2']",
    "inputs.host not in ['db-2']",
    "stdout is search('4')",
    "exit_code == 0",
    "-vars.count",
    "steps.usage.json.a | length",
    "inputs.hosts[0] + inputs.hosts[-1]",
]

FAILING = [
    "{{ nosuch }}",
    "{{ inputs.nosuch }}",
    "{{ steps.missing.stdout }}",
    "{{ stdout | int + inputs.host }}",
    "{{ inputs.host | int }}",
    "{{ ''.__class__ }}",
    "{{ inputs.__class__.__mro__ }}",
]


def _jinja_render(text: str, shell: bool) -> str:
    return templating.renderer(text, shell, tier="jinja")(CONTEXT)


@pytest.mark.parametrize("shell", [False, True])
@pytest.mark.parametrize("text", TEMPLATES)
def test_rendering_agrees_with_jinja_whichever_path_is_taken(text: str, shell: bool) -> None:
    assert templating.render(text, CONTEXT, shell=shell) == _jinja_render(text, shell)


@pytest.mark.parametrize("text", [t for t in TEMPLATES if "replace(" not in t])
def test_simple_templates_take_the_fast_path(text: str) -> None:
    assert compile_template(templating.environment(False), text) is not None
    assert templating.renderer(text, True, tier="fast")(CONTEXT) == _jinja_render(text, True)


def test_filters_that_need_the_context_are_left_to_jinja() -> None:
    assert compile_template(templating.environment(False), "{{ inputs.host | replace('db', 'pg') }}") is None


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_fast_expression_evaluates_exactly_like_jinja(text: str) -> None:
    env = templating.environment(False)
    fast = compile_expression(env, text)
    assert fast is not None
    slow = env.compile_expression(text, undefined_to_none=False)
    assert fast(CONTEXT) == slow(**CONTEXT)


@pytest.mark.parametrize("text", FAILING)
def test_fast_template_fails_where_jinja_fails(text: str) -> None:
    fast = compile_template(templating.environment(False), text)
    with pytest.raises(Exception) as slow_error:
        _jinja_render(text, True)
    if fast is not None:
        with pytest.raises(Exception) as fast_error:
            templating.renderer(text, True, tier="fast")(CONTEXT)
        assert type(fast_error.value) is type(slow_error.value)


@pytest.mark.parametrize("text", [
    "{% for x in inputs.hosts %}{{ x }}{% endfor %}",
    "{{ range(3) | list }}",
    "{{ inputs.hosts[1:] }}",
    "{{ inputs.hosts | map('string') | join(',') }}",
    "{% if vars.flag %}y{% endif %}",
])
def test_templates_outside_the_subset_are_left_to_jinja(text: str) -> None:
    assert compile_template(templating.environment(False), text) is None
    assert templating.render(text, CONTEXT) == _jinja_render(text, False)


def test_render_reports_sandbox_refusals_and_undefined_names_as_template_errors() -> None:
    with pytest.raises(templating.TemplateError, match="undefined"):
        templating.render("{{ nosuch }}", CONTEXT, where="rb.yaml:3:5")
    with pytest.raises(templating.TemplateError, match=r"rb\.yaml:3:5"):
        templating.render("{{ inputs.nosuch }}", CONTEXT, where="rb.yaml:3:5")
    with pytest.raises(templating.TemplateError):
        templating.render("{{ ''.__class__.__mro__[1].__subclasses__() }}", CONTEXT)
