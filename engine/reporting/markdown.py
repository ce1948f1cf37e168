"""A report as Markdown: a drill debrief, or a post-incident review draft for a live run.

Ready to paste into a review document: tables, no HTML except entities, every value
from the journal escaped (`<script>` in an output stays text, `|` does not break a table).
"""

from __future__ import annotations

from typing import Any

from engine.run.metrics import MILESTONES

from ._format import clock, dur, line_numbers, md, md_block, md_code, pct
from .report import Report
from .timeline import Bar, Timeline

BAR_WIDTH = 24
MARKS = {"inject": "⚑", "notify": "✉", "update": "✉", "escalation": "⇪", "hint": "?", "priority": "!",
         "rollback": "↺", "acknowledged": "✓", "resume": "▶", "clock": "⏸"}


def text_bar(bar: Bar, end: float, width: int = BAR_WIDTH) -> str:
    """The bar drawn in characters: █ machine, ░ waiting on people, ╌ retry/poll delay."""
    if end <= 0:
        return "█" if bar.status != "skipped" else "·"
    cells = []
    stop = bar.end if bar.end is not None else end
    for i in range(width):
        lo, hi = i * end / width, (i + 1) * end / width
        if bar.status == "skipped" or hi <= bar.start or lo >= stop:
            cells.append("·")
            continue
        mid = (max(lo, bar.start) + min(hi, stop)) / 2
        seg = next((s for s in bar.segments if s.start <= mid <= s.end), None)
        cells.append({"people": "░", "retry": "╌", "poll": "╌", "stopped": "·"}.get(seg.kind if seg else "", "█"))
    if bar.status != "skipped" and "█" not in cells and "░" not in cells and "╌" not in cells:
        cells[min(int(bar.start / end * width), width - 1)] = "▏"
    return "".join(cells)


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(cell or " " for cell in row) + " |" for row in rows]
    return out + [""]


def _step_note(bar: Bar) -> str:
    notes = []
    if bar.retried:
        notes.append(f"{bar.attempts} attempts")
    if bar.people:
        notes.append(f"waited {dur(bar.people)} for people")
    if bar.delays:
        notes.append(f"{dur(bar.delays)} retry/poll delays")
    if bar.shows_hosts:
        failed = len(bar.failed_hosts)
        notes.append(f"{len(bar.hosts)} host(s)" + (f", {failed} failed" if failed else ""))
    if bar.items:
        notes.append(f"{len(bar.items)} item(s)")
    if bar.error and bar.status != "ok":
        notes.append(bar.error)
    elif bar.reason:
        notes.append(bar.reason)
    return md("; ".join(notes))


def _timeline_rows(tl: Timeline) -> list[list[str]]:
    rows: list[tuple[float, int, list[str]]] = []
    for p in tl.phases:
        name = ("  " * p.depth) + f"**{p.phase}**"
        rows.append((p.start, 0, [clock(p.start), name, "", dur((p.end or tl.end) - p.start),
                                  p.status, "", ""]))
    for b in tl.bars:
        indent = "↳ " * b.depth
        label = f"{indent}{md(b.label)}" + (f" — {md(b.title, 60)}" if b.title else "")
        rows.append((b.start, 1, [clock(b.start), md(b.phase), label, dur(b.duration) if b.end is not None else
                                  "(running)", b.status, md_code(text_bar(b, tl.end)), _step_note(b)]))
    for m in tl.markers:
        rows.append((m.at, 2, [clock(m.at), "", f"{MARKS.get(m.kind, '•')} {md(m.label)}", "", "" if m.ok else
                               "not delivered", "", md(m.detail)]))
    rows.sort(key=lambda r: (r[0], r[1]))
    return [r[2] for r in rows]


def timeline_section(report: Report) -> list[str]:
    tl = report.timeline
    out = ["## Timeline", "",
           f"Times from t=0, the start of the run. Chart: {BAR_WIDTH} columns over {dur(tl.end)}; "
           "█ machine, ░ waiting on people, ╌ retry or poll delay.", ""]
    out += _table(["Time", "Phase", "Step / event", "Duration", "Status", "Chart", "Notes"], _timeline_rows(tl))
    for bar in tl.bars:
        out += _instructions(bar)
        out += _subruns(bar)
    return out


def _instructions(bar: Bar) -> list[str]:
    """A manual step's text as the person read it, quoted line by line."""
    if not bar.instructions:
        return []
    # Indented lines (a command to type) keep their indentation: Markdown would drop the spaces.
    quoted = [f"> {'&nbsp;' * (len(line) - len(line.lstrip()))}{md(line, 500)}" if line.strip() else ">"
              for line in bar.instructions.splitlines()]
    return [f"**Instructions of {md(bar.step)}**", "", *quoted, ""]


