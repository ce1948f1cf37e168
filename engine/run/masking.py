"""Secret masking: every secret value becomes `***` before anything is written or shown.

This is the second line of defence. The first is by construction: what the engine shows
and journals (commands, URLs, outputs, vars, `for_each` items, messages) is rendered from
a context in which secret inputs are `***` already, and whatever is computed from them
stays `***` (see RunState.shown_context). What no template produced (a command's output,
a server's answer, an error message) is masked here: the secret as it is, and as each
encoding the engine itself writes it in - shell-quoted, escaped for double quotes and
heredocs, JSON, URL- and form-encoded, Python's repr, and inside base64 (HTTP basic auth).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

MASK = "***"
# Text computed from a secret is masked as text when at least this long: shorter pieces (an
# item of `inputs.token | list`) would mask ordinary text everywhere, and are masked by
# construction. A secret itself is masked at any length: leaking it is worse than garbling.
MIN_LENGTH = 3
MAX_DEPTH = 64  # levels of nested data masked; deeper levels are cut (`data`)
_B64_MIN = 6  # a base64 fragment shorter than this would match by chance
_DOUBLE_QUOTED: dict[int, str] = {ord("\\"): "\\\\", ord("$"): "\\$", ord("`"): "\\`", ord('"'): '\\"'}
_HEREDOC: dict[int, str] = {ord("\\"): "\\\\", ord("$"): "\\$", ord("`"): "\\`"}


def encodings(secret: str) -> list[str]:
    """The ways the engine may write `secret` inside a longer text, itself included."""
    import html
    from urllib.parse import quote, quote_plus  # only a run with secrets pays for the imports

    forms = [
        secret,
        secret.replace("'", "'\"'\"'"),  # inside shlex.quote's single quotes
        secret.replace("'", "'\\''"),  # inside the author's single quotes (engine.templates._shell)
        secret.translate(_DOUBLE_QUOTED),  # inside double quotes (engine.templates._shell)
        secret.translate(_HEREDOC),  # in a heredoc
        json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
        quote(secret, safe=""), quote(secret, safe="/"), quote_plus(secret),
        repr(secret)[1:-1], repr(secret.encode())[2:-1],
        html.escape(secret), html.escape(secret, quote=False),
    ]
    forms += _base64_fragments(secret.encode())
    return list(dict.fromkeys(f for f in forms if f))


def _base64_fragments(raw: bytes) -> list[str]:
    """What base64 always writes for `raw`, wherever it starts in the encoded data: one
    fragment for each of the three alignments, without the characters its neighbours
    share (so `Basic base64(user:secret)` is caught whatever the user name)."""
    import base64

    fragments = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        whole = (offset + len(raw)) // 3 * 4  # characters made of whole 3-byte groups
        fragment = encoded[4 if offset else 0:whole]
        if len(fragment) >= _B64_MIN:
            fragments.append(fragment)
    return fragments


class Masker:
    """Replaces known secret values, in every encoding the engine writes, in strings and
    nested data."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        self._forms: list[str] = []
        for value in secrets:
            self.add(value)

    def add(self, value: Any, *, derived: bool = False) -> None:
        """Mask `value` from now on: a secret at any length, text `derived` from one when
        it is at least MIN_LENGTH long."""
        text = str(value) if value is not None else ""
        if not text or (derived and len(text) < MIN_LENGTH) or text in self._secrets:
            return
        self._secrets.append(text)
        self._forms = sorted({f for s in self._secrets for f in encodings(s)}, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(self._secrets)

    @property
    def forms(self) -> tuple[str, ...]:
        """Every text masked: each secret in each encoding, longest first (no partial leaks)."""
        return tuple(self._forms)

    def text(self, value: str) -> str:
        for form in self._forms:
            if form in value:
                value = value.replace(form, MASK)
        return value

    def data(self, value: Any, depth: int = MAX_DEPTH) -> Any:
        """Mask every string inside dicts, lists and tuples (down to MAX_DEPTH levels;
        what is deeper is cut, as it is not shown whole anywhere)."""
        if not self._secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, (dict, list, tuple)) and depth <= 0:
            return "…"
        if isinstance(value, dict):
            return {k: self.data(v, depth - 1) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v, depth - 1) for v in value]
        return value

    def bytes(self, value: bytes) -> bytes:
        if not self._secrets:
            return value
        for form in self._forms:
            raw = form.encode()
            if raw in value:
                value = value.replace(raw, MASK.encode())
        return value


class MaskedStream:
    """Masks text that arrives in chunks (a command's output): a secret split across
    two chunks is still masked. The end of a chunk that could be the start of a secret
    is held back until the next chunk, or until `flush()`."""

    def __init__(self, masker: Masker) -> None:
        self.masker = masker
        self._held = ""

    def feed(self, text: str) -> str:
        """The part of `held + text` that is safe to show, masked."""
        text = self.masker.text(self._held + text)
        keep = self._possible_start(text)
        self._held = text[len(text) - keep:] if keep else ""
        return text[: len(text) - keep]

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held

    def _possible_start(self, text: str) -> int:
        """Length of the longest end of `text` that is a proper prefix of a masked form."""
        longest = 0
        for form in self.masker.forms:
            for size in range(min(len(form) - 1, len(text)), longest, -1):
                if text.endswith(form[:size]):
                    longest = size
                    break
        return longest
