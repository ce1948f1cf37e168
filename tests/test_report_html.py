"""The HTML report and statistics page: one self-contained, well-formed file with no
network fetches, every journal value escaped, charts described for screen readers and
their data repeated in tables, and print CSS. (tests/integration/test_report_browser.py
renders the same pages in a real browser.)"""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

from reportkit import HOSTILE

from engine.reporting import chart
from engine.reporting.html import PRINT_SCRIPT, render_html, render_stats_html
from engine.reporting.report import build_report
from engine.reporting.stats import collect
from engine.reporting.timeline import Bar, Marker, SubRun, Timeline

VOID = {"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "source", "wbr"}
SVG_VOID = {"rect", "line", "circle"}  # written self-closing


class Page(HTMLParser):
    """Elements, attributes, text and nesting of an HTML page, checked as it is parsed."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self.errors: list[str] = []
        self.feed(text)
        self.close()
        if self.stack:
            self.errors.append(f"unclosed: {self.stack}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "script":
            self.scripts.append(data)
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for t, attrs in self.tags if t == tag]

    @property
    def plain(self) -> str:
        return " ".join(" ".join(self.text).split())


def check_self_contained(html: str) -> Page:
    page = Page(html)
    assert page.errors == []
    assert html.startswith("<!DOCTYPE html>")
    for tag, attrs in page.tags:
        assert tag not in ("link", "img", "iframe", "object", "embed", "base", "form"), tag
        for name in ("src", "href", "action", "srcset"):
            value = attrs.get(name)
            assert value is None or value.startswith("#"), (tag, name, value)  # only links within the page
    assert page.scripts == [PRINT_SCRIPT]
    [csp] = [a for a in page.all("meta") if a.get("http-equiv") == "Content-Security-Policy"]
    digest = base64.b64encode(hashlib.sha256(PRINT_SCRIPT.encode()).digest()).decode()
    assert "default-src 'none'" in str(csp["content"]) and f"'sha256-{digest}'" in str(csp["content"])
    assert "@media print" in html
    assert all(ref.startswith("#") for ref in re.findall(r"url\(([^)]*)\)", html))  # CSS and SVG fills
    return page


def test_drill_report_is_one_self_contained_well_formed_page(drills: dict[str, Path]) -> None:
    html = render_html(build_report(drills["disk-full-log-storm"]))
    page = check_self_contained(html)
    assert page.all("html")[0]["lang"] == "en"
    text = page.plain
    for heading in ("Drill debrief: Log storm fills /var on db-1", "Scorecard: disk-full-log-storm", "Key times",
                    "Where the time went", "Timeline", "Hints used and wrong turns", "Per participant and per role"):
        assert heading in text
    assert "PASSED 17 of 17 objectives met." in text
    assert "Recovered 3m43s objective 8m: met" in text


def test_timeline_svg_is_described_and_its_data_is_in_a_table(drills: dict[str, Path]) -> None:
    report = build_report(drills["disk-full-log-storm"])
    html = render_html(report)
    page = Page(html)
    svg = next(a for a in page.all("svg") if a.get("aria-labelledby") == "timeline-title timeline-desc")
    assert svg["role"] == "img"
    title = re.search(r'<title id="timeline-title">(.*?)</title>', html)
    desc = re.search(r'<desc id="timeline-desc">(.*?)</desc>', html)
    assert title and title.group(1) == f"Timeline of run {report.run_id}"
    # 11 rows: the steps, and the switch (by_cause) that chose compress_logs
    assert desc and "11 step(s) in 4 phase(s) over 3m43s" in desc.group(1) and "Recovered at 3m43s" in desc.group(1)
    steps_table = html.split('<table id="steps">')[1].split("</table>")[0]
    for bar in report.timeline.bars:
        assert f"<code>{bar.step}</code>" in steps_table
    events_table = html.split('<table id="events">')[1].split("</table>")[0]
    assert events_table.count("<tr>") == len(report.timeline.markers) + 1
    assert "Second page: DiskUsageCritical db-1 /var 98%." in events_table


def test_people_waits_and_retries_are_drawn_apart_from_machine_time(drills: dict[str, Path]) -> None:
    html = render_html(build_report(drills["disk-full-log-storm"]))
    assert re.search(r'class="seg seg-people" fill="url\(#timeline-hatch\)"><title>compress_logs: waiting for '
                     r"approval \(tom\) \(30s\)</title>", html)
    assert '<title>compress_logs: retry delay after attempt 1 (10s)</title>' in html
    assert 'class="attempt"><title>compress_logs: attempt 1 failed:' in html


def test_every_journal_value_is_escaped(live: dict[str, Path]) -> None:
    html = render_html(build_report(live["hostile"]))
    check_self_contained(html)
    assert HOSTILE not in html and "<script>document" not in html and "<img" not in html
    escaped = "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
    assert html.count(escaped) >= 5  # title, step title, stdout, stderr, answer
    assert Page(html).plain.count("<script>document.title='pwned'</script>") >= 5  # shown as text


def test_incomplete_run_says_where_it_stopped(crashed: dict[str, Path]) -> None:
    html = render_html(build_report(crashed["torn"]))
    page = check_self_contained(html)
    assert any(a.get("role") == "alert" for a in page.all("div"))
    assert "Incomplete run. The journal stops at" in page.plain and "during step slow" in page.plain
    assert "cut short mid-write" in page.plain
    assert '<text x="' in html and ">journal stops</text>" in html
    assert "incomplete" in page.plain


def test_fanout_hosts_fold_into_details_with_their_own_chart(fanout: dict[str, Path]) -> None:
    html = render_html(build_report(fanout["with-host-events"]))
    page = check_self_contained(html)
    assert "3 host(s), 1 not ok" in page.plain
    assert 'aria-labelledby="hosts-restart-title hosts-restart-desc"' in html
    assert "Hosts of restart <" in html or "Hosts of restart</caption>" in html
    estimated = render_html(build_report(fanout["without-host-events"]))
    assert "times estimated from the step's durations" in estimated
    assert "restart ×3 hosts" in html


def test_live_report_carries_the_review_draft(live: dict[str, Path]) -> None:
    page = check_self_contained(render_html(build_report(live["fail"])))
    text = page.plain
    for heading in ("Post-incident review (draft): Failing remediation with rollback", "Summary", "Impact window",
                    "What was done", "What failed, was retried or rolled back", "Open questions for the review"):
        assert heading in text
    assert "boom: disk quota exceeded" in text and "rollback of change" in text


def test_stats_page_is_self_contained_with_a_chart_per_group(drills: dict[str, Path], live: dict[str, Path]) -> None:
    stats = collect([next(iter(drills.values())).parent, next(iter(live.values())).parent])
    html = render_stats_html(stats)
    page = check_self_contained(html)
    assert "Runbook statistics" in page.plain and "disk-full / disk-full-log-storm" in page.plain
    sparks = [a for a in page.all("svg") if "spark" in str(a.get("class"))]
    assert len(sparks) == len(stats.groups) and all(a["role"] == "img" for a in sparks)


def test_templates_ship_inside_the_package() -> None:
    """The hatch wheel packages the whole engine/ folder, templates included."""
    import tomllib

    root = Path(__file__).resolve().parent.parent
    config = tomllib.loads((root / "pyproject.toml").read_text())
    assert config["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["engine"]
    templates = root / "engine" / "reporting" / "templates"
    assert {p.name for p in templates.iterdir()} >= {"report.html.j2", "stats.html.j2", "_style.css.j2"}


def test_host_chart_ticks_count_from_the_step_start() -> None:
    """A step from 2m5.3s to 2m6.9s: its host chart's ticks are offsets from the step's start
    (+0, +200ms, ...), each distinct, not absolute times that all round to "2m6s"."""
    bar = Bar("restart", "remediation", "run", 125.3, 126.9, "ok")
    subs = [SubRun("web-1", "ok", 125.3, 126.0), SubRun("web-2", "ok", 125.4, 126.9)]
    ticks = [t.text for t in chart.subrun_chart(bar, subs, "hosts").texts if t.cls == "tick"]
    assert ticks[0] == "+0" and len(set(ticks)) == len(ticks) >= 4, ticks
    assert all(t.startswith("+") for t in ticks)


def test_a_bunch_of_markers_stacks_in_order_and_the_overflow_is_counted() -> None:
    """Fourteen markers at one moment: one column, numbered top to bottom, the last lane
    standing for the five that do not fit; the chart grows to hold the lanes."""
    tl = Timeline(markers=[Marker(5.0, "notify", f"m{i}") for i in range(14)], end=60.0)
    drawn = chart.timeline_chart(tl)
    dots = [d for d in drawn.dots if "mark" in d.cls]
    assert [d.label for d in dots] == [str(n) for n in range(1, 10)] + ["+5"]
    assert len({d.x for d in dots}) == 1 and [d.y for d in dots] == sorted({d.y for d in dots})
    assert drawn.height > chart.timeline_chart(Timeline(end=60.0)).height


def test_two_bars_of_one_step_at_one_instant_keep_their_own_hosts(tmp_path: Path) -> None:
    """A journal repeating a step at the same elapsed time, once fanned out and once not, drew
    the first bar's host table under the second (charts were looked up by step and start) and
    crashed on its empty host list: 'list object has no element 0' (hypothesis found it)."""
    import json

    hosts = {"web-1": {"status": "failed", "exit_code": 1, "duration": 1.0},
             "web-2": {"status": "ok", "exit_code": 0, "duration": 1.0}}
    records = [{"seq": 0, "event": "run.started", "elapsed": 0.0},
               {"seq": 1, "event": "step.started", "step": "s1", "elapsed": 1.0},
               {"seq": 2, "event": "step.finished", "step": "s1", "status": "failed", "elapsed": 1.0,
                "hosts": hosts},
               {"seq": 3, "event": "step.started", "step": "s1", "elapsed": 1.0},
               {"seq": 4, "event": "step.finished", "step": "s1", "status": "ok", "elapsed": 1.0}]
    path = tmp_path / "journal.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    page = render_html(build_report(path))
    assert page.count("<caption>Hosts of s1") == 1
