"""Reports as one self-contained HTML file: jinja2 templates with autoescape, inline
CSS and SVG, no network fetches (a Content-Security-Policy forbids them), print CSS,
and real text for screen readers (every chart has a title, a description and a table
with the same data).
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine import __version__

from . import chart
from ._format import clock, dur, line_numbers, one_line, pct

TEMPLATES = Path(__file__).parent / "templates"
SPARK_POINTS = 200

# Details (fan-out hosts, outputs) are folded on screen and unfolded for printing.
PRINT_SCRIPT = (
    "addEventListener('beforeprint',function(){document.querySelectorAll('details:not([open])')"
    ".forEach(function(d){d.open=true;d.setAttribute('data-print','');});});"
    "addEventListener('afterprint',function(){document.querySelectorAll('details[data-print]')"
    ".forEach(function(d){d.open=false;d.removeAttribute('data-print');});});"
)


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(PRINT_SCRIPT.encode()).digest()).decode()
    return (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{digest}'; "
            "base-uri 'none'; form-action 'none'")


def content_policy() -> str:
    """The Content-Security-Policy a report page needs (its inline style, its print script):
    what a server sending a report sends as its header."""
    return _csp()


@functools.lru_cache(maxsize=1)
def _env() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(clock=clock, dur=dur, one_line=one_line, line_numbers=line_numbers)
    env.globals.update(pct=pct, csp=_csp(), print_script=PRINT_SCRIPT, version=__version__)
    return env


def _subrun_charts(report: Any) -> Callable[[Any], dict[str, chart.Chart]]:
    """Each bar's host and item charts, looked up by the bar itself: two bars may share a
    step and a start (a journal that repeats a step at one instant), and one bar's hosts
    must never be drawn under another."""
    out: dict[int, dict[str, chart.Chart]] = {}
    for bar in report.timeline.bars:
        charts = {}
        if bar.shows_hosts:
            charts["hosts"] = chart.subrun_chart(bar, bar.hosts, "hosts")
        if bar.items:
            charts["items"] = chart.subrun_chart(bar, bar.items, "items")
        if charts:
            out[id(bar)] = charts
    return lambda bar: out.get(id(bar), {})


def render_html(report: Any) -> str:
    """The report (drill debrief or post-incident review draft) as one HTML page."""
    keys = [(k.label, k.at) for k in report.key_times if k.at is not None]
    name = f"run {report.run_id}"
    split = chart.stacked([("waiting on people", report.people_time, "seg-people"),
                           ("machine time", report.machine_time, "bar st-ok"),
                           ("retry and poll delays", report.delay_time, "seg-retry")],
                          title="Where the time went")
    return _env().get_template("report.html.j2").render(
        r=report, gantt=chart.timeline_chart(report.timeline, keys, name), split=split,
        subruns=_subrun_charts(report), stop=report.timeline.stop,
    )


def _stats_charts(stats: Any) -> list[dict[str, Any]]:
    from .stats import METRICS

    out = []
    for i, group in enumerate(stats.groups):
        ordered = sorted(group.runs, key=lambda r: (r.started or 0.0, r.run_id))
        ordered = ordered[:: -(-len(ordered) // SPARK_POINTS)]  # an even sample of at most SPARK_POINTS runs
        metric = group.headline.metric
        label = dict(METRICS)[metric]
        values = [getattr(r, metric) for r in ordered]
        spark = chart.sparkline(values, f"spark-{i}", f"Time to {label}, {group.name}",
                                f"time to {label} of {len(ordered)} run(s) from the first to the latest")
        mix = chart.stacked([(k, float(v), "out-" + k) for k, v in group.outcomes.items()], width=160, height=12,
                            title=f"Outcomes of {group.name}", ident=f"mix-{i}")
        out.append({"group": group, "spark": spark, "mix": mix, "metric_label": label})
    return out


def render_stats_html(stats: Any) -> str:
    """`runbook stats` as one HTML page: the table, with a trend line and outcome mix per row."""
    from .stats import METRICS, trend_text

    return _env().get_template("stats.html.j2").render(s=stats, rows=_stats_charts(stats), metrics=METRICS,
                                                       trend_text=trend_text)


def _coverage_row(rb: Any, runbook: Any) -> dict[str, Any]:
    from .coverage import MODES
    from .graph import build_graph
    from .graph_svg import render_svg

    marks = rb.exercised()
    ended = {mode: {s: ", ".join(f"{status} {n}" for (step, status), n in sorted(rb.tally(mode).ended.items())
                                 if step == s) for s in rb.steps} for mode in MODES}
    picture = render_svg(build_graph(runbook), marks).encode()
    return {"rb": rb, "marks": marks, "ended": ended, "svg": base64.b64encode(picture).decode()}


def render_coverage_html(cov: Any, runbooks: Any, stale: Any = None) -> str:
    """`runbook coverage` as one HTML page: per runbook its steps coloured by how they
    were exercised (live, drill, scenario, never), its branches, and its flow coloured
    the same way."""
    from .coverage import MODES
    from .coverage_formats import NAMES, alert_lines, stale_lines
    from .graph_svg import MARKED

    models = {r.id: r for r in runbooks}
    rows = [_coverage_row(rb, models[rb.id]) for rb in cov.runbooks if rb.id in models]
    return _env().get_template("coverage.html.j2").render(
        c=cov, rows=rows, modes=MODES, ran={m: any(rb.tally(m).runs for rb in cov.runbooks) for m in MODES},
        names=NAMES, marked=MARKED, notes=alert_lines(cov) + stale_lines(stale),
        pct_text=lambda v: "-" if v is None else f"{v:.0f}%")
