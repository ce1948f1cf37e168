"""Hostile things at run time: values no command can take (a NUL byte, a 400-digit
timeout, a million items), and commands whose output is hostile (one 100 MB line, a
million lines, binary, terminal escapes). Bounded, refused or a clean step failure, with
a whole journal and logs that hold the output."""

from __future__ import annotations

import json

import pytest
from hostile_harness import Case, Runner

BODIES = {
    "timeout-400-digits": {"timeout": "9" * 400 + "s", "run": "true"},
    "wait-forever": {"wait": "100000d"},
    "nul-in-run": {"run": "echo a\0b"},
    "nul-in-env": {"run": "echo $X", "env": {"X": "a\0b"}},
    "for-each-million": {"for_each": "range(1000000) | list", "run": "true"},
    "poll-storm": {"run": "true", "until": "false", "every": "1ms", "timeout": "2s"},
    "retry-storm": {"run": "false", "retries": {"attempts": 1000000, "delay": "0s"}, "timeout": "2s"},
    "one-huge-line": {"run": "head -c 100000000 /dev/zero | tr '\\\\0' x"},
    "million-lines": {"run": "seq 1 1000000"},
    "binary": {"run": "head -c 1000000 /dev/urandom"},
    "terminal-escapes": {"run": "printf '\\\\033]0;pwned\\\\007\\\\033[2J\\\\033[31mred\\\\r\\\\n'"},
    "huge-output-in-template": {"run": "head -c 50000000 /dev/zero | tr '\\\\0' y",
                                "outputs": {"all": "{{ stdout }}", "n": "{{ stdout | length }}"}},
}


@pytest.mark.parametrize("name", BODIES)
def test_hostile_value_or_output_at_run_time(hostile: Runner, name: str) -> None:
    step = {"id": "hostile", **BODIES[name]}
    runbook = hostile.write("runtime.yaml", "kind: runbook\nversion: 1\nid: runtime\ntitle: Runtime\n"
                                            "defaults: {timeout: 8s}\ndetection:\n  - " + json.dumps(step) +
                                            "\nrecovery:\n  - {id: after, run: echo after}\n")
    kind = f"runtime:{name}"
    [_, run] = hostile.check(Case(kind, "validate", ["validate", str(runbook)]),
                             Case(kind, "run", hostile.run_args(runbook), timeout=12))
    for found in run.runs:
        hostile.check(Case(kind, "report", ["report", str(found), "-f", "html"]),
                      Case(kind, "from-run", ["scenario", "from-run", str(found)]))
