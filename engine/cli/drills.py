"""Commands of drills and scenario tests: `test`, `drill` and `scenario from-run`."""

from __future__ import annotations

import sys
from typing import Any

import click

from engine.errors import UsageError

from ._validate_main import write_report
from .base import emit, use_color
from .stored import RunSource, database_option, exported


@click.command("test")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--junit", type=click.Path(dir_okay=False), help="Write a JUnit XML report here.")
@click.option("--seed", type=int, help="Seed for random durations (default: the scenario's, else 0).")
@click.option("--trials", type=click.IntRange(min=1),
              help="Run N seeded trials per scenario and report p50/p90/p99 of each timing.")
@click.option("--runs-dir", type=click.Path(file_okay=False),
              help="Also write each scenario's journal here (with --trials: DIR/<scenario>/trial-<n>/).")
@click.option("--min-pass-rate", type=click.FloatRange(0, 100), default=100.0, show_default=True,
              help="With --trials: the percentage of trials that must meet every objective.")
@click.option("--jobs", type=click.IntRange(min=1),
              help="With --trials: processes to spread the trials over (default: CPUs, from 64 trials).")
@click.option("--color/--no-color", default=None)
def test_cmd(paths: tuple[str, ...], junit: str | None, seed: int | None, trials: int | None,
             runs_dir: str | None, min_pass_rate: float, jobs: int | None, color: bool | None) -> None:
    """Run scenarios unattended on a virtual clock; objectives are assertions.

    Exit 0 when every scenario passes (with --trials: reaches the minimum pass rate),
    1 when any fails, 2 on usage errors.
    """
    from pathlib import Path

    from engine.simulation.suite import junit as junit_xml
    from engine.simulation.suite import render_suite, run_suite, scenario_files

    files = scenario_files(paths or ("scenarios",))
    if not files:
        raise UsageError("no scenario files found in " + ", ".join(paths or ("scenarios",)))
    where = Path(runs_dir) if runs_dir else None
    color_on = use_color(color, sys.stdout)
    if trials:
        from engine.simulation.trials import render_trial_suite, run_trial_suite

        suite: Any = run_trial_suite(files, trials, seed=seed, runs_dir=where, min_pass_rate=min_pass_rate,
                                     jobs=jobs)
        click.echo(render_trial_suite(suite, color=color_on), nl=False)
    else:
        suite = run_suite(files, seed=seed, runs_dir=where)
        click.echo(render_suite(suite, color=color_on), nl=False)
    if junit:
        write_report(junit, junit_xml(suite))
    sys.exit(1 if suite.failed else 0)


@click.command()
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
@click.option("--channels", type=click.Path(dir_okay=False),
              help="Channels config (default $RUNBOOK_CHANNELS, else channels.yaml in the runbook home): "
                   "the journal says what each message would have been (a PagerDuty trigger, a mail to whom); "
                   "nothing is sent.")
@click.option("--color/--no-color", default=None)
def drill(scenario_file: str, participants: tuple[str, ...], roles: tuple[str, ...], speed: float,
          seed: int | None, runs_dir: str | None, scripted: bool, channels: str | None, color: bool | None) -> None:
    """Run a game-day drill: the team works the runbook against a simulated failure.

    Nothing real is touched: no page, mail or message is sent. At any prompt, `hint` shows the step's hint; the trainer
    can type :pause, :resume, :inject N, :inject TEXT, :end. A scorecard ends the drill.
    """
    from pathlib import Path

    from engine.executors.notify import load_channels
    from engine.home import home
    from engine.language.validation import load_runbook, load_scenario
    from engine.run.session import RUNS
    from engine.simulation.trainer import DrillOptions, run_drill

    scenario = load_scenario(scenario_file)
    runbook = load_runbook(scenario.runbook_path)
    people = _people(tuple(_pair(p, roles, i) for i, p in enumerate(participants)), runbook.roles)
    options = DrillOptions(people, speed, seed, Path(runs_dir) if runs_dir else home() / RUNS,
                           use_color(color, sys.stdout), scripted=scripted, channels=load_channels(channels))
    result, _ = run_drill(scenario, runbook, options)
    sys.exit(0 if result.scorecard.passed else 1)


def _people(pairs: tuple[str, ...], roles: tuple[str, ...]) -> tuple[Any, ...]:
    from engine.errors import InputError
    from engine.run.answers import parse_participants

    people, problems = parse_participants(pairs, roles, flag="--participant")
    if problems:
        raise InputError.cannot_start(problems)
    return people


def _pair(participant: str, roles: tuple[str, ...], index: int) -> str:
    if ":" in participant or index >= len(roles):
        return participant
    return f"{participant}:{roles[index]}"


@click.group()
def scenario() -> None:
    """Work with scenario files."""


@scenario.command("from-run")
@click.argument("run_dir", type=RunSource(file_okay=False, exists=True))
@database_option
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the scenario here (default: stdout).")
def from_run(run_dir: str, database: str | None, output: str | None) -> None:
    """Turn a recorded live run into a scenario that replays it (a past incident as a drill).
    With --database, RUN_DIR is the id of a run in the service's store."""
    from engine.simulation.replay import dump, scenario_from_run

    if database:
        with exported(database, [run_dir]) as [exported_dir]:
            emit(dump(scenario_from_run(exported_dir, output)), output)
        return
    emit(dump(scenario_from_run(run_dir, output)), output)


COMMANDS = (test_cmd, drill, scenario)
