"""A shell command rendered from a template: each value escaped for where it lands (a
plain word: `shlex.quote`; anything else: the scanner of shell.py), `| raw` values as
they are. The renderers of engine/templates/templating.py call it for `shell=True`."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from . import _limits
from ._environment import MARK, shell_values, text_of
from .values import Masked, Placeholder, Raw


def _shell_text(value: Any) -> tuple[str, bool]:
    """A value as text for the command, and whether it goes in as it is (not escaped)."""
    if isinstance(value, (Placeholder, Masked)):
        return str.__str__(value), True
    if value is None:
        return "", False
    return (value if isinstance(value, str) else text_of(value)), False



@lru_cache(maxsize=1)
def _shell() -> Any:
    """The shell scanner, imported at first use (only runs that render commands need it);
    remembered, as an import statement in a function runs the import machinery each time."""
    from . import shell

    return shell

def shell_renderer(parts: list[Any], text: str) -> Callable[[Mapping[str, Any]], str]:
    """A shell command from compiled parts. When every value lands where shlex.quote is
    its escaping (a plain word, as in most commands) and is plain text, the command is
    the text with each value quoted in its place, as shell.fill would make it; any other
    value sends the command, with the values evaluated so far, the general way."""
    plain = _all_plain(parts)
    quote = shlex.quote
    if plain and sum(not isinstance(p, str) for p in parts) == 1:
        return _one_value_renderer(parts, text)

    def render(c: Mapping[str, Any]) -> str:
        if not plain:
            return _placed(parts, [], c, text)
        out: list[str] = []
        values: list[Any] = []
        for part in parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = part(c)
            values.append(value)
            if type(value) is not str or "\0" in value:
                return _placed(parts, values, c, text)
            out.append(quote(value))
        return "".join(out)

    return render


def _one_value_renderer(parts: list[Any], text: str) -> Callable[[Mapping[str, Any]], str]:
    """`check --host {{ inputs.host }}` (most commands): the text before and after its one
    value joined once, the value quoted between them, with no loop over the parts; a value
    that is not plain text goes the general way, as _shell_renderer's would."""
    at = next(i for i, p in enumerate(parts) if not isinstance(p, str))
    before, value_of, after = "".join(parts[:at]), parts[at], "".join(parts[at + 1:])
    quote = shlex.quote

    def render(c: Mapping[str, Any]) -> str:
        value = value_of(c)
        if type(value) is not str or "\0" in value:
            return _placed(parts, [value], c, text)
        return before + quote(value) + after

    return render


def _all_plain(parts: list[Any]) -> bool:
    """Whether the command, with plain text for every value, is its text with each value
    shlex-quoted in place: every slot of its skeleton is a plain word (or, without a value,
    the text has no NUL). The scanner reads the skeleton here rather than at the first
    render; one it cannot read is left to the general path, which reports it as before."""
    values = sum(not isinstance(p, str) for p in parts)
    skeleton = "".join(p if isinstance(p, str) else MARK for p in parts)
    if not values:
        return MARK not in skeleton
    try:
        return _shell().plain_slots(skeleton) == values
    except Exception:  # a scanner failure is the general path's to report, at render
        return False


def _placed(parts: list[Any], values: list[Any], c: Mapping[str, Any], text: str) -> str:
    """The command the general way: the skeleton (text and raw values) with a slot for
    every other value, filled in by shell.fill. `values` are those of the first
    expressions, evaluated already (each is evaluated once, in order)."""
    skeleton: list[str] = []
    slotted: list[tuple[str, bool]] = []
    given = iter(values)
    for part in parts:
        if isinstance(part, str):
            skeleton.append(part)
            continue
        value = next(given, _UNSET)
        if value is _UNSET:
            value = part(c)
        if isinstance(value, Raw):
            skeleton.append(value)
        else:
            skeleton.append(MARK)
            slotted.append(_shell_text(value))
    return _fill("".join(skeleton), slotted, text)


_UNSET = object()  # no value evaluated yet


def jinja_shell(template: Any, ctx: Mapping[str, Any], text: str) -> str:
    collected: list[Any] = []
    shell_values.current = collected
    try:
        skeleton = _limits.joined(template.generate(ctx))
    finally:
        shell_values.current = None
    return _fill(skeleton, [_shell_text(v) for v in collected], text)


def _fill(skeleton: str, values: list[tuple[str, bool]], text: str) -> str:
    if not values and MARK not in skeleton:
        return skeleton
    shell = _shell()
    try:
        return shell.fill(skeleton, values)
    except shell.Unsafe as exc:
        if exc.index is None:
            raise
        names = _expression_names(text)
        name = names[exc.index] if exc.index < len(names) else f"value {exc.index + 1} of the command"
        raise shell.Unsafe(f"{name} {exc}") from None


@lru_cache(maxsize=1024)
def _expression_names(text: str) -> list[str]:
    """`{{ … }}` of each value, in order, for messages (when the template has no loops)."""
    found = [f"{{{{ {m.strip()} }}}}" for m in re.findall(r"\{\{-?(.*?)-?\}\}", text, re.DOTALL)]
    return found if "{%" not in text else []
