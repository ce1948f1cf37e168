"""PyYAML's import, without the one cost of it nothing here uses.

`import yaml` compiles the pure-Python reader's pattern of non-printable characters
(`yaml.reader.Reader.NON_PRINTABLE`) when the class is defined: a character class over
most of Unicode, which `re` expands code point by code point, about 12 ms of every
`runbook validate FILE` and `runbook run` (a tenth of the start-up they are allowed).
The engine reads YAML with libyaml, whose reader checks characters in C, so the pattern
is only used when libyaml is missing. `defer_reader_pattern` puts a stand-in for it in
`re`'s cache before PyYAML is imported: the stand-in compiles the pattern the first time
it is used, so nothing changes but when the work is done. If the cache has been cleared
by then, PyYAML simply compiles the pattern itself.
"""

from __future__ import annotations

import re
import sys
from typing import Any

# Exactly the source PyYAML's reader compiles (yaml/reader.py, Reader.NON_PRINTABLE).
READER_PATTERN = "[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010ffff]"


class DeferredPattern:
    """A compiled pattern that is compiled on first use."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._compiled: re.Pattern[str] | None = None

    def __getattr__(self, name: str) -> Any:
        if self._compiled is None:
            # re.compile(source) would return this stand-in from the cache; re.UNICODE,
            # which a str pattern has anyway, makes another key and compiles it.
            self._compiled = re.compile(self._source, re.UNICODE)
        return getattr(self._compiled, name)


def defer_reader_pattern() -> None:
    """Before PyYAML is imported: its reader's pattern is compiled when first used."""
    cache = getattr(re, "_cache", None)
    if "yaml.reader" in sys.modules or not isinstance(cache, dict):
        return
    cache.setdefault((str, READER_PATTERN, 0), DeferredPattern(READER_PATTERN))
