"""HTML reports in a real browser: Debian's chromium, headless, renders each report to
the DOM, a PNG and a PDF. The DOM must hold the timeline and the key times as text, a
hostile step output must stay text (no script runs), and printing must work.

A missing /usr/bin/chromium fails these tests (never a skip): `make test` installs it
when run as root.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from browser import chromium, run_script
from reportkit import HOSTILE, journals

from engine.reporting.html import render_html, render_stats_html
from engine.reporting.report import build_report
from engine.reporting.stats import collect

pytestmark = pytest.mark.integration


def dom(page: Path) -> str:
    return chromium("--dump-dom", page.as_uri()).stdout


def text_of(html: str) -> str:
    """The visible text of a serialized DOM (tags dropped, entities of <, >, & decoded)."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    body = re.sub(r"<[^>]+>", " ", body)
    body = body.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(body.split())


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    drills = journals(tmp_path_factory, "drills")
    live = journals(tmp_path_factory, "live")
    crashed = journals(tmp_path_factory, "crashed")
    fanout = journals(tmp_path_factory, "fanout")
    crowded = journals(tmp_path_factory, "crowded")
    out = tmp_path_factory.mktemp("pages")
    reports = {
        "drill": build_report(drills["disk-full-log-storm"], history_dir=str(drills["disk-full-log-storm"].parent)),
        "review": build_report(live["fail"]),
        "hostile": build_report(live["hostile"]),
        "crashed": build_report(crashed["torn"]),
        "fanout": build_report(fanout["with-host-events"]),
        "crowded": build_report(crowded["crowded"]),
    }
    made = {}
    for name, report in reports.items():
        made[name] = out / f"{name}.html"
        made[name].write_text(render_html(report), encoding="utf-8")
    made["stats"] = out / "stats.html"
    made["stats"].write_text(render_stats_html(collect([out.parent])), encoding="utf-8")
    yield made


# Run in the page after layout: opens every <details>, then writes what it measured into
# <pre id="measured"> for --dump-dom to return. Boxes are in each SVG's own units.
MEASURE = """
document.querySelectorAll('details').forEach(function (d) { d.open = true; });
var out = {viewport: innerWidth, scrollWidth: document.documentElement.scrollWidth, wide: [], charts: []};
document.querySelectorAll('main *').forEach(function (e) {
  var r = e.getBoundingClientRect();
  if (r.width && r.right > innerWidth + 0.5 && !e.closest('.chart-wrap')) {
    out.wide.push(e.tagName + ': ' + (e.textContent || '').slice(0, 60));
  }
});
document.querySelectorAll('svg.chart').forEach(function (s) {
  var vb = s.viewBox.baseVal, texts = [], marks = [];
  s.querySelectorAll('text').forEach(function (t) {
    var b = t.getBBox();
    texts.push({text: t.firstChild ? t.firstChild.nodeValue : '', mark: !!t.closest('g.mark'),
                x: b.x, y: b.y, w: b.width, h: b.height});
  });
  s.querySelectorAll('g.mark').forEach(function (g) {
    var c = g.querySelector('circle');
    marks.push({label: g.querySelector('text').textContent, x: c.cx.baseVal.value, y: c.cy.baseVal.value,
                r: c.r.baseVal.value});
  });
  out.charts.push({id: s.getAttribute('aria-labelledby').split(' ')[0], width: vb.width, height: vb.height,
                   texts: texts, marks: marks});
});
var pre = document.createElement('pre');
pre.id = 'measured';
pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
"""


def measure(page: Path, directory: Path, width: int = 1280) -> dict[str, Any]:
    """Lay a report out in Chromium `width` pixels wide with every <details> open, and
    return what MEASURE found. The copy measured drops the report's Content-Security-Policy,
    which (rightly) lets no script but the report's own run."""
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text(encoding="utf-8"))
    return dict(run_script(text, MEASURE, directory, page.stem, width))


