"""The sandboxed, strict Jinja2 environment (one for text, one for shell commands), built
on first use: jinja2 is imported only when a template needs Jinja itself.

Operators whose result can be huge, `~`, `str.format` and calls go through the bounds of
_limits. The shell environment turns each value into a slot (MARK) in the command's
skeleton, escaped later for the place it lands in (see shell.py).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from . import _limits
from .filters import CONTEXT_FILTERS, FILTERS, TESTS
from .values import Raw

MARK = "\0"  # a value's slot in a command's skeleton: shell.MARK (a command can never hold a NUL)
shell_values = threading.local()  # the values of a shell render on Jinja's own path


def mark(value: Any) -> Any:
    """The shell environment's finalize: a value becomes a slot in the command's
    skeleton (see shell.py); raw text stays, and is read as shell text around the slots."""
    if isinstance(value, Raw):
        return value
    shell_values.current.append(value)
    return MARK


def text_of(value: Any) -> str:
    """A value as text, as a template shows it: true/false, JSON for lists and mappings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def finalize_text(value: Any) -> Any:
    return text_of(value) if isinstance(value, (bool, dict, list)) else value


lock = threading.Lock()  # held while a template is compiled


@lru_cache(maxsize=2)
def environment(shell: bool = False) -> Any:
    """The sandboxed environment (shell=True quotes substituted values)."""
    from jinja2 import StrictUndefined, pass_context
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
        finalize=mark if shell else finalize_text,
    )
    env.filters.update(FILTERS)
    env.filters.update({name: pass_context(f) for name, f in CONTEXT_FILTERS.items()})
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
