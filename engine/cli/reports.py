"""Commands that read journals and runbooks to show them: `report`, `stats` and `graph`."""

from __future__ import annotations

import os

import click

from engine.errors import EngineError, UsageError

from .base import emit
from .stored import RunSource, database_option, exported, stored_source


@click.command()
@click.argument("source", metavar="RUN_DIR|JOURNAL", type=RunSource(exists=True))
@database_option
@click.option("-f", "--format", "fmt", type=click.Choice(["md", "html", "json"]), default="md", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the report here (default: stdout).")
@click.option("--scenario", "scenario_file", type=click.Path(dir_okay=False, exists=True),
              help="The drill's scenario file (default: found by id near the run's runbook).")
@click.option("--history", "history_dir", type=click.Path(file_okay=False, exists=True),
              help="Compare with earlier runs of the same scenario under this directory.")
@click.option("--trainer", is_flag=True,
              help="A drill's debrief for the trainer: with the scenario's description, each injected event's "
                   "kind and why each fault is there (the default debrief, for trainees, leaves them out).")
def report(source: str, database: str | None, fmt: str, output: str | None, scenario_file: str | None,
           history_dir: str | None, trainer: bool) -> None:
    """Report on a run from its journal: timeline, key times, and a drill debrief
    or a post-incident review draft (Markdown, one self-contained HTML file, or JSON).
    With --database, SOURCE is the id of a run in the service's store."""
    from engine.reporting.report import build_report

    if database:
        import dataclasses

        with exported(database, [source]) as [run_dir]:
            built = build_report(run_dir, scenario_file=scenario_file, history_dir=history_dir, trainer=trainer)
        built = dataclasses.replace(built, source=stored_source(database, source))
    else:
        built = build_report(source, scenario_file=scenario_file, history_dir=history_dir, trainer=trainer)
    if fmt == "html":
        from engine.reporting.html import render_html

        text = render_html(built)
    elif fmt == "json":
        from engine.reporting.report import render_json

        text = render_json(built)
    else:
        from engine.reporting.markdown import render_markdown

        text = render_markdown(built)
    emit(text, output)


@click.command()
@click.argument("paths", nargs=-1, type=RunSource(exists=True))
@database_option
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "html", "json"]), default="text",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the statistics here (default: stdout).")
def stats(paths: tuple[str, ...], database: str | None, fmt: str, output: str | None) -> None:
    """Statistics over many journals (run directories, searched recursively): per runbook
    and scenario, runs, outcomes, p50/p90 of the key times, and the trend. With
    --database, over the finished runs of the service's store (or the run ids given)."""
    from engine.reporting import stats as stats_mod

    if database:
        with exported(database, paths) as run_dirs:
            collected = stats_mod.collect(run_dirs)
    elif not paths:
        raise click.UsageError("Missing argument 'PATHS...' (or --database URL).")
    else:
        collected = stats_mod.collect(paths)
    if fmt == "html":
        from engine.reporting.html import render_stats_html

        text = render_stats_html(collected)
    else:
        text = stats_mod.render_json(collected) if fmt == "json" else stats_mod.render_text(collected)
    emit(text, output)


@click.command()
@click.argument("runbook_file", metavar="RUNBOOK", type=click.Path(dir_okay=False, exists=True))
@click.option("-f", "--format", "fmt", type=click.Choice(["mermaid", "dot", "svg"]), default="mermaid",
              show_default=True, help="Mermaid or Graphviz text, or an SVG picture (no Graphviz needed).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the diagram here (default: stdout).")
@click.option("--no-includes", is_flag=True, help="Show included runbooks as one node, not expanded.")
def graph(runbook_file: str, fmt: str, output: str | None, no_includes: bool) -> None:
    """Draw a runbook's flow (phases, steps, conditions, rollbacks, includes) as Mermaid,
    Graphviz DOT, or a self-contained SVG picture to open in a browser."""
    from engine.language.validation import load_runbook
    from engine.reporting.graph import build_graph, render_dot, render_mermaid

    flow = build_graph(load_runbook(runbook_file), expand_includes=not no_includes)
    if fmt == "svg":
        from engine.reporting.graph_svg import render_svg

        text = render_svg(flow)
    else:
        text = render_dot(flow) if fmt == "dot" else render_mermaid(flow)
    emit(text, output)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--journals", "journal_dirs", multiple=True, type=click.Path(exists=True),
              help="Run directories or journals to count (repeatable; default: $RUNBOOK_HOME/runs).")
