"""Chart geometry for the HTML reports: the Gantt-like timeline, per-host charts,
sparklines and stacked bars, as plain shapes that the templates draw as SVG.

Shapes carry their text (labels, tooltips) as data, so the template escapes every
value from a journal like any other text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from engine.language.duration import format_duration

from ._format import clock, dur
from .timeline import Bar, SubRun, Timeline

WIDTH = 960
LABEL = 230
RIGHT = 24
TOP = 58  # axis labels and three marker lanes
MARK_Y = 22  # the centre of the first marker lane
LANE = 13  # one marker lane: a circle of MARK_R and a pixel either side
MARK_R = 6.5
MARK_GAP = 15  # markers closer than this share a column, stacked
MAX_LANES = 10  # beyond this a column ends with one circle standing for the rest
KEY_ROW = 12  # one row of key-time labels under the axis
PHASE_ROW = 20
STEP_ROW = 18
BAR = 12
_STEPS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800,
          3600, 7200, 10800, 21600, 43200, 86400)


@dataclass
class Rect:
    x: float
    y: float
    w: float
    h: float
    cls: str
    title: str = ""


@dataclass
class Text:
    x: float
    y: float
    text: str
    cls: str = ""
    anchor: str = "start"
    title: str = ""


@dataclass
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    cls: str
    title: str = ""


@dataclass
class Dot:
    x: float
    y: float
    r: float
    cls: str
    label: str = ""
    title: str = ""


@dataclass
class Chart:
    """An SVG picture as shapes, with the title and description a screen reader reads."""

    id: str
    width: float
    height: float
    title: str
    desc: str
    rects: list[Rect] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    dots: list[Dot] = field(default_factory=list)


class Scale:
    """Seconds on the run's axis -> x pixels. Ticks fall on round offsets from `origin`
    (the run's start, or a step's own start on a per-host chart) and are labelled so."""

    def __init__(self, start: float, end: float, x0: float = LABEL, width: float = WIDTH - LABEL - RIGHT,
                 origin: float = 0.0) -> None:
        self.start, self.span = start, max(end - start, 1e-9)
        self.x0, self.width, self.origin = x0, width, origin

    def x(self, t: float) -> float:
        return round(self.x0 + (min(max(t, self.start), self.start + self.span) - self.start) / self.span
                     * self.width, 2)

    def ticks(self, count: int = 8) -> list[float]:
        step = next((s for s in _STEPS if self.span / s <= count), None) or _round_step(self.span / count)
        first = self.origin + -(-(self.start - self.origin) // step) * step
        return [first + i * step for i in range(int((self.start + self.span - first) / step + 1e-9) + 1)]

    def label(self, t: float) -> str:
        """A tick's text: time from the origin, `+` marking an origin other than the run's start."""
        return ("+" if self.origin else "") + tick_label(t - self.origin)


def _round_step(least: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at least `least` (past a day's steps)."""
    power = 10.0 ** math.floor(math.log10(least))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= least)


def tick_label(t: float) -> str:
    if abs(t) < 1e-9:
        return "0"
    return f"{round(t * 1000)}ms" if t < 1 else format_duration(t)


def _axis(chart: Chart, scale: Scale, top: float, bottom: float) -> None:
    """Grid lines and tick labels; a label that would cross the chart's edge is anchored to it."""
    for t in scale.ticks():
        x = scale.x(t)
        chart.lines.append(Line(x, top - 4, x, bottom, "grid"))
        text = scale.label(t)
        chart.texts.append(Text(x, 12, text, "tick", _span(x, text, 10, chart.width)[0]))


def _text_width(text: str, size: float) -> float:
    """A generous estimate of a text's width in pixels (no font metrics here): wide enough
    for DejaVu Sans, the widest of the fonts the charts ask for."""
    return len(text) * size * 0.62


# -- the run's timeline ---------------------------------------------------------------------------


def _row_order(tl: Timeline) -> list[tuple[str, object]]:
    """Phase headers and step rows in journal order (a skipped step is listed where it was
    passed over, inside its phase)."""
    rows: list[tuple[int, int, str, object]] = []
    rows += [(p.seq, i, "phase", p) for i, p in enumerate(tl.phases)]
    rows += [(b.seq, i, "bar", b) for i, b in enumerate(tl.bars)]
    rows.sort(key=lambda r: (r[0], r[2] != "phase", r[1]))
    return [(kind, item) for _, _, kind, item in rows]


