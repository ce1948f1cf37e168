"""YAML file -> plain data, with a source map and hard limits.

Reading is bounded before parsing: only a regular file, at most `Limits.max_bytes`,
valid UTF-8, nesting checked before libyaml (which recurses in C) composes it. The data
is built from libyaml's events when the document is ordinary (_yaml_events.py), else
from the node tree by _yaml_nodes.py, which reports every problem. Positions come from
the node tree (source_map.py), composed only when a diagnostic needs one, so a clean
file never pays for them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from functools import partial
from typing import Any, NamedTuple

import yaml
from yaml.nodes import MappingNode, Node

from ._yaml_events import UNUSUAL, quick_data
from ._yaml_nodes import (
    RULE_DUPLICATE_KEY,
    RULE_IO,
    RULE_LIMIT,
    RULE_SHAPE,
    RULE_SYNTAX,
    Builder,
    FastLoader,
    Problem,
)
from .diagnostics import Diagnostic, Severity
from .limits import DEFAULT_LIMITS, Limits
from .source_map import Path_, Position, SourceMap, position_after

__all__ = ["DEFAULT_LIMITS", "RULE_DUPLICATE_KEY", "RULE_IO", "RULE_LIMIT", "RULE_SHAPE", "RULE_SYNTAX", "Document",
           "EmptyDocument", "Limits", "LoadError", "Position", "SourceMap", "decode", "load_file", "load_text",
           "load_value", "read_text", "special_kind"]

# libyaml's composer recurses in C and crashes the interpreter somewhere past ~10,000
# levels; below this many structural characters a document cannot nest that deep.
_SAFE_COMPOSE_BOUND = 5000


class LoadError(Exception):
    """The file could not be loaded at all; `diagnostic` says where and why, and `text` is
    the file's text when it could be read (to show the line with a caret)."""

    def __init__(self, diagnostic: Diagnostic, text: str | None = None) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic
        self.text = text


class Document(NamedTuple):
    """A loaded YAML file: its data, where each part came from, and soft problems."""

    file: str
    data: Any
    source: SourceMap
    problems: tuple[Diagnostic, ...] = ()

    @property
    def kind(self) -> str | None:
        kind = self.data.get("kind") if isinstance(self.data, dict) else None
        return kind if isinstance(kind, str) else None

    def diagnostic(
        self,
        path: Path_,
        message: str,
        rule: str,
        severity: Severity = Severity.ERROR,
        *,
        key: bool = False,
    ) -> Diagnostic:
        """A diagnostic positioned at the node for `path` (or its key)."""
        pos = self.source.position(path, key=key)
        return Diagnostic(self.file, pos.line, pos.column, severity, rule, message, tuple(path))


def _error(file: str, line: int, column: int, message: str, rule: str) -> LoadError:
    return LoadError(Diagnostic(file, line, column, Severity.ERROR, rule, message))


def read_text(path: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS) -> str:
    """Read a file as UTF-8 within the size limit; LoadError otherwise.

    Only a regular file is read: a FIFO would block the reader forever, a device never
    ends. It is opened without blocking and checked before a byte is read.
    """
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _error(name, 1, 1, f"cannot read file: {exc.strerror or exc}", RULE_IO) from exc
    kind = special_kind(os.fstat(fd).st_mode)
    if kind is not None:
        os.close(fd)
        raise _error(name, 1, 1, f"not a regular file ({kind}): not read", RULE_IO)
    with os.fdopen(fd, "rb") as handle:
        try:
            raw = handle.read(limits.max_bytes + 1)
        except OSError as exc:
            raise _error(name, 1, 1, f"cannot read file: {exc.strerror or exc}", RULE_IO) from exc
    if len(raw) > limits.max_bytes:
        raise _error(
            name, 1, 1, f"file is larger than the {limits.max_bytes} byte limit", RULE_LIMIT
        )
    return decode(raw, name)


