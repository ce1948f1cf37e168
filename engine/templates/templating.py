"""Sandboxed Jinja2: rendering templates and expressions, and reading what they reference.

Two environments share one set of filters. The shell environment quotes every value
it substitutes (a value such as `x; rm -rf /` stays one argument) unless the template
says `| raw`. Both are sandboxed and strict: an undefined name is an error, never "".

jinja2 is imported on first use: a plain string (no `{{`, `{%`, `{#`) never needs it,
and `runbook validate` of a file without templates never pays for the import.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import threading
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from engine.errors import TemplateError

from . import _limits


def has_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


class Raw(str):
    """A value the shell environment substitutes without quoting (`| raw`).

    It only means something inside the template that says `raw`: a value leaving a
    template (a `set:` var, an output, a `for_each` item) is plain text again, so each
    later use is quoted unless it says `raw` itself, before and after a resume alike."""


def plain(value: Any) -> Any:
    """`value` with every Raw inside it turned back into plain text (see Raw)."""
    if isinstance(value, str):
        return str.__str__(value) if isinstance(value, Raw) else value
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


class Masked(str):
    """A secret as it is shown: `***`. What the engine shows and journals is rendered
    with secrets as Masked values (RunState.shown_context), so whatever a template makes
    of one (quoted, escaped, JSON, sliced, an item) cannot hold the secret. In a command
    it goes in as it is, unquoted."""

    def __new__(cls) -> Masked:
        return super().__new__(cls, "***")


class Placeholder(str):
    """A value not known before the run (dry-run): renders as `<steps.x.stdout>`, and
    attribute or item access gives a longer placeholder instead of an error."""

    def __new__(cls, path: str) -> Placeholder:
        return super().__new__(cls, f"<{path}>")

    @property
    def path(self) -> str:
        return str.__str__(self)[1:-1]

    def __getattr__(self, name: str) -> Placeholder:
        if name.startswith("__"):
            raise AttributeError(name)
        return Placeholder(f"{self.path}.{name}")

    def __getitem__(self, key: Any) -> Placeholder:
        return Placeholder(f"{self.path}[{key!r}]")

    def _no_value(self, other: Any) -> Any:
        # As a str, `n * 2` would repeat the text and `n % x` would format it: the
        # plan must say "computed at run time", never show a made-up value.
        raise TypeError(f"{self} has no value before the run")

    __mul__ = __rmul__ = __mod__ = __rmod__ = _no_value


# -- filters and tests (Ansible users' habits) ---------------------------------------------

_NO_DEFAULT: Any = object()


def _to_int(value: Any, default: Any = _NO_DEFAULT, base: int = 10) -> int:
    # Jinja's own `int` turns garbage into 0 silently; a runbook acting on a wrong
    # number is worse than one that stops, so fail unless a default is given.
    if isinstance(value, Placeholder):
        return value  # type: ignore[return-value]
    try:
        if isinstance(value, str):
            return int(value.strip(), base)
        return int(value)
    except (TypeError, ValueError):
        if default is not _NO_DEFAULT:
            return int(default)
        raise ValueError(f"cannot convert {value!r} to an integer") from None


def _to_float(value: Any, default: Any = _NO_DEFAULT) -> float:
    if isinstance(value, Placeholder):
        return value  # type: ignore[return-value]
    try:
        return float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        if default is not _NO_DEFAULT:
            return float(default)
        raise ValueError(f"cannot convert {value!r} to a number") from None


def _to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y")
    return bool(value)


@_limits.guarded
def _regex_search(value: Any, pattern: str, *groups: Any, ignorecase: bool = False) -> Any:
    match = re.search(pattern, str(value), re.IGNORECASE if ignorecase else 0)
    if match is None:
        return None
    if not groups:
        return match.group(0)
    picked = [match.group(int(g[1:]) if str(g).startswith("\\") else g) for g in groups]
    return picked[0] if len(picked) == 1 else picked


@_limits.guarded
def _regex_replace(value: Any, pattern: str, replacement: str = "", ignorecase: bool = False) -> str:
    return re.sub(pattern, replacement, str(value), flags=re.IGNORECASE if ignorecase else 0)


@_limits.guarded
def _regex_findall(value: Any, pattern: str, ignorecase: bool = False) -> list[Any]:
    return re.findall(pattern, str(value), re.IGNORECASE if ignorecase else 0)


def _from_json(value: Any) -> Any:
    if isinstance(value, Placeholder):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"from_json: not valid JSON ({exc})") from None
    except RecursionError:
        raise ValueError("from_json: the JSON is nested too deeply") from None


def _to_json(value: Any, indent: int | None = None) -> str:
    _limits.json_indent(indent)
    return json.dumps(value, indent=indent, sort_keys=True, default=str)


def _quote(value: Any) -> Raw:
    # Already quoted: the shell environment must not quote it a second time.
    return Raw(shlex.quote(str(value)))


@_limits.guarded
def _test_search(value: Any, pattern: str, ignorecase: bool = False) -> bool:
    return re.search(pattern, str(value), re.IGNORECASE if ignorecase else 0) is not None


@_limits.guarded
def _test_match(value: Any, pattern: str, ignorecase: bool = False) -> bool:
    return re.match(pattern, str(value), re.IGNORECASE if ignorecase else 0) is not None


FILTERS: dict[str, Callable[..., Any]] = {
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "regex_search": _regex_search,
    "regex_replace": _regex_replace,
    "regex_findall": _regex_findall,
    "from_json": _from_json,
    "to_json": _to_json,
    "quote": _quote,
    "raw": Raw,
}
TESTS: dict[str, Callable[..., bool]] = {"search": _test_search, "match": _test_match}


MARK = "\0"  # a value's slot in a command's skeleton: _shell.MARK (a command can never hold a NUL)
_shell_values = threading.local()  # the values of a shell render on Jinja's own path


def _mark(value: Any) -> Any:
    """The shell environment's finalize: a value becomes a slot in the command's
    skeleton (see _shell); raw text stays, and is read as shell text around the slots."""
    if isinstance(value, Raw):
        return value
    _shell_values.current.append(value)
    return MARK


def _shell_text(value: Any) -> tuple[str, bool]:
    """A value as text for the command, and whether it goes in as it is (not escaped)."""
    if isinstance(value, (Placeholder, Masked)):
        return str.__str__(value), True
    if value is None:
        return "", False
    return (value if isinstance(value, str) else _plain(value)), False


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _finalize_text(value: Any) -> Any:
    return _plain(value) if isinstance(value, (bool, dict, list)) else value


_lock = threading.Lock()


@lru_cache(maxsize=2)
def environment(shell: bool = False) -> Any:
    """The sandboxed environment (shell=True quotes substituted values)."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class RunbookEnvironment(ImmutableSandboxedEnvironment):
        # Operators whose result can be huge go through _limits (size estimated first).
        intercepted_binops = _limits.INTERCEPTED
        code_generator_class = _bounded_code_generator()
        concat_values = staticmethod(_limits.concat)  # `~`, see _bounded_code_generator

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            return _limits.BINARY[operator](left, right)

        def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            _limits.check_call(__obj, args)
            return super().call(__context, __obj, *args, **kwargs)

        def wrap_str_format(self, value: Any) -> Any:
            return _bounded_str_format(self, value)

        def getattr(self, obj: Any, attribute: str) -> Any:
            # Jinja prefers an attribute to an item, so `steps.x.items` would be the
            # dict's items() method, not the step's per-item results: in a mapping,
            # a key wins over a method of the same name.
            if isinstance(obj, Mapping):
                try:
                    return obj[attribute]
                except (KeyError, TypeError):
                    pass
            return super().getattr(obj, attribute)

    env = RunbookEnvironment(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_mark if shell else _finalize_text,
    )
    env.filters.update(FILTERS)
    env.filters.update(_limits.bounded_filters(env.filters))
    env.tests.update(TESTS)
    env.globals["lipsum"] = _limits.lipsum
    return env


