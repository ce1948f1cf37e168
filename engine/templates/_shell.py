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

The scanner is deliberately small: it follows quotes, escapes, command substitutions,
comments, heredocs and the words of simple commands (to recognise `sh -c`, `ssh`, ...).
"""

from __future__ import annotations

import re
import shlex
from functools import lru_cache
from typing import NamedTuple

MARK = "\0"  # a value's slot in the scanned text (a command can never hold a NUL byte)

PLAIN, DOUBLE, SINGLE, HEREDOC, LITERAL, COMMENT, NESTED = (
    "plain", "double", "single", "heredoc", "literal", "comment", "nested")

SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "yash", "fish", "csh", "tcsh"})
# Commands that hand their arguments to a shell again.
REINTERPRETERS = frozenset({"eval", "ssh", "su", "runuser", "watch", "sudo -s", "parallel"})
WRAPPERS = frozenset({"sudo", "doas", "env", "exec", "nohup", "time", "command", "nice", "ionice", "setsid",
                      "stdbuf", "timeout", "chrt", "taskset", "unbuffer", "builtin"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_WRAPPER_ARGUMENT = re.compile(r"^(-.*|[0-9.]+[smhd]?|[A-Za-z_][A-Za-z0-9_]*=.*)$")
_PLAIN_WORD = re.compile(r"[\w@%+=:,./-]*", re.ASCII)
_DOUBLE = str.maketrans({"\\": "\\\\", "$": "\\$", "`": "\\`", '"': '\\"'})
_HEREDOC = str.maketrans({"\\": "\\\\", "$": "\\$", "`": "\\`"})


class Slot(NamedTuple):
    """The context of one value: a kind above, and for heredocs the delimiter, for
    nested ones what reads the text again."""

    kind: str
    detail: str = ""
    strip_tabs: bool = False  # a `<<-` heredoc: the shell strips the tabs that start its lines


class Body(NamedTuple):
    start: int
    end: int  # where the delimiter line starts
    delimiter: str


class Unsafe(Exception):
    """A value cannot be placed safely where the template puts it; `index` says which
    value (None: the command itself)."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class _Heredoc(NamedTuple):
    delimiter: str
    strip_tabs: bool
    expanding: bool
    nested: str


