"""Where a runbook's flow (graph.Flow) goes in a picture: the layout behind
`graph_svg`, and the text measurement it rests on (no font metrics: estimates that
never run short).

Runbook flows are nearly linear, so the layout is a column: every step (and decision)
gets a row, top to bottom in flow order, inside the frames of its phase and included
runbooks. What leaves the column is routed around it: a `when` decision's "no" branch
runs down a bypass lane on the left (lanes assigned so that no two overlap), rollbacks
sit in side columns to the right of the step they undo, and "not confirmed" gets a row
of its own after detection, reached by a lane on the right. Labels are wrapped to their
box and cut with "…" past a few lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
        if route(layout, e) == "bypass":
            out.append(i)
    return out


def route(layout: Layout, e: Edge) -> str:
    """How an edge is drawn: straight down the column, a bypass lane, a rollback or to a stop."""
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
