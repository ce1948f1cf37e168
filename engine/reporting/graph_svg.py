"""A runbook's flow (graph.Flow) drawn as one self-contained SVG picture, without
Graphviz: the boxes, frames and lanes that `graph_layout` placed, as shapes, arrows and
escaped labels; every node's <title> holds its whole text.
"""

from __future__ import annotations

from collections.abc import Mapping
from xml.sax.saxutils import escape

from .graph import Edge, Flow
from .graph_layout import (
    FONT,
    INSET,
    LANE_CLEAR,
    LANE_W,
    LINE,
    MAIN_W,
    MARGIN,
    TIP,
    TITLE,
    Box,
    Layout,
    layout,
    route,
    wrap,
)

# -- drawing -------------------------------------------------------------------------------------

_FILL = {"start": "#e8f0fb", "end": "#e6f4ea", "stop": "#fdecea", "decision": "#fff8e1", "manual": "#fff5d6",
         "rollback": "#f1eaf8", "include": "#eef3fa", "notify": "#eef7f4", "wait": "#f3f5f8"}
_STROKE = {"start": "#3568a8", "end": "#1e7a3c", "stop": "#c0392b", "decision": "#b88a00", "manual": "#b88a00",
           "rollback": "#7a52a8"}
MARKED = {"live": "ran live", "drill": "ran in a drill", "test": "ran in a scenario test", "none": "never ran"}
STYLE = (
    "text{font-family:'DejaVu Sans',Verdana,sans-serif;fill:#1c2430}"
    ".t{font-size:15px;font-weight:700}.f{fill:#f8fafc;stroke:#b8c2ce}.fl{font-size:11px;font-weight:700;fill:#2d3a4b}"
    ".n{stroke-width:1.3}.nl{font-size:11px}.nl .id{font-weight:700}"
    ".e{fill:none;stroke:#5b6675;stroke-width:1.3}.e.d{stroke-dasharray:5 3}.el{font-size:9px;fill:#5b6675}"
    ".rb{stroke-dasharray:4 3}"
    # How coverage saw a step exercised (render_svg's marks): these override the kind's colours.
    ".x-live .n{fill:#b7e1c1;stroke:#1e7a3c;stroke-width:2.2}.x-drill .n{fill:#c9ddf5;stroke:#2f5f9e;stroke-width:2.2}"
    ".x-test .n{fill:#e3f1d0;stroke:#5f8a2e;stroke-width:2.2}.x-none .n{fill:#fbe3e0;stroke:#c0392b;stroke-width:2.2}"
)


def render_svg(flow: Flow, marks: Mapping[str, str] | None = None) -> str:
    """The flow as a standalone SVG document: no script, no external reference, every
    label escaped, a <title> on the picture and on each node and frame. `marks` colours
    the runbook's steps by how they were exercised (step id -> live, drill, test or none)."""
    placed = layout(flow)
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {placed.width:g} {placed.height:g}" '
        f'width="{placed.width:g}" height="{placed.height:g}" role="img" aria-labelledby="flow-title">',
        f'<title id="flow-title">Flow of {escape(flow.title)}</title>',
        f"<style>{STYLE}</style>",
        '<defs><marker id="arrow" viewBox="0 0 8 8" refX="7.5" refY="4" markerWidth="8" markerHeight="8" '
        'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#5b6675"/></marker></defs>',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
    ]
    parts += _title(placed) + _draw_frames(placed) + _draw_edges(placed) + _draw_nodes(placed, marks or {})
    return "\n".join([*parts, "</svg>"]) + "\n"


def _title(out: Layout) -> list[str]:
    return [f'<text class="t" x="{MARGIN}" y="{MARGIN + TITLE + n * (TITLE + 5):g}">{escape(line)}</text>'
            for n, line in enumerate(out.title)]


def _draw_frames(out: Layout) -> list[str]:
    parts = []
    for frame in out.frames:
        if not frame.bottom:  # a cluster with nothing placed in it
            continue
        left = MARGIN + (frame.depth - 1) * INSET
        width = out.width - 2 * left
        label, cut = wrap(frame.label, width - 16, FONT, 1)
        title = f"<title>{escape(frame.label)}</title>" if cut else ""
        parts.append(f'<g><rect class="f" x="{left:g}" y="{frame.top:g}" width="{width:g}" '
                     f'height="{frame.bottom - frame.top:g}" rx="8"/>'
                     f'<text class="fl" x="{left + 8:g}" y="{frame.top + 15:g}">{escape(label[0])}{title}</text></g>')
    return parts


def _draw_nodes(out: Layout, marks: Mapping[str, str]) -> list[str]:
    parts = []
    for box in out.boxes.values():
        node = box.node
        fill, stroke = _FILL.get(node.kind, "#ffffff"), _STROKE.get(node.kind, "#3568a8")
        extra = ' stroke-dasharray="4 3"' if node.kind == "rollback" else ""
        shape = _shape(box).format(f'fill="{fill}" stroke="{stroke}" class="n"{extra}')
        texts = "".join(f'<tspan x="{box.x:g}" y="{box.y + 17 + n * LINE:g}"{_id_class(box, n)}>{escape(line)}</tspan>'
                        for n, line in enumerate(box.lines))
        mark = marks.get(node.step) if node.step is not None else None
        how = f" x-{mark}" if mark else ""
        note = f" ({MARKED.get(mark, mark)})" if mark else ""
        parts.append(f'<g class="node k-{node.kind}{how}"><title>{escape(node.label + note)}</title>{shape}'
                     f'<text class="nl" text-anchor="middle">{texts}</text></g>')
    return parts