def _outside(chart: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in chart["texts"] if t["w"] and (t["x"] < 0 or t["y"] < 0 or t["x"] + t["w"] > chart["width"]
                                                     or t["y"] + t["h"] > chart["height"])]


def _overlapping(chart: dict[str, Any]) -> list[tuple[str, str]]:
    boxes = [t for t in chart["texts"] if t["w"] and not t["mark"]]
    return [(a["text"], b["text"]) for a, b in combinations(boxes, 2)
            if a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"]
            and b["y"] < a["y"] + a["h"]]


@pytest.mark.parametrize("name", ["crowded", "drill", "review", "fanout", "crashed", "stats"])
def test_page_fits_1280px_and_every_chart_label_is_inside_its_chart(pages: dict[str, Path], tmp_path: Path,
                                                                     name: str) -> None:
    """Long commands, ids and outputs wrap instead of widening the page; no label of any
    chart (the last axis label included) is cut off by its SVG's edge or lies on another."""
    found = measure(pages[name], tmp_path)
    assert found["scrollWidth"] <= found["viewport"], found["wide"][:5]
    assert found["charts"], "no chart measured"
    for chart in found["charts"]:
        assert not _outside(chart), (chart["id"], _outside(chart))
        assert not _overlapping(chart), (chart["id"], _overlapping(chart))


def test_timeline_markers_are_in_time_order_and_never_overlap(pages: dict[str, Path], tmp_path: Path) -> None:
    """24 markers, 15 of them within one second: numbered in time order, stacked first on top
    in columns read left to right, no circle over another; the column too tall for the chart
    ends with a `+N` circle that accounts for the rest."""
    [timeline] = [c for c in measure(pages["crowded"], tmp_path)["charts"] if c["id"] == "timeline-title"]
    marks = timeline["marks"]
    for a, b in combinations(marks, 2):
        assert math.dist((a["x"], a["y"]), (b["x"], b["y"])) >= a["r"] + b["r"], (a, b)
    read = [m["label"] for m in sorted(marks, key=lambda m: (m["x"], m["y"]))]
    numbered = [int(label) for label in read if label.isdigit()]
    assert numbered == sorted(numbered) and len(set(numbered)) == len(numbered), read
    more = [int(label[1:]) for label in read if label.startswith("+")]
    assert more and len(numbered) + sum(more) == 24, read
    text = text_of(dom(pages["crowded"]))
    times = re.findall(r"(\d+) (\d\d:\d\d\.\d) update to status", text)
    assert [int(n) for n, _ in times] == list(range(1, 25)) and [t for _, t in times] == sorted(t for _, t in times)


def test_chromium_is_installed() -> None:
    done = chromium("--version")
    assert "Chromium" in done.stdout


def test_drill_dom_has_the_timeline_and_the_key_times(pages: dict[str, Path]) -> None:
    html = dom(pages["drill"])
    text = text_of(html)
    assert "Drill debrief: Log storm fills /var on db-1" in text
    for key, at in (("Acknowledged", "2m10s"), ("Triaged", "2m10s"), ("Mitigated", "2m56s"), ("Recovered", "3m43s")):
        assert re.search(rf"{key} {at} objective \S+: met", text), key
    assert "Timeline" in text and 'id="timeline-title">Timeline of run disk-full-log-storm-seed1312</title>' in html
    assert re.search(r"<svg[^>]*role=\"img\"[^>]*aria-labelledby=\"timeline-title timeline-desc\"", html)
    steps = html.split('<table id="steps">')[1].split("</table>")[0]
    for step in ("usage", "assess", "compress_logs", "verify_usage"):
        assert f"<code>{step}</code>" in steps
    assert "PASSED" in text and "Earlier runs of this scenario" in text


