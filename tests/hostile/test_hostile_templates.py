"""Templates that would take unbounded time or memory or reach out of the sandbox, and
backtracking regexes over a command's output: in `run` (dry-run and live), in outputs,
in bare expressions (`when`, `expect`, `until`), and an input's `pattern`."""

from __future__ import annotations

import json

import pytest
from hostile_corpus import EXPRESSIONS, REGEXES, TEMPLATES
from hostile_harness import Case, Runner

# A render is bounded (E6: 1 s per template): a case still running after this is a hang. A
# case renders up to three bounded templates plus a process start, which took over 4 s under
# a load average of 30; an unbounded backtracking regex takes minutes, so 10 s tells them apart.
BOUND = 10.0
HEAD = "kind: runbook\nversion: 1\nid: bomb\ntitle: Bomb\ndefaults: {timeout: 5s}\n"


def _runbook(body: str, inputs: str = "") -> str:
    return HEAD + inputs + body


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_in_a_command_and_an_output(hostile: Runner, name: str) -> None:
    """Rendered when the plan is printed and when the step runs: bounded or refused,
    a clean step failure, a whole journal."""
    text = json.dumps("echo " + TEMPLATES[name])
    runbook = hostile.write("bomb.yaml", _runbook(f"""\
detection:
  - id: probe
    run: {text}
  - id: out
    run: echo ok
    outputs: {{x: {json.dumps(TEMPLATES[name])}}}
"""))
    kind = f"template:{name}"
    hostile.check(Case(kind, "validate", ["validate", str(runbook)], timeout=BOUND),
                  Case(kind, "dry-run", ["run", "--dry-run", str(runbook)], timeout=BOUND),
                  Case(kind, "run", hostile.run_args(runbook), timeout=BOUND))


@pytest.mark.parametrize("name", EXPRESSIONS)
def test_expression_in_when_expect_and_until(hostile: Runner, name: str) -> None:
    expression = json.dumps(f"({EXPRESSIONS[name]}) is defined")
    runbook = hostile.write("bomb.yaml", _runbook(f"""\
detection:
  - id: gated
    when: {expression}
    run: echo ok
  - id: checked
    run: echo ok
    expect: {expression}
    continue_on_error: true
recovery:
  - id: polled
    run: echo ok
    until: {expression}
    every: 1s
    timeout: 3s
"""))
    hostile.check(Case(f"expression:{name}", "run", hostile.run_args(runbook), timeout=BOUND))


@pytest.mark.parametrize("name", REGEXES)
def test_backtracking_regex_over_output(hostile: Runner, name: str) -> None:
    pattern, output = REGEXES[name]
    runbook = hostile.write("redos.yaml", _runbook(f"""\
detection:
  - id: search
    run: printf '%s' {json.dumps(output)}
    outputs: {{found: {json.dumps("{{ stdout | regex_search(" + json.dumps(pattern) + ") }}")}}}
    continue_on_error: true
  - id: test_match
    run: printf '%s' {json.dumps(output)}
    expect: {json.dumps(f"stdout is match({json.dumps(pattern)})")}
    continue_on_error: true
  - id: replace
    run: printf '%s' {json.dumps(output)}
    outputs: {{r: {json.dumps("{{ stdout | regex_replace(" + json.dumps(pattern) + ", 'z') }}")}}}
"""))
    hostile.check(Case(f"regex:{name}", "run", hostile.run_args(runbook), timeout=BOUND))


@pytest.mark.parametrize("name", REGEXES)
def test_backtracking_input_pattern(hostile: Runner, name: str) -> None:
    """An input's `pattern` checked against a value made to backtrack, before anything runs."""
    pattern, value = REGEXES[name]
    runbook = hostile.write("pattern.yaml", _runbook("""\
detection:
  - id: probe
    run: echo {{ inputs.v }}
""", inputs=f"inputs:\n  v: {{type: string, pattern: {json.dumps(pattern)}}}\n"))
    hostile.check(Case(f"pattern:{name}", "validate", ["validate", str(runbook)], timeout=BOUND),
                  Case(f"pattern:{name}", "run", hostile.run_args(runbook, "-i", f"v={value}"), timeout=BOUND))


def test_invalid_and_huge_patterns(hostile: Runner) -> None:
    cases = []
    for n, pattern in enumerate(["(", "[z-a]", "(?P<x>a)(?P<x>b)", "a{99999999999}", "(a{1000}){1000}" * 20]):
        runbook = hostile.write(f"p{n}.yaml", _runbook("detection:\n  - id: probe\n    run: echo ok\n",
                                                       inputs=f"inputs:\n  v: {{type: string, default: x, "
                                                              f"pattern: {json.dumps(pattern)}}}\n"))
        cases += [Case("pattern:invalid", "validate", ["validate", str(runbook)]),
                  Case("pattern:invalid", "run", hostile.run_args(runbook, "-i", "v=aaaa"))]
    hostile.check(*cases)
