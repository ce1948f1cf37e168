"""`runbook coverage -f html` in a real browser (Debian's chromium, headless): each step's
row and its box in the flow picture are coloured by how the step was exercised, the
picture loads, and the page renders to a PNG.

A missing /usr/bin/chromium fails these tests (never a skip)."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
from browser import chromium, run_script

from engine.language.validation import load_runbook
from engine.reporting.coverage import collect
from engine.reporting.html import render_coverage_html
from engine.run.journal_writer import JournalWriter
from engine.simulation.drill import DrillSetup
from engine.simulation.suite import run_case

pytestmark = pytest.mark.integration
FIXTURES = Path(__file__).parents[1] / "fixtures" / "coverage"
RUNBOOK = FIXTURES / "branches.yaml"
MEASURE = """
var out = {rows: {}, boxes: {}, img: null};
document.querySelectorAll('table.steps tr[data-step]').forEach(function (tr) {
  out.rows[tr.dataset.step] = getComputedStyle(tr.querySelector('th')).backgroundColor;
});
var img = document.querySelector('img.flow');
out.img = {w: img.naturalWidth, h: img.naturalHeight, complete: img.complete};
var pre = document.createElement('pre'); pre.id = 'measured';
pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
"""
COLOURS = {"live": "rgb(183, 225, 193)", "drill": "rgb(201, 221, 245)", "test": "rgb(227, 241, 208)",
           "none": "rgb(251, 227, 224)"}


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("coverage")
    # tls as a scenario test, refused as a drill, tls again live: every colour but `none` and `flush`.
    for scenario, mode in (("tls", "test"), ("refused", "drill"), ("tls", "live")):
        writer = JournalWriter(root / f"{scenario}-{mode}", fsync=False)
        try:
            assert run_case(str(FIXTURES / "scenarios" / f"{scenario}.yaml"),
                            DrillSetup(observers=(writer,), mode=mode)).passed
        finally:
            writer.close()
    runbook = load_runbook(RUNBOOK)
    out = root / "coverage.html"
    out.write_text(render_coverage_html(collect([runbook], [root]), [runbook]), encoding="utf-8")
    return out


def _measure(page: Path) -> dict[str, Any]:
    # The page's CSP (rightly) runs no script but its own: the measured copy drops it.
    text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text(encoding="utf-8"))
    return dict(run_script(text, MEASURE, page.parent, "coverage"))


def test_each_step_row_is_coloured_by_how_it_was_exercised(page: Path) -> None:
    rows = _measure(page)["rows"]
    assert rows["renew"] == COLOURS["live"]  # tls ran live
    assert rows["tell"] == COLOURS["drill"]  # only the refused drill told
    assert rows["undo_prepare"] == COLOURS["drill"]
    assert rows["flush"] == COLOURS["none"]


def test_the_flow_picture_loads_and_is_coloured_the_same_way(page: Path) -> None:
    src = re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', page.read_text(encoding="utf-8"))
    assert src is not None
    svg = base64.b64decode(src.group(1)).decode()
    assert re.search(r'<g class="node k-run x-live"><title>renew\b[^<]*\(ran live\)</title>', svg)
    assert re.search(r'<g class="node k-run x-none"><title>flush\b[^<]*\(never ran\)</title>', svg)
    assert re.search(r'<g class="node k-rollback x-drill"><title>undo_prepare\b', svg)
    measured = _measure(page)["img"]
    assert measured["complete"] and measured["w"] > 300 and measured["h"] > 600


def test_the_page_renders_to_png(page: Path, tmp_path: Path) -> None:
    png = tmp_path / "coverage.png"
    chromium("--window-size=1100,2600", f"--screenshot={png}", page.as_uri())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
