"""Regular expressions compiled when they are first used, not when their module is imported.

`re.compile` costs 0.1-0.5 ms a pattern, and a module compiles its patterns at import
whether or not the command uses them: a one-step `runbook run` imported 23 of the
engine's module-level patterns and used one (about 3 ms of its start-up). `deferred`
stands for `re.compile(source, flags)` and compiles it at its first use; the engine's
patterns on the start-up path of `runbook run` and `runbook validate` are made with it.
Each attribute (a bound method: `search`, `sub`, ...) is fetched from the compiled
pattern once and kept on the stand-in, so later uses cost what they cost on the pattern.
"""

from __future__ import annotations

import re
from typing import Any, cast

__all__ = ["deferred"]


class _Deferred:
    def __init__(self, source: str, flags: int) -> None:
        self._source = source
        self._flags = flags

    def __getattr__(self, name: str) -> Any:
        # Called only for what is not on the instance yet. Two threads may both get here
        # first: both compile (re's own cache makes the second cheap) and keep the same.
        value = getattr(re.compile(self._source, self._flags), name)
        setattr(self, name, value)
        return value


def deferred(source: str, flags: int = 0) -> re.Pattern[str]:
    """What `re.compile(source, flags)` gives, compiled when first used (call its methods;
    it is no `re.Pattern` to hand to `re` functions or isinstance)."""
    return cast("re.Pattern[str]", _Deferred(source, flags))