def _bar_shapes(chart: Chart, scale: Scale, bar: Bar, y: float, end: float) -> None:
    stop = bar.end if bar.end is not None else end
    top = y + (STEP_ROW - BAR) / 2
    if bar.status == "skipped":
        chart.dots.append(Dot(scale.x(bar.start), top + BAR / 2, 3.5, "skipped", title=f"{bar.step}: skipped "
                              f"({bar.reason or 'not run'})"))
        return
    x = scale.x(bar.start)
    cls = "bar st-" + (bar.status if bar.end is not None else "running") + (" rollback" if bar.rollback_of else "")
    chart.rects.append(Rect(x, top, max(scale.x(stop) - x, 2.0), BAR, cls, _bar_title(bar)))
    for seg in bar.segments:
        sx = scale.x(seg.start)
        chart.rects.append(Rect(sx, top, max(scale.x(seg.end) - sx, 1.0), BAR, f"seg seg-{seg.kind}",
                                f"{bar.step}: {seg.label} ({dur(seg.end - seg.start)})"))
    for r in bar.retries:
        rx = scale.x(float(r.get("at") or 0.0))
        what = "poll" if r.get("polling") else "attempt"
        chart.lines.append(Line(rx, top - 2, rx, top + BAR + 2, "attempt",
                                f"{bar.step}: {what} {r.get('attempt')} failed: {r.get('error') or ''}"))


def _bar_title(bar: Bar) -> str:
    text = f"{bar.step} ({bar.kind}): {bar.status}, {dur(bar.duration)} from {clock(bar.start)}"
    if bar.attempts > 1:
        text += f", {bar.attempts} attempts"
    if bar.people:
        text += f", waited {dur(bar.people)} for people"
    if bar.hosts:
        text += f", {len(bar.hosts)} host(s)"
    return text


def _row_label(bar: Bar) -> str:
    label = ("↺ " if bar.rollback_of else "") + bar.step
    if len(bar.hosts) > 1:
        label += f" ×{len(bar.hosts)} hosts"
    elif bar.items:
        label += f" ×{len(bar.items)} items"
    limit = 34 - 2 * bar.depth
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _columns(xs: Sequence[float]) -> list[list[int]]:
    """Marker indexes (in time order) grouped into columns: a marker closer than MARK_GAP to
    the first of the current column joins it, so columns are at least MARK_GAP apart."""
    columns: list[list[int]] = []
    for i, x in enumerate(xs):
        if columns and x - xs[columns[-1][0]] < MARK_GAP:
            columns[-1].append(i)
        else:
            columns.append([i])
    return columns


def marker_lanes(tl: Timeline, scale: Scale) -> int:
    """How many lanes the markers need: the tallest column, at least three, at most MAX_LANES."""
    columns = _columns([scale.x(m.at) for m in tl.markers])
    return min(max([3, *(len(c) for c in columns)]), MAX_LANES)


def _marks(chart: Chart, scale: Scale, tl: Timeline, lanes: int, bottom: float) -> None:
    """Numbered circles, in time order: markers close in time are stacked in one column,
    first on top, so none hides another; a column taller than the lanes ends with one
    circle standing for the rest (the events table lists them all)."""
    xs = [scale.x(m.at) for m in tl.markers]
    for column in _columns(xs):
        x = xs[column[0]]
        shown, rest = (column, []) if len(column) <= lanes else (column[: lanes - 1], column[lanes - 1:])
        for lane, i in enumerate(shown):
            m, n = tl.markers[i], i + 1
            y = MARK_Y + LANE * lane
            cls = f"mark mark-{m.kind}"
            chart.lines.append(Line(xs[i], y, xs[i], bottom, cls, f"{n}. {m.label}"))
            chart.dots.append(Dot(x, y, MARK_R, cls, str(n), f"{n}. {clock(m.at)} {m.label}: {m.detail}"))
        if rest:
            _more(chart, tl, xs, rest, x, MARK_Y + LANE * (lanes - 1), bottom)


def _more(chart: Chart, tl: Timeline, xs: Sequence[float], rest: Sequence[int], x: float, y: float,
          bottom: float) -> None:
    """The last circle of an overfull column: `+N` (or `…` past nine), titled with each marker."""
    lines = [f"{i + 1}. {clock(tl.markers[i].at)} {tl.markers[i].label}" for i in rest]
    for i in rest:
        chart.lines.append(Line(xs[i], y, xs[i], bottom, "mark", lines[rest.index(i)]))
    label = f"+{len(rest)}" if len(rest) <= 9 else "…"
    chart.dots.append(Dot(x, y, MARK_R, "mark mark-more", label, f"{len(rest)} more: " + "; ".join(lines)))