def _subruns(bar: Bar) -> list[str]:
    out: list[str] = []
    for kind, subs in (("Hosts", bar.hosts), ("Items", bar.items)):
        if not subs or (kind == "Hosts" and not bar.shows_hosts):
            continue
        estimated = any(s.estimated for s in subs)
        out += [f"**{kind} of {md(bar.step)}**" + (" (times estimated from the step's durations)" if estimated
                                                     else ""), ""]
        out += _table(["Name", "Status", "Start", "Duration", "Exit code", "Error"],
                      [[md(s.name), md(s.status), clock(s.start), dur(s.end - s.start),
                        "" if s.exit_code is None else str(s.exit_code), md(s.error)] for s in subs])
    return out


def stop_note(report: Report) -> list[str]:
    if report.timeline.stop is None:
        return []
    out = [f"> **Incomplete run.** {md(report.timeline.stop.describe(), 400)}", ""]
    if report.bad_lines:
        out += [f"> Unreadable journal lines: {line_numbers(report.bad_lines)}.", ""]
    return out


def time_section(report: Report) -> list[str]:
    total = report.people_time + report.machine_time + report.delay_time
    out = ["## Where the time went", "",
           f"- Waiting on people (answers, approvals): **{dur(report.people_time)}** "
           f"({pct(report.people_time, total)})",
           f"- Machine time (commands, requests, checks): **{dur(report.machine_time)}** "
           f"({pct(report.machine_time, total)})",
           f"- Retry and poll delays: **{dur(report.delay_time)}** ({pct(report.delay_time, total)})", ""]
    if report.slowest:
        out += ["Slowest steps:", ""]
        out += _table(["Step", "Duration", "Waiting on people", "Status"],
                      [[md(b.step), dur(b.duration), dur(b.people), md(b.status)] for b in report.slowest])
    return out


def key_times_section(report: Report) -> list[str]:
    rows = []
    for k in report.key_times:
        verdict = "" if k.met is None else ("met" if k.met else "**missed**")
        rows.append([k.label, "not reached" if k.at is None else f"{clock(k.at)} ({dur(k.at)})",
                     dur(k.objective) if k.objective is not None else "", verdict])
    return ["## Key times", "", "From t=0, the alert (the start of the run).", "",
            *_table(["Milestone", "At", "Objective", "Result"], rows)]


def _header(report: Report, heading: str) -> list[str]:
    meta = [f"runbook `{md(report.runbook)}`", f"run `{md(report.run_id)}`", f"mode {md(report.mode)}",
            f"started {md(report.started_at)}", f"outcome **{md(report.status_text)}**"]
    if report.duration is not None:
        meta.append(f"duration {dur(report.duration)}")
    return [f"# {heading}", "", " · ".join(meta), "", *stop_note(report)]


def render_markdown(report: Report) -> str:
    """The report as Markdown: a debrief for a drill, a review draft for a live run."""
    if report.is_drill:
        lines = _drill_markdown(report)
    else:
        lines = _review_markdown(report)
    lines += ["---", f"Generated by `runbook report` from `{md(report.source, 300)}` (the journal is the source)."]
    return "\n".join(lines) + "\n"


# -- live runs: the review draft ---------------------------------------------------------------


def _review_markdown(report: Report) -> list[str]:
    r: Any = report.review
    out = _header(report, f"Post-incident review (draft): {md(report.title)}")
    out += ["## Summary", "", md(r.summary, 2000), ""]
    out += ["## Impact window", "", *_table(["", "When"], [[md(a), md(b, 300)] for a, b in r.impact])]
    out += timeline_section(report)
    out += _done_section(r)
    out += _problems_section(r)
    out += time_section(report)
    out += ["## Open questions for the review", ""]
    out += [f"{i}. {md(q, 500)}" for i, q in enumerate(r.questions, 1)] + [""]
    return out


def _done_section(r: Any) -> list[str]:
    out = ["## What was done", ""]
    steps = [a for a in r.actions if a.what not in ("answer", "approval", "notify", "update", "escalation")]
    people = [a for a in r.actions if a.what in ("answer", "approval")]
    messages = [a for a in r.actions if a.what in ("notify", "update", "escalation")]
    if steps:
        out += ["### Steps, commands and requests", ""]
        out += _table(["Time", "Step", "Kind", "Where", "Command / what", "Result"],
                      [[clock(a.at), md(a.step), a.what, md(a.where),
                        md(a.detail, 200) if a.what == "manual" else md_code(a.detail, 200), md(a.status)]
                       for a in steps])
    if people:
        out += ["### Answers and approvals", ""]
        out += _table(["Time", "Step", "Who", "What", "Result", "Note"],
                      [[clock(a.at), md(a.step), md(a.who), md(a.detail, 200), md(a.status), md(a.where)]
                       for a in people])
    if messages:
        out += ["### Messages sent", ""]
        out += _table(["Time", "Channel", "Purpose", "Message", "Result"],
                      [[clock(a.at), md(a.where), a.what, md(a.detail, 200), md(a.status)] for a in messages])
    return out


