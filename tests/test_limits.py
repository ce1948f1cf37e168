"""engine.templates._limits: every render is bounded in size and time, on every template tier (the
quick path, the fast closures over Jinja's tree, Jinja itself), and is refused with a
template error before it takes the memory or the minutes it asks for."""

from __future__ import annotations

import resource
import signal
import threading
from collections.abc import Callable
from typing import Any

import pytest

from engine.errors import TemplateError
from engine.templates import _limits, templating
from engine.templates._jinja_fast import compile_expression as fast_expression
from engine.templates._quick_eval import compile_expression as quick_expression

CONTEXT: dict[str, Any] = {"x": "a" * 40, "n": 10 ** 9, "s": "ab", "items": ["a"] * 100_000}

# Each asks for gigabytes or hours of CPU, and must be refused at once.
COSTLY = [
    "9 ** (9 ** 9)", "10 ** 100000", "(2 ** 99999) * (2 ** 99999)",
    "'a' * 10 ** 10", "[1] * 10 ** 10", "s * n", "n * [s]",
    "'%999999999d' % 1", "'%*d' % (999999999, 1)", "'%.*f' % (999999999, 1.5)",
    "'a' | center(2000000000)", "'a' | indent(1000000000)", "'a' | format() | center(n)",
    "'a'.center(10 ** 9)", "'a'.ljust(n)", "'a'.rjust(n)", "'1'.zfill(n)", "'x\\tx'.expandtabs(n)",
    "'{:>999999999}'.format(1)", "'{:>{w}}'.format(1, w=999999999)", "'{0:{1}}'.format(1, n)",
    "'{:,.999999999f}'.format(1.5)", "'{x:>999999999}'.format_map({'x': 1})",
    "('a' * 1000).replace('a', 'a' * 100000)", "s | replace('', 'x' * 10000000)",
    "('a' * 1000000) ~ ('b' * 16000000)", "items | join('y' * 1000)", "'y'.join(items * 100)",
    "[1, 2] | batch(10 ** 9, 'x') | list", "[1, 2] | slice(10 ** 9, 0) | list",
    "(1).to_bytes(10 ** 9, 'big')", "x | to_json(10 ** 9)", "x | tojson(10 ** 9)", "lipsum(10 ** 6)",
    "items + items * 200",
]


@pytest.mark.parametrize("expression", COSTLY)
def test_a_costly_expression_is_refused_before_it_is_computed(expression: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(TemplateError, match="too costly to evaluate"):
        templating.render("{{ " + expression + " }}", CONTEXT)
    with pytest.raises(TemplateError, match="too costly to evaluate"):
        templating.evaluate(expression, CONTEXT)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 400_000, f"{expression} took {grown_kib} KiB before it was refused"


TIERED = ["9 ** (9 ** 9)", "'a' * 10 ** 10", "s * n", "[s] * n", "'%999999999d' % 1", "s ~ (s * n)",
          "(2 ** 99999) * (2 ** 99999)", "x + x * n"]


def _tiers(expression: str) -> list[Callable[[dict[str, Any]], Any]]:
    quick = quick_expression(expression, templating._quick())
    fast = fast_expression(templating.environment(False), expression)
    jinja = templating.environment(False).compile_expression(expression, undefined_to_none=False)
    assert quick is not None and fast is not None, "each tier must take this expression"
    return [quick, fast, lambda ctx: jinja(**ctx)]


@pytest.mark.parametrize("expression", TIERED)
def test_every_tier_obeys_the_same_bounds(expression: str) -> None:
    for tier in _tiers(expression):
        with pytest.raises(_limits.LimitError):
            tier(CONTEXT)


def test_whats_within_the_bounds_still_works() -> None:
    assert templating.evaluate("2 ** 100 * 3", {}) == 3 * 2 ** 100
    assert templating.render("{{ 'ab' * 3 }}|{{ 'x' | center(5) }}|{{ '%5d' % 42 }}|{{ '{:>4}'.format(7) }}", {}) \
        == "ababab|  x  |   42|   7"
    assert templating.render("{% for i in range(3) %}{{ i ~ 'x' }}{% endfor %}", {}) == "0x1x2x"
    assert templating.render("{{ stdout | regex_search('(\\\\d+)%', '\\\\1') }}", {"stdout": "used 93%"}) == "93"


def test_output_growing_in_a_loop_is_refused_at_the_size_limit() -> None:
    doubling = "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
    with pytest.raises(TemplateError, match="`~` would make"):
        templating.render(doubling + "{{ ns.s | length }}", {})
    with pytest.raises(TemplateError, match="the rendered text would make"):
        templating.render("{% for i in range(100000) %}{{ x * 200 }}{% endfor %}", {"x": "y"})
    with pytest.raises(TemplateError, match="the rendered text would make"):
        templating.render("{{ b }}" * 3, {"b": "z" * (_limits.MAX_SIZE // 2)})


@pytest.fixture
def short_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOK_TEMPLATE_TIMEOUT", "0.3")


@pytest.mark.parametrize("template", [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    "{{ x | regex_search('(a+)+b') }}",
    "{{ x is search('(a|aa)+$b') }}",
    "{{ x | regex_replace('(a*)*c', '') }}",
])
def test_a_render_that_would_run_for_ages_stops_at_the_deadline(short_deadline: None, template: str) -> None:
    with pytest.raises(TemplateError, match=r"took longer than 0.3s \(RUNBOOK_TEMPLATE_TIMEOUT\)"):
        templating.render(template, CONTEXT)
    assert not _limits.rendering() and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_signal_handler_can_stop_a_render_in_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the live run's Ctrl-C and SIGTERM handlers do: the render fails as interrupted.
    The signal comes from the kernel (a CPU-time timer), as a real Ctrl-C does: a regex
    holds the interpreter, so no thread of this process could send it meanwhile."""
    monkeypatch.setenv("RUNBOOK_TEMPLATE_TIMEOUT", "60")
    previous = signal.signal(signal.SIGPROF, lambda *_: templating.stop_render())
    try:
        signal.setitimer(signal.ITIMER_PROF, 0.3)
        with pytest.raises(TemplateError, match="interrupted while the template was evaluated"):
            templating.render("{{ x | regex_search('(a+)+b') }}", {"x": "a" * 60})
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
    templating.stop_render()  # outside a render it does nothing


def test_outside_the_main_thread_the_size_bounds_still_apply() -> None:
    seen: list[BaseException] = []

    def work() -> None:
        try:
            templating.render("{{ 'a' * 10 ** 10 }}", {})
        except TemplateError as exc:
            seen.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)
    assert seen and "too costly" in str(seen[0])
