"""The body of `runbook run` (and what `resume` shares with it), used by the click command
(`engine.cli.live`) and by the console script's fast path (`engine.cli.entry`), so both
behave the same.

A live run is what an alert's automation starts, often many times an hour: when its
arguments are plain (`plain_run`), it starts without importing click, about a fifth of
its start-up. Anything else - help, a dry-run, an alert payload, an option click would
refuse or parse in its own way - goes to click, which owns the messages for bad usage.
"""

from __future__ import annotations

import gc
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from engine.templates.patterns import deferred

from ._code_cache import installed
from ._validate_main import use_color

# Options of `run` the fast path takes: where each goes, and what click would check of
# its value (a path that must not be a directory, or a file; None: any text).
_MANY = {"-i": "inputs", "--input": "inputs", "--answer": "answers", "--as": "people"}
_PATHS = {"--runs-dir": ("runs_dir", "dir"), "--channels": ("channels", "file"),
          "--inventory": ("inventory", "file"), "--inputs-file": ("inputs_file", "file")}
_FLAGS = {"-y": ("yes", True), "--yes": ("yes", True), "--non-interactive": ("non_interactive", True),
          "--no-rollback-on-abort": ("no_rollback_on_abort", True), "-q": ("quiet", True),
          "--quiet": ("quiet", True), "--accept-new-host-keys": ("accept_new_host_keys", True),
          "--color": ("color", True), "--no-color": ("color", False)}
# What click.echo strips from text written to something other than a terminal.
_ANSI = deferred(r"\033\[[;?0-9]*[a-zA-Z]")


def run_defaults() -> dict[str, Any]:
    """The options of `run` when none is given, as click passes them."""
    return {"inputs_file": None, "alert_file": None, "alert_index": None, "allow_resolved": False,
            "dry_run": False, "inputs": (), "answers": (), "yes": False, "people": (), "non_interactive": False,
            "runs_dir": None, "channels": None, "no_rollback_on_abort": False, "quiet": False, "inventory": None,
            "accept_new_host_keys": False, "color": None}


def plain_run(args: list[str]) -> dict[str, Any] | None:
    """The options of a live `run` when every argument is plain; None to let click decide."""
    found = run_defaults()
    paths: list[str] = []
    i = 0
    while i < len(args):
        arg, i = args[i], i + 1
        if arg == "--":
            paths += args[i:]
            break
        if not arg.startswith("-") or arg == "-":
            paths.append(arg)
            continue
        name, eq, value = arg.partition("=")
        if name in _FLAGS and not eq:
            key, flag = _FLAGS[name]
            found[key] = flag
            continue
        if name not in _MANY and name not in _PATHS:
            return None  # help, dry-run, alerts, combined short options: click's
        if not eq:
            if i >= len(args):
                return None
            value, i = args[i], i + 1
        if value.startswith("-") or not _value_ok(name, value):
            return None
        if name in _MANY:
            found[_MANY[name]] += (value,)
        else:
            found[_PATHS[name][0]] = value
    if len(paths) != 1 or paths[0] == "-" or not _path_ok(paths[0], "file"):
        return None
    found["runbook_file"] = paths[0]
    return found


def _value_ok(name: str, value: str) -> bool:
    return name not in _PATHS or _path_ok(value, _PATHS[name][1])