def test_hostile_output_stays_text_and_no_script_runs(pages: dict[str, Path]) -> None:
    html = dom(pages["hostile"])
    title = re.search(r"<title>(.*?)</title>", html, flags=re.S)
    assert title is not None  # had the script run, the title would be just "pwned"
    assert text_of(title.group(1)) == f"Post-incident review (draft): Hostile output {HOSTILE}"
    assert "<img" not in html  # the onerror image was never created
    assert len(re.findall(r"<script\b", html)) == 1  # only the report's own print helper
    assert text_of(html).count("<script>document.title='pwned'</script>") >= 5


def test_review_page_shows_what_was_done_and_what_failed(pages: dict[str, Path]) -> None:
    text = text_of(dom(pages["review"]))
    for part in ("Post-incident review (draft): Failing remediation with rollback", "Impact window",
                 "What was done", "echo changed", "What failed, was retried or rolled back",
                 "boom: disk quota exceeded", "Open questions for the review"):
        assert part in text


def test_crashed_run_page_says_where_it_stopped(pages: dict[str, Path]) -> None:
    html = dom(pages["crashed"])
    assert re.search(r'<div class="alert" role="alert"><strong>Incomplete run\.</strong> The journal stops at', html)
    assert "during step slow" in text_of(html) and "journal stops" in text_of(html)


def test_fanout_hosts_are_folded_until_opened(pages: dict[str, Path]) -> None:
    html = dom(pages["fanout"])
    assert re.search(r"<details><summary>3 host\(s\), 1 not ok</summary>", html)
    assert "web-3" in text_of(html)


def test_reports_render_to_png_and_pdf(pages: dict[str, Path], tmp_path: Path) -> None:
    for name in ("drill", "review", "stats"):
        png, pdf = tmp_path / f"{name}.png", tmp_path / f"{name}.pdf"
        chromium("--window-size=1100,2600", f"--screenshot={png}", pages[name].as_uri())
        chromium("--no-pdf-header-footer", f"--print-to-pdf={pdf}", pages[name].as_uri())
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000, name
        data = pdf.read_bytes()
        assert data.startswith(b"%PDF-") and len(data) > 20_000, name
        assert len(re.findall(rb"/Type\s*/Page\b", data)) >= 1


def test_stats_page_renders_its_charts(pages: dict[str, Path]) -> None:
    html = dom(pages["stats"])
    assert "Runbook statistics" in text_of(html)
    assert len(re.findall(r'<svg class="chart spark"', html)) >= 2


def test_printing_unfolds_the_host_details(tmp_path: Path) -> None:
    """On screen the 150 hosts of a fan-out step are folded; printed, they are all there."""
    recs = [{"seq": 1, "t": "2026-03-01T10:00:00.000Z", "elapsed": 0.0, "event": "run.started", "run_id": "fan",
             "runbook": "rolling", "title": "Rolling restart", "file": "/x.yaml", "mode": "live"},
            {"seq": 2, "elapsed": 0.0, "event": "phase.started", "phase": "remediation"},
            {"seq": 3, "elapsed": 0.0, "event": "step.started", "step": "restart", "phase": "remediation",
             "kind": "run"},
            {"seq": 4, "elapsed": 3.0, "event": "step.finished", "step": "restart", "phase": "remediation",
             "kind": "run", "status": "ok", "duration": 3.0,
             "hosts": {f"web-{i}": {"status": "ok", "exit_code": 0, "duration": 1 + i / 100} for i in range(150)}}]
    run = tmp_path / "run"
    run.mkdir()
    (run / "journal.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    page = tmp_path / "fan.html"
    page.write_text(render_html(build_report(run)), encoding="utf-8")
    assert re.search(r"<details><summary>150 host\(s\)</summary>", dom(page))  # folded on screen
    pdf = tmp_path / "fan.pdf"
    chromium("--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri())
    pages = len(re.findall(rb"/Type\s*/Page\b", pdf.read_bytes()))
    assert pages >= 6, pages  # folded, the report prints on 4 pages; unfolded, on 11
