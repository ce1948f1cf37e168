"""The `runbook` command: the click group, and the commands of each group module
(`authoring`, `live`, `drills`, `reports`, `service`) added to it.

Every EngineError becomes a one-line message and its exit code in one place
(`base.EngineGroup`); library code never prints or exits. Heavy modules are imported
inside commands so `runbook validate FILE` starts fast.
"""

from __future__ import annotations

import click

from engine import __version__

from . import authoring, drills, live, reports, service
from .base import EngineGroup


@click.group(cls=EngineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runbook")
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Declarative incident runbooks: validate, run, dry-run and drill them."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


for _command in (*authoring.COMMANDS, *live.COMMANDS, *drills.COMMANDS, *reports.COMMANDS, *service.COMMANDS):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="runbook")
