"""YAML file -> plain data, with a source map and hard limits.

libyaml (C) composes the node tree; this module builds plain Python data from it
(faster than PyYAML's generator-based constructor, and it sees what PyYAML hides:
duplicate keys, alias blow-ups, excessive nesting). Scalars resolve as PyYAML does
(YAML 1.1, so `yes` is true), except timestamps, which stay strings: data here must
survive a round trip through JSON.

Positions are found by walking the kept node tree, and only when a diagnostic needs
one, so a clean file never pays for them.
"""

from __future__ import annotations

import operator
import os
import stat
from collections.abc import Iterator
from typing import Any, NamedTuple

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .diagnostics import Diagnostic, Severity

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# First characters of plain scalars PyYAML's YAML 1.1 resolver may turn into something
# other than a string (bools, numbers, null, timestamps, `<<`, `=`).
_SPECIAL_FIRST = frozenset(yaml.resolver.Resolver.yaml_implicit_resolvers)


class _Loader(_Base):
    """libyaml calls back into Python for every node; make those calls as cheap as can be.

    We use no path resolvers, so descending and ascending need do nothing (C builtins of
    the right arity), and most scalars are strings that need no regular expression.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.descend_resolver = operator.is_  # (parent, index) -> ignored
        self.ascend_resolver = tuple  # () -> ignored

    def resolve(self, kind: Any, value: Any, implicit: Any, _str: str = "tag:yaml.org,2002:str",
                _special: frozenset[str | None] = _SPECIAL_FIRST, _scalar: Any = ScalarNode) -> Any:
        if kind is _scalar and (not implicit[0] or (value and value[0] not in _special)):
            return _str
        return super().resolve(kind, value, implicit)

Path_ = tuple[str | int, ...]

STR = "tag:yaml.org,2002:str"
MERGE = "tag:yaml.org,2002:merge"
_SCALAR_TAGS = {
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"

# libyaml's composer recurses in C and crashes the interpreter somewhere past ~10,000
# levels; below this many structural characters a document cannot nest that deep.
_SAFE_COMPOSE_BOUND = 5000

RULE_IO = "RB000"
RULE_SYNTAX = "RB001"
RULE_LIMIT = "RB002"
RULE_SHAPE = "RB003"
RULE_DUPLICATE_KEY = "RB004"


class Limits(NamedTuple):
    """Guards against hostile or accidental huge input."""

    max_bytes: int = 1024 * 1024
    max_depth: int = 64
    # Nodes re-built through aliases. Sharing a block of defaults a few dozen times is
    # normal; a "billion laughs" document hits this after a few thousand nodes.
    max_alias_nodes: int = 10_000
    # What the data may hold (characters of every string, one per node), as a multiple of
    # the document's size, but at least `min_expansion`. Without aliases data is never
    # larger than its text; a large string repeated through aliases is the only way past
    # this, and everything downstream (plans, journals, reports) would copy each repeat.
    max_expansion: int = 10
    min_expansion: int = 256 * 1024


DEFAULT_LIMITS = Limits()


class Position(NamedTuple):
    line: int
    column: int


class LoadError(Exception):
    """The file could not be loaded at all; `diagnostic` says where and why, and `text` is
    the file's text when it could be read (to show the line with a caret)."""

    def __init__(self, diagnostic: Diagnostic, text: str | None = None) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic
        self.text = text