def _id_class(box: Box, n: int) -> str:
    """The first line of a step is its id: bold."""
    return ' class="id"' if n == 0 and box.node.kind not in ("start", "end", "stop", "decision") else ""


def _shape(box: Box) -> str:
    x0, x1, y0, y1 = box.left, box.right, box.y, box.y + box.h
    kind = box.node.kind
    if kind == "decision":
        points = [(x0, box.cy), (x0 + TIP, y0), (x1 - TIP, y0), (x1, box.cy), (x1 - TIP, y1), (x0 + TIP, y1)]
        return "<polygon points=\"" + " ".join(f"{x:g},{y:g}" for x, y in points) + "\" {}/>"
    if kind == "manual":
        points = [(x0 + 10, y0), (x1, y0), (x1 - 10, y1), (x0, y1)]
        return "<polygon points=\"" + " ".join(f"{x:g},{y:g}" for x, y in points) + "\" {}/>"
    rx = box.h / 2 if kind in ("start", "end", "stop") else 5
    return f'<rect x="{x0:g}" y="{y0:g}" width="{box.w:g}" height="{box.h:g}" rx="{rx:g}" {{}}/>'


# -- edges -----------------------------------------------------------------------------------------


def _draw_edges(out: Layout) -> list[str]:
    parts = []
    stop_labelled: set[str] = set()
    for i, e in enumerate(out.flow.edges):
        kind = route(out, e)
        if kind == "straight":
            parts += _straight(out, e)
        elif kind == "bypass":
            parts += _bypass(out, e, out.lanes[i])
        elif kind == "rollback":
            parts += _sideways(out, e)
        else:
            parts += _to_stop(out, e, label=e.dst not in stop_labelled)
            stop_labelled.add(e.dst)
    return parts


def _path(points: list[tuple[float, float]], dashed: bool) -> str:
    d = " ".join(("M" if n == 0 else "L") + f"{x:g},{y:g}" for n, (x, y) in enumerate(points))
    return f'<path class="e{" d" if dashed else ""}" d="{d}" marker-end="url(#arrow)"/>'


def _label(x: float, y: float, text: str, anchor: str = "start") -> str:
    return f'<text class="el" x="{x:g}" y="{y:g}" text-anchor="{anchor}">{escape(text)}</text>'


def _straight(out: Layout, e: Edge) -> list[str]:
    src, dst = out.boxes[e.src], out.boxes[e.dst]
    top, bottom = src.y + src.h, dst.y
    parts = [_path([(src.x, top), (dst.x, bottom)], e.dashed)]
    if e.label:
        parts.append(_label(src.x + 5, (top + bottom) / 2 + 3, e.label))
    return parts


def _left_edge(box: Box, y: float) -> float:
    """The x of a box's left side at height y (a decision's side slants to its point)."""
    if box.node.kind != "decision":
        return box.left
    return box.left + TIP * abs(y - box.cy) / (box.h / 2)


def _bypass(out: Layout, e: Edge, lane: int) -> list[str]:
    """Out of the source's left side (a little low), down or up the lane, into the
    target's left side (a little high): two edges meeting at one box never share a line."""
    src, dst = out.boxes[e.src], out.boxes[e.dst]
    x = out.main_x - MAIN_W / 2 - LANE_CLEAR - lane * LANE_W + LANE_W / 2
    y0, y1 = src.cy + 5, dst.cy - 5
    parts = [_path([(_left_edge(src, y0), y0), (x, y0), (x, y1), (_left_edge(dst, y1), y1)], e.dashed)]
    if e.label and src.node.kind == "switch":  # its cases all leave from one place: name each where it arrives
        parts.append(_label(_left_edge(dst, y1) - 3, y1 - 3, e.label, "end"))
    elif e.label:
        parts.append(_label(src.left - 3, y0 + 11, e.label, "end"))
    return parts


def _sideways(out: Layout, e: Edge) -> list[str]:
    """A rollback: from the step's (or the previous undo's) right side to the undo's left."""
    src, dst = out.boxes[e.src], out.boxes[e.dst]
    parts = [_path([(src.right, dst.cy), (dst.left, dst.cy)], True)]
    if e.label:
        parts.append(_label((src.right + dst.left) / 2, dst.cy - 5, e.label, "middle"))
    return parts


def _to_stop(out: Layout, e: Edge, *, label: bool) -> list[str]:
    """From below a detection step, along a lane just right of the column, into "not
    confirmed" beside it; the edges of several steps join on that lane, labelled once."""
    src, dst = out.boxes[e.src], out.boxes[e.dst]
    lane = out.main_x + MAIN_W / 2 + 12
    y0 = src.y + src.h
    points = [(src.right - 18, y0), (src.right - 18, y0 + 10), (lane, y0 + 10), (lane, dst.cy), (dst.left, dst.cy)]
    parts = [_path(points, e.dashed)]
    if label and e.label:
        parts.append(_label((lane + dst.left) / 2, dst.cy - 5, e.label, "middle"))
    return parts