_SPECIAL = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
            (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def special_kind(mode: int) -> str | None:
    """What a file that is not a regular file is ('a FIFO'), from its st_mode; None if regular."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _SPECIAL if test(mode)), "not a regular file")


def decode(raw: bytes, file: str) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        # Columns count characters, as everywhere else; the bytes before the first bad
        # one are valid UTF-8.
        pos = position_after(raw[: exc.start].decode("utf-8"))
        error = _error(file, pos.line, pos.column, f"file is not UTF-8 (byte 0x{raw[exc.start]:02x})",
                       RULE_SYNTAX)
        error.text = raw.decode("utf-8", errors="replace")
        raise error from None
    return text[1:] if text.startswith("\ufeff") else text


def load_file(path: str | os.PathLike[str], limits: Limits = DEFAULT_LIMITS) -> Document:
    """Load one YAML file. Raises LoadError (with a positioned Diagnostic) if it cannot."""
    name = os.fspath(path)
    text = read_text(name, limits)
    try:
        return load_text(text, name, limits)
    except LoadError as exc:
        exc.text = text
        raise


def load_text(text: str, file: str = "<string>", limits: Limits = DEFAULT_LIMITS) -> Document:
    """Load YAML text as one mapping document."""
    root, data, builder = _load(text, file, limits)
    if not isinstance(data, dict):
        found = "a list" if isinstance(data, list) else f"a single value ({_type_name(data)})"
        raise _error(file, 1, 1, f"expected a mapping at the top level, found {found}", RULE_SHAPE)
    if builder is None:  # the fast path: the node tree is composed if a position is asked for
        return Document(file, data, SourceMap(None, text, partial(_compose_text_of, file), file))
    problems = tuple(
        Diagnostic(
            file,
            knode.start_mark.line + 1,
            knode.start_mark.column + 1,
            Severity.ERROR,
            RULE_DUPLICATE_KEY,
            f"duplicate key '{name}': YAML would silently keep only the last one",
        )
        for name, knode in builder.duplicates
    )
    return Document(file, data, SourceMap(root, text, file=file), problems)


class EmptyDocument(LoadError):
    """The text holds no document at all (nothing, or only comments)."""


def load_value(text: str, file: str = "<value>", limits: Limits = DEFAULT_LIMITS) -> Any:
    """Any one YAML value (JSON is YAML too) within the limits, for data that is not a
    document of ours: a list or map given on the command line. Empty text is None."""
    try:
        return _load(text, file, limits)[1]
    except EmptyDocument:
        return None


def _check_size(text: str, file: str, limits: Limits) -> None:
    if len(text) > limits.max_bytes:
        raise _error(file, 1, 1, f"text is larger than the {limits.max_bytes} byte limit", RULE_LIMIT)
    # Before any parse: see _check_depth.
    _check_depth(text, file, limits)


def _load(text: str, file: str, limits: Limits) -> tuple[Node | None, Any, Builder | None]:
    """(root, data, builder), with root and builder None when the fast path built the data."""
    _check_size(text, file, limits)
    data = quick_data(text, limits)
    if data is not UNUSUAL:
        return None, data, None
    root = _compose(text, file)
    if root is None:
        raise EmptyDocument(Diagnostic(file, 1, 1, Severity.ERROR, RULE_SHAPE,
                                       "file is empty: expected a mapping with a `kind:` key"))
    builder = Builder(limits, len(text))
    try:
        return root, builder.build(root), builder
    except Problem as problem:
        raise _problem_error(problem, text, file) from None
    except RecursionError:
        raise _error(file, 1, 1, "nesting too deep", RULE_LIMIT) from None


def _problem_error(problem: Problem, text: str, file: str) -> LoadError:
    mark = problem.node.start_mark
    if isinstance(problem.node, MappingNode) and problem.rule == RULE_SHAPE:
        # `run: {{ x }}` composes as a mapping whose key is a mapping: a template, unquoted.
        from ._yaml_hints import template_value

        lines = text.splitlines()
        line = lines[mark.line] if mark.line < len(lines) else ""
        hint = template_value(line, mark.column) if mark.column > 0 else None
        if hint is not None:
            return _error(file, mark.line + 1, mark.column, f"YAML syntax error: {hint}", RULE_SYNTAX)
    return _error(file, mark.line + 1, mark.column + 1, problem.message, problem.rule)


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _compose_text_of(file: str, text: str) -> Node | None:
    """`_compose` with the file first, for a SourceMap's composer that can be pickled."""
    return _compose(text, file)


def _compose(text: str, file: str) -> Node | None:
    loader = FastLoader(text)
    try:
        return loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _yaml_problem(exc, text, file) from None
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError, text: str, file: str) -> LoadError:
    if isinstance(exc, yaml.MarkedYAMLError):
        return _yaml_error(exc, text, file)
    if isinstance(exc, yaml.reader.ReaderError):
        return _reader_error(exc, text, file)
    return _error(file, 1, 1, f"YAML error: {exc}", RULE_SYNTAX)


def _reader_error(exc: yaml.reader.ReaderError, text: str, file: str) -> LoadError:
    """A character YAML does not allow (a control character), at its position."""
    # libyaml reports a byte offset into the UTF-8 encoding; the Python reader, a character one.
    if FastLoader is yaml.SafeLoader:
        before = text[: exc.position]
    else:
        before = text.encode("utf-8")[: exc.position].decode("utf-8", errors="ignore")
    pos = position_after(before)
    char = exc.character if isinstance(exc.character, int) else ord(exc.character)
    return _error(file, pos.line, pos.column,
                  f"YAML syntax error: character #x{char:04x} is not allowed: {exc.reason}", RULE_SYNTAX)


def _yaml_error(exc: yaml.MarkedYAMLError, text: str, file: str) -> LoadError:
    from ._yaml_hints import explain

    found = explain(exc, text)
    return _error(file, found.line, found.column, found.message, RULE_SYNTAX)


def _check_depth(text: str, file: str, limits: Limits) -> None:
    # Every nesting level opens with one of these characters, so their count bounds
    # the depth; only documents that could be deep pay for an exact event walk.
    bound = sum(text.count(c) for c in "[{-?:")
    if bound < _SAFE_COMPOSE_BOUND:
        return
    depth = 0
    try:
        for event in _events(text):
            if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                depth += 1
                if depth > limits.max_depth:
                    line, column = _mark(event.start_mark)
                    raise _error(
                        file, line, column, f"nesting deeper than {limits.max_depth} levels", RULE_LIMIT
                    )
            elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                depth -= 1
    except yaml.YAMLError as exc:
        raise _yaml_problem(exc, text, file) from None


def _mark(mark: Any) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def _events(text: str) -> Iterator[yaml.Event]:
    loader = FastLoader(text)
    try:
        while loader.check_event():
            yield loader.get_event()
    finally:
        loader.dispose()
