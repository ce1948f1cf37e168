"""`runbook graph`: every shipped runbook as Mermaid and Graphviz DOT that parse (checked
structurally; with `dot -Tsvg` too when Graphviz is installed), with conditions, rollbacks
and includes drawn, and labels escaped."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from xml.etree import ElementTree

import pytest
from support import ROOT, WriteYaml

from engine.language.builder import build_runbook
from engine.language.loader import load_file
from engine.language.model import Runbook
from engine.language.validation import load_runbook
from engine.reporting.graph import Flow, build_graph, render_dot, render_mermaid

SHIPPED = sorted((ROOT / "runbooks").glob("*.yaml"))
ID = r"n_[A-Za-z0-9_]+"
LABEL = r'"[^"]*"'  # no raw quote inside: quotes are #34;
MERMAID_NODE = re.compile(rf"^({ID})(\(\[{LABEL}\]\)|\{{{LABEL}\}}|\[/{LABEL}/\]|\[\[{LABEL}\]\]|>{LABEL}\]|"
                          rf"\(\({LABEL}\)\)|\[{LABEL}\])$")
MERMAID_EDGE = re.compile(rf'^({ID}) (-->|-\.->)(\|"[^"]*"\|)? ({ID})$')
MERMAID_SUBGRAPH = re.compile(rf"^subgraph ({ID})\[{LABEL}\]$")
DOT_NODE = re.compile(rf'^({ID}) \[label="(?:[^"\\]|\\.)*", shape=\w+, style="[a-z,]+", fillcolor="#[0-9a-f]{{6}}"\];$')
DOT_EDGE = re.compile(rf'^({ID}) -> ({ID})( \[(label="(?:[^"\\]|\\.)*"(, )?)?(style=dashed)?\])?;$')


def mermaid_structure(text: str) -> tuple[set[str], list[tuple[str, str, str, str]]]:
    """(node ids, edges as (src, arrow, label, dst)); fails on any line it cannot place."""
    lines = text.splitlines()
    assert lines[:4] == ["---", lines[1], "---", "flowchart TD"] and lines[1].startswith('title: "')
    nodes: set[str] = set()
    edges, depth, subgraphs = [], 0, set()
    for raw in lines[4:]:
        line = raw.strip()
        if m := MERMAID_SUBGRAPH.match(line):
            assert m.group(1) not in nodes | subgraphs
            subgraphs.add(m.group(1))
            depth += 1
        elif line == "end":
            depth -= 1
            assert depth >= 0
        elif line == "direction TB" or line.startswith(("classDef rb_", "class n_")):
            continue
        elif m := MERMAID_NODE.match(line):
            assert m.group(1) not in nodes, f"duplicate node {m.group(1)}"
            nodes.add(m.group(1))
        elif m := MERMAID_EDGE.match(line):
            edges.append((m.group(1), m.group(2), (m.group(3) or "").strip('|"'), m.group(4)))
        else:
            raise AssertionError(f"not a Mermaid flowchart line: {line!r}")
    assert depth == 0
    for src, _, _, dst in edges:
        assert src in nodes and dst in nodes, (src, dst)
    for line in lines:
        if line.strip().startswith("class n_"):
            members = line.split()[1].split(",")
            assert set(members) <= nodes
    return nodes, edges


def dot_structure(text: str) -> tuple[set[str], list[tuple[str, str]]]:
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == "digraph runbook {" and lines[-1] == "}"
    nodes: set[str] = set()
    edges, depth = [], 1
    for line in lines[1:-1]:
        if line.startswith(("graph [", "node [", "edge [", "label=")):
            continue
        if re.match(rf"^subgraph cluster_{ID} \{{$", line):
            depth += 1
        elif line == "}":
            depth -= 1
        elif m := DOT_NODE.match(line):
            nodes.add(m.group(1))
        elif m := DOT_EDGE.match(line):
            edges.append((m.group(1), m.group(2)))
        else:
            raise AssertionError(f"not a DOT line this graph writes: {line!r}")
    assert depth == 1
    assert all(src in nodes and dst in nodes for src, dst in edges)
    return nodes, edges


def reachable(edges: list[tuple[str, str]], start: str) -> set[str]:
    nxt = defaultdict(list)
    for src, dst in edges:
        nxt[src].append(dst)
    seen, todo = {start}, [start]
    while todo:
        for dst in nxt[todo.pop()]:
            if dst not in seen:
                seen.add(dst)
                todo.append(dst)
    return seen


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_runbook_as_mermaid_is_a_sane_flowchart(path: Path) -> None:
    book = load_runbook(path)
    nodes, edges = mermaid_structure(render_mermaid(build_graph(book)))
    for step in book.steps(rollbacks=False):
        assert f"n_{step.id}" in nodes
    plain = [(s, d) for s, arrow, _, d in edges]
    assert "n_resolved" in reachable(plain, "n_start")
    assert nodes <= reachable(plain, "n_start")  # nothing dangles
    for step in book.steps():
        if step.when:
            labels = {lab for s, _, lab, _ in edges if s == f"n_when_{step.id}"}
            assert labels == {"yes", "no"}, step.id
        for undo in step.rollback:
            assert (f"n_{step.id}", "-.->", "on failure, undo", f"n_undo_{undo.id}") in edges


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_runbook_as_dot_is_a_sane_digraph(path: Path, tmp_path: Path) -> None:
    book = load_runbook(path)
    text = render_dot(build_graph(book))
    nodes, edges = dot_structure(text)
    assert {f"n_{s.id}" for s in book.steps()} <= nodes
    assert "n_resolved" in reachable(edges, "n_start")
    if shutil.which("dot"):  # Graphviz is optional; the structure above is always checked
        done = subprocess.run(["dot", "-Tsvg"], input=text, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "<svg" in done.stdout, done.stderr


def test_mermaid_and_dot_draw_the_same_graph() -> None:
    flow = build_graph(load_runbook(ROOT / "runbooks" / "disk-full.yaml"))
    m_nodes, m_edges = mermaid_structure(render_mermaid(flow))
    d_nodes, d_edges = dot_structure(render_dot(flow))
    assert m_nodes == d_nodes == set(flow.nodes)
    assert [(s, d) for s, _, _, d in m_edges] == d_edges


INCLUDER = """\
kind: runbook
version: 1
id: parent
title: Parent
defaults: {timeout: 30s}
detection:
  - id: check
    run: "true"
    expect: exit_code == 0
