"""Bounds on template evaluation: no render may take unbounded time or memory.

A runbook's templates run inside the engine's process. `{{ 9**(9**9) }}`, `'a' * 10**10`,
`x | center(10**9)` or a backtracking regex over a step's output would otherwise hold
the run (and Ctrl-C) for minutes or take gigabytes. Three bounds, shared by every tier
(the quick path, the fast closures over Jinja's tree, Jinja itself):

  * size: an operation whose result would exceed MAX_SIZE characters or items, or an
    integer over MAX_INT_BITS bits, is refused before it is computed (its size is
    estimated from its operands);
  * time: a render that can loop (Jinja's own path) or match a regex runs under a
    deadline of TIME_LIMIT seconds (1), enforced with SIGALRM in the main thread. Python's
    `re` checks for signals while it backtracks, so a regex is interrupted too;
  * signals: while a render runs, Ctrl-C and SIGTERM interrupt it (`interruptible`).

A bound that trips raises LimitError (an Exception): the render fails with a message
saying which bound and how to stay within it, like any other template error.
"""

from __future__ import annotations

import functools
import operator
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sized
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import signal
else:  # the C module signal.py wraps: importing signal.py makes enums of every signal and
    import _signal as signal  # handler (3.4M instructions, 1.5% of a one-step run), used nowhere here

MAX_SIZE = 16 * 1024 * 1024  # characters of a text, items of a list, per value and per render
MAX_INT_BITS = 100_000  # about 30,000 decimal digits
MAX_INDENT = 100  # JSON indentation


TIME_LIMIT = 1.0  # seconds: a render takes microseconds; a second is a loop or a regex gone wrong


def time_limit() -> float:
    """Seconds one render may take (RUNBOOK_TEMPLATE_TIMEOUT, default TIME_LIMIT)."""
    try:
        return max(float(os.environ.get("RUNBOOK_TEMPLATE_TIMEOUT", TIME_LIMIT)), 0.01)
    except ValueError:
        return TIME_LIMIT


class LimitError(Exception):
    """A template asked for more than a render may take."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived while a template was being rendered."""


def grown(size: int, what: str) -> None:
    """Refuse a result of `size` characters or items before it is built."""
    if size > MAX_SIZE:
        raise LimitError(f"{what} would make {size:,} characters or items (the limit is {MAX_SIZE:,})")


def _bits(value: int, what: str) -> None:
    if value > MAX_INT_BITS:
        raise LimitError(f"{what} would make an integer of about {value:,} bits (the limit is {MAX_INT_BITS:,})")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _sequence(value: Any) -> bool:
    return isinstance(value, (str, list, tuple))


# -- operators ------------------------------------------------------------------------------------


def power(base: Any, exponent: Any) -> Any:
    if _is_int(base) and _is_int(exponent) and exponent > 0 and abs(base) > 1:
        _bits((base.bit_length() - 1) * exponent, "`**`")
    return operator.pow(base, exponent)


def multiply(left: Any, right: Any) -> Any:
    if _sequence(left) and _is_int(right):
        grown(len(left) * right, "`*`")
    elif _sequence(right) and _is_int(left):
        grown(len(right) * left, "`*`")
    elif _is_int(left) and _is_int(right):
        _bits(left.bit_length() + right.bit_length(), "`*`")
    return operator.mul(left, right)


def add(left: Any, right: Any) -> Any:
    if isinstance(left, Sized) and isinstance(right, Sized) and not isinstance(left, Mapping):
        grown(len(left) + len(right), "`+`")
    return operator.add(left, right)


def modulo(left: Any, right: Any) -> Any:
    if isinstance(left, str):
        printf_widths(left, right)
    return operator.mod(left, right)


def concat(*values: Any) -> str:
    """`a ~ b ~ c`: every operand as text, joined, within MAX_SIZE."""
    texts = [str(v) for v in values]
    grown(sum(map(len, texts)), "`~`")
    return "".join(texts)


BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": add, "-": operator.sub, "*": multiply, "/": operator.truediv, "//": operator.floordiv,
    "%": modulo, "**": power, "~": lambda a, b: concat(a, b),
}
INTERCEPTED = frozenset({"+", "*", "%", "**"})  # what Jinja must route through `BINARY`


# -- widths in format strings ----------------------------------------------------------------------

@functools.cache
def _printf() -> re.Pattern[str]:
    return re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")


