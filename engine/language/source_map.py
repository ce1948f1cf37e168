"""Where each part of a loaded document came from: data paths to line:column (1-based),
found by walking the node tree, and only when a diagnostic needs one, so a clean file
never pays for them (the loader's fast path does not even compose the tree: it is
composed on the first question)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from yaml.nodes import MappingNode, Node, ScalarNode

Path_ = tuple[str | int, ...]


class Position(NamedTuple):
    """A place in a file: line and column, both 1-based."""

    line: int
    column: int


class SourceMap:
    """Maps data paths to line:column (1-based) by walking the composed node tree.

    `compose`, when given, makes the tree from the text on first use instead of `root`;
    `file` names the file the text was read from.
    """

    def __init__(self, root: Node | None, text: str,
                 compose: Callable[[str], Node | None] | None = None, file: str | None = None) -> None:
        self._root = root
        self._compose = compose
        self.text, self.file = text, file
        # id(mapping node) -> its keys and merge sources. Built on first use: a file with
        # thousands of diagnostics in one mapping must not scan it once per diagnostic.
        self._mappings: dict[int, tuple[dict[Any, tuple[Node, Node]], list[Node]]] = {}

    def __reduce__(self) -> tuple[Any, ...]:
        # Without the index of mappings: it is keyed by id(), which a copy's nodes do not keep.
        return (SourceMap, (self._root, self.text, self._compose, self.file))

    @property
    def composed(self) -> bool:
        """Whether the node tree is made (or was given): False until a position is asked for."""
        return self._compose is None

    @property
    def root(self) -> Node | None:
        """The document's root node (composed now if the loader left it for later)."""
        if self._compose is not None:
            self._root, self._compose = self._compose(self.text), None
        return self._root

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
        # PyYAML is imported when a position is first asked for: a model kept on disk
        # (model_cache.py) is used without it.
        from yaml.nodes import MappingNode, SequenceNode

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
            from yaml.nodes import ScalarNode, SequenceNode

            from ._yaml_nodes import MERGE

            entries: dict[Any, tuple[Node, Node]] = {}
            merged: list[Node] = []
            for knode, vnode in node.value:
                if knode.tag == MERGE:
                    merged.extend(vnode.value if isinstance(vnode, SequenceNode) else [vnode])
                elif isinstance(knode, ScalarNode):
                    entries[scalar(knode)] = (knode, vnode)  # the last duplicate wins, as in the data
            cached = self._mappings[id(node)] = (entries, merged)
        return cached

    def position(self, path: Path_, *, key: bool = False) -> Position:
        node = self.node(path, key=key)
        if node is None:
            return Position(1, 1)
        return Position(node.start_mark.line + 1, node.start_mark.column + 1)

    def inside_scalar(self, path: Path_, line: int, column: int = 1) -> Position:
        """Position of (line, column) counted inside a string value, for template errors."""
        from yaml.nodes import ScalarNode

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


def scalar(node: ScalarNode) -> Any:
    """A key's value as the loader resolves it (_yaml_nodes.scalar, imported with PyYAML only
    when a position is first asked for)."""
    from ._yaml_nodes import scalar as resolved

    return resolved(node)


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
    return position_after(text[: node.start_mark.index + at])


def position_after(before: str) -> Position:
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
