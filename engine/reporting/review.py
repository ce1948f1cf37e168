"""A post-incident review draft for a live run: summary, impact window, what was done,
what failed and was retried or rolled back, and open questions for the review.

Only facts from the journal go in; the questions are prompts for people, derived from
what the journal shows (a failure, a retry, a refusal, a long wait, a crash).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.language.duration import format_duration

from .timeline import resumed_text


@dataclass
class Action:
    """Something done during the run: a command, a request, an answer, an approval, a message."""

    at: float
    step: str
    what: str  # command | request | answer | approval | notify | manual | wait | set | include
    detail: str
    status: str = ""
    who: str = ""
    where: str = ""


@dataclass
class Problem:
    """What went wrong: a failed, retried or refused step, a rollback, an undelivered message."""

    at: float
    kind: str  # failed | retried | refused | rollback | rolled back | undelivered | escalated | skipped | stopped
    #            | resumed
    text: str
    step: str | None = None
    output: str = ""


@dataclass
class Review:
    summary: str
    impact: list[tuple[str, str]] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)


def _who(item: Mapping[str, Any]) -> str:
    """Who decided, in which role, and how it came to a service run (`alice (dba) via slack`)."""
    by, role = item.get("by"), item.get("role")
    who = f"{by} ({role})" if by and role else str(by or role or "")
    return f"{who} via {item['via']}" if item.get("via") and who else who


def _answers(answers: Any) -> str:
    if isinstance(answers, Mapping):
        return ", ".join(f"{k}={v}" for k, v in answers.items())
    return str(answers)


def delivery(n: Mapping[str, Any]) -> str:
    """How a message went: sent (on which attempt), shown on the console only, or not delivered."""
    if not n.get("ok", True):
        return f"not delivered: {n.get('error')}"
    if n.get("note"):
        return str(n["note"])
    attempts = int(n.get("attempts") or 1)
    return f"sent on attempt {attempts}" if attempts > 1 else "sent"


def _summary(report: Any) -> str:
    bars = [b for b in report.steps if b.status != "skipped"]
    failed = [b for b in bars if b.status == "failed"]
    retried = [b for b in bars if b.retries and any(not r.get("polling") for r in b.retries)]
    where = f" on {report.hostname}" if report.hostname else ""
    text = (f"{report.title} (runbook {report.runbook}) ran in {report.mode} mode{where}, "
            f"starting {report.started_at or 'at an unknown time'}. ")
    if report.complete:
        text += f"It ended {report.outcome} after {format_duration(report.duration or 0.0)}"
        text += f": {report.reason}. " if report.reason else ". "
    else:
        text += "It did not finish: " + report.timeline.stop.describe() + " "
    text += f"{len(bars)} step(s) ran: {len(failed)} failed, {len(retried)} needed retries."
    if report.timings.priority:
        text += f" Priority {report.timings.priority}."
    return text + _alert_summary(report)


def _alert_summary(report: Any) -> str:
    alert = report.alert
    if not alert:
        return ""
    labels = ", ".join(f"{k}={v}" for k, v in sorted((alert.get("labels") or {}).items()) if k != "alertname")
    text = f" The alert {alert.get('name')} {{{labels}}} started it"
    if alert.get("startsAt"):
        text += f" (firing since {_stamp(str(alert['startsAt']))})"
    if alert.get("allowed_resolved"):
        text += "; it was already resolved, and the operator ran it anyway (--allow-resolved)"
    return text + "."


def _stamp(text: str) -> str:
    """An alert's ISO time as the report writes times (`2026-03-01 03:00:00 UTC`), else as given."""
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    if when.tzinfo is None:
        return text
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") + " UTC"


def _alert_lead(report: Any) -> float | None:
    """Seconds from the alert's startsAt to the start of the run, when both are known."""
    begun = (report.alert or {}).get("startsAt")
    if not begun or not report.started_at:
        return None
    from datetime import datetime

    try:
        start = datetime.fromisoformat(report.started_at.replace("Z", "+00:00"))
        fired = datetime.fromisoformat(str(begun).replace("Z", "+00:00"))
        return (start - fired).total_seconds()
    except (TypeError, ValueError):
        return None  # a time the alert source wrote in a form we do not read


def _impact(report: Any) -> list[tuple[str, str]]:
    rows = _alert_rows(report) + [("Run started (t=0)", report.started_at or "unknown")]
    for key in report.key_times:
        value = f"{key.wall} (+{format_duration(key.at)})" if key.at is not None and key.wall else (
            f"+{format_duration(key.at)}" if key.at is not None else "not reached")
        rows.append((key.label, value))
    end = next((k for k in reversed(report.key_times) if k.name in ("recovered", "mitigated") and k.at is not None),
               None)
    rows.append(("Impact window (as recorded)", _window(report, end)))
    return rows


