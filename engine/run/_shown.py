"""What the engine shows of a step when a run has secrets: masking by construction.

Everything a person or a file sees (the `$` line, a URL, outputs, vars, `for_each` items,
instructions, approvals, messages) is rendered a second time from the shown context, in
which each secret input is `***` (templating.Masked) before any quoting, escaping or
encoding happens. A value computed from a template is secret when its shown rendering
differs from the real one: it is then shown as `***` (or as the shown text, `***-x`,
when that is text with the mask in it), whatever its length, and stays so in every
later template that shows it. The real values are only ever executed.

A run without secrets renders once: Shown then answers with the real rendering.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from operator import methodcaller
from typing import Any

from engine.errors import TemplateError
from engine.templates import templating

from .masking import MASK, Masker
from .state import RunState

_URL_MASK = "%2A%2A%2A"  # *** url-encoded


def visible(extra: Mapping[str, Any]) -> dict[str, Any]:
    """The names a step adds to the context (`item`, `host`), without the driver's own."""
    if not any(map(_private, extra)):  # most steps: `attempt` alone (the test runs in C)
        return dict(extra)
    return {k: v for k, v in extra.items() if not k.startswith("_")}


_private = methodcaller("startswith", "_")  # a name of the driver's own (`_shown`, `_items`)


class Shown:
    """Renders what is shown apart from what runs, for one run."""

    def __init__(self, state: RunState, masker: Masker) -> None:
        self.state, self.masker = state, masker
        # Whether the run has secrets (state.secret): its secret inputs are set when it
        # starts. Read a few times a step: an attribute, not a property entered from C.
        self.active = bool(state.secret_inputs)

    def context(self, extra: Mapping[str, Any], **current: Any) -> dict[str, Any]:
        """The shown context of a step: `extra["_shown"]` holds the shown forms of its names."""
        names = visible(extra)
        names.update(extra.get("_shown") or {})
        return self.state.shown_context(**names, **current)

    def render(self, text: str, extra: Mapping[str, Any], real: str, *, shell: bool = False,
               where: object = "") -> str:
        """`text` as shown. A template that cannot be rendered from *** (`inputs.pin | int`)
        is shown as it is written: it holds no value."""
        if not self.active:
            return real
        try:
            shown = templating.render(text, self.context(extra), shell=shell, where=where)
        except TemplateError:
            return self.masker.text(text)
        return shown.replace(_URL_MASK, MASK)  # `token={{ t | urlencode }}` reads token=***

    def value(self, real: Any, shown: Callable[[], Any]) -> Any:
        """The shown form of a value computed from a template (an output, a var)."""
        if not self.active:
            return real
        try:
            seen = shown()
        except TemplateError:
            seen = templating.Masked()
        return self.derived(real, seen)

    def derived(self, real: Any, shown: Any) -> Any:
        if not isinstance(shown, templating.Masked) and type(shown) is type(real) and shown == real:
            return real  # no secret went into it
        self._remember(real)
        if isinstance(real, str) and isinstance(shown, str) and MASK in shown and shown != MASK:
            return str.__str__(shown)  # `***-x`: the shown text says what the value is made of
        return templating.Masked()

    def items(self, real: list[Any], shown: Callable[[], list[Any]]) -> list[Any]:
        """The shown `for_each` items: each one that a secret went into is ***. When the
        lists differ in length (`inputs.token | list`), every item came from the secret."""
        if not self.active:
            return real
        try:
            seen = shown()
        except TemplateError:
            seen = []
        if len(seen) != len(real):
            for item in real:
                self._remember(item)
            return [templating.Masked() for _ in real]
        return [self.derived(r, s) for r, s in zip(real, seen, strict=True)]

    def current(self, names: dict[str, Any], outputs: dict[str, Any] | None) -> dict[str, Any]:
        """The running step's own names as shown: its output masked, its shown outputs."""
        shown = self.masker.data({k: v for k, v in names.items() if k != "outputs"})
        shown["outputs"] = outputs if outputs is not None else names.get("outputs", {})
        return dict(shown)

    def _remember(self, real: Any, depth: int = 4) -> None:
        """Text computed from a secret is masked as text too, wherever it appears (in a
        command's output, say), when it is long enough not to mask ordinary words."""
        if isinstance(real, str):
            self.masker.add(real, derived=True)
        elif depth and isinstance(real, (list, tuple)):
            for item in real:
                self._remember(item, depth - 1)
        elif depth and isinstance(real, Mapping):
            for item in real.values():
                self._remember(item, depth - 1)
