"""Commands of live runs: `run` (and its --dry-run), `resume` and `runs`."""

from __future__ import annotations

import sys
from typing import Any

import click

from ._run_main import checked, live_options, run_command


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


@click.command()
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
    run_command(runbook_file, inputs_file, alert_file, alert_index, allow_resolved, dry_run, **options)


@click.command()
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

    from engine.language.validation import load_runbook
    from engine.run import inputs as inputs_mod
    from engine.run.continuation import Choices
    from engine.run.recovery import recover
    from engine.run.session import OUTCOME_EXIT, resume_run

    directory = Path(run_dir)
    recovered = recover(directory)
    runbook = load_runbook(recovered.runbook_file)
    given = {**recovered.inputs, **inputs_mod.parse_assignments(options["inputs"])}
    resolved, answers, people = checked(runbook, options, lambda: inputs_mod.resolve(runbook, from_file=given))
    live = live_options(options, answers, people)
    live.alert = recovered.alert  # `run.alert` is still the alert that started the run
    choices = Choices(from_step, skip, rerun_failed, rerun, reason, people[0].name if people else None, running)
    result = resume_run(directory, runbook, recovered, resolved.values, live, choices,
                        secrets=tuple(resolved.secrets))
    sys.exit(OUTCOME_EXIT.get(result.outcome, 1))


@click.command()
@click.option("--runs-dir", type=click.Path(file_okay=False), help="Default .runbook/runs.")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("-n", "--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--database", metavar="URL", help="List the runs of the service's store instead.")
def runs(runs_dir: str | None, fmt: str, limit: int, database: str | None) -> None:
    """List recent runs with their outcome and duration."""
    import json
    from pathlib import Path

    from engine.home import home
    from engine.run.history import list_runs, runs_table
    from engine.run.session import RUNS

    from .stored import stored_runs

    if database:
        found = stored_runs(database, limit)
    else:
        found = list_runs(Path(runs_dir) if runs_dir else home() / RUNS, limit)
    if fmt == "json":
        click.echo(json.dumps([r.__dict__ for r in found], indent=2, default=str))
        return
    if not found:
        click.echo("no runs yet")
        return
    for line in runs_table(found):
        click.echo(line)


COMMANDS = (run, resume, runs)
