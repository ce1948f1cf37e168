"""Sandboxed Jinja2: rendering templates and expressions, and reading what they reference.

Two environments share one set of filters. The shell environment quotes every value
it substitutes (a value such as `x; rm -rf /` stays one argument) unless the template
says `| raw`. Both are sandboxed and strict: an undefined name is an error, never "".

jinja2 is imported on first use: a plain string (no `{{`, `{%`, `{#`) never needs it,
and `runbook validate` of a file without templates never pays for the import.

The module the rest of the engine uses: it re-exports the values (values.py), the names
lint checks filters and tests against (filters.py) and the environment (_environment.py).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from engine.errors import TemplateError

from . import _limits
from ._command import jinja_shell, shell_renderer
from ._environment import environment, finalize_text, lock
from .filters import FILTERS, JINJA_GLOBALS, TESTS, known_filters, known_globals, known_tests
from .patterns import deferred
from .values import Masked, Placeholder, Raw, plain

__all__ = [
    "PLAIN", "Analysis", "Masked", "Placeholder", "Raw", "TemplateError", "analyze", "environment", "evaluate",
    "fullmatch_within_deadline", "has_template", "known_filters", "known_globals", "known_tests", "plain", "render",
    "render_value", "renderer", "stop_render", "stopped_when",
]


def has_template(text: str) -> bool:
    """Whether `text` holds any template syntax (`{{`, `{%`, `{#`): plain text renders as itself."""
    return "{{" in text or "{%" in text or "{#" in text


# -- rendering -------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _quick() -> Any:
    from ._quick_eval import evaluator

    return evaluator(FILTERS, TESTS, JINJA_GLOBALS)


@lru_cache(maxsize=4096)
def _compiled(text: str, shell: bool) -> Callable[[Mapping[str, Any]], str]:
    """A renderer: the quick path (no Jinja at all) when the template is simple enough,
    else a closure over Jinja's parse tree, else Jinja itself."""
    return renderer(text, shell)


def renderer(text: str, shell: bool, tier: str | None = None) -> Callable[[Mapping[str, Any]], str]:
    """The renderer of the first tier that takes `text` (or of `tier`: quick, fast,
    jinja; tests compare them). Every tier's output goes through the same finish:
    text as Jinja finalizes it, or a shell command with each value escaped for its place."""
    from ._jinja_fast import compile_parts
    from ._quick_eval import compile_parts as quick_parts
    from ._quick_eval import joined

    parts = quick_parts(text, _quick()) if tier in (None, "quick") else None
    if parts is None and tier in (None, "fast"):
        with lock:
            parts = compile_parts(environment(False), text)
    if parts is not None:
        return shell_renderer(parts, text) if shell else joined(parts, finalize_text)
    if tier not in (None, "jinja"):
        raise ValueError(f"the {tier} tier does not take {text!r}")
    with lock:
        template = environment(shell).from_string(text)
    # Jinja's own path can loop: it runs under the deadline, its output within MAX_SIZE.
    if not shell:
        return _limits.guarded(lambda ctx: _limits.joined(template.generate(ctx)))
    return _limits.guarded(lambda ctx: jinja_shell(template, ctx, text))


@lru_cache(maxsize=4096)
def _compiled_expression(text: str) -> Callable[[Mapping[str, Any]], Any]:
    from ._jinja_fast import compile_expression
    from ._quick_eval import compile_expression as quick_expression

    quick = quick_expression(text, _quick())
    if quick is not None:
        return quick
    with lock:
        env = environment(False)
        fast = compile_expression(env, text)
        if fast is not None:
            return fast
        slow = env.compile_expression(text, undefined_to_none=False)
    return _limits.guarded(lambda ctx: slow(**ctx))


def render(text: str, context: Mapping[str, Any], *, shell: bool = False, where: object = "") -> str:
    """Render a template string; TemplateError (naming `where`) on any failure."""
    if "{{" not in text and "{%" not in text and "{#" not in text:  # has_template(), without a call
        return text
    try:
        return str(_compiled(text, shell)(context))
    except Exception as exc:  # jinja2 raises many types; all mean "this template failed"
        raise TemplateError(_explain(exc), where=where) from None


