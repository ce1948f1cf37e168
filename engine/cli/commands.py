"""The `runbook` command: the click group, and the commands of each group module
(`authoring`, `live`, `drills`, `reports`, `service`) added to it.

Every EngineError becomes a one-line message and its exit code in one place
(`base.EngineGroup`); library code never prints or exits. Heavy modules are imported
inside commands so `runbook validate FILE` starts fast, and a command's module is
imported only when that command runs (or help lists them all): `runbook run` does not
load the reports', drills', authoring and service commands and what they import.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from engine import __version__

from .base import EngineGroup

MODULES = ("authoring", "live", "drills", "reports", "service", "people")
# Where each command is. A command missing here is still found (every module is then
# loaded); tests/test_cli.py checks this against each module's COMMANDS.
HOME = {"validate": "authoring", "schema": "authoring", "new": "authoring", "rules": "authoring",
        "run": "live", "resume": "live", "runs": "live", "test": "drills", "drill": "drills",
        "scenario": "drills", "report": "reports", "stats": "reports", "graph": "reports", "coverage": "reports",
        "serve": "service", "worker": "service", "export": "service",
        "answer": "people", "approve": "people", "refuse": "people", "questions": "people",
        "token": "people", "password": "people"}


class LazyGroup(EngineGroup):
    """A group whose commands are added from their module when first asked for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loaded: set[str] = set()

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in HOME:
            self._load(HOME[name])
        if name not in self.commands:
            self.load_all()
        return super().get_command(ctx, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.load_all()
        return super().list_commands(ctx)

    def load_all(self) -> None:
        for module in MODULES:
            self._load(module)

    def _load(self, module: str) -> None:
        if module not in self.loaded:
            self.loaded.add(module)
            for command in importlib.import_module(f"engine.cli.{module}").COMMANDS:
                self.add_command(command)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="runbook")
@click.option("--debug", is_flag=True, help="Show tracebacks for internal errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Declarative incident runbooks: validate, run, dry-run and drill them."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug



def main() -> None:
    """Console-script entry point."""
    cli(prog_name="runbook")
