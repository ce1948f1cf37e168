"""Values that would run as shell code (from an operator, an alert, an inputs file) in
every place a template can sit in a command: bare, inside the author's quotes, in a
heredoc, in `sh -c`, in backticks, in `eval`, and through env and stdin. Either the
engine refuses the runbook or the value stays data: the canary file is never made."""

from __future__ import annotations

import json

import pytest
from hostile_corpus import CONTEXTS, INJECTIONS
from hostile_harness import Case, Runner, describe

NAMES = list(INJECTIONS)


def _ident(name: str) -> str:
    return "v_" + name.replace("-", "_")


def _runbook(context: str) -> str:
    inputs = "".join(f"  {_ident(n)}: {{type: string}}\n" for n in NAMES)
    steps = ""
    for name in NAMES:
        if context == "env":
            body = f'    run: echo "$V"\n    env: {{V: {json.dumps("{{ inputs." + _ident(name) + " }}")}}}\n'
        elif context == "stdin":
            body = f"    run: cat\n    stdin: {json.dumps('{{ inputs.' + _ident(name) + ' }}')}\n"
        else:
            body = f"    run: {json.dumps(CONTEXTS[context].replace('V', 'inputs.' + _ident(name)))}\n"
        steps += f"  - id: s_{_ident(name)}\n{body}    continue_on_error: true\n"
    return ("kind: runbook\nversion: 1\nid: inject\ntitle: Injection\ndefaults: {timeout: 10s}\n"
            f"inputs:\n{inputs}detection:\n{steps}")


@pytest.mark.parametrize("context", [*CONTEXTS, "env", "stdin"])
def test_injected_values_stay_data(hostile: Runner, context: str) -> None:
    runbook = hostile.write("inject.yaml", _runbook(context))
    inputs = hostile.write("inputs.json", json.dumps({_ident(n): v for n, v in INJECTIONS.items()}))
    canary = hostile.work / "PWNED"
    kind = f"injection:{context}"
    checks = [Case(kind, "validate", ["validate", str(runbook)], canary=canary),
              Case(kind, "dry-run", ["run", "--dry-run", str(runbook), "--inputs-file", str(inputs)], canary=canary),
              Case(kind, "run", hostile.run_args(runbook, "--inputs-file", str(inputs)), canary=canary)]
    outcomes = [o for case in checks for o in hostile.execute(case)]  # one at a time: whose canary it is
    broken = [describe(o) for o in outcomes if o.failures]
    assert not broken, "\n".join(broken)