def _alert_rows(report: Any) -> list[tuple[str, str]]:
    alert = report.alert or {}
    rows = []
    if alert.get("startsAt"):
        lead = _alert_lead(report)
        before = f" ({format_duration(lead)} before the run)" if lead is not None and lead >= 0 else ""
        rows.append((f"Alert {alert.get('name')} fired (startsAt)", f"{_stamp(str(alert['startsAt']))}{before}"))
    if alert.get("endsAt"):
        rows.append((f"Alert {alert.get('name')} ended (endsAt)", _stamp(str(alert["endsAt"]))))
    return rows


def _window(report: Any, end: Any) -> str:
    begun = (report.alert or {}).get("startsAt")
    if end is None:
        since = f"from {_stamp(str(begun))} (the alert's startsAt); " if begun else ""
        return f"{since}still open when the journal ends: neither mitigated nor recovered"
    until = f"{end.wall or '+' + format_duration(end.at or 0.0)} ({end.label.lower()})"
    if begun:
        return f"from {_stamp(str(begun))} (the alert's startsAt) to {until}"
    return (f"from before {report.started_at} to {until}; impact began before the run, how long before "
            "the journal cannot say")


def _step_actions(bar: Any) -> list[Action]:
    """A step's action; a fan-out whose hosts each ran their own command is one per host."""
    action = _step_action(bar)
    own = [h for h in bar.hosts if h.command]
    if action is None or not own:
        return [action] if action is not None else []
    return [Action(h.start, bar.step, action.what, h.command, h.status, where=h.name) for h in own]


def _step_action(bar: Any) -> Action | None:
    if bar.status == "skipped" or bar.kind in ("notify",):
        return None
    what = {"run": "command", "http": "request"}.get(bar.kind, bar.kind)
    detail = bar.command or bar.instructions or bar.title or bar.step
    where = ", ".join(h.name for h in bar.hosts) or (bar.target or "")
    status = bar.status + (f" after {bar.attempts} attempts" if bar.retried else "")
    status += f" ({len(bar.items)} items)" if bar.items else ""
    return Action(bar.start, bar.step, what, detail, status, where=where)


def _asked(approval: Mapping[str, Any]) -> str:
    """The role an approval required, and who asked for it when the runbook did not."""
    notes = [f"requires {approval['required_role']}"] if approval.get("required_role") else []
    notes += [f"asked by {approval['policy']}"] if approval.get("policy") else []
    return "; ".join(notes)


def decisions(t: Any) -> list[Action]:
    """Answers and approvals (who decided what, in which role), in time order: the review
    of a live run and the debrief of a drill show the same."""
    out = [Action(float(a.get("elapsed") or 0.0), str(a.get("step")), "answer", _answers(a.get("answers")),
                  "answered", _who(a)) for a in t.answers]
    out += [Action(float(a.get("elapsed") or 0.0), str(a.get("step")), "approval", str(a.get("message") or ""),
                   "approved" if a.get("approved") else "refused", _who(a), _asked(a)) for a in t.approvals]
    return sorted(out, key=lambda a: a.at)


def _helpers(records: Sequence[Mapping[str, Any]]) -> list[Action]:
    """A block's background helpers: each as it started, with how it ended."""
    ended = {(r.get("step"), r.get("helper")): r for r in records if r.get("event") == "background.stopped"}
    out = []
    for r in records:
        if r.get("event") != "background.started":
            continue
        stop = ended.get((r.get("step"), r.get("helper"))) or {}
        how = (f"failed: {r.get('error')}" if r.get("error") else
               f"died (exit code {stop.get('exit_code')})" if stop.get("died") else
               "stopped with its block" if stop else "still running when the journal ends")
        out.append(Action(float(r.get("elapsed") or 0.0), f"{r.get('helper')} (of {r.get('step')})",
                          "background", str(r.get("command") or ""), how))
    return out


def _actions(report: Any, records: Sequence[Mapping[str, Any]] = ()) -> list[Action]:
    out = [a for b in report.timeline.bars for a in _step_actions(b)]
    out += _helpers(records)
    t = report.timings
    out += decisions(t)
    out += [Action(float(n.get("elapsed") or 0.0), str(n.get("step") or "-"), str(n.get("purpose") or "notify"),
                   str(n.get("message") or ""), delivery(n), where=str(n.get("channel") or ""))
            for n in t.notifications]
    return sorted(out, key=lambda a: a.at)