@functools.cache
def _spec() -> re.Pattern[str]:
    return re.compile(r"^(?:.?[<>=^])?[-+ ]?z?#?0?(\d*)[,_]?(?:\.(\d+))?[a-zA-Z%]?$", re.DOTALL)


def printf_widths(text: str, args: Any) -> None:
    """`'%9999999999s' % x` and `'%*s' % (n, x)`: every width and precision within MAX_SIZE."""
    if "%" not in text:
        return
    given = [a for a in (args if isinstance(args, tuple) else (args,)) if _is_int(a)]
    for match in _printf().finditer(text):
        for part in match.groups():
            if part == "*":
                for width in given:
                    grown(abs(width), "a `*` width")
            elif part:
                grown(int(part), "a format width")


def format_spec(spec: str) -> None:
    """`'{:>9999999999}'.format(x)`: the width and precision of a format spec."""
    match = _spec().match(spec)
    if match is None:
        return  # not a standard spec: format() itself will refuse it
    for part in match.groups():
        if part:
            grown(int(part), "a format width")


# -- calls: filters and str methods that grow their result ----------------------------------------


def _lines(text: Any) -> int:
    return str(text).count("\n") + 1


def _check_str_method(name: str, text: str, args: tuple[Any, ...]) -> None:
    first: Any = args[0] if args else None
    width = first if _is_int(first) else 0
    if name in ("center", "ljust", "rjust", "zfill"):
        grown(width, f"str.{name}")
    elif name == "expandtabs":
        grown(len(text) + text.count("\t") * (width if args else 8), "str.expandtabs")
    elif name == "replace" and len(args) >= 2:
        old, new = str(args[0]), str(args[1])
        count = text.count(old) if old else len(text) + 1
        if len(args) > 2 and _is_int(args[2]) and args[2] >= 0:
            count = min(count, args[2])
        grown(len(text) + count * max(len(new) - len(old), 0), "str.replace")
    elif name == "join" and isinstance(first, (list, tuple)):
        grown(len(text) * max(len(first) - 1, 0) + len(first), "str.join")


def check_call(func: Any, args: tuple[Any, ...]) -> None:
    """Before a call from a template: refuse one whose result would exceed the bounds."""
    owner = getattr(func, "__self__", None)
    name = getattr(func, "__name__", "")
    if isinstance(owner, str):
        _check_str_method(name, owner, args)
    elif _is_int(owner) and name == "to_bytes" and args and _is_int(args[0]):
        grown(args[0], "int.to_bytes")


def _width(value: Any) -> int:
    return len(value) if isinstance(value, str) else (value if _is_int(value) else 0)


def _center(value: Any, width: Any = 80, *rest: Any) -> None:
    grown(_width(width), "center")


def _indent(value: Any, width: Any = 4, *rest: Any, **kwargs: Any) -> None:
    grown(len(str(value)) + _lines(value) * _width(kwargs.get("width", width)), "indent")


def _format(value: Any, *args: Any, **kwargs: Any) -> None:
    printf_widths(str(value), args)


def _join(value: Any, d: Any = "", *rest: Any, **kwargs: Any) -> None:
    if isinstance(value, (list, tuple)):
        grown(len(value) * len(str(kwargs.get("d", d))), "join")


def _replace(value: Any, *args: Any, **kwargs: Any) -> None:
    if isinstance(value, str):
        _check_str_method("replace", value, args)


def _tojson(value: Any, indent: Any = None) -> None:
    _json_indent(indent)


def _count(name: str) -> Callable[..., None]:
    # batch(n, fill_with) and slice(n, fill_with) loop and fill up to n.
    def check(value: Any, count: Any = 0, *rest: Any, **kwargs: Any) -> None:
        if _is_int(count):
            grown(count, name)

    return check


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": _center, "indent": _indent, "format": _format, "join": _join, "replace": _replace,
    "tojson": _tojson, "batch": _count("batch"), "slice": _count("slice"),
}


