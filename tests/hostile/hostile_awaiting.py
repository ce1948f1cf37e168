"""Hostile cases that fail because a fix owned by another area has not landed yet: each
is an xfail(strict=True) naming its owner, so it fails loudly once the fix lands (remove
the line then). The same list, with what happened, is /work/brief/hostile-findings.md.

Keys are test ids relative to tests/hostile/; a key ending in "[" covers every parameter
but those listed on their own (an empty owner: not awaiting anything)."""

from __future__ import annotations

AWAITING: dict[str, str] = {
}


def owner(nodeid: str) -> str | None:
    """Who a failing case awaits, for a test id (tests/hostile/... or relative)."""
    relative = nodeid.split("tests/hostile/", 1)[-1]
    if relative in AWAITING:
        return AWAITING[relative] or None
    return next((who for key, who in AWAITING.items() if key.endswith("[") and relative.startswith(key)), None)
