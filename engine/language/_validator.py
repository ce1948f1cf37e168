"""A compiler from the JSON Schema 2020-12 subset our schemas use to Python closures.

jsonschema re-interprets the schema for every document and costs ~100 ms to import;
validating a thousand runbooks in half a second needs the schema turned into plain
functions once. Every keyword our schemas use is implemented with 2020-12 semantics
(one builder per group of keywords, _schema_keywords.py), and tests check the verdicts
against jsonschema, the reference. A keyword this compiler does not know is a compile
error, never silently ignored.

A check is `check(value, path, out)`: it appends an Issue for each problem to `out`
(_schema_checks.py).

A lazy compiler (what the engine validates with) compiles a property's schema when a
value of it is first checked: a one-step runbook uses a handful of the runbook schema's
hundreds of subschemas, and compiling them all was 6% of a one-step `runbook run`. The
shipped schemas are compiled eagerly by the tests, so an unknown keyword still fails
there, never at a user's.
"""

from __future__ import annotations

import threading
from typing import Any

from ._schema_checks import Check, Issue, SchemaCompileError, accept, all_of_checks, refuse
from ._schema_keywords import BUILDERS, KEYWORDS

__all__ = ["Check", "Compiler", "Issue", "SchemaCompileError", "compile_schema"]

ANNOTATIONS = frozenset(
    {"$schema", "$id", "$comment", "$defs", "title", "description", "default", "examples",
     "deprecated", "markdownDescription"}
)


# Each builder's index in BUILDERS, by keyword: a schema's builders are found from its
# few keys, in BUILDERS' order (the order its issues are reported in).
_BUILDER_AT = {k: i for i, (group, _) in enumerate(BUILDERS) for k in group}


class Compiler:
    """Compiles one schema document (with its local `$ref`s) into checks; with `lazy`,
    each property's check is compiled when first used."""

    def __init__(self, root: dict[str, Any], lazy: bool = False) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}
        self.lazy = lazy
        # Checks may first be used by several threads at once (the service validates in
        # a thread pool): compiling on first use is done by one at a time.
        self.lock = threading.RLock()

    def compile(self, schema: Any = None, name: str = "") -> Check:
        schema = self.root if schema is None else schema
        if schema is True or schema == {}:
            return accept
        if schema is False:
            return refuse
        unknown = set(schema) - ANNOTATIONS - KEYWORDS
        if unknown:
            raise SchemaCompileError(f"unsupported schema keywords: {sorted(unknown)}")
        found = sorted({_BUILDER_AT[k] for k in schema if k in _BUILDER_AT})
        checks = [check for i in found if (check := BUILDERS[i][1](self, schema, name))]
        if not checks:
            return accept
        return checks[0] if len(checks) == 1 else all_of_checks(checks)

    def properties(self, schemas: dict[str, Any]) -> dict[str, Check]:
        """The check of each property; a lazy compiler's compile on first use, when each
        replaces itself in the table (later values pay nothing for the laziness)."""
        if not self.lazy:
            return {key: self.compile(sub) for key, sub in schemas.items()}
        table: dict[str, Check] = {}
        for key, sub in schemas.items():
            table[key] = self._on_first_use(table, key, sub)
        return table

    def _on_first_use(self, table: dict[str, Check], key: str, schema: Any) -> Check:
        def first(value: Any, path: Any, out: list[Issue]) -> None:
            with self.lock:
                if table[key] is first:
                    table[key] = self.compile(schema)
            table[key](value, path, out)

        return first

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


def compile_schema(schema: dict[str, Any], lazy: bool = False) -> Check:
    """Compile a whole schema document; raises SchemaCompileError on unknown keywords
    (with `lazy`, in the parts compiled so far: see the module's docstring)."""
    return Compiler(schema, lazy).compile(name=str(schema.get("title", "")).lower())
