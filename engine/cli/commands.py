"""The `runbook` command: parse arguments, call the library, print, exit.

Every EngineError becomes a one-line message and its exit code here, in one place;
library code never prints or exits. Heavy modules are imported inside commands so
`runbook validate FILE` starts fast.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import click

from engine import __version__
from engine.errors import EngineError

EXIT_INTERNAL = 70
FORMATS = ("text", "json", "github", "sarif", "junit")  # as _validate_main.FORMATS


class _Group(click.Group):
    """Maps engine errors to messages and exit codes; no traceback unless --debug."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EngineError as exc:
            _fail(ctx, str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail(ctx, "interrupted", 130)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # a bug: say so plainly, keep the trace for --debug
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()
            _fail(ctx, f"internal error: {type(exc).__name__}: {exc} "
                       "(run with --debug for a traceback)", EXIT_INTERNAL)


def _fail(ctx: click.Context, message: str, code: int) -> None:
    if ctx.obj and ctx.obj.get("debug") and sys.exc_info()[0] is not None:
        traceback.print_exc()
    click.echo(f"runbook: error: {message}", err=True)
    ctx.exit(code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runbook")
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Declarative incident runbooks: validate, run, dry-run and drill them."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _write(path: str, text: str) -> None:
    from ._validate_main import write_report

    write_report(path, text)


def _use_color(flag: bool | None, stream: Any) -> bool:
    if flag is not None:
        return flag
    return "NO_COLOR" not in os.environ and bool(getattr(stream, "isatty", lambda: False)())


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("-f", "--format", "fmt", type=click.Choice(FORMATS), default="text",
              show_default=True, help="Output format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True),
              help="Write the report to this file instead of standard output.")
@click.option("--strict", is_flag=True, help="Warnings fail too (exit 1).")
@click.option("--jobs", type=click.IntRange(min=1), help="Processes to use (default: CPUs).")
@click.option("--inventory", type=click.Path(dir_okay=False), envvar="RUNBOOK_INVENTORY",
              help="Check `group:` targets against this inventory (or $RUNBOOK_INVENTORY).")
@click.option("--channels", type=click.Path(dir_okay=False),
              help="Check channel names against this channels config (default: $RUNBOOK_CHANNELS, "
                   "else channels.yaml in the runbook home, if there is one).")
@click.option("--color/--no-color", default=None, help="Colour the text format.")
@click.option("--no-cache", "no_cache", is_flag=True,
              help="Check every file again (results of unchanged files are otherwise reused).")
def validate(paths: tuple[str, ...], fmt: str, output: str | None, strict: bool,
             jobs: int | None, inventory: str | None, channels: str | None, color: bool | None,
             no_cache: bool) -> None:
    """Check runbook and scenario files (and directories, recursively).

    Every problem in every file is reported at once, sorted by position. Exit 0 when
    clean, 1 when errors were found (warnings too with --strict), 2 on usage or I/O errors.
    """
    from ._validate_main import run_validate

    sys.exit(run_validate(paths, fmt=fmt, output=output, strict=strict, jobs=jobs, inventory=inventory,
                          color=color, cache=False if no_cache else None, channels=channels))


@cli.command()
@click.argument("kind", type=click.Choice(["runbook", "scenario", "inventory"]))
def schema(kind: str) -> None:
    """Print the JSON Schema of a runbook, scenario or inventory file."""
    from engine.language.schema import schema_path

    with open(schema_path(kind), encoding="utf-8") as handle:
        click.echo(handle.read(), nl=False)


@cli.command()
@click.argument("name")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="File to write (default: runbooks/NAME.yaml, or ./NAME.yaml).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def new(name: str, output: str | None, force: bool) -> None:
    """Create a new runbook skeleton that validates cleanly."""
    from engine.language.scaffold import write_runbook

    path = write_runbook(name, output, force=force)
    click.echo(f"created {path}")
    click.echo(f"next: edit it, then `runbook validate {path}`")


@cli.command()
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def rules(fmt: str) -> None:
    """List every validation rule with its id and rationale."""
    import json

    from engine.language.diagnostics import rule_catalog

    catalog = rule_catalog()
    if fmt == "json":
        click.echo(json.dumps(catalog, indent=2))
        return
    for rid, info in sorted(catalog.items()):
        click.echo(f"{rid}  {info['severity']:<7}  {info['name']:<28} {info['rationale']}")


# -- live runs -------------------------------------------------------------------------------------


def _run_options(f: Any) -> Any:
    """Options shared by `run` and `resume`."""
    options = [
        click.option("-i", "--input", "inputs", multiple=True, metavar="NAME=VALUE",
                     help="An input value (repeatable)."),
        click.option("--answer", "answers", multiple=True, metavar="STEP.FIELD=VALUE",
                     help="Answer a manual step's question without asking (repeatable)."),
        click.option("-y", "--yes", is_flag=True,
                     help="Approve confirmations and acknowledge manual steps (unattended runs)."),
        click.option("--as", "people", multiple=True, metavar="NAME:ROLE",
                     help="A participant and their role (repeatable); recorded in the journal."),
        click.option("--non-interactive", is_flag=True,
                     help="Never prompt, even on a terminal: answers come from flags."),
        click.option("--runs-dir", type=click.Path(file_okay=False),
                     help="Where run directories go (default .runbook/runs, or $RUNBOOK_HOME/runs)."),
        click.option("--channels", type=click.Path(dir_okay=False),
                     help="Notification channels config (default $RUNBOOK_CHANNELS, else channels.yaml in "
                          "$RUNBOOK_HOME or ./.runbook)."),
        click.option("--no-rollback-on-abort", is_flag=True,
                     help="When the run is aborted (Ctrl-C, SIGTERM), do not run rollbacks."),
        click.option("-q", "--quiet", is_flag=True, help="Do not stream command output to the console."),
        click.option("--inventory", type=click.Path(dir_okay=False),
                     help="Inventory for `group:` targets (or $RUNBOOK_INVENTORY)."),
        click.option("--accept-new-host-keys", is_flag=True,
                     help="Trust and record SSH host keys seen for the first time (never changed ones)."),
        click.option("--color/--no-color", default=None, help="Colour the console."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _people(pairs: tuple[str, ...], roles: tuple[str, ...]) -> tuple[Any, ...]:
    from engine.errors import InputError
    from engine.run.answers import parse_participants

    people, problems = parse_participants(pairs, roles)
    if problems:
        raise InputError.cannot_start(problems)
    return people


def _checked(runbook: Any, options: dict[str, Any], resolve: Any) -> tuple[Any, Any, Any]:
    """Inputs, scripted answers and participants, all checked before anything runs: every
    problem of the three is reported at once (exit 2)."""
    from engine.errors import InputError
    from engine.language.validation import load_runbook
    from engine.run.answers import check_answers, parse_answers, parse_participants

    problems: list[str] = []
    resolved = None
    try:
        resolved = resolve()
    except InputError as exc:
        problems += exc.problems
    answers, bad = parse_answers(options["answers"])
    problems += bad + check_answers(runbook, answers, load_runbook)
    people, bad = parse_participants(options["people"], runbook.roles)
    if problems or bad:
        raise InputError.cannot_start(problems + bad)
    return resolved, answers, people


def _live_options(ctx_options: dict[str, Any], answers: Any, people: Any) -> Any:
    from pathlib import Path

    from engine.run.session import LiveOptions

    interactive = sys.stdin.isatty() and not ctx_options["non_interactive"]
    return LiveOptions(
        answers=answers, yes=ctx_options["yes"], interactive=interactive, participants=people,
        runs_dir=Path(ctx_options["runs_dir"]) if ctx_options["runs_dir"] else None,
        channels=ctx_options["channels"], rollback_on_abort=not ctx_options["no_rollback_on_abort"],
        color=_use_color(ctx_options["color"], sys.stdout), show_output=not ctx_options["quiet"],
        inventory=ctx_options["inventory"], accept_new_host_keys=ctx_options["accept_new_host_keys"],
    )


def _load_runbook(path: str) -> Any:
    from engine.language.validation import load_runbook

    return load_runbook(path)


@cli.command()
@click.argument("runbook_file", metavar="RUNBOOK", type=click.Path(dir_okay=False))
@click.option("--inputs-file", type=click.Path(dir_okay=False), help="YAML/JSON mapping of inputs.")
@click.option("--alert", "alert_file", type=click.Path(dir_okay=False),
              help="An Alertmanager webhook payload (or one alert) that fills inputs declaring `alert:`.")
@click.option("--alert-index", type=click.IntRange(min=0), help="Which alert of the payload to use.")
@click.option("--allow-resolved", is_flag=True,
              help="Run even though the --alert is resolved (refused otherwise: exit 2).")
@click.option("--dry-run", is_flag=True, help="Print the rendered plan; execute nothing.")
@_run_options
def run(runbook_file: str, inputs_file: str | None, alert_file: str | None, alert_index: int | None,
        allow_resolved: bool, dry_run: bool, **options: Any) -> None:
    """Run a runbook: live, or with --dry-run as a rendered plan.

    Exit status: 0 resolved, 1 failed, 5 not confirmed, 6 escalated, 7 refused, 130 aborted,
    2 invalid runbook, inputs or answers, 3 journal error, 4 another run holds the lock.
    """
    from engine.run import inputs as inputs_mod
    from engine.run.masking import Masker

    runbook = _load_runbook(runbook_file)
    alert = _alert(alert_file, alert_index, interactive=sys.stdin.isatty() and not options["non_interactive"])
    _resolved_alert(alert, allow_resolved, dry_run)

    def resolve() -> Any:
        given = inputs_mod.parse_assignments(options["inputs"])
        from_file = inputs_mod.load_inputs_file(inputs_file) if inputs_file else None
        return inputs_mod.resolve(runbook, given=given, from_file=from_file, alert=alert)

    resolved, answers, people = _checked(runbook, options, resolve)
    if dry_run:
        from engine.run.plan import build_plan, render_plan

        hosts_of = None
        if runbook.targets:
            from engine.fleet.hosts import Resolver

            hosts_of = Resolver(options["inventory"]).plan_hosts(runbook, resolved.values)
        click.echo(render_plan(build_plan(runbook, resolved.values, hosts_of), Masker(resolved.secrets)), nl=False)
        return
    from engine.run.session import OUTCOME_EXIT, run_live

    live = _live_options(options, answers, people)
    if alert is not None:
        from engine.run.alerts import record

        live.alert = record(alert, allowed_resolved=allow_resolved)
    result, _ = run_live(runbook, resolved.values, live, secrets=tuple(resolved.secrets))
    sys.exit(OUTCOME_EXIT.get(result.outcome, 1))


def _resolved_alert(alert: Any, allowed: bool, dry_run: bool) -> None:
    """A resolved alert starts nothing unless allowed; a dry-run (which starts nothing) says so."""
    if alert is None:
        return
    from engine.run.alerts import ResolvedAlert, refuse_resolved

    try:
        refuse_resolved(alert, allowed=allowed)
    except ResolvedAlert as exc:
        if not dry_run:
            raise
        click.echo(f"runbook: note: {exc} (a live run would be refused)", err=True)


def _alert(path: str | None, index: int | None, *, interactive: bool) -> Any:
    if path is None:
        return None
    from engine.run import alerts

    payload = alerts.read_payload(path)
    try:
        return alerts.choose(payload, index)
    except alerts.AmbiguousAlert as exc:
        if not interactive:
            raise
        click.echo(str(exc).split(":", 1)[1].strip("\n").split("\n", 1)[1], err=True)
        chosen = click.prompt("Which alert?", type=click.IntRange(0, len(exc.alerts) - 1), err=True)
        return exc.alerts[chosen]


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--rerun-failed", is_flag=True,
              help="Run again the step that stopped the run (it failed, was aborted or refused).")
@click.option("--skip", "skip", multiple=True, metavar="STEP",
              help="Do not run STEP (e.g. it was done by hand); journaled as skipped (repeatable).")
@click.option("--from", "from_step", metavar="STEP",
              help="Continue at STEP: it and every step after it run, even those that ran before.")
@click.option("--reason", help="Why the run is resumed (recorded; asked on a terminal when missing).")
@click.option("--rerun-interrupted", "rerun", flag_value=True, default=None,
              help="Run again a step the engine was running when it died.")
@click.option("--skip-interrupted", "rerun", flag_value=False,
              help="Skip a step the engine was running when it died.")
@click.option("--wait-running", "running", flag_value="wait", default=None,
              help="A command the dead engine started still runs: wait for it to end first.")
@click.option("--stop-running", "running", flag_value="stop",
              help="A command the dead engine started still runs: stop its whole process group first.")
@_run_options
def resume(run_dir: str, rerun_failed: bool, skip: tuple[str, ...], from_step: str | None, reason: str | None,
           rerun: bool | None, running: str | None, **options: Any) -> None:
    """Continue a run that crashed, failed, was aborted or refused, from its journal.

    Completed steps are never run again. The step that stopped the run runs again only
    when you say so (asked on a terminal; --rerun-failed or --skip STEP otherwise). If the
    earlier attempt rolled back completed steps, say where to continue with --from STEP.
    """
    from pathlib import Path

    from engine.run import inputs as inputs_mod
    from engine.run.continuation import Choices
    from engine.run.recovery import recover
    from engine.run.session import OUTCOME_EXIT, resume_run

    directory = Path(run_dir)
    recovered = recover(directory)
    runbook = _load_runbook(recovered.runbook_file)
    given = {**recovered.inputs, **inputs_mod.parse_assignments(options["inputs"])}
    resolved, answers, people = _checked(runbook, options, lambda: inputs_mod.resolve(runbook, from_file=given))
    live = _live_options(options, answers, people)
    choices = Choices(from_step, skip, rerun_failed, rerun, reason, people[0].name if people else None, running)
    result = resume_run(directory, runbook, recovered, resolved.values, live, choices,
                        secrets=tuple(resolved.secrets))
    sys.exit(OUTCOME_EXIT.get(result.outcome, 1))


@cli.command()
@click.option("--runs-dir", type=click.Path(file_okay=False), help="Default .runbook/runs.")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("-n", "--limit", type=click.IntRange(min=1), default=50, show_default=True)
def runs(runs_dir: str | None, fmt: str, limit: int) -> None:
    """List recent runs with their outcome and duration."""
    import json
    from pathlib import Path

    from engine.home import home
    from engine.run.history import list_runs, runs_table
    from engine.run.session import RUNS

    found = list_runs(Path(runs_dir) if runs_dir else home() / RUNS, limit)
    if fmt == "json":
        click.echo(json.dumps([r.__dict__ for r in found], indent=2, default=str))
        return
    if not found:
        click.echo("no runs yet")
        return
    for line in runs_table(found):
        click.echo(line)


# -- drills and scenario tests ----------------------------------------------------------------------


@cli.command("test")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--junit", type=click.Path(dir_okay=False), help="Write a JUnit XML report here.")
@click.option("--seed", type=int, help="Seed for random durations (default: the scenario's, else 0).")
@click.option("--trials", type=click.IntRange(min=1),
              help="Run N seeded trials per scenario and report p50/p90/p99 of each timing.")
@click.option("--runs-dir", type=click.Path(file_okay=False),
              help="Also write each scenario's journal here (with --trials: DIR/<scenario>/trial-<n>/).")
@click.option("--min-pass-rate", type=click.FloatRange(0, 100), default=100.0, show_default=True,
              help="With --trials: the percentage of trials that must meet every objective.")
@click.option("--color/--no-color", default=None)
def test_cmd(paths: tuple[str, ...], junit: str | None, seed: int | None, trials: int | None,
             runs_dir: str | None, min_pass_rate: float, color: bool | None) -> None:
    """Run scenarios unattended on a virtual clock; objectives are assertions.

    Exit 0 when every scenario passes (with --trials: reaches the minimum pass rate),
    1 when any fails, 2 on usage errors.
    """
    from pathlib import Path

    from engine.simulation.suite import junit as junit_xml
    from engine.simulation.suite import render_suite, run_suite, scenario_files

    files = scenario_files(paths or ("scenarios",))
    if not files:
        raise _usage("no scenario files found in " + ", ".join(paths or ("scenarios",)))
    where = Path(runs_dir) if runs_dir else None
    color_on = _use_color(color, sys.stdout)
    if trials:
        from engine.simulation.trials import render_trial_suite, run_trial_suite

        suite: Any = run_trial_suite(files, trials, seed=seed, runs_dir=where, min_pass_rate=min_pass_rate)
        click.echo(render_trial_suite(suite, color=color_on), nl=False)
    else:
        suite = run_suite(files, seed=seed, runs_dir=where)
        click.echo(render_suite(suite, color=color_on), nl=False)
    if junit:
        _write(junit, junit_xml(suite))
    sys.exit(1 if suite.failed else 0)


def _usage(message: str) -> Exception:
    from engine.errors import UsageError

    return UsageError(message)


@cli.command()
@click.argument("scenario_file", metavar="SCENARIO", type=click.Path(dir_okay=False, exists=True))
@click.option("--participant", "participants", multiple=True, metavar="NAME[:ROLE]",
              help="A participant (repeatable); pair with --role or write NAME:ROLE.")
@click.option("--role", "roles", multiple=True, help="The role of the participant at the same position.")
@click.option("--speed", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="Run simulated durations this many times faster.")
@click.option("--seed", type=int, help="Seed for random durations.")
@click.option("--runs-dir", type=click.Path(file_okay=False), help="Where the drill's journal goes.")
@click.option("--scripted", is_flag=True,
              help="Let the scenario's scripted participants answer (a demo, or rehearsing the script).")
@click.option("--color/--no-color", default=None)
def drill(scenario_file: str, participants: tuple[str, ...], roles: tuple[str, ...], speed: float,
          seed: int | None, runs_dir: str | None, scripted: bool, color: bool | None) -> None:
    """Run a game-day drill: the team works the runbook against a simulated failure.

    Nothing real is touched. At any prompt, `hint` shows the step's hint; the trainer
    can type :pause, :resume, :inject N, :inject TEXT, :end. A scorecard ends the drill.
    """
    from pathlib import Path

    from engine.home import home
    from engine.language.validation import load_runbook, load_scenario
    from engine.run.session import RUNS
    from engine.simulation.trainer import DrillOptions, run_drill

    scenario = load_scenario(scenario_file)
    runbook = load_runbook(scenario.runbook_path)
    people = _people(tuple(_pair(p, roles, i) for i, p in enumerate(participants)), runbook.roles)
    options = DrillOptions(people, speed, seed, Path(runs_dir) if runs_dir else home() / RUNS,
                           _use_color(color, sys.stdout), scripted=scripted)
    result, _ = run_drill(scenario, runbook, options)
    sys.exit(0 if result.scorecard.passed else 1)


def _pair(participant: str, roles: tuple[str, ...], index: int) -> str:
    if ":" in participant or index >= len(roles):
        return participant
    return f"{participant}:{roles[index]}"


@cli.group()
def scenario() -> None:
    """Work with scenario files."""


@scenario.command("from-run")
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the scenario here (default: stdout).")
def from_run(run_dir: str, output: str | None) -> None:
    """Turn a recorded live run into a scenario that replays it (a past incident as a drill)."""
    from engine.simulation.replay import dump, scenario_from_run

    text = dump(scenario_from_run(run_dir, output))
    if output:
        _write(output, text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


# -- reports ------------------------------------------------------------------------------------------


def _emit(text: str, output: str | None) -> None:
    if output:
        _write(output, text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


@cli.command()
@click.argument("source", metavar="RUN_DIR|JOURNAL", type=click.Path(exists=True))
@click.option("-f", "--format", "fmt", type=click.Choice(["md", "html", "json"]), default="md", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the report here (default: stdout).")
@click.option("--scenario", "scenario_file", type=click.Path(dir_okay=False, exists=True),
              help="The drill's scenario file (default: found by id near the run's runbook).")
@click.option("--history", "history_dir", type=click.Path(file_okay=False, exists=True),
              help="Compare with earlier runs of the same scenario under this directory.")
@click.option("--trainer", is_flag=True,
              help="A drill's debrief for the trainer: with the scenario's description, each injected event's "
                   "kind and why each fault is there (the default debrief, for trainees, leaves them out).")
def report(source: str, fmt: str, output: str | None, scenario_file: str | None, history_dir: str | None,
           trainer: bool) -> None:
    """Report on a run from its journal: timeline, key times, and a drill debrief
    or a post-incident review draft (Markdown, one self-contained HTML file, or JSON)."""
    from engine.reporting.report import build_report

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
    _emit(text, output)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "html", "json"]), default="text",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the statistics here (default: stdout).")
def stats(paths: tuple[str, ...], fmt: str, output: str | None) -> None:
    """Statistics over many journals (run directories, searched recursively): per runbook
    and scenario, runs, outcomes, p50/p90 of the key times, and the trend."""
    from engine.reporting import stats as stats_mod

    collected = stats_mod.collect(paths)
    if fmt == "html":
        from engine.reporting.html import render_stats_html

        text = render_stats_html(collected)
    else:
        text = stats_mod.render_json(collected) if fmt == "json" else stats_mod.render_text(collected)
    _emit(text, output)


@cli.command()
@click.argument("runbook_file", metavar="RUNBOOK", type=click.Path(dir_okay=False, exists=True))
@click.option("-f", "--format", "fmt", type=click.Choice(["mermaid", "dot", "svg"]), default="mermaid",
              show_default=True, help="Mermaid or Graphviz text, or an SVG picture (no Graphviz needed).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the diagram here (default: stdout).")
@click.option("--no-includes", is_flag=True, help="Show included runbooks as one node, not expanded.")
def graph(runbook_file: str, fmt: str, output: str | None, no_includes: bool) -> None:
    """Draw a runbook's flow (phases, steps, conditions, rollbacks, includes) as Mermaid,
    Graphviz DOT, or a self-contained SVG picture to open in a browser."""
    from engine.reporting.graph import build_graph, render_dot, render_mermaid

    flow = build_graph(_load_runbook(runbook_file), expand_includes=not no_includes)
    if fmt == "svg":
        from engine.reporting.graph_svg import render_svg

        text = render_svg(flow)
    else:
        text = render_dot(flow) if fmt == "dot" else render_mermaid(flow)
    _emit(text, output)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="runbook")