def _path_ok(path: str, kind: str) -> bool:
    """What click.Path checks of a path that need not exist: if it does, the right kind, readable."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return True
    wrong = stat.S_ISDIR(mode) if kind == "file" else stat.S_ISREG(mode)
    return not wrong and os.access(path, os.R_OK)


def echo_err(text: str) -> None:
    """A line on stderr, as click.echo(err=True) writes it."""
    stream = sys.stderr
    if not stream.isatty():
        text = _ANSI.sub("", text)
    stream.write(text + "\n")
    stream.flush()


def run_command(runbook_file: str, inputs_file: str | None, alert_file: str | None, alert_index: int | None,
                allow_resolved: bool, dry_run: bool, **options: Any) -> None:
    """`runbook run`: load and check the runbook and its inputs, then run it live (exits
    with the outcome's status) or print its plan."""
    with _collector_paused():  # the engine's imports and the runbook: see _collector_paused
        from engine.run import inputs as inputs_mod

        runbook = _runbook(runbook_file, keep=not dry_run)
        if runbook.library:  # it may run on its own, but the runbooks that include it give its context
            echo_err(f"runbook: warning: {runbook_file} is a library runbook (`library: true`), meant to be "
                     "included by others: it has no detection or recovery of its own")
        alert = _alert(alert_file, alert_index, interactive=sys.stdin.isatty() and not options["non_interactive"])
        _resolved_alert(alert, allow_resolved, dry_run)

        def resolve() -> Any:
            given = inputs_mod.parse_assignments(options["inputs"])
            from_file = inputs_mod.load_inputs_file(inputs_file) if inputs_file else None
            return inputs_mod.resolve(runbook, given=given, from_file=from_file, alert=alert, read_sources=not dry_run)

        resolved, answers, people = checked(runbook, options, resolve)
        if dry_run:
            _dry_run(runbook, resolved, options["inventory"])
            return
        from engine.run.session import OUTCOME_EXIT, run_live

        live = live_options(options, answers, people)
        if alert is not None:
            from engine.run.alerts import record

            live.alert = record(alert, allowed_resolved=allow_resolved)
    result, _ = run_live(runbook, resolved.values, live, secrets=tuple(resolved.secrets))
    sys.exit(OUTCOME_EXIT.get(result.outcome, 1))


def _runbook(path: str, keep: bool = True) -> Any:
    """The runbook at `path`, checked. In the command's own process, a model kept from an
    earlier run of the file as it is now (engine/language/model_cache.py) is used without
    importing the YAML reader, the schema or the builder; a program calling this in-process
    builds its models afresh, as before. Without `keep` (a dry-run, which writes nothing
    under the runbook home) no model is read or kept."""
    from engine.language import model_cache
    from engine.language.model import Runbook

    if keep and installed():
        model_cache.enable()
        found = model_cache.kept(path, Runbook)
        if found is not None:
            return found
    return load_runbook(path)


def load_runbook(path: str | os.PathLike[str]) -> Any:
    """validation.load_runbook, imported when first called: a run of a kept model that
    includes no runbook never needs it."""
    from engine.language.validation import load_runbook as load

    return load(path)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No garbage collection while a run starts. Importing the engine and loading the
    runbook allocate objects that live as long as the run (modules, classes, the model):
    the collector ran 45 times over them in a one-step run and found nothing to free.
    In the command's own process they are then frozen (gc.freeze: out of the collector's
    reach, so neither the run's collections nor the one Python makes at exit go over them
    again); 5% of a one-step run's start-up in all. A program calling this in-process
    keeps its collector as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if installed():  # the console script's process (engine/cli/entry.py)
            gc.freeze()
        if enabled:
            gc.enable()


def _dry_run(runbook: Any, resolved: Any, inventory: str | None) -> None:
    import click

    from engine.run.masking import Masker
    from engine.run.plan import build_plan, render_plan

    hosts_of = None
    if runbook.targets:
        from engine.fleet.hosts import Resolver
        from engine.fleet.pods import plan_targets

        hosts_of = plan_targets(runbook, resolved.values, Resolver(inventory).plan_hosts(runbook, resolved.values))
    click.echo(render_plan(build_plan(runbook, resolved.values, hosts_of), Masker(resolved.secrets)), nl=False)


def checked(runbook: Any, options: dict[str, Any], resolve: Any) -> tuple[Any, Any, Any]:
    """Inputs, scripted answers and participants, all checked before anything runs: every
    problem of the three is reported at once (exit 2)."""
    from engine.errors import InputError
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


def live_options(ctx_options: dict[str, Any], answers: Any, people: Any) -> Any:
    """The session's options from the command's."""
    from pathlib import Path

    from engine.run.session import LiveOptions

    interactive = sys.stdin.isatty() and not ctx_options["non_interactive"]
    return LiveOptions(
        answers=answers, yes=ctx_options["yes"], interactive=interactive, participants=people,
        runs_dir=Path(ctx_options["runs_dir"]) if ctx_options["runs_dir"] else None,
        channels=ctx_options["channels"], rollback_on_abort=not ctx_options["no_rollback_on_abort"],
        color=use_color(ctx_options["color"]), show_output=not ctx_options["quiet"],
        inventory=ctx_options["inventory"], accept_new_host_keys=ctx_options["accept_new_host_keys"],
    )


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
        echo_err(f"runbook: note: {exc} (a live run would be refused)")


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
        import click

        echo_err(str(exc).split(":", 1)[1].strip("\n").split("\n", 1)[1])
        chosen = click.prompt("Which alert?", type=click.IntRange(0, len(exc.alerts) - 1), err=True)
        return exc.alerts[chosen]
