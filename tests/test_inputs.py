"""engine.run.inputs: values from -i, an inputs file, an alert, the environment and defaults;
conversion to the declared type; constraints; every problem reported at once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.errors import InputError
from engine.language.builder import build_runbook
from engine.language.loader import load_text
from engine.language.model import Input, Runbook
from engine.run.inputs import convert, load_inputs_file, parse_assignments, resolve


def book(inputs: str) -> Runbook:
    text = ("kind: runbook\nversion: 1\nid: inputs-test\ntitle: Inputs\ninputs:\n"
            + textwrap.indent(textwrap.dedent(inputs), "  ")
            + "detection:\n  - {id: check, run: 'true'}\n")
    return build_runbook(load_text(text, "inputs.yaml"))


TYPED = book("""\
    host: {type: string}
    count: {type: integer, default: 3, minimum: 1, maximum: 10}
    ratio: {type: number, default: 0.5}
    force: {type: boolean, default: false}
    pods: {type: list, default: []}
    labels: {type: map, default: {}}
""")


# -- -i parsing ----------------------------------------------------------------------------------------


def test_assignments_split_at_the_first_equals_sign() -> None:
    assert parse_assignments(["host=db-1", " q = a=b", "empty="]) == {"host": "db-1", "q": " a=b", "empty": ""}


@pytest.mark.parametrize("bad", ["novalue", "=value", " =x"])
def test_a_malformed_assignment_names_the_flag(bad: str) -> None:
    with pytest.raises(InputError, match=f"-i expects key=value, got {bad!r}"):
        parse_assignments([bad])


# -- types ---------------------------------------------------------------------------------------------


def test_text_from_flags_is_converted_to_each_declared_type() -> None:
    given = {"host": "db-1", "count": " 7 ", "ratio": "0.25", "force": "yes", "pods": "a, b,,c",
             "labels": '{"team": "db"}'}
    values = resolve(TYPED, given=given, environ={}).values
    assert values == {"host": "db-1", "count": 7, "ratio": 0.25, "force": True, "pods": ["a", "b", "c"],
                      "labels": {"team": "db"}}


def test_structures_may_be_given_as_json_or_yaml() -> None:
    values = resolve(TYPED, given={"host": "h", "pods": '["x", "y"]', "labels": "{team: db, tier: 1}"},
                     environ={}).values
    assert values["pods"] == ["x", "y"] and values["labels"] == {"team": "db", "tier": 1}


def test_values_from_a_file_keep_their_yaml_types() -> None:
    values = resolve(TYPED, from_file={"host": 42, "count": 4, "force": True}, environ={}).values
    assert values["host"] == "42" and values["count"] == 4 and values["force"] is True


@pytest.mark.parametrize(("name", "value", "reason"), [
    ("count", "many", "expected an integer, got 'many'"),
    ("count", "2.5", "expected an integer"),
    ("ratio", "half", "expected a number, got 'half'"),
    ("force", "maybe", "expected true or false, got 'maybe'"),
    ("labels", "[1, 2]", "expected a map, got list"),
])
def test_a_value_of_the_wrong_type_is_refused_with_its_source(name: str, value: str, reason: str) -> None:
    with pytest.raises(InputError) as info:
        resolve(TYPED, given={"host": "h", name: value}, environ={})
    assert f"input '{name}' (from -i): {reason}" in str(info.value)


def test_defaults_fill_what_is_not_given_and_say_so() -> None:
    resolved = resolve(TYPED, given={"host": "db-1"}, environ={})
    assert resolved.values["count"] == 3 and resolved.sources["count"] == "default"
    assert resolved.sources["host"] == "-i"


# -- sources and their priority -------------------------------------------------------------------------

SOURCED = book("""\
    host: {type: string, env: TARGET_HOST, alert: labels.instance, default: fallback}
""")


def test_flag_beats_file_beats_alert_beats_env_beats_default() -> None:
    alert = {"labels": {"instance": "from-alert"}}
    env = {"TARGET_HOST": "from-env"}
    assert resolve(SOURCED, given={"host": "from-i"}, from_file={"host": "from-file"}, alert=alert,
                   environ=env).values["host"] == "from-i"
    assert resolve(SOURCED, from_file={"host": "from-file"}, alert=alert, environ=env).values["host"] == "from-file"
    assert resolve(SOURCED, alert=alert, environ=env).values["host"] == "from-alert"
    assert resolve(SOURCED, environ=env).values["host"] == "from-env"
    assert resolve(SOURCED, environ={}).values["host"] == "fallback"


def test_the_source_of_each_value_is_recorded() -> None:
    resolved = resolve(SOURCED, alert={"labels": {"instance": "db-1"}}, environ={})
    assert resolved.sources["host"] == "the alert (labels.instance)"
    assert resolve(SOURCED, environ={"TARGET_HOST": "x"}).sources["host"] == "$TARGET_HOST"


def test_an_env_value_is_converted_and_checked_like_any_other() -> None:
    rb = book("port: {type: integer, env: PORT, maximum: 65535}\n")
    assert resolve(rb, environ={"PORT": "8080"}).values["port"] == 8080
    with pytest.raises(InputError, match=r"input 'port' \(from \$PORT\) must be at most 65535, got 70000"):
        resolve(rb, environ={"PORT": "70000"})


# -- constraints -------------------------------------------------------------------------------------------

CONSTRAINED = book("""\
    mode: {type: string, choices: [fast, safe]}
    unit: {type: string, pattern: "[a-z]+\\\\.service"}
    pct: {type: integer, minimum: 50, maximum: 99}
