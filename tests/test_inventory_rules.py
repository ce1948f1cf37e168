"""`runbook validate` of inventories (B13): the schema (schemas/inventory.schema.json) and the
inventory rules (engine.language._inventory_rules), positioned; one passing and one failing fixture per rule."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from support import ROOT, positions, unmark

import engine.language._inventory_rules  # noqa: F401  (registers the inventory rules)
from engine.cli.commands import cli
from engine.language.diagnostics import Diagnostic
from engine.language.inventory import load_inventory
from engine.language.lint import RULES, rule_catalog
from engine.language.schema import issues
from engine.language.validation import check_file, validate_paths

HEAD = "kind: inventory\nversion: 1\n"


def readme_inventory() -> str:
    """The inventory example of the README, as users copy it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(kind: inventory\n.*?)```", text, re.DOTALL)
    assert block is not None
    return block.group(1)


def check(tmp_path: Path, text: str) -> list[Diagnostic]:
    path = tmp_path / "hosts.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return check_file(str(path)).diagnostics


def test_the_readme_inventory_validates_cleanly(tmp_path: Path) -> None:
    """B13: `runbook validate` said "unknown kind 'inventory'" of the documented format."""
    (tmp_path / "hosts.yaml").write_text(readme_inventory(), encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", "--strict", str(tmp_path / "hosts.yaml")])
    assert result.exit_code == 0, result.output
    assert "1 file checked: no problems" in result.output
    checked = check_file(str(tmp_path / "hosts.yaml"))
    assert checked.model is not None and checked.model.members("databases") == ["db-1", "db-2"]


def test_schema_problems_of_an_inventory_are_positioned(tmp_path: Path) -> None:
    diags = check(tmp_path, HEAD + "groups:\n  web:\n    hosts: {w1: {port: 70000}}\n    colour: red\nhost: {}\n")
    assert sorted((d.line, d.column, d.rule) for d in diags) == [(5, 24, "RB013"), (6, 5, "RB010"), (7, 1, "RB010")]


def test_a_directory_with_runbooks_and_an_inventory_validates(tmp_path: Path) -> None:
    (tmp_path / "hosts.yaml").write_text(readme_inventory(), encoding="utf-8")
    (tmp_path / "x.yaml").write_text(HEAD + "groups: {a: {children: [b]}}\n", encoding="utf-8")
    report = validate_paths([tmp_path])
    assert [(Path(d.file).name, d.rule) for d in report.diagnostics] == [("x.yaml", "RB301")]


# (rule, fixture: `‸` marks where the rule must fire, none: it must stay silent)
CASES = [
    ("RB301", HEAD + "groups:\n  a: {children: [b, all]}\n  b: {hosts: [h]}\n"),
    ("RB301", HEAD + "groups:\n  databases: {children: [‸replica]}\n  replicas: {hosts: [h]}\n"
              "  x: {children: {‸nowhere: }}\n"),
    ("RB302", HEAD + "groups:\n  a: {children: [b]}\n  b: {children: [c]}\n  c: {hosts: [h]}\n"),
    ("RB302", HEAD + "groups:\n  a: {children: [b]}\n  b: {children: [‸a]}\n  c: {children: [‸c]}\n"),
    ("RB303", HEAD + "hosts:\n  a: {address: 10.0.0.1}\n  b: {address: '::1'}\n  c: {address: db-3.example.com}\n"),
    ("RB303", HEAD + "vars: {address: ‸'x y'}\nhosts:\n  a: {address: ‸'a.example.com:22'}\n"
              "groups:\n  g:\n    hosts:\n      b: {address: ‸'ops@10.0.0.2'}\n    vars: {address: ‸'ssh://h'}\n"),
    ("RB304", HEAD + "groups:\n  web: {hosts: ['web[01:03]', 'db-[a:c]']}\n"),
    ("RB304", HEAD + "hosts:\n  ‸web[01:zz]: {}\ngroups:\n  g: {hosts: [‸'x[3:1]']}\n"),
]


@pytest.mark.parametrize(("rule", "text"), CASES, ids=[f"{r} {'fires' if '‸' in t else 'silent'}" for r, t in CASES])
def test_inventory_rule_fires_exactly_at_the_marked_positions(rule: str, text: str, tmp_path: Path) -> None:
    clean, marks = unmark(text)
    diags = check(tmp_path, clean)
    assert positions(diags, rule) == sorted(marks), [str(d) for d in diags]


def test_every_inventory_rule_has_fixtures_and_is_documented() -> None:
    ids = {r.id for r in RULES.values() if r.kind == "inventory"}
    assert ids == {"RB301", "RB302", "RB303", "RB304"}
    assert ids <= {r for r, t in CASES if "‸" in t} and ids <= {r for r, t in CASES if "‸" not in t}
    catalog = rule_catalog()
    assert all(catalog[i]["severity"] == "error" and catalog[i]["rationale"] for i in ids)
    result = CliRunner().invoke(cli, ["rules"])
    assert all(i in result.output for i in ids)


def test_messages_say_how_to_fix(tmp_path: Path) -> None:
    text = HEAD + "hosts:\n  a: {address: 'a:22'}\ngroups:\n  d: {children: [replica]}\n  replicas: {}\n" \
                  "  x: {children: [y]}\n  y: {children: [x]}\n"
    messages = {d.rule: d.message for d in check(tmp_path, text)}
    assert "a port goes in `port:`" in messages["RB303"]
    assert "(did you mean 'replicas'?)" in messages["RB301"]
    assert "x -> y -> x" in messages["RB302"]


def test_the_shipped_schema_agrees_with_jsonschema_and_the_reader(tmp_path: Path) -> None:
    schema = json.loads((ROOT / "schemas" / "inventory.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    reference = jsonschema.Draft202012Validator(schema)
    (tmp_path / "hosts.yaml").write_text(readme_inventory(), encoding="utf-8")
    valid = load_inventory(tmp_path / "hosts.yaml")
    assert valid.members("webservers") == ["web-1", "web-2"]
    import yaml

    data = yaml.safe_load(readme_inventory())
    samples = [data, {**data, "extra": 1}, {**data, "groups": {"g": {"hosts": 3}}},
               {**data, "hosts": {"h": {"port": "22"}}}, {"kind": "inventory"}, {**data, "vars": []}]
    for sample in samples:
        assert (not issues("inventory", sample)) == reference.is_valid(sample), sample


def test_runbook_schema_inventory_prints_the_shipped_schema() -> None:
    result = CliRunner().invoke(cli, ["schema", "inventory"])
    assert result.exit_code == 0
    assert json.loads(result.output)["title"] == "Inventory"
