"""Where each value of a `run` template lands in the shell command, and how to escape it there.

Quoting a value with `shlex.quote` is right only where the shell reads it unquoted. Inside
the author's double quotes, `'$(x)'` still runs `x`; inside single quotes the quotes of
`shlex.quote` close the author's; in an unquoted heredoc `$(x)` runs; a line equal to the
delimiter ends a heredoc early, and what follows it becomes commands. So the command is
scanned as /bin/sh reads it, with each value as an opaque slot (MARK), and each slot gets
the escaping of its context:

  plain        shlex.quote                 `echo {{ x }}`
  double       backslash before \\ $ ` "    `echo "x={{ x }}"`
  single       ' becomes '\\''              `echo 'x={{ x }}'`
  heredoc      backslash before \\ $ `      `cat <<EOF` ... `{{ x }}` ... `EOF`
  literal      as it is                    `cat <<'EOF'` ...
  comment      shlex.quote, one line only  `# {{ x }}`
  nested       only a plain word           `sh -c "… {{ x }}"`, `ssh host …`, `eval`, backticks,
                                           `$((…))`, `${…}`, `$'…'`, after a backslash

In the nested contexts another shell (or a second expansion) reads the text again: one
level of escaping cannot protect a value there, so any value other than a plain word
(letters, digits, `_ @ % + = : , . / -`) is refused. In a heredoc, a value must not end
it early: the finished command is scanned again to check that each value stayed inside
the body it was put in.

The scanner (_shell_scanner.py) is deliberately small. Lint reads the same contexts from
a `run` template (template_slots) to say where a value lands before anything runs.
"""

from __future__ import annotations

import re
import shlex
from functools import lru_cache

from ._shell_scanner import (
    COMMENT,
    DOUBLE,
    HEREDOC,
    LITERAL,
    MARK,
    NESTED,
    PLAIN,
    REINTERPRETERS,
    SHELLS,
    SINGLE,
    Body,
    Scanner,
    Slot,
)

__all__ = ["COMMENT", "DOUBLE", "HEREDOC", "LITERAL", "MARK", "NESTED", "PLAIN", "SINGLE", "Body", "Slot", "Unsafe",
           "bodies", "escape", "fill", "may_quote", "nested_advice", "plain_slots", "scan", "template_slots"]

_PLAIN_WORD = re.compile(r"[\w@%+=:,./-]*", re.ASCII)
_DOUBLE = str.maketrans({"\\": "\\\\", "$": "\\$", "`": "\\`", '"': '\\"'})
_HEREDOC = str.maketrans({"\\": "\\\\", "$": "\\$", "`": "\\`"})