def _bounded_code_generator() -> Any:
    """Jinja's code generator, with `a ~ b` built by `environment.concat_values`: the one
    operator the sandbox cannot intercept, and a loop of it doubles a text each time."""
    from jinja2.compiler import CodeGenerator, optimizeconst

    class BoundedCodeGenerator(CodeGenerator):
        @optimizeconst
        def visit_Concat(self, node: Any, frame: Any) -> None:
            self.write("environment.concat_values(")
            for arg in node.nodes:
                self.visit(arg, frame)
                self.write(", ")
            self.write(")")

    return BoundedCodeGenerator


def _bounded_str_format(env: Any, value: Any) -> Any:
    """The sandbox's `str.format`/`format_map`, with every field's width bounded."""
    import types

    from jinja2.sandbox import SandboxedFormatter

    if not isinstance(value, (types.MethodType, types.BuiltinMethodType)) or \
            value.__name__ not in ("format", "format_map") or not isinstance(value.__self__, str):
        return None
    text, is_map = value.__self__, value.__name__ == "format_map"

    class Formatter(SandboxedFormatter):
        def format_field(self, field: Any, spec: str) -> Any:
            _limits.format_spec(spec)
            return super().format_field(field, spec)

    def wrapper(*args: Any, **kwargs: Any) -> str:
        if is_map:
            if kwargs or len(args) != 1:
                raise TypeError("format_map() takes exactly one argument")
            kwargs = args[0]
            args = ()
        result: str = Formatter(env).vformat(text, args, kwargs)
        return result

    return wrapper


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
        with _lock:
            parts = compile_parts(environment(False), text)
    if parts is not None:
        return _shell_renderer(parts, text) if shell else joined(parts, _finalize_text)
    if tier not in (None, "jinja"):
        raise ValueError(f"the {tier} tier does not take {text!r}")
    with _lock:
        template = environment(shell).from_string(text)
    # Jinja's own path can loop: it runs under the deadline, its output within MAX_SIZE.
    if not shell:
        return _limits.guarded(lambda ctx: _limits.joined(template.generate(ctx)))
    return _limits.guarded(lambda ctx: _jinja_shell(template, ctx, text))


