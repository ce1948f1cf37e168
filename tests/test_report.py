"""`runbook report`: the report model built from journals of real runs (live, drills,
a killed run, fan-out), its Markdown and JSON forms, and the command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reportkit import HOSTILE
from support import ROOT

from engine.reporting.markdown import render_markdown, text_bar
from engine.reporting.report import build_report, render_json
from engine.reporting.timeline import Bar, Segment, build_timeline
from engine.run.journal import read_journal
from engine.run.metrics import timings


def runbook(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or ROOT, timeout=120)


# -- the timeline ---------------------------------------------------------------------------------


def test_drill_timeline_splits_a_step_into_people_retry_and_machine_time(drills: dict[str, Path]) -> None:
    """compress_logs in the log-storm drill: 30 s waiting for approval, one failed attempt,
    a 10 s retry delay, then the rest on the (simulated) machine."""
    report = build_report(drills["disk-full-log-storm"])
    bar = report.timeline.bar("compress_logs")
    assert bar is not None and bar.status == "ok" and bar.attempts == 2
    people = [s for s in bar.segments if s.kind == "people"]
    retry = [s for s in bar.segments if s.kind == "retry"]
    assert [(s.start, s.end) for s in people] == [(130.0, 160.0)]
    assert len(retry) == 1 and retry[0].end - retry[0].start == pytest.approx(10.0)
    assert bar.machine == pytest.approx(bar.duration - 30.0 - 10.0)
    assert [r["attempt"] for r in bar.retries] == [1]


def test_key_times_are_the_metrics_of_the_journal(drills: dict[str, Path]) -> None:
    for run_dir in drills.values():
        report = build_report(run_dir)
        t = timings(read_journal(run_dir).records)
        assert [k.at for k in report.key_times] == [t.acknowledged, t.triaged, t.mitigated, t.recovered]


def test_people_and_machine_time_add_up_to_the_steps(drills: dict[str, Path]) -> None:
    report = build_report(drills["disk-full-log-storm"])
    total = sum(b.duration for b in report.steps)
    assert report.people_time + report.machine_time + report.delay_time == pytest.approx(total)
    assert report.people_time == pytest.approx(report.timings.human_time)


def test_injected_events_and_notifications_are_markers(drills: dict[str, Path]) -> None:
    report = build_report(drills["disk-full-log-storm"])
    kinds = [m.kind for m in report.timeline.markers]
    assert kinds.count("inject") == 2
    assert "update" in kinds and "notify" in kinds and "priority" in kinds
    page = next(m for m in report.timeline.markers if m.kind == "inject")
    assert page.at == 60.0 and "DiskUsageCritical" in page.detail


def test_slowest_steps_are_sorted_and_skip_skipped_steps(drills: dict[str, Path]) -> None:
    slowest = build_report(drills["disk-full-log-storm"]).slowest
    assert [b.step for b in slowest[:2]] == ["compress_logs", "assess"]
    assert all(b.status != "skipped" for b in slowest)
    durations = [b.duration for b in slowest]
    assert durations == sorted(durations, reverse=True)


def test_for_each_items_and_included_steps(live: dict[str, Path]) -> None:
    tl = build_report(live["ok"]).timeline
    clean = tl.bar("clean")
    assert clean is not None and [i.name for i in clean.items] == ["a", "b", "c"]
    assert all(i.status == "ok" for i in clean.items)
    assert [b.depth for b in tl.bars if b.step.startswith("sub/")] == [1, 1]
    assert [p.depth for p in tl.phases if p.phase == "detection"] == [0, 1]


def test_included_runbook_phases_do_not_end_the_parents_phases(live: dict[str, Path]) -> None:
    """The child's recovery phase finishes inside remediation: it must not count as recovery."""
    report = build_report(live["ok"])
    recovery = next(p for p in report.timeline.phases if p.phase == "recovery" and p.depth == 0)
    assert report.timings.recovered == recovery.end
    assert report.timings.mitigated is not None and report.timings.mitigated < recovery.end


def test_text_bar_marks_people_delays_and_machine() -> None:
    bar = Bar("s", "triage", "run", 0.0, 40.0, "ok",
              segments=[Segment("people", 0.0, 10.0), Segment("retry", 20.0, 30.0)])
    assert text_bar(bar, 40.0, width=8) == "░░██╌╌██"


# -- incomplete journals ---------------------------------------------------------------------------


def test_killed_run_report_says_where_it_stopped(crashed: dict[str, Path]) -> None:
    report = build_report(crashed["killed"])
    stop = report.timeline.stop
    assert stop is not None and not report.complete and report.status_text == "incomplete"
    # the last record is the group of the step's command, written as it started
    assert stop.steps == ["slow"] and stop.phase == "remediation" and stop.last_event == "step.process"
    assert "during step slow" in stop.describe() and "did not finish" in stop.describe()
    slow = report.timeline.bar("slow")
    assert slow is not None and slow.end is None and slow.status == "running"
    markdown = render_markdown(report)
    assert "**Incomplete run.**" in markdown and "during step slow" in markdown


