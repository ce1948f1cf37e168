"""A runbook's flow (graph.Flow) laid out and drawn as one self-contained SVG picture,
without Graphviz.

Runbook flows are nearly linear, so the layout is a column: every step (and decision)
gets a row, top to bottom in flow order, inside the frames of its phase and included
runbooks. What leaves the column is routed around it: a `when` decision's "no" branch
runs down a bypass lane on the left (lanes assigned so that no two overlap), rollbacks
sit in side columns to the right of the step they undo, and "not confirmed" gets a row
of its own after detection, reached by a lane on the right. Labels are wrapped to their
box and cut with "…" past a few lines; every node's <title> holds its whole text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from .graph import Cluster, Edge, Flow, Node

FONT = 11  # node labels
LINE = 14  # their line height
SMALL = 9  # edge labels
TITLE = 15
MARGIN = 12
INSET = 12  # a nested frame's inset on each side
HEADER = 22  # a frame's label band
PAD = 10  # below a frame's last row
ROW_GAP = 34  # between two rows of one frame: room for an arrow and its label
MAIN_W = 260
SIDE_W = 200
GUTTER = 130  # between the column and the first side column: the rollback label
SIDE_GAP = 40
LANE_W = 14
LANE_CLEAR = 24  # from the nearest bypass lane to the column
TIP = 14  # how far a decision's points reach in from its box
MAX_LINES = 4
_CHROME = {"decision": 2 * TIP + 8, "manual": 28}  # horizontal room a shape's slants take

# Width of a character in ems, generous (DejaVu Sans, the widest sans here): the layout
# has no font metrics, and a label must never spill out of its box.
_NARROW, _WIDE = set("iljtfr.,:;'|!()[]{} "), set("mwMW@%&")


def text_width(text: str, size: float, bold: bool = True) -> float:
    """An upper estimate of the width of `text` in pixels at font size `size` (bold, by
    default: a node's first line, its step id, is bold)."""
    total = 0.0
    for c in text:
        if c in _NARROW:
            total += 0.4
        elif c in _WIDE or ord(c) >= 0x2E80:
            total += 1.0
        elif c.isupper() or c.isdigit():
            total += 0.72
        else:
            total += 0.64
    return total * size * (1.1 if bold else 1.0)


def wrap(text: str, width: float, size: float = FONT, max_lines: int = MAX_LINES) -> tuple[list[str], bool]:
    """`text` (lines separated by newlines) wrapped at spaces to `width` pixels, a word too
    long for a line broken anywhere; at most `max_lines`, the last ending in "…" when cut.
    Returns the lines and whether anything was cut."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines += _wrap_paragraph(" ".join(paragraph.split()), width, size)
    if len(lines) <= max_lines:
        return lines, False
    kept = lines[:max_lines]
    last = kept[-1]
    while last and text_width(last + "…", size) > width:
        last = last[:-1]
    kept[-1] = last.rstrip() + "…"
    return kept, True


def _wrap_paragraph(text: str, width: float, size: float) -> list[str]:
    lines, line = [], ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if text_width(candidate, size) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        line = ""
        for c in word:  # a word wider than a line: break it where it must
            if text_width(line + c, size) > width and line:
                lines.append(line)
                line = ""
            line += c
    return [*lines, line] if line or not lines else lines


# -- placing -------------------------------------------------------------------------------------


@dataclass
class Box:
    """A node placed: its box (centre x, top y), its wrapped label and its whole text."""

    node: Node
    w: float
    lines: list[str]
    x: float = 0.0
    y: float = 0.0

    @property
    def h(self) -> float:
        return len(self.lines) * LINE + 12

    @property
    def left(self) -> float:
        return self.x - self.w / 2

    @property
    def right(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


@dataclass
class Row:
    main: str | None  # the node in the column; None for a row of its own beside it ("not confirmed")
    path: tuple[int, ...]  # indexes of the frames it is in, outermost first
    side: list[str] = field(default_factory=list)


@dataclass
class Frame:
    """A phase or an included runbook, placed: a labelled box around its rows."""

    label: str
    depth: int
    top: float = 0.0
    bottom: float = 0.0


@dataclass
class Layout:
    flow: Flow
    boxes: dict[str, Box]
    rows: list[Row]
    frames: list[Frame]
    row_of: dict[str, int]
    lanes: dict[int, int] = field(default_factory=dict)  # bypass edge index -> lane
    width: float = 0.0
    height: float = 0.0
    title: list[str] = field(default_factory=list)
    main_x: float = 0.0
    depth: int = 0


def _frames(cluster: Cluster, path: tuple[int, ...], frames: list[Frame], paths: dict[str, tuple[int, ...]]) -> None:
    """Every cluster below `cluster` as a frame, and each node's path of frames."""
    for ident in cluster.nodes:
        paths[ident] = path
    for sub in cluster.clusters:
        frames.append(Frame(sub.label, len(path) + 1))
        _frames(sub, (*path, len(frames) - 1), frames, paths)


def _head(flow: Flow, ident: str) -> str:
    """The step a rollback node hangs from (rollbacks chain: step -> undo 1 -> undo 2)."""
    while flow.nodes[ident].kind == "rollback":
        ident = next(e.src for e in flow.edges if e.dst == ident)
    return ident


def _rows(flow: Flow, paths: dict[str, tuple[int, ...]]) -> tuple[list[Row], dict[str, int]]:
    rows: list[Row] = []
    row_of: dict[str, int] = {}
    for ident, node in flow.nodes.items():
        if node.kind not in ("rollback", "stop"):
            row_of[ident] = len(rows)
            rows.append(Row(ident, paths[ident]))
    for ident, node in flow.nodes.items():
        if node.kind == "rollback":
            row = row_of[_head(flow, ident)]
            rows[row].side.append(ident)
            row_of[ident] = row
    for ident, node in flow.nodes.items():
        if node.kind == "stop":
            _stop_row(flow, ident, paths, rows, row_of)
    return rows, row_of


def _stop_row(flow: Flow, ident: str, paths: dict[str, tuple[int, ...]], rows: list[Row],
              row_of: dict[str, int]) -> None:
    """A row of its own for an end such as "not confirmed", after the outermost frame of
    the last step that can reach it (after detection), beside the column."""
    sources = [row_of[e.src] for e in flow.edges if e.dst == ident and e.src in row_of]
    at = len(rows)
    if sources:
        outer = rows[max(sources)].path[:1]
        at = max(sources) + 1
        while at < len(rows) and outer and rows[at].path[:1] == outer:
            at += 1
    rows.insert(at, Row(None, paths[ident], [ident]))
    for key, row in row_of.items():
        if row >= at:
            row_of[key] = row + 1
    row_of[ident] = at


def _bypasses(layout: Layout) -> list[int]:
    """Indexes of the edges that leave the column to the left: any edge between column
    nodes that are not next to each other (a decision's "no", an include's skipped end)."""
    out = []
    for i, e in enumerate(layout.flow.edges):
        if _kind(layout, e) == "bypass":
            out.append(i)
    return out


def _kind(layout: Layout, e: Edge) -> str:
    src, dst = layout.flow.nodes[e.src], layout.flow.nodes[e.dst]
    if dst.kind == "stop":
        return "stop"
    if dst.kind == "rollback" or src.kind == "rollback":
        return "rollback"
    a, b = layout.row_of[e.src], layout.row_of[e.dst]
    between = [r for r in layout.rows[a + 1:b] if r.main is not None]
    return "straight" if b > a and not between else "bypass"


def _assign_lanes(layout: Layout) -> None:
    """Bypass edges on lanes left of the column, the shortest nearest; two edges share a
    lane only when their rows do not overlap (not even at an end)."""
    spans = sorted(_bypasses(layout), key=lambda i: _span_rows(layout, i))
    taken: list[list[tuple[int, int]]] = []
    for i in spans:
        lo, hi = sorted((layout.row_of[layout.flow.edges[i].src], layout.row_of[layout.flow.edges[i].dst]))
        lane = next((n for n, used in enumerate(taken) if all(hi < a or lo > b for a, b in used)), len(taken))
        if lane == len(taken):
            taken.append([])
        taken[lane].append((lo, hi))
        layout.lanes[i] = lane


def _span_rows(layout: Layout, i: int) -> int:
    e = layout.flow.edges[i]
    return abs(layout.row_of[e.dst] - layout.row_of[e.src])


def _box(node: Node, width: float) -> Box:
    room = width - 16 - _CHROME.get(node.kind, 0)
    lines, _ = wrap(node.label, room)
    return Box(node, width, lines)


def layout(flow: Flow) -> Layout:
    """Where every node, frame and lane goes."""
    frames: list[Frame] = []
    paths: dict[str, tuple[int, ...]] = {}
    _frames(flow.top, (), frames, paths)
    rows, row_of = _rows(flow, paths)
    boxes = {ident: _box(node, MAIN_W if row_of.get(ident) is not None and rows[row_of[ident]].main == ident
                         else SIDE_W) for ident, node in flow.nodes.items()}
    out = Layout(flow, boxes, rows, frames, row_of)
    _assign_lanes(out)
    _place_across(out)
    _place_down(out)
    return out


def _place_across(out: Layout) -> None:
    out.depth = max((len(r.path) for r in out.rows), default=0)
    lanes = max(out.lanes.values(), default=-1) + 1
    left = MARGIN + out.depth * INSET + lanes * LANE_W + (LANE_CLEAR if lanes else 0)
    out.main_x = left + MAIN_W / 2
    widest = float(left + MAIN_W)
    for row in out.rows:
        for n, ident in enumerate(row.side):
            box = out.boxes[ident]
            box.x = left + MAIN_W + GUTTER + n * (SIDE_W + SIDE_GAP) + SIDE_W / 2
            widest = max(widest, box.right)
        if row.main is not None:
            out.boxes[row.main].x = out.main_x
    out.width = widest + out.depth * INSET + MARGIN
    out.title, _ = wrap(out.flow.title, out.width - 2 * MARGIN, TITLE, 2)


def _place_down(out: Layout) -> None:
    y = float(MARGIN + len(out.title) * (TITLE + 5) + 8)
    before: tuple[int, ...] = ()
    for n, row in enumerate(out.rows):
        y = _between(out, before, row.path, y, first=n == 0)
        height = max(out.boxes[i].h for i in [*([row.main] if row.main else []), *row.side])
        for ident in [*([row.main] if row.main else []), *row.side]:
            out.boxes[ident].y = y + (height - out.boxes[ident].h) / 2
        y += height
        before = row.path
    y = _between(out, before, (), y, first=False)
    out.height = y + MARGIN


def _between(out: Layout, before: tuple[int, ...], after: tuple[int, ...], y: float, *, first: bool) -> float:
    """The space between two rows: frames that end close below, frames that begin open
    with their label band; within one frame, room for an arrow."""
    common = 0
    while common < min(len(before), len(after)) and before[common] == after[common]:
        common += 1
    closing, opening = before[common:], after[common:]
    if not closing and not opening:
        return y if first else y + ROW_GAP
    for index in reversed(closing):
        y += PAD
        out.frames[index].bottom = y
    y += 0 if first else 14
    for index in opening:
        out.frames[index].top = y
        y += HEADER
    return y + 6


# -- drawing -------------------------------------------------------------------------------------

_FILL = {"start": "#e8f0fb", "end": "#e6f4ea", "stop": "#fdecea", "decision": "#fff8e1", "manual": "#fff5d6",
         "rollback": "#f1eaf8", "include": "#eef3fa", "notify": "#eef7f4", "wait": "#f3f5f8"}
_STROKE = {"start": "#3568a8", "end": "#1e7a3c", "stop": "#c0392b", "decision": "#b88a00", "manual": "#b88a00",
           "rollback": "#7a52a8"}
STYLE = (
    "text{font-family:'DejaVu Sans',Verdana,sans-serif;fill:#1c2430}"
    ".t{font-size:15px;font-weight:700}.f{fill:#f8fafc;stroke:#b8c2ce}.fl{font-size:11px;font-weight:700;fill:#2d3a4b}"
    ".n{stroke-width:1.3}.nl{font-size:11px}.nl .id{font-weight:700}"
    ".e{fill:none;stroke:#5b6675;stroke-width:1.3}.e.d{stroke-dasharray:5 3}.el{font-size:9px;fill:#5b6675}"
    ".rb{stroke-dasharray:4 3}"
)


def render_svg(flow: Flow) -> str:
    """The flow as a standalone SVG document: no script, no external reference, every
    label escaped, a <title> on the picture and on each node and frame."""
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
    parts += _title(placed) + _draw_frames(placed) + _draw_edges(placed) + _draw_nodes(placed)
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


def _draw_nodes(out: Layout) -> list[str]:
    parts = []
    for box in out.boxes.values():
        node = box.node
        fill, stroke = _FILL.get(node.kind, "#ffffff"), _STROKE.get(node.kind, "#3568a8")
        extra = ' stroke-dasharray="4 3"' if node.kind == "rollback" else ""
        shape = _shape(box).format(f'fill="{fill}" stroke="{stroke}" class="n"{extra}')
        texts = "".join(f'<tspan x="{box.x:g}" y="{box.y + 17 + n * LINE:g}"{_id_class(box, n)}>{escape(line)}</tspan>'
                        for n, line in enumerate(box.lines))
        parts.append(f'<g class="node k-{node.kind}"><title>{escape(node.label)}</title>{shape}'
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
        kind = _kind(out, e)
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
    if e.label:
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