""")


def test_values_within_the_constraints_are_accepted() -> None:
    values = resolve(CONSTRAINED, given={"mode": "safe", "unit": "nginx.service", "pct": "50"}, environ={}).values
    assert values == {"mode": "safe", "unit": "nginx.service", "pct": 50}


@pytest.mark.parametrize(("name", "value", "reason"), [
    ("mode", "yolo", "must be one of fast, safe, got 'yolo'"),
    ("unit", "nginx.service; reboot", "must match [a-z]+\\.service"),
    ("unit", "x.service2", "must match"),  # the whole value must match
    ("pct", "49", "must be at least 50, got 49"),
    ("pct", "100", "must be at most 99, got 100"),
])
def test_a_value_outside_the_constraints_is_refused(name: str, value: str, reason: str) -> None:
    given = {"mode": "fast", "unit": "a.service", "pct": "60", name: value}
    with pytest.raises(InputError) as info:
        resolve(CONSTRAINED, given=given, environ={})
    assert reason in str(info.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(InputError) as info:
        resolve(CONSTRAINED, given={"mode": "yolo", "pct": "x", "hots": "db-1"}, environ={})
    message = str(info.value)
    assert message.startswith("the run cannot start:")
    assert "the runbook has no input 'hots'" in message
    assert "input 'mode' (from -i) must be one of fast, safe" in message
    assert "input 'pct' (from -i): expected an integer" in message
    assert "missing input 'unit'" in message
    assert len(message.splitlines()) == 5


def test_a_missing_input_says_every_way_to_give_it() -> None:
    rb = book("host: {type: string, description: Host that alerted, env: HOST_X, alert: labels.instance}\n")
    with pytest.raises(InputError) as info:
        resolve(rb, environ={})
    assert ("missing input 'host' (Host that alerted): pass -i host=VALUE or $HOST_X or "
            "--alert (from labels.instance)") in str(info.value)


def test_an_unknown_input_suggests_the_close_name() -> None:
    with pytest.raises(InputError, match="no input 'hots' \\(did you mean 'host'\\?\\)"):
        resolve(TYPED, given={"host": "h", "hots": "x"}, environ={})


# -- secrets ------------------------------------------------------------------------------------------------


def test_secret_values_are_listed_for_masking() -> None:
    rb = book("""\
        token: {type: string, secret: true, env: TOKEN}
        user: {type: string, default: ops}
    """)
    assert resolve(rb, environ={"TOKEN": "s3cr3t"}).secrets == ["s3cr3t"]


# -- secrets from a file or a command ------------------------------------------------------------------------


def sourced(tmp_path: Path, inputs: str) -> Runbook:
    """A runbook file in tmp_path (relative `file:` paths are relative to it)."""
    text = ("kind: runbook\nversion: 1\nid: inputs-test\ntitle: Inputs\ninputs:\n"
            + textwrap.indent(textwrap.dedent(inputs), "  ") + "detection:\n  - {id: check, run: 'true'}\n")
    return build_runbook(load_text(text, str(tmp_path / "book.yaml")))


def test_a_secret_comes_from_a_file_relative_to_the_runbook(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "pd").write_text("pd-key-123\n")
    rb = sourced(tmp_path, "key: {type: string, secret: true, file: secrets/pd}\n")
    resolved = resolve(rb, environ={})
    assert resolved.values == {"key": "pd-key-123"} and resolved.secrets == ["pd-key-123"]
    assert resolved.sources == {"key": f"file {tmp_path / 'secrets' / 'pd'}"}


def test_a_secret_comes_from_a_command_and_is_converted_and_checked(tmp_path: Path) -> None:
    rb = sourced(tmp_path, """\
        token: {type: string, secret: true, command: "printf 'tok-%s\\n' 42"}
        port: {type: integer, command: "echo 8443", maximum: 9000}
    """)
    resolved = resolve(rb, environ={})
    assert resolved.values == {"token": "tok-42", "port": 8443} and resolved.secrets == ["tok-42"]


def test_a_given_value_or_the_environment_wins_over_the_file_and_no_command_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    rb = sourced(tmp_path, f"""\
        a: {{type: string, secret: true, env: A_KEY, command: "touch {marker}; echo x"}}
        b: {{type: string, secret: true, file: /nonexistent/b}}
    """)
    resolved = resolve(rb, given={"b": "from-flag"}, environ={"A_KEY": "from-env"})
    assert resolved.values == {"a": "from-env", "b": "from-flag"} and not marker.exists()


def test_a_failing_source_is_an_input_error_naming_the_input_and_the_source(tmp_path: Path) -> None:
    rb = sourced(tmp_path, """\
        missing: {type: string, secret: true, file: /run/secrets/nowhere}
        failing: {type: string, secret: true,
                  command: "printf 'hunter%s' 2-part; printf 'denied: hunter%s' 2-part >&2; exit 2"}
        silent: {type: string, secret: true, command: "true"}
        loose: {type: string, secret: true, pattern: "tok-[0-9]+", command: "printf 'hunter%s' 2-whole"}
    """)
    with pytest.raises(InputError) as info:
        resolve(rb, environ={})
    message = str(info.value)
    assert "input 'missing': file /run/secrets/nowhere: cannot read it (No such file or directory)" in message
    assert "input 'failing': command `printf 'hunter%s' 2-part; " in message
    assert "exited 2: denied: ***" in message  # what it printed before failing is not repeated
    assert "input 'silent': command `true` printed nothing" in message
    assert "input 'loose' (from command `printf 'hunter%s' 2-whole`) must match tok-[0-9]+, got '***'" in message
    assert "hunter2" not in message


def test_a_dry_run_or_drill_reads_no_source_and_stands_in(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    rb = sourced(tmp_path, f"""\
        key: {{type: string, secret: true, file: /run/secrets/pd}}
        token: {{type: integer, secret: true, command: "touch {marker}; echo 1"}}
        env_only: {{type: string, secret: true, env: NOT_SET_HERE}}
        env_default: {{type: string, env: NOT_SET_EITHER, default: eu-1}}
    """)
    resolved = resolve(rb, environ={}, read_sources=False)
    assert resolved.values == {"key": "<file /run/secrets/pd>", "token": f"<command `touch {marker}; echo 1`>",
                               "env_only": "<$NOT_SET_HERE>", "env_default": "eu-1"}
    assert not marker.exists()


# -- inputs files ---------------------------------------------------------------------------------------------


def test_an_inputs_file_may_be_yaml_or_json(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("host: db-1\ncount: 2\n")
    (tmp_path / "b.json").write_text('{"host": "db-2"}')
    (tmp_path / "empty.yaml").write_text("")
    assert load_inputs_file(tmp_path / "a.yaml") == {"host": "db-1", "count": 2}
    assert load_inputs_file(tmp_path / "b.json") == {"host": "db-2"}
    assert load_inputs_file(tmp_path / "empty.yaml") == {}


def test_a_bad_inputs_file_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    (tmp_path / "broken.yaml").write_text("a: [\n")
    with pytest.raises(InputError, match="must hold a mapping"):
        load_inputs_file(tmp_path / "list.yaml")
    with pytest.raises(InputError, match=r"cannot use the inputs file .*broken\.yaml:2:1: YAML syntax error"):
        load_inputs_file(tmp_path / "broken.yaml")
    with pytest.raises(InputError, match=r"cannot use the inputs file .*missing\.yaml: cannot read file"):
        load_inputs_file(tmp_path / "missing.yaml")


def test_a_problem_with_a_secret_input_does_not_print_the_secret() -> None:
    rb = book("""\
        token: {type: string, secret: true, pattern: "tok-[0-9]+"}
        pin: {type: integer, secret: true}
    """)
    with pytest.raises(InputError) as info:
        resolve(rb, given={"token": "hunter2-oops", "pin": "s3cr3t-pin"}, environ={})
    message = str(info.value)
    assert "hunter2-oops" not in message and "s3cr3t-pin" not in message
    assert "input 'token' (from -i) must match tok-[0-9]+, got '***'" in message


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000,
                                  "[&a [x, x, x, x, x, x, x, x, x], " + ", ".join(
                                      f"&{c} [{', '.join([f'*{p}'] * 9)}]"
                                      for p, c in zip("abcdefgh", "bcdefghi", strict=True)) + "]"])
def test_a_hostile_structured_value_on_the_command_line_is_a_conversion_error(text: str) -> None:
    """E7: `-i hosts=...` for a list or map input is read under the loader's limits too."""
    for kind in ("list", "map"):
        with pytest.raises(ValueError, match=r"expected a (list|map) \(JSON or YAML\): .*(nesting|alias)"):
            convert(Input("x", type=kind), text)


@pytest.mark.parametrize("pattern", ["a{99999999999}", "(" * 2000 + "x" + ")" * 2000, "[x-"])
def test_a_pattern_re_cannot_compile_is_a_problem_of_the_value_not_a_crash(pattern: str) -> None:
    problem = Input("unit", pattern=pattern).violation("x")
    assert problem is not None and problem.startswith("cannot be checked: its pattern is not a valid regular")


def test_a_pattern_that_backtracks_on_a_value_is_refused_in_bounded_time() -> None:
    problem = Input("a", pattern="(a+)+$").violation("a" * 40 + "b")
    assert problem is not None and "backtracks for too long" in problem