def _span(x: float, text: str, size: float, limit: float) -> tuple[str, float, float]:
    """Where a label centred on x goes: its anchor, left and right edge, kept inside [0, limit]."""
    width = _text_width(text, size)
    if x + width / 2 > limit - 2:
        return "end", x - width, x
    if x - width / 2 < 2:
        return "start", x, x + width
    return "middle", x - width / 2, x + width / 2


def _key_rows(scale: Scale, keys: Sequence[tuple[str, float]]) -> list[tuple[str, float, str, int]]:
    """Each key time's label, x, anchor and row under the axis: the first row where it
    overlaps no label already placed (two rows at least, as many as the labels need)."""
    placed: list[tuple[float, float, int]] = []
    out = []
    for label, at in keys:
        text, x = f"{label} {dur(at)}", scale.x(at)
        anchor, left, right = _span(x, text, 10, WIDTH)
        row = next(r for r in range(len(keys) + 1)
                   if all(right + 4 < a or left - 4 > b for a, b, rr in placed if rr == r))
        placed.append((left, right, row))
        out.append((text, x, anchor, row))
    return out


def _key_lines(chart: Chart, rows: Sequence[tuple[str, float, str, int]], keys: Sequence[tuple[str, float]],
               top: float, bottom: float) -> None:
    for (text, x, anchor, row), (label, at) in zip(rows, keys, strict=True):
        chart.lines.append(Line(x, top, x, bottom + 4 + KEY_ROW * row, "key", f"{label} at {clock(at)}"))
        chart.texts.append(Text(x, bottom + 14 + KEY_ROW * row, text, "key", anchor))


def timeline_chart(tl: Timeline, keys: Sequence[tuple[str, float]] = (), name: str = "run") -> Chart:
    """The Gantt-like chart of a run: phase bands, one row per step, markers, key times."""
    scale = Scale(0.0, tl.end)
    rows = _row_order(tl)
    lanes = marker_lanes(tl, scale)
    top = TOP + LANE * (lanes - 3)
    key_rows = _key_rows(scale, keys)
    under = 14 + KEY_ROW * max([2, *(row + 1 for *_, row in key_rows)])  # the key-time labels
    bottom = top + sum(PHASE_ROW if kind == "phase" else STEP_ROW for kind, _ in rows) + 2
    chart = Chart("timeline", WIDTH, bottom + under, f"Timeline of {name}", _timeline_desc(tl, keys))
    _axis(chart, scale, top, bottom)
    y = float(top)
    for _, item in rows:
        if isinstance(item, Bar):
            chart.texts.append(Text(8 + 12 * item.depth, y + 13, _row_label(item), "label st-" + item.status,
                                    title=item.title))
            _bar_shapes(chart, scale, item, y, tl.end)
            y += STEP_ROW
        else:
            _phase_shapes(chart, scale, item, y, tl.end, bottom)
            y += PHASE_ROW
    _marks(chart, scale, tl, lanes, bottom)
    _key_lines(chart, key_rows, keys, top, bottom)
    if tl.stop is not None:
        x = scale.x(tl.stop.at)
        chart.lines.append(Line(x, top - 6, x, bottom, "stop", "the journal stops here"))
        chart.texts.append(Text(x - 4, top - 8, "journal stops", "stop", "end"))
    return chart


def _phase_shapes(chart: Chart, scale: Scale, phase: object, y: float, end: float, bottom: float) -> None:
    from .timeline import PhaseSpan

    assert isinstance(phase, PhaseSpan)
    x = scale.x(phase.start)
    stop = phase.end if phase.end is not None else end
    chart.rects.append(Rect(x, y + 3, max(scale.x(stop) - x, 2.0), PHASE_ROW - 6, f"phase ph-{phase.status}",
                            f"phase {phase.phase}: {phase.status}, {dur(stop - phase.start)}"))
    chart.texts.append(Text(8 + 12 * phase.depth, y + 14, phase.phase, "phase-label"))


def _timeline_desc(tl: Timeline, keys: Sequence[tuple[str, float]]) -> str:
    ran = [b for b in tl.bars if b.status != "skipped"]
    text = (f"{len(ran)} step(s) in {len(tl.phases)} phase(s) over {dur(tl.end)}; "
            f"{sum(1 for b in ran if b.status == 'failed')} failed; {len(tl.markers)} marked event(s).")
    if keys:
        text += " " + "; ".join(f"{label} at {dur(at)}" for label, at in keys) + "."
    if tl.stop is not None:
        text += f" The journal stops at {dur(tl.stop.at)} without the run finishing."
    return text + " The same data is in the tables that follow."