def _shell_renderer(parts: list[Any], text: str) -> Callable[[Mapping[str, Any]], str]:
    """A shell command from compiled parts: the skeleton (text and raw values) with a
    slot for every other value, filled in by _shell.fill."""
    mark = MARK

    def render(c: Mapping[str, Any]) -> str:
        skeleton: list[str] = []
        values: list[tuple[str, bool]] = []
        for part in parts:
            if isinstance(part, str):
                skeleton.append(part)
                continue
            value = part(c)
            if isinstance(value, Raw):
                skeleton.append(value)
            else:
                skeleton.append(mark)
                values.append(_shell_text(value))
        return _fill("".join(skeleton), values, text)

    return render


def _jinja_shell(template: Any, ctx: Mapping[str, Any], text: str) -> str:
    collected: list[Any] = []
    _shell_values.current = collected
    try:
        skeleton = _limits.joined(template.generate(ctx))
    finally:
        _shell_values.current = None
    return _fill(skeleton, [_shell_text(v) for v in collected], text)


def _fill(skeleton: str, values: list[tuple[str, bool]], text: str) -> str:
    if not values and MARK not in skeleton:
        return skeleton
    from . import _shell  # the shell scanner: only runs that render commands need it

    try:
        return _shell.fill(skeleton, values)
    except _shell.Unsafe as exc:
        if exc.index is None:
            raise
        names = _expression_names(text)
        name = names[exc.index] if exc.index < len(names) else f"value {exc.index + 1} of the command"
        raise _shell.Unsafe(f"{name} {exc}") from None


@lru_cache(maxsize=1024)
def _expression_names(text: str) -> list[str]:
    """`{{ … }}` of each value, in order, for messages (when the template has no loops)."""
    found = [f"{{{{ {m.strip()} }}}}" for m in re.findall(r"\{\{-?(.*?)-?\}\}", text, re.DOTALL)]
    return found if "{%" not in text else []


@lru_cache(maxsize=4096)
def _compiled_expression(text: str) -> Callable[[Mapping[str, Any]], Any]:
    from ._jinja_fast import compile_expression
    from ._quick_eval import compile_expression as quick_expression

    quick = quick_expression(text, _quick())
    if quick is not None:
        return quick
    with _lock:
        env = environment(False)
        fast = compile_expression(env, text)
        if fast is not None:
            return fast
        slow = env.compile_expression(text, undefined_to_none=False)
    return _limits.guarded(lambda ctx: slow(**ctx))


def render(text: str, context: Mapping[str, Any], *, shell: bool = False, where: object = "") -> str:
    """Render a template string; TemplateError (naming `where`) on any failure."""
    if not has_template(text):
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


def evaluate(expression: str, context: Mapping[str, Any], *, where: object = "") -> Any:
    """Evaluate a bare expression (`when`, `expect`, `until`)."""
    try:
        value = _compiled_expression(expression)(context)
        if _is_undefined(value):
            str(value)  # StrictUndefined raises here, with Jinja's own explanation
        return value if isinstance(value, (bool, int, float, type(None))) else plain(value)
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


_SINGLE = re.compile(r"^\{\{(?P<expr>(?:(?!\}\}|\{\{).)*)\}\}$", re.DOTALL)


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


# Names the environment knows, listed here so lint need not import jinja2 to learn them.
# A test compares these with the real environment, so a Jinja upgrade cannot make them drift.
JINJA_FILTERS = frozenset({
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e",
    "escape", "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent",
    "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min", "pprint",
    "random", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr",
    "slice", "sort", "string", "striptags", "sum", "title", "tojson", "trim", "truncate", "unique",
    "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr",
})
JINJA_TESTS = frozenset({
    "!=", "<", "<=", "==", ">", ">=", "boolean", "callable", "defined", "divisibleby", "eq",
    "equalto", "escaped", "even", "false", "filter", "float", "ge", "greaterthan", "gt", "in",
    "integer", "iterable", "le", "lessthan", "lower", "lt", "mapping", "ne", "none", "number",
    "odd", "sameas", "sequence", "string", "test", "true", "undefined", "upper",
})
JINJA_GLOBALS = frozenset({"cycler", "dict", "joiner", "lipsum", "namespace", "range"})


def known_filters() -> frozenset[str]:
    return JINJA_FILTERS | frozenset(FILTERS)


def known_tests() -> frozenset[str]:
    return JINJA_TESTS | frozenset(TESTS)


def known_globals() -> frozenset[str]:
    return JINJA_GLOBALS
