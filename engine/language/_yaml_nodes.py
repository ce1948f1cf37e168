"""Plain data from libyaml's node tree, within the loader's limits.

libyaml (C) composes the node tree; the Builder here makes plain Python data from it
(faster than PyYAML's generator-based constructor, and it sees what PyYAML hides:
duplicate keys, alias blow-ups, excessive nesting). Scalars resolve as PyYAML does
(YAML 1.1, so `yes` is true), except timestamps, which stay strings: data here must
survive a round trip through JSON. engine/language/loader.py is the public face.
"""

from __future__ import annotations

import operator
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .limits import Limits

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# First characters of plain scalars PyYAML's YAML 1.1 resolver may turn into something
# other than a string (bools, numbers, null, timestamps, `<<`, `=`).
_SPECIAL_FIRST = frozenset(yaml.resolver.Resolver.yaml_implicit_resolvers)


class FastLoader(_Base):
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

RULE_IO = "RB000"
RULE_SYNTAX = "RB001"
RULE_LIMIT = "RB002"
RULE_SHAPE = "RB003"
RULE_DUPLICATE_KEY = "RB004"


_SAFE = yaml.constructor.SafeConstructor()


def scalar(node: ScalarNode) -> Any:
    """A scalar node's value as PyYAML resolves it (timestamps stay strings); Problem if it has none."""
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
            raise Problem(f"{shown!r} is not a valid {kind}", node, RULE_SYNTAX) from None
    raise Problem(f"unsupported YAML tag {tag!r}", node, RULE_SHAPE)


class Problem(Exception):
    """A node the data cannot be built from: why, where, and the rule it breaks."""

    def __init__(self, message: str, node: Node, rule: str) -> None:
        super().__init__(message)
        self.message, self.node, self.rule = message, node, rule


class Builder:
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
            return scalar(node)
        if depth >= self.limits.max_depth:
            raise Problem(
                f"nesting deeper than {self.limits.max_depth} levels", node, RULE_LIMIT
            )
        key = id(node)
        seen = self.sizes.get(key)
        if seen == -1:
            raise Problem("recursive alias: a node contains itself", node, RULE_LIMIT)
        if seen is not None:
            self._count_alias(seen, node)
        self.sizes[key] = -1
        before = self.built
        value = self._collection(node, depth)
        self.built += 1
        self.sizes[key] = self.built - before
        return value

    def _too_large(self, node: Node) -> None:
        raise Problem(
            f"aliases expand this document to more than {self.allowed} characters "
            f"({self.limits.max_expansion} times its size): this value is repeated through "
            "aliases too often",
            node,
            RULE_LIMIT,
        )

    def _count_alias(self, size: int, node: Node) -> None:
        self.via_alias += size
        if self.via_alias > self.limits.max_alias_nodes:
            raise Problem(
                f"aliases expand to more than {self.limits.max_alias_nodes} nodes "
                "(a 'billion laughs' document?)",
                node,
                RULE_LIMIT,
            )

    def _collection(self, node: Node, depth: int) -> Any:
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ:
                raise Problem(f"unsupported YAML tag {node.tag!r}", node, RULE_SHAPE)
            return [self.build(item, depth + 1) for item in node.value]
        if isinstance(node, MappingNode) and node.tag == _MAP:
            return self._mapping(node, depth)
        raise Problem(f"unsupported YAML tag {node.tag!r}", node, RULE_SHAPE)

    def _mapping(self, node: MappingNode, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        merges: list[Node] = []
        for knode, vnode in node.value:
            if knode.tag == MERGE:
                merges.append(vnode)
                continue
            if not isinstance(knode, ScalarNode):
                raise Problem("mapping keys must be plain scalars", knode, RULE_SHAPE)
            key = scalar(knode)
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
                raise Problem("a merge key '<<' needs a mapping or list of them", item, RULE_SHAPE)
            for key, value in merged.items():
                result.setdefault(key, value)