def _bar_problems(bar: Any) -> list[Problem]:
    out = []
    retries = [r for r in bar.retries if not r.get("polling")]
    if retries:
        errors = "; ".join(f"attempt {r.get('attempt')}: {r.get('error')}" for r in retries)
        out.append(Problem(bar.start, "retried", f"{bar.step} needed {bar.attempts or len(retries) + 1} attempts "
                           f"({errors})", bar.step, retries[-1].get("stderr") or ""))
    if bar.status in ("failed", "aborted", "not_confirmed"):
        out.append(Problem(bar.end or bar.start, bar.status, f"{bar.step} {bar.status}: {bar.error or bar.reason or ''}"
                           .rstrip(": "), bar.step, bar.stderr or bar.stdout))
    if bar.status == "refused":
        out.append(Problem(bar.end or bar.start, "refused", f"{bar.step}: {bar.error or 'approval refused'}", bar.step))
    if bar.status == "skipped" and bar.reason and "interrupted" in bar.reason:
        out.append(Problem(bar.start, "skipped", f"{bar.step}: {bar.reason}", bar.step))
    out += [Problem(h.end, "failed", f"{bar.step} on {h.name}: {h.status}" + (f" ({h.error})" if h.error else ""),
                    bar.step) for h in bar.failed_hosts]
    return out


def _problems(report: Any, records: Sequence[Mapping[str, Any]]) -> list[Problem]:
    out = [p for b in report.timeline.bars for p in _bar_problems(b)]
    for r in records:
        at = float(r.get("elapsed") or 0.0)
        if r.get("event") == "rollback.started":
            out.append(Problem(at, "rollback", f"rollback of {', '.join(r.get('steps') or [])} ({r.get('reason')})"))
        elif r.get("event") == "rollback.finished":
            out.append(Problem(at, "rolled back", f"rollback {'skipped' if r.get('skipped') else r.get('status')}"))
        elif r.get("event") == "notify.sent" and not r.get("ok", True):
            out.append(Problem(at, "undelivered", f"message to {r.get('channel')} not delivered: {r.get('error')}"))
        elif r.get("event") == "background.stopped" and r.get("died"):
            out.append(Problem(at, "helper died", f"background helper {r.get('helper')} of {r.get('step')} died "
                               f"(exit code {r.get('exit_code')})", r.get("step"), str(r.get("output") or "")))
        elif r.get("event") == "run.resumed":
            out.append(Problem(at, "resumed", f"resumed {resumed_text(r)}"))
        elif r.get("event") == "escalation.fired":
            out.append(Problem(at, "escalated", f"escalated to {r.get('channel')}: {r.get('reason')}", r.get("step")))
    if report.timeline.stop is not None:
        out.append(Problem(report.timeline.stop.at, "stopped", report.timeline.stop.describe()))
    return sorted(out, key=lambda p: p.at)


def _questions(report: Any, problems: list[Problem]) -> list[str]:
    q = [_impact_question(report)]
    q += [_question(p) for p in problems]
    q += _outcome_questions(report)
    if report.people_time > max(report.machine_time, 60.0):
        q.append(f"People were waited on for {format_duration(report.people_time)} (machines took "
                 f"{format_duration(report.machine_time)}): were the right people reachable, was the runbook clear?")
    if report.slowest:
        top = report.slowest[0]
        q.append(f"{top.step} was the slowest step ({format_duration(top.duration)}): can it be made faster or "
                 "run earlier?")
    q.append("Which follow-up actions (with an owner and a date) come out of this review?")
    return list(dict.fromkeys(x for x in q if x))  # in order, once each


def _impact_question(report: Any) -> str:
    lead = _alert_lead(report)
    if lead is not None and lead >= 0:
        return (f"The alert fired {format_duration(lead)} before the run started: did the impact begin "
                "then or earlier, and what took the time before the response?")
    return ("When did the impact begin, and how was it noticed? The journal starts with the run at "
            f"{report.started_at or 'an unknown time'}.")


def _question(p: Problem) -> str:
    return {
        "failed": f"Why did {p.step} fail, and was the runbook's response the right one? ({p.text})",
        "retried": f"{p.step} needed retries: what made the first attempt fail, and should the runbook "
                   "wait for that instead?",
        "refused": f"Why was {p.step} refused, and what was done instead?",
        "undelivered": f"A message was not delivered ({p.text}): who was not told, and when did they find out?",
        "escalated": f"The run escalated ({p.text}): did the escalation reach someone in time?",
        "rollback": f"Did the {p.text} put things back as they were, and did anyone check?",
        "stopped": "The run stopped without finishing: what happened after that, and was the rest done by hand?",
        "resumed": f"The run was {p.text}: what was done by hand between the attempts, and should the runbook "
                   "do it next time?",
    }.get(p.kind, "")


def _outcome_questions(report: Any) -> list[str]:
    outcome = report.outcome if report.complete else None
    if outcome == "not_confirmed":
        return ["Detection did not confirm the alert: was it a false positive, or does the check miss this failure?"]
    if outcome in ("failed", "refused", "aborted", "escalated"):
        return [f"The run ended {outcome}: what finally resolved the incident, and what should the runbook do "
                "next time?"]
    if outcome == "resolved":
        return ["What would have prevented this incident, or caught it earlier?"]
    return []


def review(report: Any, records: Sequence[Mapping[str, Any]]) -> Review:
    """The review draft of a live (or dry) run report."""
    problems = _problems(report, records)
    return Review(_summary(report), _impact(report), _actions(report, records), problems,
                  _questions(report, problems))
