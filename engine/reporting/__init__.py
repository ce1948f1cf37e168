"""Reporting: everything built from journals alone. `report` assembles one run's report
from its parts (`timeline`, a drill's `debrief`, a live run's `review`); `markdown`,
`html` and `chart` render it (JSON is `report.render_json`); `stats` reads many journals
(found by `journals`) for statistics across runs, and `coverage` (each run's
`exercise`, rendered by `coverage_formats`; branches declared `unreachable`) for how
much of each runbook (outlined by `catalog`) they exercised
(and, with Prometheus rule files read by `alert_rules`, which alerts have a runbook;
`staleness` what has gone stale); `graph`, `graph_layout` and
`graph_svg` draw a runbook's flow; `synthetic` writes realistic journals for benchmarks.
The parts never import the assembler: what they share (`_format`) sits below them all.

Layer: above simulation (a debrief scores a drill). It may import `engine.simulation`
and everything below; never the CLI.
"""

__all__ = [
    "alert_rules",
    "catalog",
    "chart",
    "coverage",
    "coverage_formats",
    "debrief",
    "exercise",
    "graph",
    "graph_layout",
    "graph_svg",
    "html",
    "journals",
    "markdown",
    "report",
    "review",
    "staleness",
    "stats",
    "synthetic",
    "timeline",
    "unreachable",
]