def stopped_when(check: Callable[[], bool]) -> Any:
    """While in this context, a render under the deadline does not start (it fails as
    interrupted) once `check()` is true: a Ctrl-C that came just before it counts."""
    return _limits.stopped_when(check)


def stop_render() -> None:
    """From a Ctrl-C or SIGTERM handler: end the render in progress, if one is running
    under the deadline (a loop, a regex); it fails as interrupted. Others end quickly."""
    if _limits.rendering():
        raise _limits.Interrupted


def fullmatch_within_deadline(pattern: re.Pattern[str], value: str) -> bool | None:
    """Whether `value` matches `pattern` whole, under the render deadline as the regex
    filters are; None when the deadline passed first (a pattern that backtracks)."""
    try:
        with _limits.deadline():
            return pattern.fullmatch(value) is not None
    except _limits.LimitError:
        return None


def evaluate(expression: str, context: Mapping[str, Any], *, where: object = "") -> Any:
    """Evaluate a bare expression (`when`, `expect`, `until`)."""
    try:
        value = _compiled_expression(expression)(context)
        if isinstance(value, (bool, int, float, type(None))):  # the usual answer, and never an Undefined
            return value
        if _is_undefined(value):
            str(value)  # StrictUndefined raises here, with Jinja's own explanation
        return plain(value)
    except Exception as exc:
        raise TemplateError(_explain(exc), where=where) from None


def _is_undefined(value: Any) -> bool:
    jinja2 = sys.modules.get("jinja2")  # not imported: nothing can be one of its Undefineds
    return jinja2 is not None and isinstance(value, jinja2.Undefined)


