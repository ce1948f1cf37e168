"""Branches no run can take, as the runbook's author declares them, with why.

Some branches exist in the model and never in a run: a `when` whose other side always
ends the run first, a `for_each` over a list an earlier `expect` proved non-empty. No
scenario can take them, so counting them would keep a runbook under 100% forever with
nothing to write. The author says so where a reviewer reads the step, in a comment on
the line of the step's first key or in the comment lines right above it:

    # runbook: unreachable[when false] page_owner hands over and ends the run first
    - id: restart
      when: vars.restart | bool

Coverage leaves such a branch out of the totals and lists it with its reason; a
label the step cannot take is an error naming the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from engine.errors import RunbookError
from engine.language.model import Runbook, Step

_DECLARED = re.compile(r"#\s*runbook:\s*unreachable\[(?P<label>[^\]\n]*)\]\s*:?\s*(?P<why>.*)$")


def declared(runbook: Runbook, branches: dict[str, list[str]]) -> dict[tuple[str, str], str]:
    """(step, label) -> why, for every branch declared unreachable in `runbook`'s text;
    `branches` is each step's labels (coverage.branches_of)."""
    source = runbook.source
    if source is None or "unreachable[" not in source.text:
        return {}
    lines = source.text.splitlines()
    out: dict[tuple[str, str], str] = {}
    for step in runbook.steps(rollbacks=True):
        line = source.position(step.path).line
        for number, label, why in _comments(lines, line):
            if label not in branches.get(step.id, []):
                raise RunbookError(_unknown(step, label, branches.get(step.id, [])), file=runbook.file,
                                   line=number, column=lines[number - 1].index("#") + 1)
            out[(step.id, label)] = why or "(no reason given)"
    return out


def _comments(lines: list[str], line: int) -> Iterator[tuple[int, str, str]]:
    """The declarations on the step's first line and in the comment block right above it."""
    numbers = [line]
    above = line - 1
    while above >= 1 and lines[above - 1].lstrip().startswith("#"):
        numbers.append(above)
        above -= 1
    for number in sorted(numbers):
        if 0 < number <= len(lines):
            found = _DECLARED.search(lines[number - 1])
            if found is not None:
                yield number, found["label"].strip(), found["why"].strip()


def _unknown(step: Step, label: str, labels: list[str]) -> str:
    takes = ", ".join(labels) if labels else "none"
    return (f"step {step.id} has no branch '{label}' to declare unreachable "
            f"(its branches: {takes})")
