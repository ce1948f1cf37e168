"""`runbook graph -f svg` in a real browser: every shipped runbook and a crowded one
(nested includes, rollback chains, long ids, titles and conditions, markup in labels)
drawn by Chromium, then measured: no box over another, no label over another or out of
its box, bypass lanes that never share a stretch, everything inside the picture.
"""

from __future__ import annotations

import subprocess
import sys
from itertools import combinations, pairwise
from pathlib import Path
from typing import Any

import pytest
from browser import chromium, run_script
from support import ROOT

from engine.language.validation import load_runbook
from engine.reporting.graph import build_graph
from engine.reporting.graph_layout import TIP

pytestmark = pytest.mark.integration

PARENT = """\
kind: runbook
version: 1
id: parent
title: "Parent <script>alert(1)</script> & a long title that goes on and on, to wrap the picture's title"
alerts: [DiskUsageHigh, DiskUsageCritical]
inputs:
  go: {type: string, default: "y"}
defaults: {timeout: 30s}
detection:
  - id: first_check
    run: "true"
    expect: exit_code == 0
  - id: a_very_long_identifier_without_any_space_to_break_it_anywhere_x
    title: "WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW"
    run: "true"
    expect: exit_code == 0
    rollback:
      - {id: undo_one, run: "true"}
      - {id: undo_two, title: "Second undo, with a title long enough to wrap", run: "true"}
  - id: third_check
    run: "true"
    expect: exit_code == 0
triage:
  - id: ask
    manual: What?
    ask:
      cause: {choices: [x, y]}
remediation:
  - id: sub
    when: steps.ask.answers.cause == 'x'
    include: {runbook: child.yaml}
  - id: after
    when: "steps.ask.answers.cause == 'y' and inputs.go == 'y' or steps.ask.answers.cause != 'x' and inputs.go != 'n'"
    run: "true"
  - id: again
    when: inputs.go == 'y'
    run: "true"
recovery:
  - id: fin
    run: "true"
    until: exit_code == 0
    every: 5s
    timeout: 1m
"""

CHILD = """\
kind: runbook
version: 1
id: child
title: Child checks
defaults: {timeout: 30s}
detection:
  - id: c1
    run: "true"
    expect: exit_code == 0
remediation:
  - id: c2
    when: 1 == 1
    run: "true"
    rollback:
      - {id: c2_undo, run: "true"}
  - id: c3
    include: {runbook: grandchild.yaml}
recovery:
  - id: c4
    run: "true"
    until: exit_code == 0
    every: 5s
    timeout: 1m
"""

GRANDCHILD = """\
kind: runbook
version: 1
id: grandchild
title: Grandchild
defaults: {timeout: 30s}
remediation:
  - id: g1
    when: 2 == 2
    run: "true"
"""

MEASURE = """
var out = [];
document.querySelectorAll('body > svg').forEach(function (svg) {
  var vb = svg.viewBox.baseVal, found = {width: vb.width, height: vb.height, nodes: [], texts: [], paths: []};
  function box(b) { return {x: b.x, y: b.y, w: b.width, h: b.height}; }
  svg.querySelectorAll('g.node').forEach(function (g) {
    found.nodes.push({kind: g.getAttribute('class'), title: g.querySelector('title').textContent,
                      shape: box(g.querySelector('rect, polygon').getBBox()),
                      text: box(g.querySelector('text').getBBox())});
  });
  svg.querySelectorAll('text').forEach(function (t) {
    var b = box(t.getBBox());
    b.text = t.textContent; b.cls = t.getAttribute('class');
    found.texts.push(b);
  });
  svg.querySelectorAll('path.e').forEach(function (p) {
    found.paths.push({d: p.getAttribute('d'), dashed: p.classList.contains('d')});
  });
  out.push(found);
});
var pre = document.createElement('pre');
pre.id = 'measured';
pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
"""


def _overlap(a: dict[str, float], b: dict[str, float], gap: float = 0.0) -> bool:
    return (a["x"] < b["x"] + b["w"] + gap and b["x"] < a["x"] + a["w"] + gap and a["y"] < b["y"] + b["h"] + gap
            and b["y"] < a["y"] + a["h"] + gap)


def _inside(inner: dict[str, float], outer: dict[str, float], inset: float = 0.0) -> bool:
    return (inner["x"] >= outer["x"] + inset - 0.5 and inner["x"] + inner["w"] <= outer["x"] + outer["w"] - inset + 0.5
            and inner["y"] >= outer["y"] - 0.5 and inner["y"] + inner["h"] <= outer["y"] + outer["h"] + 0.5)


