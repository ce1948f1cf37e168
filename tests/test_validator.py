"""engine.language._validator: the compiled schema agrees with jsonschema (the reference) on validity.

The compiler exists for speed; these tests hold it to the reference implementation,
`jsonschema.Draft202012Validator`, on shipped files, hand-written invalid documents
(every keyword the schemas use) and hypothesis-generated mutations of valid documents.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import mutated, values
from support import ROOT, fixture_documents, shipped_documents

from engine.language._validator import Issue, SchemaCompileError, compile_schema
from engine.language.loader import load_file

Data = dict[str, Any]


def _schema(kind: str) -> Data:
    data: Data = json.loads((ROOT / "schemas" / f"{kind}.schema.json").read_text(encoding="utf-8"))
    return data


SCHEMAS = {kind: _schema(kind) for kind in ("runbook", "scenario")}
# Lazy, as the engine compiles them: the verdicts below test what users get.
COMPILED = {kind: compile_schema(schema, lazy=True) for kind, schema in SCHEMAS.items()}
REFERENCE = {kind: jsonschema.Draft202012Validator(schema) for kind, schema in SCHEMAS.items()}


def our_issues(kind: str, data: Any) -> list[Issue]:
    found: list[Issue] = []
    COMPILED[kind](data, (), found)
    return found


def assert_agree(kind: str, data: Any) -> bool:
    """Both validators give the same verdict; returns it."""
    ours = not our_issues(kind, data)
    reference = REFERENCE[kind].is_valid(data)
    assert ours == reference, (
        f"compiled says {'valid' if ours else 'invalid'}, jsonschema says "
        f"{'valid' if reference else 'invalid'}\n"
        f"ours: {our_issues(kind, data)}\n"
        f"reference: {[e.message for e in REFERENCE[kind].iter_errors(data)]}\n"
        f"data: {data!r}"
    )
    return ours


VALID_RUNBOOK: Data = load_file(ROOT / "tests" / "fixtures" / "valid-runbook.yaml").data
VALID_SCENARIO: Data = load_file(ROOT / "tests" / "fixtures" / "valid-scenario.yaml").data


# -- shipped and fixture files ---------------------------------------------------------------


@pytest.mark.parametrize("path", [*shipped_documents(), *fixture_documents()],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_shipped_and_fixture_files_get_the_reference_verdict(path: Path) -> None:
    data = load_file(path).data
    kind = data.get("kind")
    assert kind in SCHEMAS, f"{path} has no known kind"
    assert_agree(kind, data)


def test_the_fixture_documents_are_valid() -> None:
    assert assert_agree("runbook", VALID_RUNBOOK)
    assert assert_agree("scenario", VALID_SCENARIO)


# -- hand-written invalid documents: every keyword -------------------------------------------


def rb(**changes: Any) -> Data:
    data = copy.deepcopy(VALID_RUNBOOK)
    data.update(changes)
    return data


def rb_step(**fields: Any) -> Data:
    """A runbook whose single detection step is `fields`."""
    return rb(detection=[fields])


def sc(**changes: Any) -> Data:
    data = copy.deepcopy(VALID_SCENARIO)
    data.update(changes)
    return data


INVALID: list[tuple[str, str, str, Data]] = [
    # (keyword exercised, keyword of the issue we report, description, document)
    ("type", "type", "title is a number", rb(title=5)),
    ("type", "type", "top level type", rb(inputs=[1])),
    ("type", "type", "integer or object (retries)", rb_step(id="a", run="x", retries="3")),
    ("type", "type", "boolean is not an integer", rb_step(id="a", run="x", parallel=True)),
    ("const", "const", "wrong kind", rb(kind="scenario")),
    ("const", "const", "version 2", rb(version=2)),
    ("const", "const", "boolean is not version 1", rb(version=True)),
    ("enum", "enum", "input type", rb(inputs={"h": {"type": "str"}})),
    ("enum", "enum", "http method", rb_step(id="a", http={"url": "u", "method": "get"})),
    ("additionalProperties", "additionalProperties", "unknown top-level key", rb(tittle="x")),
    ("additionalProperties", "additionalProperties", "unknown step key", rb_step(id="a", run="x", timout="5s")),
    ("additionalProperties", "type", "additionalProperties schema", rb(targets={"box": 5})),
    ("additionalProperties", "type", "http header value", rb_step(id="a", http={"url": "u", "headers": {"A": 1}})),
    ("required", "required", "missing title", {k: v for k, v in rb().items() if k != "title"}),
    ("required", "required", "notify without message", rb_step(id="a", notify={"channel": "c"})),
    ("required", "required", "step without id", rb_step(run="x")),
    ("propertyNames", "propertyNames", "input name", rb(inputs={"Host": {}})),
    ("propertyNames", "propertyNames", "set name", rb_step(id="a", set={"Bad-Name": 1})),
    ("dependentRequired", "dependentRequired", "ask without manual", rb_step(id="a", run="x", ask={"c": {}})),
    ("dependentRequired", "dependentRequired", "every without until", rb_step(id="a", run="x", every="5s")),
    ("dependentRequired", "dependentRequired", "stdin without run", rb_step(id="a", manual="m", stdin="x")),
    ("minProperties", "minProperties", "empty set", rb_step(id="a", set={})),
    ("minProperties", "minProperties", "empty match", sc(responses=[{"match": {}}])),
    ("maxProperties", "maxProperties", "helper ready on a port and an output",
     rb_step(id="a", block=[{"id": "b", "run": "x"}],
             background=[{"id": "pf", "run": "y", "ready": {"port": 8080, "output": "Forwarding"}}])),
    ("items", "type", "alerts item type", rb(alerts=["a", 1])),
    ("minItems", "minItems", "empty hosts", rb(targets={"box": {"hosts": []}})),
    ("minItems", "minItems", "empty exit codes", rb_step(id="a", run="x", exit_codes=[])),
    ("uniqueItems", "uniqueItems", "duplicate role", rb(roles=["a", "b", "a"])),
    ("pattern", "pattern", "runbook id", rb(id="Disk_Full")),
    ("pattern", "pattern", "duration without unit", rb_step(id="a", wait="30")),
    ("pattern", "pattern", "percentage", rb_step(id="a", run="x", serial="25")),
    ("minLength", "minLength", "empty title", rb(title="")),
    ("minLength", "minLength", "empty expression", rb_step(id="a", run="x", when="")),
    ("maxLength", "maxLength", "long id", rb(id="a" * 65)),
    ("minimum", "minimum", "port 0", rb(targets={"box": {"hosts": ["h"], "port": 0}})),
    ("minimum", "minimum", "retries below zero", rb_step(id="a", run="x", retries=-1)),
    ("maximum", "maximum", "port too high", rb(targets={"box": {"hosts": ["h"], "port": 65536}})),
    ("maximum", "maximum", "status too high", rb_step(id="a", http={"url": "u", "status": [200, 600]})),
    ("oneOf", "oneOf", "no step kind", rb_step(id="a")),
    ("oneOf", "oneOf", "two step kinds", rb_step(id="a", run="x", manual="y")),
    ("oneOf", "oneOf", "sim duration with both forms",
     sc(responses=[{"step": "a", "duration": {"min": "1s", "max": "2s", "median": "1s", "p90": "2s"}}])),
    ("oneOf", "required", "sim duration of neither form", sc(responses=[{"step": "a", "duration": {"min": "1s"}}])),
    ("anyOf", "anyOf", "target with neither hosts nor group", rb(targets={"box": {"user": "ops"}})),
    ("anyOf", "anyOf", "severity matrix", rb(severity={"matrix": "custom"})),
    ("anyOf", "anyOf", "escalation with no trigger", rb(escalation=[{"notify": "x"}])),
    ("anyOf", "anyOf", "event with neither set nor message", sc(events=[{"at": "1m"}])),
    ("additionalProperties", "additionalProperties", "$ref recursion: rollback step unknown key",
     rb_step(id="a", run="x", rollback=[{"id": "b", "run": "y", "rollback": [{"id": "c", "wait": "1s", "x": 1}]}])),
    ("oneOf", "oneOf", "$ref recursion: rollback step kind",
     rb_step(id="a", run="x", rollback=[{"id": "b", "rollback": [{"id": "c"}]}])),
    ("not", "not", "expect on a block", rb_step(id="a", block=[{"id": "b", "run": "x"}], expect="x")),
    ("allOf", "not", "retries on a switch", rb_step(id="a", switch="x", cases={"y": [{"id": "b", "run": "x"}]},
                                                   retries=2)),
    ("if", "not", "rollback on a switch", rb_step(id="a", switch="x", cases={"y": [{"id": "b", "run": "x"}]},
                                                 rollback=[{"id": "c", "run": "y"}])),
    ("then", "not", "for_each on a switch", rb_step(id="a", switch="x", cases={"y": [{"id": "b", "run": "x"}]},
                                                   for_each="[1]")),
    ("type", "type", "$ref into another definition's property",
     sc(responses=[{"step": "a", "exit_code": 1, "stdout": 5}])),
]


@pytest.mark.parametrize(("exercised", "reported", "description", "data"), INVALID,
                         ids=[case[2] for case in INVALID])
def test_invalid_document_is_rejected_by_both_for_the_right_keyword(
    exercised: str, reported: str, description: str, data: Data
) -> None:
    kind = "scenario" if "runbook" in data else "runbook"  # only scenarios name a runbook
    assert not assert_agree(kind, data)
    assert reported in {issue.keyword for issue in our_issues(kind, data)}


def test_every_keyword_used_by_the_schemas_has_an_invalid_example() -> None:
    """The hand-written list above covers each validation keyword the schemas contain."""
    used: set[str] = set()

    def walk(node: Any, parent: str = "") -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if parent not in ("properties", "$defs", "dependentRequired"):
                    used.add(key)
                walk(value, key)
        elif isinstance(node, list):
            for item in node:
                walk(item, "")

    for schema in SCHEMAS.values():
        walk(schema)
    annotations = {"$schema", "$id", "$defs", "title", "description", "default", "examples",
                   "properties"}
    covered = {case[0] for case in INVALID} | {"$ref", "$comment"}
    assert used - annotations - covered == set()


@pytest.mark.parametrize(
    "data",
    [
        rb(version=1.0),  # 1.0 == 1 in JSON Schema
        rb_step(id="a", run="x", parallel=2.0),  # an integral float is an integer
        rb_step(id="a", run="x", retries=3),
        rb_step(id="a", run="x", serial="25%", max_failures=2),
        rb_step(id="a", include="other.yaml"),
        rb_step(id="a", manual="m", ask={"c": {"choices": [1, "two", True]}}),
        rb(severity={"matrix": {"high": {"high": "P1"}}}),
        rb(escalation=[{"after": "10m", "notify": "x"}, {"on_failure": True, "notify": "y"}]),
        sc(responses=[{"step": "a", "duration": {"median": "1s", "p90": "3s"}}]),
    ],
)
def test_valid_variants_are_accepted_by_both(data: Data) -> None:
    assert assert_agree(data["kind"], data)


# -- hypothesis: mutations of a valid document -----------------------------------------------

_settings = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(mutated(VALID_RUNBOOK))
def test_mutated_runbooks_get_the_reference_verdict(data: Data) -> None:
    assert_agree("runbook", data)


@_settings
@given(mutated(VALID_SCENARIO))
def test_mutated_scenarios_get_the_reference_verdict(data: Data) -> None:
    assert_agree("scenario", data)


# A valid value for every step key, so random steps are often valid and the verdict
# turns on oneOf (one kind), dependentRequired and the few wrong values.
VALID_STEP_VALUES: Data = {
    "id": "a", "title": "t", "description": "d", "role": "r", "target": "box", "run": "x",
    "http": {"url": "u"}, "manual": "m", "ask": {"c": {"choices": ["a"]}}, "wait": "5s",
    "notify": {"channel": "c", "message": "m"}, "set": {"v": 1}, "include": "o.yaml",
    "when": "x", "expect": "x", "until": "x", "outputs": {"o": "x"}, "timeout": "5s",
    "retries": 2, "every": "5s", "confirm": True, "rollback": [], "continue_on_error": True,
    "env": {"A": "1"}, "stdin": "x", "exit_codes": [0], "destructive": True, "idempotent": True,
    "parallel": 1, "serial": "25%", "max_failures": 1, "for_each": [1],
    "block": [{"id": "b", "run": "x"}], "background": [{"id": "pf", "run": "y", "ready": {"port": 8080}}],
    "switch": "x", "cases": {"y": [{"id": "c", "wait": "1s"}]},
    "default": [{"id": "d", "wait": "1s"}], "end": {"outcome": "escalated", "reason": "r"}, "promql": "up == 0",
    "alert": "TargetDown", "silence": {"matchers": {"job": "api"}, "duration": "1h", "comment": "c"},
    "unsilence": "s1", "scrape_targets": {"labels": {"job": "api"}},
}


STEP_KINDS = ["run", "http", "manual", "wait", "notify", "set", "include", "promql", "alert", "silence", "unsilence",
              "scrape_targets", "block", "switch", "end"]


@st.composite
def random_steps(draw: st.DrawFn) -> Data:
    """An id and one kind, then extra keys whose values are mostly valid."""
    kind = draw(st.sampled_from(STEP_KINDS))
    step: Data = {"id": "a", kind: VALID_STEP_VALUES[kind]}
    for key in draw(st.lists(st.sampled_from(sorted(VALID_STEP_VALUES)), max_size=4)):
        valid = st.just(VALID_STEP_VALUES[key])
        step[key] = draw(st.one_of(valid, valid, valid, values))
    return step


def test_every_step_key_has_a_valid_example() -> None:
    assert sorted(VALID_STEP_VALUES) == sorted(SCHEMAS["runbook"]["$defs"]["step"]["properties"])


@settings(max_examples=400, deadline=None)
@given(random_steps())
def test_random_steps_get_the_reference_verdict(step: Data) -> None:
    """Steps built from real step keys stress oneOf, dependentRequired and $ref recursion."""
    assert_agree("runbook", rb(detection=[step]))


# -- compile errors and messages -------------------------------------------------------------


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "format": "email"},
        {"properties": {"a": {"contains": {"type": "string"}}}},
        {"$defs": {"x": {"type": "string"}}, "items": {"prefixItems": []}},
        {"$ref": "https://example.org/other.json"},
    ],
)
def test_unknown_keyword_or_remote_ref_is_a_compile_error(schema: Data) -> None:
    with pytest.raises(SchemaCompileError):
        compile_schema(schema)


def test_annotations_alone_accept_anything() -> None:
    check = compile_schema({"title": "x", "description": "y", "default": 1})
    found: list[Issue] = []
    check({"anything": [1, 2]}, (), found)
    assert found == []


def messages(data: Data, kind: str = "runbook") -> list[str]:
    return [issue.message for issue in our_issues(kind, data)]


def test_unknown_key_message_suggests_the_closest_known_key() -> None:
    [message] = messages(rb_step(id="a", run="x", timout="5s"))
    assert "unknown key 'timout'" in message
    assert "did you mean 'timeout'?" in message


def test_unknown_key_is_positioned_at_the_key() -> None:
    [issue] = our_issues("runbook", rb_step(id="a", run="x", timout="5s"))
    assert issue.path == ("detection", 0, "timout")
    assert issue.at_key


def test_step_with_two_kinds_names_both() -> None:
    [message] = messages(rb_step(id="a", run="x", manual="y"))
    assert "exactly one of run, http, manual" in message
    assert "found 'run' and 'manual'" in message


def test_step_with_no_kind_says_none_was_found() -> None:
    [message] = messages(rb_step(id="a"))
    assert "found none" in message


def test_duration_type_error_mentions_the_unit() -> None:
    [message] = messages(rb_step(id="a", wait=30))
    assert "found an integer (30)" in message
    assert "with a unit" in message and "30s" in message


def test_duration_without_unit_mentions_the_unit() -> None:
    [message] = messages(rb_step(id="a", wait="30"))
    assert "'30' is not valid" in message
    assert "with a unit" in message


def test_enum_message_lists_choices_and_suggests_one() -> None:
    [message] = messages(rb_step(id="a", http={"url": "u", "method": "GETT"}))
    assert "GET, HEAD, POST" in message
    assert "did you mean 'GET'?" in message


def test_missing_required_key_is_named() -> None:
    [message] = messages(rb_step(id="a", notify={"channel": "c"}))
    assert "missing required key 'message'" in message


def test_closest_branch_explains_a_value_of_neither_allowed_type() -> None:
    [message] = messages(rb(severity={"matrix": 5}))
    assert "found an integer (5)" in message


def test_unique_items_on_a_long_list_is_not_quadratic() -> None:
    import time

    roles = [f"r{i}" for i in range(20_000)]
    started = time.perf_counter()
    assert our_issues("runbook", rb(roles=roles)) == []
    issues = our_issues("runbook", rb(roles=[*roles, "r7"]))
    assert time.perf_counter() - started < 1.0
    assert [(i.keyword, i.path) for i in issues] == [("uniqueItems", ("roles", 20_000))]


# -- single keywords against the reference on arbitrary JSON values --------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from([0.0, 1.0, 1.5, -2.0])
    | st.sampled_from(["", "a", "1", "true"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=8,
)


def _twin(value: Any) -> Any:
    """A value Python finds equal to `value` but JSON Schema may not: true <-> 1, 1 -> 1.0."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return {0: False, 1: True}.get(value, float(value))
    if isinstance(value, list):
        return [_twin(v) for v in value]
    if isinstance(value, dict):
        return {k: _twin(v) for k, v in value.items()}
    return value