def render_value(value: Any, context: Mapping[str, Any], *, where: object = "") -> Any:
    """Render every string inside a nested value (http bodies, include inputs, set values).

    A string that is exactly one `{{ expression }}` keeps the expression's type, so
    `set: {count: "{{ steps.x.outputs.n | int }}"}` stores a number, not text.
    """
    if isinstance(value, str):
        single = _single_expression(value)
        if single is not None:
            return evaluate(single, context, where=where)
        return render(value, context, where=where)
    if isinstance(value, Mapping):
        return {k: render_value(v, context, where=where) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [render_value(v, context, where=where) for v in value]
    return value


_SINGLE = deferred(r"^\{\{(?P<expr>(?:(?!\}\}|\{\{).)*)\}\}$", re.DOTALL)


@lru_cache(maxsize=4096)
def _single_expression(text: str) -> str | None:
    match = _SINGLE.match(text.strip())
    return match.group("expr").strip() if match else None


def _explain(exc: Exception) -> str:
    name = type(exc).__name__
    if name == "UndefinedError":
        return f"undefined name: {exc}"
    if name == "SecurityError":
        return f"refused by the sandbox: {exc}"
    if name in ("TemplateSyntaxError", "TemplateAssertionError"):
        return f"template syntax error: {exc}"
    if name == "Unsafe":
        return f"unsafe in the shell command: {exc}"
    if name == "LimitError":
        return f"too costly to evaluate: {exc}"
    if name == "Interrupted":
        return "interrupted while the template was evaluated"
    if name in ("OverflowError", "MemoryError") or (name == "ValueError" and "digits" in str(exc)):
        return f"too costly to evaluate: {exc}"
    return f"{name}: {exc}" if str(exc) else name



# -- static analysis (lint) ------------------------------------------------------------------


class Analysis(NamedTuple):
    """What a template or expression references; `error` if it does not parse."""

    names: frozenset[str] = frozenset()
    refs: tuple[tuple[str, ...], ...] = ()
    filters: frozenset[str] = frozenset()
    tests: frozenset[str] = frozenset()
    private: frozenset[str] = frozenset()  # attributes starting with "_": the sandbox refuses them
    error: str | None = None
    error_line: int = 1


PLAIN = Analysis()


def analyze(text: str, *, expression: bool = False) -> Analysis:
    """Names, dotted references, filters and tests used; or the syntax error."""
    if not expression and not has_template(text):
        return PLAIN
    return _analyze(text, expression)


@lru_cache(maxsize=8192)
def _analyze(text: str, expression: bool) -> Analysis:
    from ._quick_jinja import scan

    quick = scan(text, expression=expression)
    if quick is not None:
        return Analysis(names=frozenset(quick.names), refs=tuple(quick.refs),
                        filters=frozenset(quick.filters), tests=frozenset(quick.tests),
                        private=frozenset(quick.private))
    return _analyze_with_jinja(text, expression)


def _analyze_with_jinja(text: str, expression: bool) -> Analysis:
    """The authority: Jinja's own parser (for everything the quick scan leaves to it)."""
    from jinja2 import TemplateSyntaxError, nodes

    from ._jinja_fast import parse_expression

    env = environment(False)
    try:
        tree = parse_expression(env, text) if expression else env.parse(text)
    except TemplateSyntaxError as exc:
        return Analysis(error=exc.message or str(exc), error_line=exc.lineno or 1)
    except RecursionError:
        return Analysis(error="expression nested too deeply")
    if expression:
        # find_all() walks children only: wrap so the root (a bare `ready`, a
        # top-level filter or test) is seen too.
        tree = nodes.Template([nodes.Output([tree])])
    try:
        return _summarize(tree, nodes)
    except RecursionError:
        return Analysis(error="expression nested too deeply")


def _summarize(tree: Any, nodes: Any) -> Analysis:
    names = _free_names(tree, nodes)
    refs: list[tuple[str, ...]] = []
    _collect_refs(tree, refs, nodes)
    return Analysis(
        names=names,
        refs=tuple(r for r in refs if r[0] in names),
        filters=frozenset(f.name for f in tree.find_all(nodes.Filter)),
        tests=frozenset(t.name for t in tree.find_all(nodes.Test)),
        private=frozenset(_private_attributes(tree, nodes)),
    )


def _private_attributes(tree: Any, nodes: Any) -> list[str]:
    found = [a.attr for a in tree.find_all(nodes.Getattr) if a.attr.startswith("_")]
    found += [str(i.arg.value) for i in tree.find_all(nodes.Getitem)
              if isinstance(i.arg, nodes.Const) and isinstance(i.arg.value, str) and i.arg.value.startswith("_")]
    return found


def _free_names(tree: Any, nodes: Any) -> frozenset[str]:
    # Names read but never assigned in the template ({% for %}, {% set %}, macro
    # parameters). Coarser than jinja2.meta (no scopes) and much cheaper: meta runs
    # the code generator over the whole template.
    loaded: set[str] = set()
    stored: set[str] = set()
    for name in tree.find_all(nodes.Name):
        (loaded if name.ctx == "load" else stored).add(name.name)
    return frozenset(loaded - stored)


def _chain(node: Any, nodes: Any) -> tuple[str, ...] | None:
    if isinstance(node, nodes.Name):
        return (node.name,)
    if isinstance(node, nodes.Getattr):
        inner = _chain(node.node, nodes)
        return (*inner, node.attr) if inner else None
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        inner = _chain(node.node, nodes)
        return (*inner, str(node.arg.value)) if inner else None
    return None


def _collect_refs(node: Any, out: list[tuple[str, ...]], nodes: Any) -> None:
    chain = _chain(node, nodes)
    if chain is not None:
        out.append(chain)
        return
    if isinstance(node, (nodes.Getattr, nodes.Getitem)):
        # e.g. steps[item].stdout: the base is not a plain chain; look inside it.
        _collect_refs(node.node, out, nodes)
        if isinstance(node, nodes.Getitem):
            _collect_refs(node.arg, out, nodes)
        return
    for child in node.iter_child_nodes():
        _collect_refs(child, out, nodes)
