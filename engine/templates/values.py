"""The values templates give and take beyond plain data: text the shell environment puts
in unquoted (Raw), a secret as it is shown (Masked), and a value not known before the run
(Placeholder, for dry-runs)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


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

    def __iter__(self) -> Iterator[Placeholder]:
        # A loop over a list only the run knows goes round once, with a placeholder item
        # (`get pod <steps.pods.outputs.names[*]>`), never over the placeholder's characters.
        yield Placeholder(f"{self.path}[*]")

    def _no_value(self, other: Any) -> Any:
        # As a str, `n * 2` would repeat the text and `n % x` would format it: the
        # plan must say "computed at run time", never show a made-up value.
        raise TypeError(f"{self} has no value before the run")

    __mul__ = __rmul__ = __mod__ = __rmod__ = _no_value

    def __len__(self) -> int:  # `| length` of a list only the run knows: not the placeholder's text
        return int(self._no_value(None))

    def __bool__(self) -> bool:
        return True

    def __eq__(self, other: object) -> bool:
        # `selectattr('leader', 'eq', 'true')` over a placeholder must not pick nothing (and
        # the plan show `echo ''`): equal only to the same placeholder, else no answer yet.
        if isinstance(other, Placeholder):
            return str.__eq__(self, other)
        return bool(self._no_value(other))

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = str.__hash__

