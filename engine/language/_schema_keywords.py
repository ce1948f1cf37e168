"""One builder per group of JSON Schema 2020-12 keywords our schemas use: each turns its
keywords of one schema into a closure (see _schema_checks.py), with messages that say
what was expected and what was found."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ._schema_checks import (
    Check,
    Compiles,
    Issue,
    Path,
    all_of_checks,
    describe,
    suggest,
    words,
)

_TYPE_PREDICATES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
}


# The classes whose values certainly are of each type (bool is not an integer here).
_TYPE_CLASSES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,), "null": (type(None),),
    "number": (int, float), "integer": (int,),
}

_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string",
               "boolean": "true or false", "null": "null", "number": "a number",
               "integer": "an integer"}



def _type(comp: Compiles, schema: dict[str, Any], name: str) -> Check:
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    preds = [_TYPE_PREDICATES[t] for t in types]
    expected = words([_TYPE_WORDS[t] for t in types])
    # A named definition (e.g. `duration`) says in its description what it wants.
    note = f"; {schema['description']}" if name and schema.get("description") else ""

    def check(value: Any, path: Path, out: list[Issue]) -> None:
        for pred in preds:
            if pred(value):
                return
        out.append(Issue(path, "type", f"expected {expected}, found {describe(value)}{note}"))

    exact = frozenset(c for t in types for c in _TYPE_CLASSES[t])

    def check_classes(value: Any, path: Path, out: list[Issue]) -> None:
        # A value of exactly the class a type names passes on one set lookup (almost
        # every value); the predicates decide the rest (subclasses, 2.0 for an integer).
        if value.__class__ not in exact:
            check(value, path, out)

    return check_classes


def _const(comp: Compiles, schema: dict[str, Any], name: str) -> Check:
    want = schema["const"]

    def check(value: Any, path: Path, out: list[Issue]) -> None:
        if not _json_equal(value, want):
            out.append(Issue(path, "const", f"expected {want!r}, found {describe(value)}"))

    return check


def _enum(comp: Compiles, schema: dict[str, Any], name: str) -> Check:
    options = schema["enum"]
    words = [str(o) for o in options]

    def check(value: Any, path: Path, out: list[Issue]) -> None:
        if not any(_json_equal(value, o) for o in options):
            hint = suggest(value, words) if isinstance(value, str) else ""
            out.append(Issue(path, "enum", f"{value!r} is not one of: {', '.join(words)}{hint}"))

    return check


def _json_equal(a: Any, b: Any) -> bool:
    # Python says True == 1 and [True] == [1]; JSON Schema does not, at any depth.
    return bool(_json_key(a) == _json_key(b))


def _object(comp: Compiles, schema: dict[str, Any], name: str) -> Check | None:
    """properties, patternProperties, additionalProperties, required, propertyNames, ..."""
    props = comp.properties(schema.get("properties", {}))
    patterns = [(re.compile(p), comp.compile(s)) for p, s in schema.get("patternProperties", {}).items()]
    extra = schema.get("additionalProperties", True)
    extra_check = comp.compile(extra) if isinstance(extra, dict) else None
    required = list(schema.get("required", []))
    names = comp.compile(schema["propertyNames"]) if "propertyNames" in schema else None
    # Names refused for a reason the schema says (an `end:` step takes only a few keys).
    names_why = schema["propertyNames"].get("description") if names is not None and \
        "enum" in schema["propertyNames"] else None
    deps = dict(schema.get("dependentRequired", {}))
    min_p, max_p = schema.get("minProperties"), schema.get("maxProperties")
    known = sorted(props)
    noun = name.replace("_", " ") if name else "mapping"

    per_key = bool(props or patterns or names is not None or extra is not True)

    def check(value: Any, path: Path, out: list[Issue]) -> None:
        if not isinstance(value, dict):
            return
        for key, item in value.items() if per_key else ():
            if names is not None:
                _check_name(names, key, path, out, names_why)
            sub = props.get(key)
            if sub is not None:
                sub(item, path + (key,), out)
                continue
            matched = False
            for regex, pcheck in patterns:
                if isinstance(key, str) and regex.search(key):
                    matched = True
                    pcheck(item, path + (key,), out)
            if matched:
                continue
            if extra is False:
                out.append(_unknown_key(key, known, noun, path))
            elif extra_check is not None:
                extra_check(item, path + (key,), out)
        for key in required:
            if key not in value:
                out.append(Issue(path, "required", f"{noun} is missing required key '{key}'"))
        for key, needs in deps.items():
            if key in value:
                for need in needs:
                    if need not in value:
                        out.append(Issue(path + (key,), "dependentRequired",
                                         f"'{key}' is only allowed together with '{need}'", True))
        if min_p is not None and len(value) < min_p:
            out.append(Issue(path, "minProperties", f"needs at least {min_p} key(s)"))
        if max_p is not None and len(value) > max_p:
            out.append(Issue(path, "maxProperties", f"allows at most {max_p} key(s)"))

    return check


def _unknown_key(key: Any, known: list[str], noun: str, path: Path) -> Issue:
    if isinstance(key, str):
        hint = suggest(key, known)
    else:
        # `on:` in a step is the classic: YAML 1.1 reads it as true. The step field is `target`.
        hint = " (did you mean 'target'?)" if key is True and "target" in known else ""
    return Issue(path + (key,), "additionalProperties",
                 f"unknown key {_key_name(key)} in {noun}{hint}", True)


def _key_name(key: Any) -> str:
    """A mapping key as a message shows it: YAML 1.1 turns unquoted on/yes/no/~ into non-strings."""
    if isinstance(key, bool):
        words = "on, yes and true are" if key else "off, no and false are"
        return f"{str(key).lower()} (unquoted, {words} a boolean in YAML: quote the key)"
    if key is None:
        return "null (an unquoted ~ or null is not a string: quote the key)"
    return f"'{key}'"


def _check_name(names: Check, key: Any, path: Path, out: list[Issue], why: str | None = None) -> None:
    found: list[Issue] = []
    names(key if isinstance(key, str) else str(key), path + (key,), found)
    for issue in found:
        if why:
            out.append(Issue(path + (key,), "not", f"{_key_name(key)} is not allowed here: {why}", True))
            continue
        out.append(Issue(path + (key,), "propertyNames",
                         f"{_key_name(key)} is not a valid name here: {issue.message}", True))


def _array(comp: Compiles, schema: dict[str, Any], name: str) -> Check | None:
    items = comp.compile(schema["items"]) if "items" in schema else None
    min_i, max_i = schema.get("minItems"), schema.get("maxItems")
    unique = schema.get("uniqueItems", False)

    def check(value: Any, path: Path, out: list[Issue]) -> None:
        if not isinstance(value, list):
            return
        if items is not None:
            for i, item in enumerate(value):
                items(item, path + (i,), out)
        if min_i is not None and len(value) < min_i:
            out.append(Issue(path, "minItems", f"needs at least {min_i} item(s)"))
        if max_i is not None and len(value) > max_i:
            out.append(Issue(path, "maxItems", f"allows at most {max_i} item(s)"))
        if unique:
            _check_unique(value, path, out)

    return check


def _check_unique(value: list[Any], path: Path, out: list[Issue]) -> None:
    # A set of canonical keys, not pairwise comparison: a hostile file with a list of
    # 100,000 roles must not take hours.
    seen: set[Any] = set()
    for i, item in enumerate(value):
        key = _json_key(item)
        if key in seen:
            out.append(Issue(path + (i,), "uniqueItems", f"duplicate item {item!r}"))
        seen.add(key)


def _json_key(value: Any) -> Any:
    """A hashable key equal for JSON-equal values: 1 and 1.0 match, true and 1 do not."""
    if isinstance(value, bool) or value is None:
        return ("literal", value)
    if isinstance(value, (int, float)):
        return ("number", value)
    if isinstance(value, list):
        return ("list", tuple(_json_key(v) for v in value))
    if isinstance(value, dict):
        return ("map", frozenset((k, _json_key(v)) for k, v in value.items()))
    return ("other", value)


def _string(comp: Compiles, schema: dict[str, Any], name: str) -> Check | None:
    regex = re.compile(schema["pattern"]) if "pattern" in schema else None
    min_l, max_l = schema.get("minLength"), schema.get("maxLength")
    what = schema.get("description") or (f"the pattern {schema.get('pattern')}")
    what = what.rstrip(".")

    def check(value: Any, path: Path, out: list[Issue]) -> None:
        if not isinstance(value, str):
            return
        if min_l is not None and len(value) < min_l:
            msg = "must not be empty" if min_l == 1 else f"must be at least {min_l} characters"
            out.append(Issue(path, "minLength", msg))
        if max_l is not None and len(value) > max_l:
            out.append(Issue(path, "maxLength", f"must be at most {max_l} characters"))
        if regex is not None and not regex.search(value):
            out.append(Issue(path, "pattern", f"{value!r} is not valid: expected {what}"))

    return check


def _number(comp: Compiles, schema: dict[str, Any], name: str) -> Check | None:
    low, high = schema.get("minimum"), schema.get("maximum")
    xlow, xhigh = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")

    def check(value: Any, path: Path, out: list[Issue]) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return
        if low is not None and value < low:
            out.append(Issue(path, "minimum", f"{value} is less than the minimum {low}"))
        if high is not None and value > high:
            out.append(Issue(path, "maximum", f"{value} is more than the maximum {high}"))
        if xlow is not None and value <= xlow:
            out.append(Issue(path, "exclusiveMinimum", f"{value} must be more than {xlow}"))
        if xhigh is not None and value >= xhigh:
            out.append(Issue(path, "exclusiveMaximum", f"{value} must be less than {xhigh}"))

    return check


def _ref(comp: Compiles, schema: dict[str, Any], name: str) -> Check:
    return comp.ref(schema["$ref"])


def _all_of(comp: Compiles, schema: dict[str, Any], name: str) -> Check:
    return all_of_checks([comp.compile(s) for s in schema["allOf"]])


def _not(comp: Compiles, schema: dict[str, Any], name: str) -> Check:
    inner = comp.compile(schema["not"])
    # A key refused with `{"not": {}}` says why in its description (a field that has no
    # meaning on this kind of step): the message is that, at the key.
    why = schema.get("description") if schema["not"] in ({}, True) else None

    def check(value: Any, path: Path, out: list[Issue]) -> None:
        found: list[Issue] = []
        inner(value, path, found)
        if not found:
            out.append(Issue(path, "not", why or "this value is not allowed here", why is not None))

    return check


def _if(comp: Compiles, schema: dict[str, Any], name: str) -> Check:
    cond = comp.compile(schema.get("if", True))
    then = comp.compile(schema.get("then", True))
    other = comp.compile(schema.get("else", True))
    keys = _required_only([schema.get("if")])

    def check(value: Any, path: Path, out: list[Issue]) -> None:
        found: list[Issue] = []
        cond(value, path, found)
        (other if found else then)(value, path, out)

    if keys is None:
        return check
    key = keys[0]

    def check_key(value: Any, path: Path, out: list[Issue]) -> None:
        # `if: {required: [block]}`: holds unless a mapping lacks the key; no issue is
        # worded only to be dropped.
        (other if isinstance(value, dict) and key not in value else then)(value, path, out)

    return check_key


def _required_only(branches: list[Any]) -> list[str] | None:
    """['run', 'http', ...] when every branch is just {"required": [one key]}."""
    keys = []
    for b in branches:
        if not (isinstance(b, dict) and set(b) == {"required"} and len(b["required"]) == 1):
            return None
        keys.append(b["required"][0])
    return keys


def _one_or_any_of(comp: Compiles, schema: dict[str, Any], name: str, *, one: bool) -> Check:
    keyword = "oneOf" if one else "anyOf"
    branches = schema[keyword]
    checks = [comp.compile(b) for b in branches]
    keys = _required_only(branches)
    noun = name.replace("_", " ") if name else "value"

    def check(value: Any, path: Path, out: list[Issue]) -> None:
        results: list[list[Issue]] = []
        for c in checks:
            found: list[Issue] = []
            c(value, path, found)
            results.append(found)
        passing = sum(1 for r in results if not r)
        if passing == 1 or (passing > 1 and not one):
            return
        if keys is not None and isinstance(value, dict):
            out.append(_keys_issue(keyword, noun, keys, [k for k in keys if k in value], path))
        elif passing > 1:
            out.append(Issue(path, keyword, f"{noun} matches more than one allowed form"))
        else:
            out.extend(_closest_branch(results, path))

    if keys is None:
        return check

    def check_keys(value: Any, path: Path, out: list[Issue]) -> None:
        # Branches that each require one key (a step's kind): a branch passes when its
        # key is there, so count keys instead of running a check per branch.
        if not isinstance(value, dict):
            check(value, path, out)
            return
        passing = sum(1 for k in keys if k in value)
        if passing == 1 or (passing > 1 and not one):
            return
        out.append(_keys_issue(keyword, noun, keys, [k for k in keys if k in value], path))

    return check_keys


def _keys_issue(keyword: str, noun: str, keys: list[str], present: list[str], path: Path) -> Issue:
    need = "exactly one" if keyword == "oneOf" else "at least one"
    found = "none" if not present else words([f"'{k}'" for k in present], "and")
    return Issue(path, keyword, f"{noun} needs {need} of {', '.join(keys)}; found {found}")


def _closest_branch(results: list[list[Issue]], path: Path) -> list[Issue]:
    # Prefer a branch whose failure is deeper than a type mismatch at this level:
    # that is the form the author evidently meant.
    def score(issues: list[Issue]) -> tuple[int, int]:
        shallow_type = any(i.keyword in ("type", "const") and i.path == path for i in issues)
        return (1 if shallow_type else 0, len(issues))

    best = min(results, key=score)
    if score(best)[0] == 0:
        return best
    expected = sorted({i.message.split(", found")[0] for r in results for i in r if i.path == path})
    found = best[0].message.split(", found ")[-1] if best else "this value"
    alternatives = [e.removeprefix("expected ") for e in expected]
    return [Issue(path, "anyOf", f"expected {words(alternatives)}, found {found}")]


# Each builder handles a group of keywords in one closure; it runs when any of them
# appears in a schema.
BUILDERS: list[tuple[tuple[str, ...], Callable[[Compiles, dict[str, Any], str], Check | None]]] = [
    (("$ref",), _ref),
    (("type",), _type),
    (("const",), _const),
    (("enum",), _enum),
    (("properties", "patternProperties", "additionalProperties", "required", "propertyNames",
      "dependentRequired", "minProperties", "maxProperties"), _object),
    (("items", "minItems", "maxItems", "uniqueItems"), _array),
    (("pattern", "minLength", "maxLength"), _string),
    (("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"), _number),
    (("allOf",), _all_of),
    (("anyOf",), lambda c, s, n: _one_or_any_of(c, s, n, one=False)),
    (("oneOf",), lambda c, s, n: _one_or_any_of(c, s, n, one=True)),
    (("not",), _not),
    (("if", "then", "else"), _if),
]
KEYWORDS = frozenset(k for group, _ in BUILDERS for k in group)