def _problems_section(r: Any) -> list[str]:
    out = ["## What failed, was retried or rolled back", ""]
    if not r.problems:
        return out + ["Nothing failed, nothing was retried or rolled back.", ""]
    for p in r.problems:
        out.append(f"- {clock(p.at)} **{md(p.kind)}**: {md(p.text, 400)}")
        if p.output:
            out += ["", "  Last output:", "", *("  " + line for line in md_block(p.output, 800).splitlines()), ""]
    return out + [""]


# -- drills: the debrief ----------------------------------------------------------------------


def _drill_markdown(report: Report) -> list[str]:
    d: Any = report.drill
    out = _header(report, f"Drill debrief: {md(d.title)}")
    out += _scorecard_section(d)
    out += key_times_section(report)
    out += time_section(report)
    out += timeline_section(report)
    out += _hints_section(report)
    out += ["## Wrong turns", ""]
    out += [f"- {md(w, 300)}" for w in d.wrong_turns] or ["None."]
    out += [""]
    out += _decisions_section(d)
    out += _people_section(report)
    if d.history or d.history_note:
        out += _history_section(d)
    if d.notes is not None:
        out += _notes_section(d.notes)
    return out


def _decisions_section(d: Any) -> list[str]:
    out = ["## Answers and approvals", ""]
    if not d.decisions:
        return out + ["No answers or approvals were recorded.", ""]
    return out + _table(["Time", "Step", "Who", "What", "Result", "Note"],
                        [[clock(a.at), md(a.step), md(a.who), md(a.detail, 200), md(a.status), md(a.where)]
                         for a in d.decisions])


def _notes_section(notes: Any) -> list[str]:
    """The trainer's notes (`runbook report --trainer` only): how the drill works."""
    out = ["## Trainer notes", "", md(notes.description, 2000) or "The scenario has no description.", ""]
    if notes.events:
        out += ["### Injected events", ""]
        out += _table(["Time", "Kind", "Message", "State change", "Fired"],
                      [[clock(e.at), md(e.kind), md(e.message, 300), md_code(str(e.changed) if e.changed else "", 200),
                        "by the trainer" if e.by_trainer else "on schedule"] for e in notes.events])
    if notes.faults:
        out += ["### Why each fault is there", ""]
        out += [f"- {md(which)}: {md(why, 500)}" for which, why in notes.faults] + [""]
    return out


def _scorecard_section(d: Any) -> list[str]:
    out = [f"## Scorecard: {md(d.scenario_id)}", ""]
    if d.note:
        out += [f"> {md(d.note, 500)}", ""]
    card = d.card
    if card is None:
        return out
    verdict = "PASSED" if card.passed else f"FAILED: {len(card.missed)} objective(s) missed"
    out += [f"**{verdict}** ({len(card.checks) - len(card.missed)} of {len(card.checks)} objectives met)", ""]
    out += _table(["Objective", "Expected", "Actual", "Result", "Note"],
                  [[md(c.objective), md(c.expected), md(c.actual), "met" if c.met else "**missed**", md(c.note)]
                   for c in card.checks])
    out += [f"- Unscripted step {md(s)}: the scenario has no response for it" for s in card.unscripted]
    return out + ([""] if card.unscripted else [])


def _hints_section(report: Report) -> list[str]:
    hints = report.timings.hints
    out = ["## Hints used", "", f"{len(hints)} hint(s)." if hints else "None.", ""]
    if hints:
        out += _table(["Time", "Step", "Asked by", "Hint"],
                      [[clock(float(h.get("elapsed") or 0.0)), md(h.get("step")), md(h.get("by") or ""),
                        md(h.get("hint"), 300)] for h in hints])
    return out


def _people_section(report: Report) -> list[str]:
    t = report.timings
    out = ["## Per participant", ""]
    people = t.per_participant()
    out += _table(["Participant", "Responses", "Waited for"],
                  [[md(who), str(int(e["responses"])), dur(e["waited"])] for who, e in people.items()]) \
        if people else ["No answers or approvals were recorded.", ""]
    out += ["## Per role", ""]
    out += _table(["Role", "Steps owned", "Their time", "Answers and approvals", "Waited for them"],
                  [[md(role), str(int(e["steps"])), dur(e["time"]), str(int(e["responses"])), dur(e["waited"])]
                   for role, e in t.per_role().items()])
    return out


def _history_section(d: Any) -> list[str]:
    out = ["## Earlier runs of this scenario", "", md(d.history_note, 300), ""]
    if not d.history:
        return out
    head = ["", *[("**this run**" if h.current else md(h.started[:16] or h.run_id)) for h in d.history]]
    rows = [["Outcome", *[md(h.outcome) for h in d.history]]]
    for m in MILESTONES:
        rows.append([m.label, *[dur(getattr(h, m.attr)) for h in d.history]])
    rows.append(["Retries", *[str(h.retries) for h in d.history]])
    rows.append(["Hints", *[str(h.hints) for h in d.history]])
    if any(h.checks is not None for h in d.history):
        rows.append(["Objectives met", *[f"{h.met}/{h.checks}" if h.checks is not None else "-" for h in d.history]])
    return out + _table(head, rows)