def _canonical(value: Any) -> Any:
    """JSON equality as a hashable key: 1 == 1.0, true != 1, recursively."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", float(value))
    if isinstance(value, list):
        return ("array", tuple(_canonical(v) for v in value))
    if isinstance(value, dict):
        return ("object", frozenset((k, _canonical(v)) for k, v in value.items()))
    return (type(value).__name__, value)


@settings(max_examples=300, deadline=None)
@given(st.lists(_json, max_size=4), _json)
def test_const_enum_and_unique_items_use_json_equality(options: list[Any], value: Any) -> None:
    """1 equals 1.0 but true never equals 1, also inside lists and mappings."""
    cases = [
        ({"const": value}, _twin(value)),
        ({"enum": [*options, value]}, _twin(value)),
    ]
    for schema, candidate in cases:
        found: list[Issue] = []
        compile_schema(schema)(candidate, (), found)
        reference = jsonschema.Draft202012Validator(schema).is_valid(candidate)
        assert (not found) == reference, (schema, candidate)
    # uniqueItems is judged by the definition itself: jsonschema 4.26 gets mixed
    # booleans and numbers in nested lists wrong ([[0,0,null],[false,false,null],[0,0,null]]
    # is "unique" to it).
    for candidate in ([*options, value, _twin(value)], options):
        found = []
        compile_schema({"uniqueItems": True})(candidate, (), found)
        unique = len({_canonical(v) for v in candidate}) == len(candidate)
        assert (not found) == unique, candidate


def test_on_as_a_step_key_is_explained_and_points_to_target() -> None:
    """`on:` loads as the boolean true (YAML 1.1): say so, and suggest `target`."""
    step: dict[Any, Any] = {"id": "a", "run": "x", True: "box"}
    [message] = messages(rb(detection=[step]))
    assert message.startswith("unknown key true (unquoted, on, yes and true are a boolean")
    assert message.endswith("(did you mean 'target'?)")


def test_null_key_is_named_null() -> None:
    [message] = messages(rb(inputs={None: {"type": "string"}}))
    assert message.startswith("null (an unquoted ~ or null is not a string")