def test_torn_last_line_is_reported_not_fatal(crashed: dict[str, Path]) -> None:
    report = build_report(crashed["torn"])
    assert report.torn and report.timeline.stop is not None and report.timeline.stop.torn
    assert "cut short" in report.timeline.stop.describe()
    assert json.loads(render_json(report))["stop"]["torn"] is True


def test_review_of_a_killed_run_asks_what_happened_after(crashed: dict[str, Path]) -> None:
    review = build_report(crashed["killed"]).review
    assert any(p.kind == "stopped" for p in review.problems)
    assert any("stopped without finishing" in q for q in review.questions)


def test_resumed_run_shows_the_cut_off_step_as_interrupted(crashed: dict[str, Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(crashed["killed"], run)
    done = runbook("resume", run, "--skip-interrupted", "--stop-running", "--non-interactive", "--yes", "-q",
                   "--runs-dir", tmp_path / "runs")
    assert done.returncode == 0, done.stderr
    report = build_report(run)
    assert report.complete and report.outcome == "resolved" and report.timeline.stop is None
    # One bar for the step, one span for its phase: the resume says how the cut-off step ended.
    [slow] = [b for b in report.timeline.bars if b.step == "slow"]
    assert slow.status == "skipped" and "interrupted" in (slow.reason or "")
    assert [p.status for p in report.timeline.phases if p.phase == "remediation"] == ["ok"]
    assert [m.kind for m in report.timeline.markers] == ["resume"]
    assert any(p.kind == "skipped" and p.step == "slow" for p in report.review.problems)  # type: ignore[union-attr]


def _attempts(*, second_finishes: bool) -> list[dict[str, object]]:
    """A run that failed at `fix`, then was resumed (and, or not, resolved)."""
    def rec(seq: int, at: float, event: str, **fields: object) -> dict[str, object]:
        return {"seq": seq, "t": f"2026-03-01T10:{int(at) // 60:02d}:{int(at) % 60:02d}.000Z", "elapsed": at,
                "event": event, **fields}

    start = {"run_id": "r-1", "runbook": "b", "title": "B", "file": "/b.yaml", "mode": "live", "inputs": {},
             "participants": [], "scenario": None, "incident": {}}
    first = [rec(1, 0.0, "run.started", resumed_from=None, **start), rec(2, 0.0, "phase.started", phase="remediation"),
             rec(3, 0.0, "step.started", step="fix", phase="remediation", kind="run"),
             rec(4, 5.0, "step.finished", step="fix", phase="remediation", kind="run", status="failed",
                 error="exit code 1"),
             rec(5, 5.0, "phase.finished", phase="remediation", status="failed", duration=5.0),
             rec(6, 5.0, "run.finished", outcome="failed", duration=5.0, reason="exit code 1", failed_step="fix")]
    second = [rec(7, 65.0, "run.started", resumed_from="r-1", **start),
              rec(8, 65.0, "run.resumed", by="alice", reason="disk swapped", previous="failed", stop_step="fix",
                  rerun=["fix"], skip=[], from_step=None, undone=[], downtime=60.0),
              rec(9, 65.0, "phase.started", phase="remediation"),
              rec(10, 65.0, "step.started", step="fix", phase="remediation", kind="run")]
    if second_finishes:
        second += [rec(11, 70.0, "step.finished", step="fix", phase="remediation", kind="run", status="ok"),
                   rec(12, 70.0, "phase.finished", phase="remediation", status="ok", duration=70.0),
                   rec(13, 70.0, "run.finished", outcome="resolved", duration=70.0, reason="", failed_step=None)]
    return first + second


def _journal(tmp_path: Path, records: list[dict[str, object]]) -> Path:
    (tmp_path / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return tmp_path


def test_a_run_resumed_after_it_failed_is_reported_by_its_last_attempt(tmp_path: Path) -> None:
    report = build_report(_journal(tmp_path, _attempts(second_finishes=True)))
    assert (report.complete, report.outcome, report.duration) == (True, "resolved", 70.0)
    assert report.timings.mitigated == 70.0  # the remediation that ended well, on the run's clock
    [marker] = [m for m in report.timeline.markers if m.kind == "resume"]
    assert marker.detail == "by alice: disk swapped (the earlier attempt failed at step fix, 1m before); " \
                            "run again: fix"
    assert any(p.kind == "resumed" for p in report.review.problems)  # type: ignore[union-attr]


def test_a_resumed_attempt_that_stopped_is_unfinished_not_the_earlier_failure(tmp_path: Path) -> None:
    """The earlier attempt's run.finished ends that attempt, not the run."""
    run = _journal(tmp_path, _attempts(second_finishes=False))
    report = build_report(run)
    assert not report.complete and report.timeline.stop is not None
    assert report.status_text == "incomplete"
    assert read_journal(run).finished is None
    assert timings(read_journal(run).records).complete is False
    from engine.reporting.stats import read_point

    assert read_point(run / "journal.jsonl").outcome == "unfinished"  # type: ignore[union-attr]


def _two_attempts(previous: str, between: list[dict[str, object]]) -> list[dict[str, object]]:
    """`first` done, `slow` cut off at 1.0 s by the end of the first attempt, run again by
    the second from 8.0 s (with `between` after its step.started), ending at 9.0 s."""
    def rec(seq: int, at: float, event: str, **fields: object) -> dict[str, object]:
        return {"seq": seq, "elapsed": at, "event": event, **fields}

    step = {"step": "slow", "phase": "remediation", "kind": "run"}
    return [rec(1, 0.0, "run.started", run_id="r", resumed_from=None),
            rec(2, 0.0, "phase.started", phase="remediation"),
            rec(3, 0.0, "step.started", step="first", phase="remediation", kind="run"),
            rec(4, 0.5, "step.finished", step="first", phase="remediation", kind="run", status="ok", attempts=1),
            rec(5, 0.5, "step.started", **step), rec(6, 1.0, "step.process", step="slow", pgid=7),
            rec(7, 8.0, "run.started", run_id="r", resumed_from="r"),
            rec(8, 8.0, "run.resumed", by="worker-b", previous=previous, rerun=["slow"], downtime=7.0),
            rec(9, 8.0, "phase.started", phase="remediation"), rec(10, 8.1, "step.started", **step),
            *between, rec(20, 9.0, "step.finished", **step, status="ok", attempts=1),
            rec(21, 9.0, "phase.finished", phase="remediation", status="ok", duration=9.0),
            rec(22, 9.0, "run.finished", outcome="resolved", duration=9.0)]


def test_a_run_taken_over_counts_its_interrupted_step_once(tmp_path: Path) -> None:
    """A worker died during `slow`; another took the run over and ran it again: one step,
    one bar from its first start to its end, the dead time apart from the machine's."""
    report = build_report(_journal(tmp_path, _two_attempts("interrupted", [])))
    assert [(b.step, b.status) for b in report.timeline.bars] == [("first", "ok"), ("slow", "ok")]
    assert [(p.phase, p.start, p.end, p.status) for p in report.timeline.phases] == [("remediation", 0.0, 9.0, "ok")]
    slow = report.timeline.bar("slow")
    assert slow is not None and (slow.start, slow.end) == (0.5, 9.0)
    assert [(s.kind, s.start, s.end) for s in slow.segments] == [("stopped", 1.0, 8.1)]
    assert slow.people == 0.0 and slow.machine == pytest.approx(1.4)
    assert report.machine_time == pytest.approx(1.9) and report.people_time == 0.0
    assert "2 step(s) ran" in render_markdown(report)


def test_a_run_parked_for_a_person_counts_the_asking_step_once(tmp_path: Path) -> None:
    """A service run parked at `slow`'s approval; answered 7 s later, the next worker ran
    it: one bar, the wait is the person's (not also a stop, not a second step)."""
    approval = {"seq": 11, "elapsed": 8.2, "event": "approval", "step": "slow", "approved": True, "by": "alice",
                "role": "dba", "required_role": "dba", "waited": 7.1, "message": "Go?"}
    report = build_report(_journal(tmp_path, _two_attempts("stopped to wait for a person", [approval])))
    assert [(b.step, b.status) for b in report.timeline.bars] == [("first", "ok"), ("slow", "ok")]
    slow = report.timeline.bar("slow")
    assert slow is not None and [(s.kind, round(s.start, 3), s.end) for s in slow.segments] == [("people", 1.1, 8.2)]
    assert slow.people == pytest.approx(7.1) and slow.machine == pytest.approx(1.4)
    assert report.people_time == pytest.approx(7.1) and report.machine_time == pytest.approx(1.9)
    markdown = render_markdown(report)
    assert "2 step(s) ran" in markdown and markdown.count("| remediation | slow |") == 1


def test_markers_are_numbered_in_time_order_whatever_the_journal_order() -> None:
    """A record may carry an earlier time than the one before it (a resumed run's clock):
    markers are still numbered by time, the same in the chart, the tables and Markdown."""
    recs = [{"seq": 1, "elapsed": 0.0, "event": "run.started", "run_id": "r"},
            {"seq": 2, "elapsed": 9.0, "event": "hint.shown", "step": "late", "hint": "h"},
            {"seq": 3, "elapsed": 4.0, "event": "inject.fired", "kind": "info", "message": "early"},
            {"seq": 4, "elapsed": 9.0, "event": "escalation.fired", "channel": "ops", "reason": "r"},
            {"seq": 5, "elapsed": 6.0, "event": "notify.sent", "channel": "ops", "message": "m"}]
    tl = build_timeline(recs)
    assert [(m.at, m.kind) for m in tl.markers] == [(4.0, "inject"), (6.0, "notify"), (9.0, "hint"),
                                                    (9.0, "escalation")]


def test_implausible_times_are_damage_and_every_format_still_renders(tmp_path: Path) -> None:
    """An elapsed time of 1e300 s (or NaN, or text) is dropped as damage: the report renders
    in every format, its chart with a handful of ticks (1e300 s once asked for 1e295)."""
    from engine.reporting.html import render_html

    recs = [{"seq": 1, "elapsed": 0.0, "event": "run.started", "run_id": "odd", "title": "Odd"},
            {"seq": 2, "elapsed": 1e300, "event": "step.started", "step": "s", "phase": "detection", "kind": "run"},
            {"seq": 3, "elapsed": "soon", "event": "step.finished", "step": "s", "phase": "detection", "status": "ok"},
            {"seq": 4, "elapsed": 7.0, "event": "hint.shown", "step": "s", "hint": "h", "duration": 1e299},
            {"seq": 5, "elapsed": 8.0, "event": "run.finished", "outcome": "resolved"}]
    (tmp_path / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    report = build_report(tmp_path)
    assert report.timeline.end == 8.0
    assert "<svg" in render_html(report) and render_markdown(report) and json.loads(render_json(report))


def test_text_that_cannot_be_encoded_is_written_escaped(tmp_path: Path) -> None:
    """Lone surrogates (`\\udc00` in a journal line) reach stdout and `-o` files escaped, exit 0."""
    (tmp_path / "journal.jsonl").write_text('{"seq": 1, "elapsed": 0, "event": "run.started", '
                                            '"title": "odd \\udc00 title"}\n')
    for fmt in ("md", "json", "html"):
        shown = runbook("report", tmp_path, "-f", fmt)
        assert shown.returncode == 0 and "dc00" in shown.stdout, shown.stderr  # \\udc00, or \\xdc00 in Markdown
        done = runbook("report", tmp_path, "-f", fmt, "-o", tmp_path / f"out.{fmt}")
        assert done.returncode == 0 and "dc00" in (tmp_path / f"out.{fmt}").read_text(), done.stderr


def test_many_unreadable_lines_are_counted_not_all_listed(tmp_path: Path) -> None:
    """A journal with 5,000 garbage lines says which the first are and how many more."""
    (tmp_path / "journal.jsonl").write_text('{"seq": 1, "elapsed": 0, "event": "run.started"}\n' + "junk\n" * 5000)
    report = build_report(tmp_path)
    text = render_markdown(report)
    assert "Unreadable journal lines: 2, 3, 4," in text and "21 and 4980 more." in text and "5001" not in text
    from engine.reporting.html import render_html

    assert "21 and 4980 more." in render_html(report)


def test_an_empty_journal_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "journal.jsonl").write_text("")
    done = runbook("report", tmp_path)
    assert done.returncode == 3 and "holds no journal records" in done.stderr


# -- fan-out ---------------------------------------------------------------------------------------


def test_hosts_come_from_host_finished_events(fanout: dict[str, Path]) -> None:
    bar = build_report(fanout["with-host-events"]).timeline.bar("restart")
    assert bar is not None
    hosts = {h.name: h for h in bar.hosts}
    assert set(hosts) == {"web-1", "web-2", "web-3"}
    assert not any(h.estimated for h in hosts.values())
    assert (hosts["web-2"].start, hosts["web-2"].end) == (0.5, 4.5)
    assert hosts["web-3"].status == "failed" and hosts["web-3"].error == "exit code 1"


def test_without_host_events_hosts_are_estimated_from_step_finished(fanout: dict[str, Path]) -> None:
    bar = build_report(fanout["without-host-events"]).timeline.bar("restart")
    assert bar is not None and len(bar.hosts) == 3 and all(h.estimated for h in bar.hosts)
    assert all(h.end <= 4.5 and h.start >= 0.0 for h in bar.hosts)
    assert {h.name: round(h.end - h.start, 3) for h in bar.hosts} == {"web-1": 2.0, "web-2": 4.0, "web-3": 1.5}


def test_host_retried_keeps_its_last_attempt() -> None:
    recs = [{"seq": 1, "elapsed": 0.0, "event": "step.started", "step": "s", "phase": "remediation", "kind": "run"},
            {"seq": 2, "elapsed": 1.0, "event": "host.finished", "step": "s", "host": "h", "status": "failed",
             "duration": 1.0},
            {"seq": 3, "elapsed": 5.0, "event": "host.finished", "step": "s", "host": "h", "status": "ok",
             "duration": 2.0},
            {"seq": 4, "elapsed": 5.0, "event": "step.finished", "step": "s", "phase": "remediation", "kind": "run",
             "status": "ok", "attempts": 2}]
    [bar] = build_timeline(recs).bars
    assert [(h.status, h.start, h.end) for h in bar.hosts] == [("ok", 3.0, 5.0)]


def test_fanout_markdown_lists_each_host(fanout: dict[str, Path]) -> None:
    text = render_markdown(build_report(fanout["without-host-events"]))
    assert "**Hosts of restart** (times estimated" in text
    assert "| web-3 | failed |" in text
    assert "3 host(s), 1 failed" in text


# -- the post-incident review of a live run --------------------------------------------------------


def test_review_records_commands_answers_and_approvals(live: dict[str, Path]) -> None:
    review = build_report(live["ok"]).review
    whats = [(a.what, a.step) for a in review.actions]
    assert ("command", "probe") in whats and ("include", "sub") in whats and ("command", "sub/c2") in whats
    answer = next(a for a in review.actions if a.what == "answer")
    assert (answer.step, answer.detail, answer.who) == ("assess", "cause=logs", "alice (incident_commander)")
    approvals = [a for a in review.actions if a.what == "approval"]
    assert len(approvals) == 3 and {a.status for a in approvals} == {"approved"}
    assert approvals[0].where == "requires incident_commander"


def test_a_manual_steps_instructions_are_in_the_review_the_debrief_and_the_html(
        live: dict[str, Path], drills: dict[str, Path]) -> None:
    """What a person was asked to do, as they read it (templates rendered), in every report."""
    from engine.reporting.html import render_html

    report = build_report(live["ok"])
    [manual] = [a for a in report.review.actions if a.step == "assess" and a.what == "manual"]
    assert manual.detail == "What is filling the disk?"
    review = render_markdown(report)
    assert "**Instructions of assess**\n\n> What is filling the disk?" in review
    assert "| assess | manual |   | What is filling the disk? |" in review  # prose, not code, in "What was done"
    drill = build_report(drills["disk-full-log-storm"])
    text = "/var on db-1 is at 96% (inodes"
    assert text in (drill.timeline.bar("assess") or Bar("", "", "", 0.0)).instructions
    assert f"> {text}" in render_markdown(drill).replace("\\", "")
    html = render_html(drill)
    assert '<pre aria-label="instructions of assess">' + text in html


def test_indented_lines_of_instructions_keep_their_indentation_in_markdown() -> None:
    from engine.reporting.markdown import _instructions

    bar = Bar("check", "triage", "manual", 0.0, instructions="Run this:\n  journalctl -u app\n\nThen <b>look</b>.")
    assert _instructions(bar) == ["**Instructions of check**", "", "> Run this:", "> &nbsp;&nbsp;journalctl -u app",
                                  ">", "> Then &lt;b&gt;look&lt;/b&gt;.", ""]


def test_review_lists_retries_failures_rollbacks_and_undelivered_messages(live: dict[str, Path]) -> None:
    review = build_report(live["fail"]).review
    kinds = [p.kind for p in review.problems]
    assert kinds.count("retried") == 1
    assert {p.step for p in review.problems if p.kind == "failed"} == {"tell_ops", "broken"}  # the message failed
    assert "rollback" in kinds and "rolled back" in kinds and "undelivered" in kinds
    failed = next(p for p in review.problems if p.kind == "failed" and p.step == "broken")
    assert "disk quota exceeded" in failed.output
    assert any("Why did broken fail" in q for q in review.questions)
    assert any("rollback of change" in q for q in review.questions)
    assert any("not delivered" in q for q in review.questions)
    [message] = [a for a in review.actions if a.what == "notify"]
    assert message.status == "not delivered: channel 'ops' (http://127.0.0.1:9/...): Connection refused"
    assert review.questions[-1].startswith("Which follow-up actions")


def test_review_markdown_is_a_complete_draft(live: dict[str, Path]) -> None:
    text = render_markdown(build_report(live["fail"]))
    for heading in ("# Post-incident review (draft): Failing remediation with rollback", "## Summary",
                    "## Impact window", "## Timeline", "## What was done", "## What failed, was retried or rolled back",
                    "## Where the time went", "## Open questions for the review"):
        assert heading in text
    assert "It ended failed after" in text
    assert "↺ rollback started" in text
    assert "| 00:00.0 | undo\\_change |" in text or "undo\\_change" in text


def test_markdown_escapes_hostile_values(live: dict[str, Path]) -> None:
    text = render_markdown(build_report(live["hostile"]))
    outside_code = "".join(part for i, part in enumerate(text.split("`")) if i % 2 == 0)
    assert "<script" not in outside_code and "<img" not in outside_code
    assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in text


def test_markdown_table_rows_keep_their_column_count(live: dict[str, Path]) -> None:
    """A `|` in a value must not add a column."""
    text = render_markdown(build_report(live["hostile"]))
    tables: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("|"):
            if tables and tables[-1]:
                tables[-1].append(line)
            else:
                tables.append([line])
        elif tables and tables[-1]:
            tables.append([])
    for table in filter(None, tables):
        widths = {len(_cells(row)) for row in table}
        assert len(widths) == 1, table


def _cells(row: str) -> list[str]:
    """GFM splits a row at every `|` not escaped as `\\|`, inside code spans too."""
    out, cell, escaped = [], "", False
    for ch in row.strip().strip("|"):
        if escaped:
            cell, escaped = cell + ch, False
        elif ch == "\\":
            escaped = True
        elif ch == "|":
            out.append(cell)
            cell = ""
        else:
            cell += ch
    return [*out, cell]


# -- drills: the debrief ---------------------------------------------------------------------------


def test_drill_scenario_is_found_by_id_next_to_the_runbook(drills: dict[str, Path]) -> None:
    report = build_report(drills["disk-full-log-storm"])
    debrief = report.drill
    assert debrief.scenario_file == str(ROOT / "scenarios" / "disk-full-log-storm.yaml")
    assert debrief.card is not None and debrief.card.passed and not debrief.note
    assert [k.objective for k in report.key_times] == [180.0, 240.0, 360.0, 480.0]
    assert all(k.met for k in report.key_times)


def test_drill_without_its_scenario_file_shows_timings_and_says_why(drills: dict[str, Path], tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # ./scenarios is searched too
    run = tmp_path / "run"
    shutil.copytree(drills["disk-full-log-storm"], run)
    journal = run / "journal.jsonl"
    lines = journal.read_text().splitlines()
    first = json.loads(lines[0])
    first["file"] = str(tmp_path / "elsewhere" / "disk-full.yaml")
    journal.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    report = build_report(run)
    assert report.drill.card is None and "was not found" in report.drill.note
    assert all(k.objective is None for k in report.key_times) and report.key_times[3].at == 223.0
    text = render_markdown(report)
    assert "was not found" in text and "## Key times" in text and "## Timeline" in text


def test_scenario_option_overrides_the_search(drills: dict[str, Path], tmp_path: Path) -> None:
    scenario = tmp_path / "mine.yaml"
    text = (ROOT / "scenarios" / "disk-full-log-storm.yaml").read_text()
    scenario.write_text(text.replace("runbook: ../runbooks/", f"runbook: {ROOT}/runbooks/")
                        .replace("time_to_recover: 8m", "time_to_recover: 1m"))
    report = build_report(drills["disk-full-log-storm"], scenario_file=str(scenario))
    assert report.drill.scenario_file == str(scenario)
    assert not report.drill.card.passed
    assert [c.objective for c in report.drill.card.missed] == ["time_to_recover"]
    assert report.key_times[3].met is False


def test_history_puts_earlier_runs_side_by_side(drills: dict[str, Path], tmp_path: Path) -> None:
    history = tmp_path / "history"
    for n, minute in ((1, "01"), (2, "02")):
        run = history / f"older-{n}"
        shutil.copytree(drills["disk-full-log-storm"], run)
        lines = (run / "journal.jsonl").read_text().splitlines()
        first = json.loads(lines[0])
        first["run_id"], first["t"] = f"older-{n}", f"2025-12-01T00:{minute}:00.000Z"
        (run / "journal.jsonl").write_text("\n".join([json.dumps(first), *lines[1:-1]]) + "\n")  # no run.finished
    shutil.copytree(drills["service-down-oom-start-limit"], history / "other-scenario")
    report = build_report(drills["disk-full-log-storm"], history_dir=str(history))
    rows = report.drill.history
    assert [r.run_id for r in rows] == ["older-1", "older-2", "disk-full-log-storm-seed1312"]
    assert [r.current for r in rows] == [False, False, True]
    assert [r.outcome for r in rows] == ["unfinished", "unfinished", "resolved"]
    assert rows[-1].met == rows[-1].checks
    text = render_markdown(report)
    assert "## Earlier runs of this scenario" in text and "**this run**" in text


def test_drill_markdown_has_scorecard_hints_turns_and_people(drills: dict[str, Path]) -> None:
    text = render_markdown(build_report(drills["deploy-error-spike-ic-unreachable"]))
    for heading in ("# Drill debrief:", "## Scorecard: deploy-error-spike-ic-unreachable", "**PASSED**",
                    "## Key times", "## Timeline", "## Hints used", "## Wrong turns", "## Per participant",
                    "## Per role"):
        assert heading in text


# -- JSON and the command --------------------------------------------------------------------------


def test_json_report_has_the_facts_and_the_derived_values(drills: dict[str, Path]) -> None:
    data = json.loads(render_json(build_report(drills["disk-full-log-storm"])))
    assert data["format"] == "runbook-report/1" and data["status"] == "resolved"
    assert [k["name"] for k in data["key_times"]] == ["acknowledged", "triaged", "mitigated", "recovered"]
    assert data["key_times"][3] | {"wall": None} == {"name": "recovered", "label": "Recovered", "at": 223.0,
                                                      "objective": 480.0, "wall": None, "met": True}
    assert data["drill"]["passed"] is True and len(data["drill"]["checks"]) == 17
    assert data["time"]["people"] == pytest.approx(120.0)
    assert {b["step"] for b in data["timeline"]["bars"]} >= {"usage", "compress_logs"}


@pytest.mark.parametrize("fmt", ["md", "html", "json"])
def test_report_command_writes_each_format(live: dict[str, Path], tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"report.{fmt}"
    done = runbook("report", live["ok"], "--format", fmt, "-o", out)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and f"wrote {out}" in done.stderr
    text = out.read_text()
    assert "Local service check" in text
    if fmt == "json":
        assert json.loads(text)["outcome"] == "resolved"


def test_report_command_takes_the_journal_file_too(live: dict[str, Path]) -> None:
    done = runbook("report", live["fail"] / "journal.jsonl")
    assert done.returncode == 0 and done.stdout.startswith("# Post-incident review (draft)")


def test_report_command_rejects_a_missing_path(tmp_path: Path) -> None:
    done = runbook("report", tmp_path / "nope")
    assert done.returncode == 2 and "does not exist" in done.stderr


def test_report_command_with_scenario_and_history(drills: dict[str, Path]) -> None:
    scenario = ROOT / "scenarios" / "disk-full-log-storm.yaml"
    done = runbook("report", drills["disk-full-log-storm"], "--scenario", scenario,
                   "--history", drills["disk-full-log-storm"].parent, "-f", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["drill"]["passed"] is True and len(data["drill"]["history"]) == 1


def test_hostile_value_in_json_stays_data(live: dict[str, Path]) -> None:
    data = json.loads(render_json(build_report(live["hostile"])))
    assert HOSTILE in data["title"]


# -- any journal, however odd, gives a report --------------------------------------------------------

EVENTS = ["run.started", "run.finished", "phase.started", "phase.finished", "step.started", "step.finished",
          "step.attempt", "host.finished", "prompt.answered", "approval", "hint.shown", "inject.fired",
          "notify.sent", "escalation.fired", "priority.changed", "rollback.started", "rollback.finished",
          "incident.acknowledged", "clock.control", "something.new"]
FIELDS = ["step", "phase", "kind", "status", "duration", "attempts", "waited", "hosts", "items", "answers",
          "approved", "by", "role", "next_in", "polling", "error", "stderr", "message", "channel", "ok", "purpose",
          "outcome", "reason", "scenario", "file", "t", "item", "rollback_of", "host", "resumed_from", "steps"]


def _records() -> st.SearchStrategy[list[dict[str, object]]]:
    scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 500), st.floats(0, 1e4), st.text(max_size=12),
                       st.sampled_from(["ok", "failed", "skipped", "triage", "remediation", "s1", "<b>x</b>"]))
    value = st.recursive(scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(max_size=5), inner, max_size=3), max_leaves=6)
    record = st.fixed_dictionaries({"event": st.sampled_from(EVENTS), "elapsed": st.floats(0, 1e4)},
                                   optional={f: value for f in FIELDS})
    return st.lists(record, max_size=25).map(
        lambda recs: [{"seq": i + 1, **r} for i, r in enumerate(recs)])


def test_engine_journals_pass_the_record_cleaning_unchanged(drills: dict[str, Path], live: dict[str, Path],
                                                           fanout: dict[str, Path]) -> None:
    from engine.run.records import clean

    for run_dir in [*drills.values(), *live.values(), *fanout.values()]:
        for record in read_journal(run_dir).records:
            assert clean(record) == record, record


def test_odd_values_are_dropped_or_shown_as_text() -> None:
    from engine.run.records import clean

    odd = {"event": "step.finished", "step": 7, "duration": "", "attempts": "2", "ok": "yes", "answers": [],
           "hosts": {"h": "x", 1: {"duration": "1.5"}}, "items": ["a", {"index": "0"}], "elapsed": float("nan"),
           "pid": "kept"}
    assert clean(odd) == {"event": "step.finished", "step": "7", "attempts": 2, "pid": "kept",
                          "hosts": {"h": {}, "1": {"duration": 1.5}}, "items": [{"index": 0}]}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], report_multiple_bugs=False)
@given(_records())
def test_any_records_give_a_report_in_every_format(records: list[dict[str, object]]) -> None:
    """A hand-edited or foreign journal never crashes the report: odd values are shown as text."""
    import tempfile

    from engine.reporting.html import render_html

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "journal.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in [{"seq": 0, "event": "run.started"}, *records]))
        report = build_report(path)
        assert render_markdown(report).startswith("# ")
        assert json.loads(render_json(report))["format"] == "runbook-report/1"
        assert "<script>" not in render_html(report).split("<script>", 1)[0]


# -- a drill's debrief: the trainees' and the trainer's --------------------------------------------

TRAINER_NOTES = ("red_herring", "A debug log level left on", "gzip needs room for its output", "Trainer notes")


def _all_formats(report: object) -> str:
    from engine.reporting.html import render_html

    return render_markdown(report) + render_html(report) + render_json(report)  # type: ignore[arg-type]


def test_the_trainees_debrief_holds_no_trainer_notes(drills: dict[str, Path]) -> None:
    """No scenario description, no event kind (the red herring stays unnamed), no fault notes,
    in any format; injected events keep their message."""
    report = build_report(drills["disk-full-log-storm"])
    text = _all_formats(report)
    for secret in TRAINER_NOTES:
        assert secret not in text, secret
    injected = [m for m in report.timeline.markers if m.kind == "inject"]
    assert [m.label for m in injected] == ["injected", "injected"]
    assert "#db-team: 'pg replica on db-1 is fine" in injected[1].detail


def test_the_trainers_debrief_adds_the_notes(drills: dict[str, Path]) -> None:
    report = build_report(drills["disk-full-log-storm"], trainer=True)
    text = render_markdown(report)
    assert "## Trainer notes" in text and "A debug log level left on" in text
    assert "| 01:30.0 | red\\_herring | \\#db-team:" in text
    assert "- step compress\\_logs: gzip needs room for its output; the first pass dies half way." in text
    labels = [m.label for m in report.timeline.markers if m.kind == "inject"]
    assert labels == ["injected (page)", "injected (red_herring)"]
    data = json.loads(render_json(report))["drill"]["trainer_notes"]
    assert [e["kind"] for e in data["events"]] == ["page", "red_herring"]
    from engine.reporting.html import render_html

    assert 'id="trainer-notes"' in render_html(report)


def test_a_silent_world_change_is_left_out_of_the_trainees_debrief(tmp_path: Path) -> None:
    from reportkit import _rec

    records = [_rec(1, 0, "run.started", run_id="r", runbook="rb", scenario="sc", mode="test", file=""),
               _rec(2, 5, "inject.fired", index=0, at=5, message=None, kind="info", set={"pct": 99}),
               _rec(3, 6, "inject.fired", index=1, at=6, message="Second page", kind="page", set={}),
               _rec(4, 9, "run.finished", outcome="resolved", duration=9)]
    (tmp_path / "journal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    trainee = build_report(tmp_path)
    assert [(m.label, m.detail) for m in trainee.timeline.markers] == [("injected", "Second page")]
    trainer = build_report(tmp_path, trainer=True)
    assert [m.label for m in trainer.timeline.markers] == ["injected (info)", "injected (page)"]


def test_the_debrief_shows_answers_and_approvals_and_every_role_that_acted(drills: dict[str, Path]) -> None:
    """As the live review does: who answered what, who approved in which role; the incident
    commander, who only approved, is in the per-role table."""
    report = build_report(drills["deploy-error-spike-ic-unreachable"])
    text = render_markdown(report)
    assert "## Answers and approvals" in text
    assert "| sam (responder) | cause=new\\_release, impact=medium, urgency=high | answered |" in text
    assert "| dana (incident\\_commander) | Roll back search-api" in text and "| approved | requires" in text
    assert "| incident\\_commander | 0 | 0ms | 1 | 12m |" in text
    data = json.loads(render_json(report))["drill"]["decisions"]
    assert [(d["what"], d["who"], d["status"]) for d in data] == [
        ("answer", "sam (responder)", "answered"), ("approval", "dana (incident_commander)", "approved")]


def test_runbook_report_trainer_flag(drills: dict[str, Path]) -> None:
    from click.testing import CliRunner

    from engine.cli.commands import cli

    run = str(drills["disk-full-log-storm"])
    trainee = CliRunner().invoke(cli, ["report", run])
    trainer = CliRunner().invoke(cli, ["report", run, "--trainer"])
    assert trainee.exit_code == trainer.exit_code == 0
    assert "Trainer notes" not in trainee.output and "## Trainer notes" in trainer.output


def test_a_priority_change_reads_as_text_in_markdown_not_as_an_escaped_arrow(drills: dict[str, Path]) -> None:
    """`->` went into Markdown as `-&gt;`: the marker uses an arrow that needs no escaping."""
    text = "\n".join(render_markdown(build_report(run)) for run in drills.values())
    assert "-&gt;" not in text and "priority unset → P" in text


def test_a_wait_for_the_gate_between_phases_is_people_time(tmp_path: Path) -> None:
    """A service route's gate (gate:remediation) is approved between phases, outside every
    step: its wait still counts as waiting on people, and no step is made of it."""
    records = [{"seq": 1, "elapsed": 0.0, "event": "run.started", "run_id": "r"},
               {"seq": 2, "elapsed": 0.0, "event": "phase.started", "phase": "triage"},
               {"seq": 3, "elapsed": 0.0, "event": "step.started", "step": "look", "phase": "triage", "kind": "run"},
               {"seq": 4, "elapsed": 1.0, "event": "step.finished", "step": "look", "phase": "triage", "kind": "run",
                "status": "ok", "attempts": 1},
               {"seq": 5, "elapsed": 1.0, "event": "phase.finished", "phase": "triage", "status": "ok"},
               {"seq": 6, "elapsed": 9.0, "event": "approval", "step": "gate:remediation", "approved": True,
                "by": "bob", "role": "oncall", "required_role": "oncall", "waited": 8.0, "via": "slack",
                "policy": "route disk", "message": "triage ran unattended: go on into remediation?"},
               {"seq": 7, "elapsed": 9.0, "event": "run.finished", "outcome": "resolved", "duration": 9.0}]
    report = build_report(_journal(tmp_path, records))
    assert [b.step for b in report.timeline.bars] == ["look"]
    assert report.people_time == pytest.approx(8.0) and report.machine_time == pytest.approx(1.0)
    markdown = render_markdown(report)
    assert "| gate:remediation | bob (oncall) via slack |" in markdown and "asked by route disk" in markdown