remediation:
  - id: fix
    include: {runbook: child.yaml}
recovery:
  - id: verify
    run: "true"
    until: exit_code == 0
    every: 5s
    timeout: 1m
"""

CHILD = """\
kind: runbook
version: 1
id: child
title: Child
defaults: {timeout: 30s}
detection:
  - id: look
    run: "true"
    expect: exit_code == 0
remediation:
  - id: again
    include: {runbook: parent.yaml}
recovery:
  - id: done
    run: "true"
    until: exit_code == 0
    every: 5s
    timeout: 1m
"""


def unchecked(path: object) -> Runbook:
    """A runbook built without lint: validate refuses an include cycle (RB131), but the graph
    must still stop on one (a file can change after it was checked)."""
    return build_runbook(load_file(str(path)))


def test_includes_expand_as_nested_clusters_and_cycles_stop(write_yaml: WriteYaml) -> None:
    parent = write_yaml(INCLUDER, "parent.yaml")
    write_yaml(CHILD, "child.yaml")
    flow = build_graph(unchecked(parent), loader=unchecked)
    nodes, edges = mermaid_structure(render_mermaid(flow))
    assert {"n_fix", "n_fix_look", "n_fix_again", "n_fix_done"} <= nodes
    assert not any(n.startswith("n_fix_again_") for n in nodes)  # parent -> child -> parent: not expanded again
    plain = [(s, d) for s, _, _, d in edges]
    assert ("n_fix", "n_fix_look") in plain and ("n_fix_done", "n_verify") in plain
    assert "subgraph n_fix_runbook[\"fix: Child (child)\"]" in render_mermaid(flow)
    assert ("n_fix_look", "n_end_not_confirmed") not in plain  # only the top runbook's detection ends the run


def test_includes_can_stay_folded(write_yaml: WriteYaml) -> None:
    parent = write_yaml(INCLUDER, "parent.yaml")
    write_yaml(CHILD, "child.yaml")
    nodes, _ = mermaid_structure(render_mermaid(build_graph(unchecked(parent), expand_includes=False)))
    assert "n_fix" in nodes and "n_fix_look" not in nodes


def test_unloadable_include_is_drawn_as_its_node(write_yaml: WriteYaml) -> None:
    parent = write_yaml(INCLUDER, "parent.yaml")
    write_yaml(CHILD, "child.yaml")
    book = unchecked(parent)

    def broken(path: object) -> Runbook:
        raise OSError(f"cannot read {path}")

    nodes, edges = mermaid_structure(render_mermaid(build_graph(book, loader=broken)))
    assert "n_fix" in nodes and ("n_fix", "-->", "", "n_verify") in edges


HOSTILE = '''\
kind: runbook
version: 1
id: hostile
title: "Quotes \\" <script>alert(1)</script> #hash `tick` back\\\\slash"
defaults: {timeout: 30s}
detection:
  - id: end
    title: "Step \\"quotes\\" |pipes| <script> #hash `tick` a\\\\b"
    run: "true"
    expect: exit_code == 0
remediation:
  - id: graph
    when: "inputs | length > 0 and \\"x\\" != 'y'"
    run: "true"
recovery:
  - id: subgraph
    run: "true"
    until: exit_code == 0
    every: 5s
    timeout: 1m
'''


def test_labels_and_keywords_are_escaped(write_yaml: WriteYaml) -> None:
    book: Runbook = load_runbook(write_yaml(HOSTILE, "hostile.yaml"))
    flow: Flow = build_graph(book)
    mermaid = render_mermaid(flow)
    nodes, _ = mermaid_structure(mermaid)
    assert {"n_end", "n_graph", "n_subgraph"} <= nodes  # Mermaid keywords as step ids
    body = mermaid.split("---\n", 2)[2]  # the title is a YAML string in the front matter: data, not markup
    assert "<script>" not in body and "#60;script#62;" in body and "#34;quotes#34;" in body
    assert "#96;tick#96;" in body and "#35;hash" in body
    dot = render_dot(flow)
    dot_structure(dot)
    assert 'Step \\"quotes\\" |pipes| <script> #hash `tick` a\\\\b' in dot
    if shutil.which("dot"):
        assert subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, timeout=60).returncode == 0


def test_graph_command_writes_mermaid_and_dot(tmp_path: Path) -> None:
    source = ROOT / "runbooks" / "service-down.yaml"
    cmd = [sys.executable, "-m", "engine", "graph", str(source)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.splitlines()[3] == "flowchart TD"
    out = tmp_path / "flow.dot"
    done = subprocess.run([*cmd, "--format", "dot", "-o", str(out)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and out.read_text().startswith("digraph runbook {")
    scenario = ROOT / "scenarios" / "disk-full-log-storm.yaml"
    bad = subprocess.run([sys.executable, "-m", "engine", "graph", str(scenario)], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "runbook: error:" in bad.stderr


# -- the SVG picture --------------------------------------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"


def _svg(flow: Flow) -> ElementTree.Element:
    from engine.reporting.graph_svg import render_svg

    text = render_svg(flow)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"')
    return ElementTree.fromstring(text)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_runbook_as_svg_is_a_self_contained_picture(path: Path) -> None:
    """Well-formed, nothing fetched or run (no script, no link but to its own arrowhead), a
    title, and one titled node per node of the flow."""
    flow = build_graph(load_runbook(path))
    root = _svg(flow)
    assert root.tag == f"{SVG}svg" and root.find(f"{SVG}title") is not None
    tags = {el.tag.removeprefix(SVG) for el in root.iter()}
    assert tags <= {"svg", "title", "style", "defs", "marker", "path", "rect", "polygon", "text", "tspan", "g"}, tags
    links = {v for el in root.iter() for k, v in el.attrib.items() if "href" in k or "url(" in v}
    assert links == {"url(#arrow)"}
    nodes = [g for g in root.iter(f"{SVG}g") if "node" in g.get("class", "")]
    assert sorted(g.findtext(f"{SVG}title") or "" for g in nodes) == sorted(n.label for n in flow.nodes.values())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_svg_layout_keeps_boxes_apart_and_lanes_separate(path: Path) -> None:
    """Geometry as laid out (the browser test measures it as drawn): no two boxes touch,
    every box is inside its frames, two bypass edges share a lane only on disjoint rows."""
    from engine.reporting.graph_layout import layout

    placed = layout(build_graph(load_runbook(path)))
    boxes = list(placed.boxes.values())
    for a, b in combinations(boxes, 2):
        apart = a.right + 4 <= b.left or b.right + 4 <= a.left or a.y + a.h + 4 <= b.y or b.y + b.h + 4 <= a.y
        assert apart, (a.node.id, b.node.id)
    for row in placed.rows:
        for ident in [*([row.main] if row.main else []), *row.side]:
            box = placed.boxes[ident]
            for index in row.path:
                assert placed.frames[index].top < box.y and box.y + box.h < placed.frames[index].bottom
    by_lane: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for i, lane in placed.lanes.items():
        e = placed.flow.edges[i]
        by_lane[lane].append(tuple(sorted((placed.row_of[e.src], placed.row_of[e.dst]))))  # type: ignore[arg-type]
    for spans in by_lane.values():
        for (a1, b1), (a2, b2) in combinations(spans, 2):
            assert b1 < a2 or b2 < a1


def test_svg_labels_are_escaped_text(write_yaml: WriteYaml) -> None:
    root = _svg(build_graph(load_runbook(write_yaml(HOSTILE, "hostile.yaml"))))
    assert not [el for el in root.iter() if el.tag.removeprefix(SVG) == "script"]
    text = " ".join("".join(el.itertext()) for el in root.iter(f"{SVG}title"))
    assert '<script>alert(1)</script>' in text and 'Step "quotes" |pipes| <script> #hash `tick` a\\b' in text


def test_labels_wrap_to_their_box_and_are_cut_past_four_lines() -> None:
    from engine.reporting.graph_layout import text_width, wrap

    lines, cut = wrap("short words that wrap at spaces " * 2, 120)
    assert not cut and all(text_width(line, 11) <= 120 for line in lines) and len(lines) > 1
    lines, cut = wrap("x" * 300, 120)
    assert cut and len(lines) == 4 and lines[-1].endswith("…") and all(text_width(line, 11) <= 120 for line in lines)


def test_graph_command_writes_an_svg_picture(tmp_path: Path) -> None:
    out = tmp_path / "flow.svg"
    done = subprocess.run([sys.executable, "-m", "engine", "graph", str(ROOT / "runbooks" / "disk-full.yaml"),
                           "-f", "svg", "-o", str(out)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == f"wrote {out}\n"
    assert ElementTree.parse(out).getroot().tag == f"{SVG}svg"


def test_a_block_names_its_background_helpers(write_yaml: WriteYaml) -> None:
    path = write_yaml("""
        kind: runbook
        version: 1
        id: tunnel
        title: Tunnel
        detection:
          - id: through_tunnel
            background: [{id: port_forward, run: "kubectl port-forward svc/etcd 2379", ready: {port: 2379}}]
            block:
              - {id: status, run: etcdctl endpoint status, timeout: 10s}
        """)
    label = build_graph(load_runbook(path)).nodes["n_through_tunnel"].label
    assert label == "through_tunnel\nblock with port_forward in the background"