# -- fan-out hosts and for_each items ------------------------------------------------------------


MAX_SUBROWS = 120  # beyond this a chart is no longer read; the table below it lists every one


def subrun_chart(bar: Bar, subs: Sequence[SubRun], kind: str) -> Chart:
    """One row per host (or item) of a step, on the step's own time span; the ones that
    did not succeed first when there are too many to draw."""
    total = len(subs)
    if total > MAX_SUBROWS:
        subs = sorted(subs, key=lambda s: s.status in ("ok", "done", "skipped"))[:MAX_SUBROWS]
    end = bar.end if bar.end is not None else max((s.end for s in subs), default=bar.start)
    scale = Scale(bar.start, max(end, bar.start + 1e-3), origin=bar.start)
    height = TOP + STEP_ROW * len(subs) + 8
    shown = f"{len(subs)} of {total}" if total > len(subs) else str(total)
    desc = f"{shown} {kind}: " + ", ".join(f"{s.name} {s.status} in {dur(s.end - s.start)}" for s in subs[:50])
    chart = Chart(f"{kind}-{_safe_id(bar.step)}", WIDTH, height, f"{kind.capitalize()} of step {bar.step}"
                  + (f" ({shown} shown)" if total > len(subs) else ""), desc)
    _axis(chart, scale, TOP, height - 8)
    for i, s in enumerate(subs):
        y = TOP + i * STEP_ROW
        chart.texts.append(Text(8, y + 13, s.name if len(s.name) <= 34 else s.name[:33] + "…", "label"))
        x = scale.x(s.start)
        cls = "bar st-" + ("ok" if s.status in ("ok", "done") else s.status) + (" estimated" if s.estimated else "")
        chart.rects.append(Rect(x, y + 3, max(scale.x(s.end) - x, 2.0), BAR, cls,
                                f"{s.name}: {s.status}, {dur(s.end - s.start)}"
                                + (f", exit code {s.exit_code}" if s.exit_code is not None else "")
                                + (f": {s.error}" if s.error else "")))
    return chart


def _safe_id(text: str) -> str:
    """An id attribute value from a step id (included steps have a `/`)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


# -- small charts for stats and the time split -----------------------------------------------------


def stacked(parts: Sequence[tuple[str, float, str]], width: float = 420, height: float = 18,
            title: str = "", ident: str = "split") -> Chart:
    """A horizontal bar split into parts (label, value, css class)."""
    total = sum(v for _, v, _ in parts) or 1.0
    chart = Chart(ident, width, height, title, "; ".join(f"{label}: {v:g}" for label, v, _ in parts))
    x = 0.0
    for label, value, cls in parts:
        w = width * value / total
        if w > 0:
            chart.rects.append(Rect(round(x, 2), 0, round(w, 2), height, cls, f"{label}: {value:g}"))
        x += w
    return chart


def sparkline(values: Sequence[float | None], ident: str, title: str, desc: str,
              width: float = 220, height: float = 40) -> Chart:
    """Points in order (oldest first) with their median as a line; None values are gaps."""
    chart = Chart(ident, width, height, title, desc)
    known = [v for v in values if v is not None]
    if not known:
        return chart
    top = max(known) or 1.0
    n = max(len(values) - 1, 1)
    for i, v in enumerate(values):
        if v is not None:
            chart.dots.append(Dot(round(4 + (width - 8) * i / n, 2), round(height - 4 - (height - 8) * v / top, 2),
                                  1.8, "spark", title=dur(v)))
    median = sorted(known)[len(known) // 2]
    y = round(height - 4 - (height - 8) * median / top, 2)
    chart.lines.append(Line(0, y, width, y, "median", f"median {dur(median)}"))
    _trend_line(chart, values, top, width, height)
    return chart


def _trend_line(chart: Chart, values: Sequence[float | None], top: float, width: float, height: float) -> None:
    """The median of each twelfth of the runs, joined: the trend the dots hide."""
    size = max(len(values) // 12, 1)
    points = []
    for start in range(0, len(values), size):
        chunk = sorted(v for v in values[start:start + size] if v is not None)
        if chunk:
            x = 4 + (width - 8) * (start + len(values[start:start + size]) / 2) / max(len(values), 1)
            points.append((round(x, 2), round(height - 4 - (height - 8) * chunk[len(chunk) // 2] / top, 2)))
    for (x1, y1), (x2, y2) in pairwise(points):
        chart.lines.append(Line(x1, y1, x2, y2, "trend"))