class Unsafe(Exception):
    """A value cannot be placed safely where the template puts it; `index` says which
    value (None: the command itself)."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


_READERS = "|".join(sorted(SHELLS | REINTERPRETERS | {"sudo"}))
_CONTEXTS = re.compile(r"['\"`\\#]|<<|\$[({']|(?:^|[\s/;&|(])(?:" + _READERS + r")(?=[\s;&|)]|$)")


def may_quote(text: str) -> bool:
    """Whether anything in `text` could put a value anywhere but plainly unquoted: quotes,
    escapes, comments, heredocs, expansions, or a command that reads text again."""
    return _CONTEXTS.search(text) is not None


@lru_cache(maxsize=2048)
def scan(text: str) -> tuple[Slot, ...]:
    """The context of every MARK in `text`, in order."""
    scanner = Scanner(text)
    scanner.command()
    return tuple(scanner.slots)


_TEMPLATE_PARTS = re.compile(r"\{\{-?(?P<expr>.*?)-?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


@lru_cache(maxsize=4096)
def template_slots(text: str) -> tuple[tuple[int, str, Slot], ...]:
    """(offset, expression, context) of every `{{ }}` of a `run` template, read as the shell
    reads the command (`{% %}` and comments taken out). Nothing when nothing in it could
    quote a value, or when the text holds a NUL byte (no slot could be told apart)."""
    if MARK in text or not may_quote(text):
        return ()
    skeleton, found = [], []
    last = 0
    for match in _TEMPLATE_PARTS.finditer(text):
        skeleton.append(text[last:match.start()])
        if match.group("expr") is not None:
            skeleton.append(MARK)
            found.append((match.start(), match.group("expr").strip()))
        last = match.end()
    skeleton.append(text[last:])
    slots = scan("".join(skeleton))
    return tuple((start, expr, slot) for (start, expr), slot in zip(found, slots, strict=True))


def bodies(text: str) -> list[Body]:
    """Where the heredoc bodies of a finished command are."""
    scanner = Scanner(text)
    scanner.command()
    return scanner.bodies


def escape(value: str, slot: Slot) -> str:
    """`value` written so that the shell reads it back as exactly `value` in `slot`'s
    context; Unsafe where that cannot be done."""
    kind = slot.kind
    if kind == PLAIN:
        return shlex.quote(value)
    if kind == DOUBLE:
        return value.translate(_DOUBLE)
    if kind == SINGLE:
        return value.replace("'", "'\\''")
    if kind in (HEREDOC, LITERAL) and slot.strip_tabs and (value.startswith("\t") or "\n\t" in value):
        raise Unsafe(f"has a line starting with a tab, which the heredoc <<-{slot.detail} would strip")
    if kind == HEREDOC:
        return value.translate(_HEREDOC)
    if kind == LITERAL:
        return value
    if kind == COMMENT:
        if "\n" in value or "\r" in value:
            raise Unsafe("is inside a comment, and a line break in its value would end the comment")
        return shlex.quote(value)
    if _PLAIN_WORD.fullmatch(value):
        return value
    raise Unsafe(nested_advice(slot.detail, value=True))


def nested_advice(why: str, value: bool = False) -> str:
    """What to say about a template that lands where text is read again (`why`); with
    `value`, about a value that was refused there."""
    if why in ("ssh", "sudo -s"):
        fix = "use the step's `target:` instead, so the engine runs the command on the host with the value quoted once"
    elif why.endswith("-c") or why.endswith("heredoc") or why in ("eval", "su", "runuser", "watch", "parallel"):
        fix = ("send it through `env:` (env: {VALUE: \"{{ … }}\"}) and write \"$VALUE\" inside the inner "
               "script's single quotes, e.g. sh -c 'echo \"$VALUE\"'")
    else:
        fix = "send it through `env:` (env: {VALUE: \"{{ … }}\"}) and write \"$VALUE\" in its place"
    verdict = ", and this value is not one" if value else "; anything else fails the step"
    return (f"lands inside {why}, where the shell reads the text a second time: one level of quoting "
            f"cannot protect it, so only a plain word (letters, digits, _ @ % + = : , . / -) is accepted "
            f"there{verdict}. To pass any value: {fix}")


@lru_cache(maxsize=2048)
def _plan(skeleton: str) -> tuple[tuple[Slot, ...], bool]:
    """The slots of a skeleton, and whether they are all plain (the common case)."""
    slots = scan(skeleton)
    return slots, all(s.kind == PLAIN for s in slots)


def plain_slots(skeleton: str) -> int | None:
    """The number of slots of a skeleton when every one is plain (shlex.quote is the
    escaping of each), else None."""
    slots, plain = _plan(skeleton)
    return len(slots) if plain else None


def fill(skeleton: str, values: list[tuple[str, bool]]) -> str:
    """`skeleton` with each MARK replaced by its value, escaped for where it lands
    (`verbatim` values, such as dry-run placeholders, are put as they are).
    Unsafe (with the value's `index`) when a value cannot be placed."""
    slots, plain = _plan(skeleton)
    if len(slots) != len(values):
        raise Unsafe("the command holds a NUL byte, which no command line can carry")
    pieces = skeleton.split(MARK)
    out = [pieces[0]]
    if plain:
        quote = shlex.quote
        for index, (value, verbatim) in enumerate(values):
            if not verbatim and "\0" in value:
                raise _nul(index)
            out += (value if verbatim else quote(value), pieces[index + 1])
        return "".join(out)
    placed: list[tuple[int, int, Slot, int]] = []  # where heredoc values went, to check them after
    size = len(pieces[0])
    for index, ((value, verbatim), slot) in enumerate(zip(values, slots, strict=True)):
        text = value if verbatim else _escaped(value, slot, index)
        if slot.kind in (HEREDOC, LITERAL):
            placed.append((size, size + len(text), slot, index))
        out += (text, pieces[index + 1])
        size += len(text) + len(pieces[index + 1])
    command = "".join(out)
    if placed:
        _check_heredocs(command, placed)
    return command


def _nul(index: int) -> Unsafe:
    return Unsafe("contains a NUL byte, which no command line can carry", index)


def _escaped(value: str, slot: Slot, index: int) -> str:
    if "\0" in value:
        raise _nul(index)
    try:
        return escape(value, slot)
    except Unsafe as exc:
        raise Unsafe(str(exc), index) from None


def _check_heredocs(command: str, placed: list[tuple[int, int, Slot, int]]) -> None:
    """Each value put in a heredoc body is still inside it: a line of the value equal to
    the delimiter would end the heredoc early and make the rest of it commands."""
    found = bodies(command)
    for start, end, slot, index in placed:
        if not any(b.start <= start and end <= b.end and b.delimiter == slot.detail for b in found):
            raise Unsafe(f"holds a line {slot.detail}, which would end the heredoc early and run the rest "
                         "of it as commands: pass it through `env:` instead", index)
        if _garbled_by_dash(command, start, end, slot):
            raise Unsafe(f"has a line starting like the delimiter {slot.detail} followed by a non-ASCII "
                         "character, which /bin/sh (dash) drops from a heredoc: pass it through `env:` instead",
                         index)


def _garbled_by_dash(command: str, start: int, end: int, slot: Slot) -> bool:
    """dash reads a heredoc line that begins with part of the delimiter byte by byte and
    loses the byte after that part when it is not ASCII (`Eé` under <<EOF prints `E\\xa9`):
    such a value would not reach the command as itself."""
    first = command.rfind("\n", 0, start) + 1
    last = command.find("\n", end)
    for line in command[first:last if last >= 0 else len(command)].split("\n"):
        body = line.lstrip("\t") if slot.strip_tabs else line
        for size in range(1, len(slot.detail) + 1):
            prefix = slot.detail[:size]
            if body.startswith(prefix) and len(body) > size and ord(body[size]) >= 128:
                return True
    return False
