"""The hard limits a file is read within (size, nesting, aliases, expansion): apart from the
YAML reader, so what depends on them (options, the kept models' salt) need not import it."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["DEFAULT_LIMITS", "Limits"]


class Limits(NamedTuple):
    """Guards against hostile or accidental huge input."""

    max_bytes: int = 1024 * 1024
    max_depth: int = 64
    # Nodes re-built through aliases. Sharing a block of defaults a few dozen times is
    # normal; a "billion laughs" document hits this after a few thousand nodes.
    max_alias_nodes: int = 10_000
    # What the data may hold (characters of every string, one per node), as a multiple of
    # the document's size, but at least `min_expansion`. Without aliases data is never
    # larger than its text; a large string repeated through aliases is the only way past
    # this, and everything downstream (plans, journals, reports) would copy each repeat.
    max_expansion: int = 10
    min_expansion: int = 256 * 1024


DEFAULT_LIMITS = Limits()