class SourceMap:
    """Maps data paths to line:column (1-based) by walking the composed node tree."""

    def __init__(self, root: Node | None, text: str) -> None:
        self.root = root
        self.text = text
        # id(mapping node) -> its keys and merge sources. Built on first use: a file with
        # thousands of diagnostics in one mapping must not scan it once per diagnostic.
        self._mappings: dict[int, tuple[dict[Any, tuple[Node, Node]], list[Node]]] = {}

    def node(self, path: Path_, *, key: bool = False) -> Node | None:
        """The deepest node along `path`; with key=True, the key node of its last part."""
        node = self.root
        for i, part in enumerate(path):
            found = self._child(node, part, want_key=key and i == len(path) - 1)
            if found is None:
                break
            node = found
        return node

    def _child(self, node: Node | None, part: str | int, *, want_key: bool) -> Node | None:
        if isinstance(node, SequenceNode) and isinstance(part, int):
            return node.value[part] if 0 <= part < len(node.value) else None
        if not isinstance(node, MappingNode):
            return None
        entries, merged = self._entries(node)
        if part in entries:
            knode, vnode = entries[part]
            return knode if want_key else vnode
        for source in merged:  # the first merged mapping that has the key, as in the data
            found = self._child(source, part, want_key=want_key)
            if found is not None:
                return found
        return None

    def _entries(self, node: MappingNode) -> tuple[dict[Any, tuple[Node, Node]], list[Node]]:
        cached = self._mappings.get(id(node))
        if cached is None:
            entries: dict[Any, tuple[Node, Node]] = {}
            merged: list[Node] = []
            for knode, vnode in node.value:
                if knode.tag == MERGE:
                    merged.extend(vnode.value if isinstance(vnode, SequenceNode) else [vnode])
                elif isinstance(knode, ScalarNode):
                    entries[_scalar(knode)] = (knode, vnode)  # the last duplicate wins, as in the data
            cached = self._mappings[id(node)] = (entries, merged)
        return cached

    def position(self, path: Path_, *, key: bool = False) -> Position:
        node = self.node(path, key=key)
        if node is None:
            return Position(1, 1)
        return Position(node.start_mark.line + 1, node.start_mark.column + 1)

    def inside_scalar(self, path: Path_, line: int, column: int = 1) -> Position:
        """Position of (line, column) counted inside a string value, for template errors."""
        node = self.node(path)
        if not isinstance(node, ScalarNode):
            return self.position(path)
        start = node.start_mark
        if node.style == "|":
            first = start.line + 1  # content starts on the line after the indicator
            indent = _indent_of(self.text, first)
            return Position(first + line, indent + column)
        found = _find_in_source(self.text, node, line, column)
        if found is not None:
            return found
        quote = 1 if node.style in ("'", '"') else 0
        if line <= 1:
            return Position(start.line + 1, start.column + 1 + quote + column - 1)
        return Position(start.line + line, 1)


def _find_in_source(text: str, node: ScalarNode, line: int, column: int) -> Position | None:
    """Folded, plain multi-line and quoted scalars change line breaks and escapes, so
    their value does not map line for line: find the same text in the source instead
    (the same occurrence of it, counted from the start of the value)."""
    value = node.value
    lines = value.split("\n")
    if not 0 < line <= len(lines):
        return None
    offset = sum(len(x) + 1 for x in lines[: line - 1]) + column - 1
    needle = value[offset:].split("\n", 1)[0][:24]
    if not needle.strip():
        return None
    nth = value.count(needle, 0, offset)
    span = text[node.start_mark.index: node.end_mark.index]
    at = -1
    for _ in range(nth + 1):
        at = span.find(needle, at + 1)
        if at < 0:
            return None
    return _position_after(text[: node.start_mark.index + at])


def _position_after(before: str) -> Position:
    """Position of the character that follows `before`, counting lines as libyaml does
    (\r, \r\n, NEL and the Unicode line separators end a line too, like str.splitlines)."""
    lines = (before + "x").splitlines()  # "x" stands for the character at the position
    return Position(len(lines), len(lines[-1]))


def _indent_of(text: str, line_index: int) -> int:
    lines = text.splitlines()
    for candidate in lines[line_index:]:
        if candidate.strip():
            return len(candidate) - len(candidate.lstrip(" "))
    return 0


_SAFE = yaml.constructor.SafeConstructor()


def _scalar(node: ScalarNode) -> Any:
    tag = node.tag
    if tag in (STR, _TIMESTAMP):
        return node.value
    if tag in _SCALAR_TAGS:
        try:
            return _SAFE.yaml_constructors[tag](_SAFE, node)
        except (ValueError, KeyError):
            # The resolver takes `0x_` for an int and so does `!!bool maybe` for a bool;
            # the constructor then fails (also past Python's 4300-digit int limit).
            shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            kind = tag.rsplit(":", 1)[-1]
            raise _Problem(f"{shown!r} is not a valid {kind}", node, RULE_SYNTAX) from None
    raise _Problem(f"unsupported YAML tag {tag!r}", node, RULE_SHAPE)


class _Problem(Exception):
    def __init__(self, message: str, node: Node, rule: str) -> None:
        super().__init__(message)
        self.message, self.node, self.rule = message, node, rule


