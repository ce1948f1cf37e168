"""A compiler from the JSON Schema 2020-12 subset our schemas use to Python closures.

jsonschema re-interprets the schema for every document and costs ~100 ms to import;
validating a thousand runbooks in half a second needs the schema turned into plain
functions once. Every keyword our schemas use is implemented with 2020-12 semantics
(one builder per group of keywords, _schema_keywords.py), and tests check the verdicts
against jsonschema, the reference. A keyword this compiler does not know is a compile
error, never silently ignored.

A check is `check(value, path, out)`: it appends an Issue for each problem to `out`
(_schema_checks.py).
"""

from __future__ import annotations

from typing import Any

from ._schema_checks import Check, Issue, SchemaCompileError, accept, all_of_checks, refuse
from ._schema_keywords import BUILDERS, KEYWORDS

__all__ = ["Check", "Compiler", "Issue", "SchemaCompileError", "compile_schema"]

ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "$defs", "title", "description", "default", "examples",
     "deprecated", "markdownDescription"}
)


class Compiler:
    """Compiles one schema document (with its local `$ref`s) into checks."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}

    def compile(self, schema: Any = None, name: str = "") -> Check:
        schema = self.root if schema is None else schema
        if schema is True or schema == {}:
            return accept
        if schema is False:
            return refuse
        unknown = set(schema) - ANNOTATIONS - KEYWORDS
        if unknown:
            raise SchemaCompileError(f"unsupported schema keywords: {sorted(unknown)}")
        checks = [
            check
            for group, builder in BUILDERS
            if any(k in schema for k in group) and (check := builder(self, schema, name))
        ]
        if not checks:
            return accept
        return checks[0] if len(checks) == 1 else all_of_checks(checks)

    def ref(self, pointer: str) -> Check:
        if pointer not in self.refs:
            if not pointer.startswith("#/"):
                raise SchemaCompileError(f"only local $ref is supported: {pointer}")
            target: Any = self.root
            for part in pointer[2:].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            # A placeholder while it compiles: recursive schemas (a step's rollback holds
            # steps) refer to it through the box; a finished ref is the check itself, one
            # call less for every value it checks.
            box: list[Check] = []
            self.refs[pointer] = lambda v, p, o: box[0](v, p, o)
            box.append(self.compile(target, name=pointer.rsplit("/", 1)[-1]))
            self.refs[pointer] = box[0]
        return self.refs[pointer]


def compile_schema(schema: dict[str, Any]) -> Check:
    """Compile a whole schema document; raises SchemaCompileError on unknown keywords."""
    return Compiler(schema).compile(name=str(schema.get("title", "")).lower())