def _vertical_runs(d: str) -> list[tuple[float, float, float]]:
    """The vertical stretches (x, y from, y to) of an SVG path made of M and L points."""
    points = [tuple(map(float, p[1:].split(","))) for p in d.split()]
    return [(x1, min(y1, y2), max(y1, y2)) for (x1, y1), (x2, y2) in pairwise(points) if x1 == x2 and y1 != y2]


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every shipped runbook and the crowded one, drawn by `runbook graph -f svg`, laid out
    on one page by Chromium and measured."""
    work = tmp_path_factory.mktemp("graphs")
    for name, text in (("parent.yaml", PARENT), ("child.yaml", CHILD), ("grandchild.yaml", GRANDCHILD)):
        (work / name).write_text(text, encoding="utf-8")
    sources = {p.stem: p for p in sorted((ROOT / "runbooks").glob("*.yaml"))} | {"crowded": work / "parent.yaml"}
    svgs = []
    for name, source in sources.items():
        out = work / f"{name}.svg"
        done = subprocess.run([sys.executable, "-m", "engine", "graph", str(source), "-f", "svg", "-o", str(out)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        svgs.append(out.read_text(encoding="utf-8").split("?>", 1)[1])
    measured = run_script("<!DOCTYPE html><html><body>" + "".join(svgs) + "</body></html>", MEASURE, work, "graphs")
    return {name: {**found, "source": source} for (name, source), found in zip(sources.items(), measured, strict=True)}


NAMES = [p.stem for p in sorted((ROOT / "runbooks").glob("*.yaml"))] + ["crowded"]


@pytest.mark.parametrize("name", NAMES)
def test_every_label_lies_in_its_box_and_no_box_or_label_overlaps(pictures: dict[str, dict[str, Any]],
                                                                   name: str) -> None:
    found = pictures[name]
    whole = {"x": 0.0, "y": 0.0, "w": found["width"], "h": found["height"]}
    for node in found["nodes"]:
        inset = TIP if "k-decision" in node["kind"] else 0.0
        assert _inside(node["text"], node["shape"], inset), node
        assert _inside(node["shape"], whole), node
    for a, b in combinations(found["nodes"], 2):
        assert not _overlap(a["shape"], b["shape"], gap=4), (a["title"], b["title"])
    texts = [t for t in found["texts"] if t["w"]]
    for t in texts:
        assert _inside(t, whole), t
    for a, b in combinations(texts, 2):
        assert not _overlap(a, b), (a["text"], b["text"])
    loose = [t for t in texts if t["cls"] in ("el", "fl", "t")]  # edge and frame labels, the title
    for t in loose:
        assert not any(_overlap(t, n["shape"]) for n in found["nodes"]), t["text"]


@pytest.mark.parametrize("name", NAMES)
def test_every_node_has_its_whole_text_as_a_title(pictures: dict[str, dict[str, Any]], name: str) -> None:
    """A label cut short in its box is whole in the node's <title> (the tooltip)."""
    flow = build_graph(load_runbook(pictures[name]["source"]))
    assert sorted(n["title"] for n in pictures[name]["nodes"]) == sorted(n.label for n in flow.nodes.values())


@pytest.mark.parametrize("name", NAMES)
def test_bypass_lanes_never_share_a_stretch(pictures: dict[str, dict[str, Any]], name: str) -> None:
    """The "no" branches run down lanes left of the column; two of them on one lane never
    overlap, so each can be followed from its decision to where it lands."""
    runs = [r for p in pictures[name]["paths"] if not p["dashed"] for r in _vertical_runs(p["d"])]
    column = min(n["shape"]["x"] for n in pictures[name]["nodes"])
    lanes = [r for r in runs if r[0] < column]
    for (x1, a1, b1), (x2, a2, b2) in combinations(lanes, 2):
        assert x1 != x2 or b1 < a2 or b2 < a1, ((x1, a1, b1), (x2, a2, b2))


def test_crowded_picture_has_its_parts(pictures: dict[str, dict[str, Any]]) -> None:
    found = pictures["crowded"]
    kinds = " ".join(n["kind"] for n in found["nodes"])
    assert kinds.count("k-rollback") == 3 and kinds.count("k-decision") == 5 and "k-stop" in kinds
    frames = [t["text"] for t in found["texts"] if t["cls"] == "fl"]
    assert "sub: Child checks (child)" in frames and "c3: Grandchild (grandchild)" in frames
    assert any(t["text"].startswith("Parent <script>alert(1)</script> &") for t in found["texts"] if t["cls"] == "t")
    [long] = [n for n in found["nodes"] if n["title"].startswith("a_very_long_identifier")]
    assert "W" * 74 + "\nrun" in long["title"]  # cut short in its box, whole in its tooltip


def test_picture_renders_to_png(pictures: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    """Opened on its own, as a file someone double-clicks."""
    svg = tmp_path / "flow.svg"
    subprocess.run([sys.executable, "-m", "engine", "graph", str(ROOT / "runbooks" / "deploy-error-spike.yaml"),
                    "-f", "svg", "-o", str(svg)], check=True, capture_output=True, timeout=60)
    png = tmp_path / "flow.png"
    chromium("--window-size=900,1400", f"--screenshot={png}", svg.as_uri())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
