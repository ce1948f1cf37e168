"""Small formatting helpers shared by the reports and their renderers (text, Markdown,
HTML, and the plain data of the JSON formats)."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from engine.language.duration import format_duration

_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}#+!|~])")


def clock(seconds: float | None) -> str:
    """Run-relative time as on a stopwatch: 02:10.0, 1:02:10.0."""
    if seconds is None:
        return "-"
    whole, frac = divmod(max(seconds, 0.0), 1.0)
    hours, rest = divmod(int(whole), 3600)
    minutes, secs = divmod(rest, 60)
    tenth = min(int(frac * 10), 9)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}.{tenth}"
    return f"{minutes:02d}:{secs:02d}.{tenth}"


def dur(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


def one_line(value: Any, limit: int = 160) -> str:
    """Any value as one line of at most `limit` characters (control characters shown)."""
    text = " ".join(str("" if value is None else value).split())
    text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def md(value: Any, limit: int = 160) -> str:
    """Text for a Markdown table cell or paragraph: markup characters and HTML escaped."""
    text = _MD_SPECIAL.sub(r"\\\1", one_line(value, limit))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def md_code(value: Any, limit: int = 160) -> str:
    """Inline code that survives any backticks inside it; `|` escaped for tables."""
    text = one_line(value, limit)
    if not text:
        return ""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}"


def md_block(value: Any, limit: int = 2000) -> str:
    """A fenced block of output, longer than any fence inside it."""
    text = str(value or "")[-limit:].rstrip("\n")
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def pct(part: float, whole: float) -> str:
    return f"{round(100 * part / whole)}%" if whole > 0 else "-"


def line_numbers(numbers: list[int], shown: int = 20) -> str:
    """Line numbers for a sentence: all of a few, the first `shown` of many and how many more
    (a damaged journal can have 100,000 unreadable lines)."""
    text = ", ".join(str(n) for n in numbers[:shown])
    return text if len(numbers) <= shown else f"{text} and {len(numbers) - shown} more"


def plain(value: Any) -> Any:
    """A report's dataclasses, mappings and sequences as JSON-ready data; any other
    value as its text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