def bounded_filters(filters: Mapping[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
    """Jinja's filters whose result can be far larger than their input, each checking its
    arguments first (`center(10**9)`, `indent`, `format` widths, `join`, `replace`, ...)."""
    return {name: _checked(filters[name], check) for name, check in _FILTER_CHECKS.items() if name in filters}


def _checked(original: Callable[..., Any], check: Callable[..., None]) -> Callable[..., Any]:
    # Jinja passes the eval context first to filters marked for it: the value is after it.
    skip = 1 if hasattr(original, "jinja_pass_arg") else 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        check(*args[skip:], **kwargs)
        return original(*args, **kwargs)

    for attribute in ("jinja_pass_arg", "__name__", "__doc__"):
        if hasattr(original, attribute):
            setattr(wrapper, attribute, getattr(original, attribute))
    return wrapper


def _json_indent(indent: Any) -> None:
    if _width(indent) > MAX_INDENT:
        raise LimitError(f"a JSON indentation of {_width(indent):,} (the limit is {MAX_INDENT})")


def json_indent(indent: Any) -> None:
    """`to_json(indent)`: an indentation is a few spaces, not a way to fill memory."""
    _json_indent(indent)


def lipsum(n: int = 5, *args: Any, **kwargs: Any) -> Any:
    """Jinja's lipsum global, at most 100 paragraphs."""
    from jinja2.utils import generate_lorem_ipsum

    if _is_int(n) and n > 100:
        raise LimitError(f"lipsum({n:,}): at most 100 paragraphs")
    return generate_lorem_ipsum(n, *args, **kwargs)


def measured(value: Any, what: str) -> None:
    """Refuse a value whose items and characters, counted as a template would show them
    (shared parts once per use: a YAML alias tree, a query repeating `@`), exceed MAX_SIZE.
    Each container is sized once (by identity), so the walk costs one step per distinct part."""
    sizes: dict[int, int] = {}
    todo: list[tuple[Any, bool]] = [(value, False)]
    while todo:
        item, children_done = todo.pop()
        if not isinstance(item, (Mapping, list, tuple)) or id(item) in sizes:
            continue
        parts = [*item.keys(), *item.values()] if isinstance(item, Mapping) else list(item)
        if not children_done:
            todo.append((item, True))
            todo.extend((p, False) for p in parts)
            continue
        size = len(item) + sum(_size_of(p, sizes) for p in parts)
        sizes[id(item)] = size
        if size > MAX_SIZE:
            grown(size, what)
    if _size_of(value, sizes) > MAX_SIZE:
        grown(_size_of(value, sizes), what)


def _size_of(part: Any, sizes: dict[int, int]) -> int:
    if isinstance(part, str):
        return len(part)
    return sizes.get(id(part), 1)


def joined(chunks: Iterator[str]) -> str:
    """Jinja's output, chunk by chunk, refused once it exceeds MAX_SIZE."""
    out: list[str] = []
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > MAX_SIZE:
            grown(total, "the rendered text")
        out.append(chunk)
    return "".join(out)


# -- time: a deadline per render, and signals ------------------------------------------------------

_active: dict[str, float] = {}  # main thread only: "deadline" while a guarded render runs


def rendering() -> bool:
    """Whether the main thread is inside a guarded render (signal handlers ask)."""
    return bool(_active)


def _on_alarm(signum: int, frame: Any) -> None:
    deadline = _active.get("deadline")
    if deadline is None:
        return  # the render ended just before the alarm: nothing to stop
    if time.monotonic() >= deadline - 0.001:
        raise LimitError(f"the template took longer than {time_limit():g}s "
                         "(RUNBOOK_TEMPLATE_TIMEOUT): simplify it, or do the work in a command")
    signal.setitimer(signal.ITIMER_REAL, deadline - time.monotonic())


_stops: list[Callable[[], bool]] = []  # see stopped_when


@contextmanager
def stopped_when(check: Callable[[], bool]) -> Iterator[None]:
    """While in this context, a render under the deadline fails as interrupted when
    `check()` is true as it starts: a signal that came just before it is not lost."""
    _stops.append(check)
    try:
        yield
    finally:
        _stops.remove(check)


@contextmanager
def deadline() -> Iterator[None]:
    """Run the body under the render deadline (main thread; elsewhere only the size
    bounds apply, as no signal can reach another thread). Nested use is one deadline."""
    if _active or threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getsignal(signal.SIGALRM) is not _on_alarm:
        signal.signal(signal.SIGALRM, _on_alarm)
    limit = time_limit()
    _active["deadline"] = time.monotonic() + limit  # from here a signal handler stops the render ...
    try:
        if any(check() for check in _stops):  # ... and one that came before is seen here
            raise Interrupted
        signal.setitimer(signal.ITIMER_REAL, limit)
        yield
    finally:
        _active.clear()
        signal.setitimer(signal.ITIMER_REAL, 0)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` under the render deadline."""
    def call(*args: Any, **kwargs: Any) -> Any:
        with deadline():
            return fn(*args, **kwargs)

    return call
