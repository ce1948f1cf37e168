"""One pass over a command as /bin/sh reads it, with each value an opaque slot (MARK): the
context of every slot (see engine/templates/shell.py for what each means) and where the
heredoc bodies are.

Deliberately small: it follows quotes, escapes, command substitutions, comments, heredocs
and the words of simple commands (to recognise `sh -c`, `ssh`, ...).
"""

from __future__ import annotations

import re
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


class Scanner:
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