class _Builder:
    """Builds plain data from nodes; counts what aliases re-expand and how deep it goes."""

    def __init__(self, limits: Limits, size: int = 0) -> None:
        self.limits = limits
        self.duplicates: list[tuple[str, Node]] = []
        self.sizes: dict[int, int] = {}  # id(collection) -> nodes within
        self.built = 0
        self.via_alias = 0
        # Characters still allowed in strings: counting down is one subtraction per scalar.
        self.budget = self.allowed = max(limits.min_expansion, limits.max_expansion * size)

    def build(self, node: Node, depth: int = 0) -> Any:
        if isinstance(node, ScalarNode):
            self.built += 1
            self.budget -= len(node.value)
            if self.budget < self.built:
                self._too_large(node)
            return _scalar(node)
        if depth >= self.limits.max_depth:
            raise _Problem(
                f"nesting deeper than {self.limits.max_depth} levels", node, RULE_LIMIT
            )
        key = id(node)
        seen = self.sizes.get(key)
        if seen == -1:
            raise _Problem("recursive alias: a node contains itself", node, RULE_LIMIT)
        if seen is not None:
            self._count_alias(seen, node)
        self.sizes[key] = -1
        before = self.built
        value = self._collection(node, depth)
        self.built += 1
        self.sizes[key] = self.built - before
        return value

    def _too_large(self, node: Node) -> None:
        raise _Problem(
            f"aliases expand this document to more than {self.allowed} characters "
            f"({self.limits.max_expansion} times its size): this value is repeated through "
            "aliases too often",
            node,
            RULE_LIMIT,
        )

    def _count_alias(self, size: int, node: Node) -> None:
        self.via_alias += size
        if self.via_alias > self.limits.max_alias_nodes:
            raise _Problem(
                f"aliases expand to more than {self.limits.max_alias_nodes} nodes "
                "(a 'billion laughs' document?)",
                node,
                RULE_LIMIT,
            )

    def _collection(self, node: Node, depth: int) -> Any:
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ:
                raise _Problem(f"unsupported YAML tag {node.tag!r}", node, RULE_SHAPE)
            return [self.build(item, depth + 1) for item in node.value]
        if isinstance(node, MappingNode) and node.tag == _MAP:
            return self._mapping(node, depth)
        raise _Problem(f"unsupported YAML tag {node.tag!r}", node, RULE_SHAPE)

    def _mapping(self, node: MappingNode, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        merges: list[Node] = []
        for knode, vnode in node.value:
            if knode.tag == MERGE:
                merges.append(vnode)
                continue
            if not isinstance(knode, ScalarNode):
                raise _Problem("mapping keys must be plain scalars", knode, RULE_SHAPE)
            key = _scalar(knode)
            if key in result:
                self.duplicates.append((str(key), knode))
            result[key] = self.build(vnode, depth + 1)
        for source in merges:
            self._merge_into(result, source, depth)
        return result

    def _merge_into(self, result: dict[Any, Any], source: Node, depth: int) -> None:
        # `<<: *defaults` (YAML 1.1 merge): explicit keys win over merged ones.
        sources = source.value if isinstance(source, SequenceNode) else [source]
        for item in sources:
            merged = self.build(item, depth + 1)
            if not isinstance(merged, dict):
                raise _Problem("a merge key '<<' needs a mapping or list of them", item, RULE_SHAPE)
            for key, value in merged.items():
                result.setdefault(key, value)


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
        pos = _position_after(raw[: exc.start].decode("utf-8"))
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
    return Document(file, data, SourceMap(root, text), problems)


class EmptyDocument(LoadError):
    """The text holds no document at all (nothing, or only comments)."""


def load_value(text: str, file: str = "<value>", limits: Limits = DEFAULT_LIMITS) -> Any:
    """Any one YAML value (JSON is YAML too) within the limits, for data that is not a
    document of ours: a list or map given on the command line. Empty text is None."""
    try:
        return _load(text, file, limits)[1]
    except EmptyDocument:
        return None


def _load(text: str, file: str, limits: Limits) -> tuple[Node, Any, _Builder]:
    if len(text) > limits.max_bytes:
        raise _error(file, 1, 1, f"text is larger than the {limits.max_bytes} byte limit", RULE_LIMIT)
    _check_depth(text, file, limits)
    root = _compose(text, file)
    if root is None:
        raise EmptyDocument(Diagnostic(file, 1, 1, Severity.ERROR, RULE_SHAPE,
                                       "file is empty: expected a mapping with a `kind:` key"))
    builder = _Builder(limits, len(text))
    try:
        return root, builder.build(root), builder
    except _Problem as problem:
        raise _problem_error(problem, text, file) from None
    except RecursionError:
        raise _error(file, 1, 1, "nesting too deep", RULE_LIMIT) from None


def _problem_error(problem: _Problem, text: str, file: str) -> LoadError:
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


def _compose(text: str, file: str) -> Node | None:
    loader = _Loader(text)
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
    if _Loader is yaml.SafeLoader:
        before = text[: exc.position]
    else:
        before = text.encode("utf-8")[: exc.position].decode("utf-8", errors="ignore")
    pos = _position_after(before)
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
    loader = _Loader(text)
    try:
        while loader.check_event():
            yield loader.get_event()
    finally:
        loader.dispose()

