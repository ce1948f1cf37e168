"""Coverage as a person or a program reads it: a text summary, JSON, and Markdown for a
pull request. Renderers compute no facts: everything comes from a `Coverage`."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from ._format import md
from .coverage import MODES, Coverage, RunbookCoverage
from .staleness import Staleness

NAMES = {"test": "scenarios", "drill": "drills", "live": "live"}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def _cells(rb: RunbookCoverage) -> list[str]:
    cells = [rb.id]
    for mode in MODES:
        runs = rb.tally(mode).runs
        cells.append(f"{_pct(rb.percent(mode, 'steps'))}/{_pct(rb.percent(mode))} ({runs})" if runs else "no runs")
    return cells


def _day(stamp: float | None) -> str:
    return "never" if stamp is None else datetime.fromtimestamp(stamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def stale_lines(stale: Staleness | None) -> list[str]:
    """Per runbook: its last runs, its commands unproven live, its scenarios out of date."""
    if stale is None:
        return []
    lines = []
    for rb, last in stale.last.items():
        lines.append(f"{rb}: last run " + ", ".join(f"{NAMES[m]} {_day(last[m])}" for m in MODES))
        if stale.commands.get(rb):
            lines.append(f"{rb}: {len(stale.commands[rb])} command(s) not seen succeeding live in "
                         f"{stale.days:g} days: " + ", ".join(stale.commands[rb]))
    for c in stale.changed:
        if c.passed is None:
            lines.append(f"{c.scenario}: never seen passing on runbook {c.runbook} as it is now")
        elif c.exact:
            lines.append(f"{c.scenario}: runbook {c.runbook} changed since the scenario last passed "
                         f"({_day(c.passed)}, on another version of its text)")
        else:
            lines.append(f"{c.scenario}: runbook {c.runbook} file modified {_day(c.changed)}, after the scenario "
                         f"last passed ({_day(c.passed)}; that journal has no runbook digest, so by file times)")
    return lines


def render_text(cov: Coverage, stale: Staleness | None = None) -> str:
    """One row per runbook: steps/branches covered per mode (runs), then what is missing."""
    head = ["runbook", *[f"{NAMES[m]} steps/branches (runs)" for m in MODES]]
    rows = [_cells(rb) for rb in cov.runbooks]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for rb in cov.runbooks:
        missing = [f"{b.step}: {b.label}" for b in rb.branches if b not in set(rb.branches_taken("test"))]
        if missing:
            lines.append(f"{rb.id}: branches no scenario takes: " + ", ".join(missing))
    lines += unreachable_lines(cov) + alert_lines(cov) + stale_lines(stale)
    totals = ", ".join(f"{NAMES[m]} {_total(cov, m)}" for m in MODES)
    lines.append(f"branch coverage: {totals}; {len(cov.runbooks)} runbook(s), {cov.journals} journal(s) "
                 f"read in {cov.seconds:.2f}s" + _unmatched(cov))
    return "\n".join(lines) + "\n"


def unreachable_lines(cov: Coverage) -> list[str]:
    """The branches each runbook declares no run can take, with why (left out of the
    totals), and any that a run took all the same."""
    lines = []
    for rb in cov.runbooks:
        lines += [f"{rb.id}: {b.step}: {b.label} cannot be taken by any run (the runbook says: {why})"
                  for b, why in rb.unreachable.items()]
        lines += [f"{rb.id}: {b.step}: {b.label} is declared unreachable, but a run ({NAMES[mode]}) took it"
                  for b, mode in rb.taken_unreachable()]
    return lines


def alert_lines(cov: Coverage) -> list[str]:
    lines = [f"runbook with no scenario: {rb.id}" + (" (none among the files given; journals of scenario tests "
                                                      "of it are counted)" if rb.tally("test").runs else "")
             for rb in cov.runbooks if not rb.scenarios]
    alerts = cov.alerts
    if alerts is not None:
        lines += [f"{r.file}:{r.line}: alert {r.name} has no runbook" for r in alerts.unowned]
        lines += [f"runbook {rb}: alert {a} is in no rule file"
                  for rb, names in alerts.undefined.items() for a in names]
        lines.append(f"alerts: {alerts.rules - len(alerts.unowned)} of {alerts.rules} have a runbook "
                     f"({alerts.rule_files} rule file(s))")
    return lines


def _total(cov: Coverage, mode: str) -> str:
    """Branch coverage in a mode, or `-` when no runbook was run in it."""
    return _pct(cov.percent(mode)) if any(rb.tally(mode).runs for rb in cov.runbooks) else "-"


def _unmatched(cov: Coverage) -> str:
    return "".join(f"; {part}" for part in journal_notes(cov))


def journal_notes(cov: Coverage) -> list[str]:
    """The journals not counted, or counted less exactly, and why."""
    parts = []
    if cov.outdated:
        parts.append(f"{sum(cov.outdated.values())} ran an older version of their runbook, not counted "
                     f"({', '.join(sorted(cov.outdated))})")
    if cov.undigested:
        parts.append(f"{cov.undigested} carry no runbook digest (written before runs recorded one): "
                     "counted by runbook id, whatever version they ran")
    if cov.unmatched:
        parts.append(f"{sum(cov.unmatched.values())} ran runbooks not among those given, not counted "
                     f"({', '.join(sorted(cov.unmatched))})")
    if cov.skipped:
        parts.append(f"{len(cov.skipped)} skipped (not a run or unreadable)")
    return parts


def _runbook_dict(rb: RunbookCoverage) -> dict[str, Any]:
    modes = {}
    for mode in MODES:
        tally = rb.tally(mode)
        taken = set(rb.branches_taken(mode))
        modes[mode] = {
            "runs": tally.runs, "steps_percent": rb.percent(mode, "steps"), "branches_percent": rb.percent(mode),
            "steps": {s: {st: n for (step, st), n in sorted(tally.ended.items()) if step == s} for s in rb.steps},
            "branches": [{"step": b.step, "branch": b.label, "taken": b in taken,
                          "times": tally.taken[(b.step, b.label)]} for b in rb.branches],
        }
    taken = {b for b, _ in rb.taken_unreachable()}
    return {"id": rb.id, "title": rb.title, "file": rb.file, "digest": rb.digest, "alerts": list(rb.alerts),
            "steps": rb.steps, "modes": modes,
            "unreachable": [{"step": b.step, "branch": b.label, "why": why, "taken": b in taken}
                            for b, why in rb.unreachable.items()]}


def _stale_dict(stale: Staleness | None) -> dict[str, Any] | None:
    if stale is None:
        return None
    return {"days": stale.days, "last_run": stale.last, "commands_not_seen_succeeding_live": stale.commands,
            "scenarios_changed": [{"runbook": c.runbook, "scenario": c.scenario, "last_passed": c.passed,
                                   "runbook_changed": c.changed, "by_digest": c.exact} for c in stale.changed]}


def to_dict(cov: Coverage, stale: Staleness | None = None) -> dict[str, Any]:
    alerts = cov.alerts
    return {"staleness": _stale_dict(stale),"format": "runbook-coverage/1", "journals": cov.journals,
            "alerts": None if alerts is None else {
                "rule_files": alerts.rule_files, "rules": alerts.rules,
                "without_runbook": [{"alert": r.name, "file": r.file, "line": r.line, "runbook_url": r.runbook_url}
                                    for r in alerts.unowned],
                "not_in_rule_files": alerts.undefined},
            "without_scenario": [rb.id for rb in cov.runbooks if not rb.scenarios], "skipped": cov.skipped,
            "unmatched": dict(cov.unmatched), "older_version": dict(cov.outdated), "without_digest": cov.undigested,
            "seconds": round(cov.seconds, 3),
            "branches_percent": {m: cov.percent(m) for m in MODES},
            "steps_percent": {m: cov.percent(m, "steps") for m in MODES},
            "runbooks": [_runbook_dict(rb) for rb in cov.runbooks]}


def render_json(cov: Coverage, stale: Staleness | None = None) -> str:
    return json.dumps(to_dict(cov, stale), indent=2) + "\n"


def render_markdown(cov: Coverage, stale: Staleness | None = None) -> str:
    """A table for a pull request, and per runbook the branches no scenario takes."""
    lines = ["## Runbook coverage", "",
             "Branch coverage: " + ", ".join(f"{NAMES[m]} **{_total(cov, m)}**" for m in MODES), "",
             "| runbook | " + " | ".join(f"{NAMES[m]} steps/branches (runs)" for m in MODES) + " |",
             "|---|" + "---|" * len(MODES)]
    lines += ["| " + " | ".join(md(c) for c in _cells(rb)) + " |" for rb in cov.runbooks]
    missing = [(rb, [b for b in rb.branches if b not in set(rb.branches_taken("test"))]) for rb in cov.runbooks]
    if any(m for _, m in missing):
        lines += ["", "<details><summary>Branches no scenario takes</summary>", ""]
        lines += [f"- `{md(rb.id)}`: " + ", ".join(f"{md(b.step)} ({md(b.label)})" for b in m)
                  for rb, m in missing if m]
        lines += ["", "</details>"]
    if any(rb.unreachable for rb in cov.runbooks):
        lines += ["", "<details><summary>Branches no run can take (declared in the runbook)</summary>", ""]
        lines += [f"- {md(line, 600)}" for line in unreachable_lines(cov)] + ["", "</details>"]
    if cov.alerts is not None or any(not rb.scenarios for rb in cov.runbooks):
        lines += ["", "### Alerts and scenarios", ""] + [f"- {md(line, 300)}" for line in alert_lines(cov)]
    if stale is not None:
        lines += ["", "<details><summary>Staleness</summary>", ""]
        lines += [f"- {md(line, 600)}" for line in stale_lines(stale)] + ["", "</details>"]
    return "\n".join(lines) + "\n"