def _name(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def _command_at(words: list[str]) -> int:
    """Index of the command name in a simple command's words (after assignments and
    wrappers such as sudo, env, timeout 5), or len(words) when it has not come yet."""
    k = 0
    while k < len(words) and _ASSIGNMENT.match(words[k]):
        k += 1
    while k < len(words) and _name(words[k]) in WRAPPERS:
        k += 1
        while k < len(words) and _WRAPPER_ARGUMENT.match(words[k]):
            k += 1
    return k


def nested_word(words: list[str]) -> str:
    """Why the next word of a simple command is read again by another shell, or ""."""
    k = _command_at(words)
    if k >= len(words):
        return ""
    name = _name(words[k])
    if name in REINTERPRETERS:
        return name
    for j in range(k, len(words)):
        if _name(words[j]) in SHELLS and any(w.startswith("-") and "c" in w and not w.startswith("--")
                                              for w in words[j + 1:]):
            return f"{_name(words[j])} -c"
    return ""


def _nested_heredoc(words: list[str]) -> str:
    """Why a heredoc's body is shell code (fed to sh, ssh, ...), or ""."""
    k = _command_at(words)
    if k >= len(words):
        return "sudo" if any(_name(w) in ("sudo", "doas", "su") for w in words) else ""
    if _name(words[k]) in REINTERPRETERS:
        return _name(words[k])
    shell = next((_name(w) for w in words[k:] if _name(w) in SHELLS), "")
    return f"{shell} reading the heredoc" if shell else ""


class _Scanner:
    """One pass over a command as /bin/sh reads it (see the module docstring)."""

    def __init__(self, text: str) -> None:
        self.text, self.i = text, 0
        self.slots: list[Slot] = []
        self.bodies: list[Body] = []
        self.pending: list[_Heredoc] = []

    def at(self, prefix: str) -> bool:
        return self.text.startswith(prefix, self.i)

    def slot(self, kind: str, detail: str = "") -> None:
        self.slots.append(Slot(kind, detail))
        self.i += 1

    def escaped(self) -> None:
        """A backslash and what it escapes. A value right after it would lose its first
        quote character to the backslash: nothing but a plain word is safe there."""
        if self.text[self.i + 1:self.i + 2] == MARK:
            self.i += 1
            self.slot(NESTED, "a backslash")
        else:
            self.i += 2

    # -- unquoted text: words and simple commands -----------------------------------------------

    def command(self, close: bool = False) -> None:
        """Commands up to the end, or (close) up to the `)` that ends a `$(`."""
        words: list[str] = []
        word: list[str] = []
        text = self.text
        depth = 0  # subshells `( … )` opened inside
        while self.i < len(text):
            c = text[self.i]
            depth += (c == "(") - (c == ")")
            if close and depth < 0:
                self.i += 1
                return
            if c in " \t":
                self._end_word(words, word)
                self.i += 1
            elif c in ";&|()\n":
                self._end_word(words, word)
                words.clear()
                self.i += 1
                if c == "\n" and self.pending:
                    self.heredoc_bodies()
            elif c == "<" and self.at("<<") and not self.at("<<<"):
                self._end_word(words, word)
                self.heredoc_operator(words)
            else:
                self._word_char(c, words, word)

    def _end_word(self, words: list[str], word: list[str]) -> None:
        if word:
            words.append("".join(word))
            word.clear()

    def _word_char(self, c: str, words: list[str], word: list[str]) -> None:
        if c == "\\":
            word.append(self.text[self.i + 1:self.i + 2])
            self.escaped()
        elif c == "'":
            start = self.i = self.i + 1
            self.single(nested_word(words))
            word.append(self.text[start:self.i - 1])
        elif c == '"':
            start = self.i = self.i + 1
            self.double(nested_word(words))
            word.append(self.text[start:self.i - 1])
        elif c == "#" and not word:
            self.comment()
        elif c == MARK:
            nested = nested_word(words)
            self.slot(NESTED if nested else PLAIN, nested)
            word.append("?")
        elif c in "`$":
            self.expansion(nested_word(words))
            word.append(c)
        else:
            word.append(c)
            self.i += 1

    # -- quotes and expansions ------------------------------------------------------------------

    def single(self, nested: str) -> None:
        while self.i < len(self.text):
            c = self.text[self.i]
            if c == "'":
                self.i += 1
                return
            if c == MARK:
                self.slot(NESTED if nested else SINGLE, nested)
            else:
                self.i += 1

    def double(self, nested: str) -> None:
        while self.i < len(self.text):
            c = self.text[self.i]
            if c == '"':
                self.i += 1
                return
            if c == "\\":
                self.escaped()
            elif c == MARK:
                self.slot(NESTED if nested else DOUBLE, nested)
            elif c in "`$":
                self.expansion(nested)
            else:
                self.i += 1

    def expansion(self, nested: str) -> None:
        """At `$` or a backtick: a command substitution is a fresh command (unless what
        encloses it is read again); the other expansions read their text again."""
        if self.at("$(("):
            self.i += 3
            self.until_closed("(", ")", "$((…))", extra=1)
        elif self.at("$("):
            self.i += 2
            if nested:
                self.until_closed("(", ")", nested)
            else:
                self.command(close=True)
        elif self.at("${"):
            self.i += 2
            self.until_closed("{", "}", "${…}")
        elif self.at("$'"):
            self.i += 2
            self.ansi_c()
        elif self.at("`"):
            self.i += 1
            self.backticks()
        else:
            self.i += 1

    def until_closed(self, opening: str, closing: str, why: str, extra: int = 0) -> None:
        """Up to the matching `closing`; every value inside is nested."""
        depth = 1 + extra
        while self.i < len(self.text) and depth:
            c = self.text[self.i]
            if c == MARK:
                self.slot(NESTED, why)
                continue
            if c == "\\":
                self.i += 1
            depth += (c == opening) - (c == closing)
            self.i += 1

    def ansi_c(self) -> None:
        while self.i < len(self.text) and self.text[self.i] != "'":
            if self.text[self.i] == MARK:
                self.slot(NESTED, "$'…'")
                continue
            self.i += 2 if self.text[self.i] == "\\" else 1
        self.i += 1

    def backticks(self) -> None:
        while self.i < len(self.text) and self.text[self.i] != "`":
            if self.text[self.i] == MARK:
                self.slot(NESTED, "backticks")
                continue
            self.i += 2 if self.text[self.i] == "\\" else 1
        self.i += 1

    def comment(self) -> None:
        while self.i < len(self.text) and self.text[self.i] != "\n":
            if self.text[self.i] == MARK:
                self.slot(COMMENT)
            else:
                self.i += 1

    # -- heredocs -------------------------------------------------------------------------------

    def heredoc_operator(self, words: list[str]) -> None:
        self.i += 2
        strip = self.at("-")
        self.i += strip
        while self.at(" ") or self.at("\t"):
            self.i += 1
        start = self.i
        while self.i < len(self.text) and self.text[self.i] not in " \t\n;&|<>()":
            if self.text[self.i] == MARK:
                self.slot(NESTED, "a heredoc delimiter")
                continue
            self.i += 1
        raw = self.text[start:self.i]
        delimiter = raw.replace("'", "").replace('"', "").replace("\\", "")
        expanding = raw == delimiter
        self.pending.append(_Heredoc(delimiter, strip, expanding, _nested_heredoc(words)))

    def heredoc_bodies(self) -> None:
        for doc in self.pending:
            start = self.i
            while self.i < len(self.text):
                end = self.text.find("\n", self.i)
                end = len(self.text) if end < 0 else end
                line = self.text[self.i:end]
                if (line.lstrip("\t") if doc.strip_tabs else line) == doc.delimiter:
                    self.bodies.append(Body(start, self.i, doc.delimiter))
                    self.i = end + 1
                    break
                self.heredoc_line(end, doc)
                self.i = end + 1
            else:
                self.bodies.append(Body(start, len(self.text), doc.delimiter))
        self.pending.clear()

    def heredoc_line(self, end: int, doc: _Heredoc) -> None:
        substituted = ""  # once `$(`, `${` or a backtick opens on the line, what follows is read again
        while self.i < end:
            c = self.text[self.i]
            if c == MARK:
                if doc.nested or substituted:
                    self.slot(NESTED, doc.nested or substituted)
                else:
                    self.slots.append(Slot(HEREDOC if doc.expanding else LITERAL, doc.delimiter, doc.strip_tabs))
                    self.i += 1
                continue
            if doc.expanding and c == "\\":
                self.escaped()
                continue
            if doc.expanding and (c == "`" or self.at("$(") or self.at("${")):
                substituted = "an expansion inside a heredoc"
            self.i += 1


_READERS = "|".join(sorted(SHELLS | REINTERPRETERS | {"sudo"}))
_CONTEXTS = re.compile(r"['\"`\\#]|<<|\$[({']|(?:^|[\s/;&|(])(?:" + _READERS + r")(?=[\s;&|)]|$)")


def may_quote(text: str) -> bool:
    """Whether anything in `text` could put a value anywhere but plainly unquoted: quotes,
    escapes, comments, heredocs, expansions, or a command that reads text again."""
    return _CONTEXTS.search(text) is not None


@lru_cache(maxsize=2048)
def scan(text: str) -> tuple[Slot, ...]:
    """The context of every MARK in `text`, in order."""
    scanner = _Scanner(text)
    scanner.command()
    return tuple(scanner.slots)


def bodies(text: str) -> list[Body]:
    """Where the heredoc bodies of a finished command are."""
    scanner = _Scanner(text)
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