@click.option("--database", metavar="URL",
              help="Count the finished runs of the service's store too (postgresql://... or sqlite:///...).")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json", "md", "html"]), default="text",
              show_default=True, help="html: one page, each runbook's steps and flow coloured by how they ran.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the coverage here (default: stdout).")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(exists=True),
              help="Prometheus rule files (groups, or Kubernetes PrometheusRule resources), or directories of them.")
@click.option("--require-runbook", is_flag=True, help="Exit 1 when an alert of the rule files has no runbook.")
@click.option("--stale-days", type=click.FloatRange(min=0), default=90.0, show_default=True,
              help="Name the commands not seen succeeding in a live run for this many days.")
@click.option("--fail-under", type=click.FloatRange(0, 100), metavar="PERCENT",
              help="Exit 1 when branch coverage by scenarios is under PERCENT.")
def coverage(paths: tuple[str, ...], journal_dirs: tuple[str, ...], database: str | None, fmt: str,
             output: str | None, rule_paths: tuple[str, ...], require_runbook: bool, stale_days: float,
             fail_under: float | None) -> None:
    """How much of each runbook (PATHS: files or directories, default ./runbooks and
    ./scenarios) its journals exercised: the steps that ran and how they ended, and the
    branches taken (`when` true and false, each switch case and default, approved and
    refused, retried, rolled back, for_each with items and with none), for scenarios
    (`runbook test`), drills and live runs apart; a journal counts for the version of the
    runbook it ran (its digest). A branch the runbook declares unreachable (`# runbook:
    unreachable[LABEL] why` on the step) is left out and listed. With --database, the runs of the
    service's store are counted too. With --rules, alert coverage: alerts with no runbook
    (by the runbook's `alerts:` or the rule's runbook_url), runbooks whose alerts are in
    no rule file. Staleness: each runbook's last live run, drill and test, its commands not
    seen succeeding live for --stale-days, and the scenarios whose runbook changed since
    they last passed. Exit 1 under --fail-under, or with --require-runbook when an alert has
    no runbook."""
    from engine.home import home
    from engine.reporting import coverage as cov_mod
    from engine.reporting import coverage_formats as out
    from engine.reporting.catalog import load_catalog

    sources = load_catalog(paths or [p for p in ("runbooks", "scenarios") if os.path.isdir(p)])
    if not sources.runbooks:
        raise UsageError("no runbooks found in " + ", ".join(paths or ("runbooks",)))
    # The run directories of this machine (unless others are named), and the store's runs.
    dirs = [d for d in (list(journal_dirs) or [str(home() / "runs")]) if os.path.exists(d)]
    if database:
        with exported(database, ()) as run_dirs:
            collected = cov_mod.collect(sources.runbooks, [*dirs, *run_dirs])
    else:
        collected = cov_mod.collect(sources.runbooks, dirs)
    collected = cov_mod.with_scenarios(collected, sources.scenarios)
    if require_runbook and not rule_paths:
        raise UsageError("--require-runbook needs --rules FILE|DIR (the alerts to check)")
    if rule_paths:
        from engine.reporting.alert_rules import read_all

        collected = cov_mod.with_alerts(collected, *read_all(rule_paths))
    import time

    from engine.reporting.staleness import staleness

    stale = staleness(collected, sources.scenarios, stale_days, time.time())
    if fmt == "html":
        from engine.reporting.html import render_coverage_html

        emit(render_coverage_html(collected, sources.models(), stale), output)
    else:
        render = {"json": out.render_json, "md": out.render_markdown}.get(fmt, out.render_text)
        emit(render(collected, stale), output)
    scenarios = collected.percent("test")
    if fail_under is not None and (scenarios or 0.0) < fail_under:
        raise CoverageShort(f"branch coverage by scenarios is {scenarios or 0.0:.1f}%, under {fail_under:g}%")
    unowned = collected.alerts.unowned if collected.alerts is not None else []
    if require_runbook and unowned:
        raise CoverageShort(f"{len(unowned)} alert(s) have no runbook: " + ", ".join(sorted({r.name for r in unowned})))


class CoverageShort(EngineError):
    """A coverage gate was not met (exit 1)."""

    exit_code = 1


COMMANDS = (report, stats, graph, coverage)
