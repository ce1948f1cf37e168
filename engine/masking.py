"""Secret masking: every secret value becomes `***` before anything is written or shown."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

MASK = "***"


class Masker:
    """Replaces known secret values in strings and nested data."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        for value in secrets:
            self.add(value)

    def add(self, value: Any) -> None:
        text = str(value) if value is not None else ""
        # One- and two-character "secrets" would mask ordinary text everywhere.
        if len(text) >= 3 and text not in self._secrets:
            self._secrets.append(text)
            self._secrets.sort(key=len, reverse=True)  # longest first: no partial leaks

    def __bool__(self) -> bool:
        return bool(self._secrets)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(self._secrets)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def data(self, value: Any) -> Any:
        """Mask every string inside dicts, lists and tuples."""
        if not self._secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value

    def bytes(self, value: bytes) -> bytes:
        if not self._secrets:
            return value
        for secret in self._secrets:
            raw = secret.encode()
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
        """Length of the longest end of `text` that is a proper prefix of a secret."""
        longest = 0
        for secret in self.masker.secrets:
            for size in range(min(len(secret) - 1, len(text)), longest, -1):
                if text.endswith(secret[:size]):
                    longest = size
                    break
        return longest
