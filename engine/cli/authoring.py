"""Commands that write and check files: `validate`, `schema`, `new` and `rules`.

`runbook validate` usually starts on the fast path (`entry`), without click; this is
its click face, for help and unusual arguments. Both call `_validate_main.run_validate`.
"""

from __future__ import annotations

import sys

import click

from ._validate_main import FORMATS, run_validate


@click.command()
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
    sys.exit(run_validate(paths, fmt=fmt, output=output, strict=strict, jobs=jobs, inventory=inventory,
                          color=color, cache=False if no_cache else None, channels=channels))


@click.command()
@click.argument("kind", type=click.Choice(["runbook", "scenario", "inventory", "serve"]))
def schema(kind: str) -> None:
    """Print the JSON Schema of a runbook, scenario, inventory or serve config file."""
    from engine.language.schema import schema_path

    with open(schema_path(kind), encoding="utf-8") as handle:
        click.echo(handle.read(), nl=False)


@click.command()
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


@click.command()
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def rules(fmt: str) -> None:
    """List every validation rule with its id and rationale."""
    import json

    from engine.language.lint import rule_catalog

    catalog = rule_catalog()
    if fmt == "json":
        click.echo(json.dumps(catalog, indent=2))
        return
    for rid, info in sorted(catalog.items()):
        click.echo(f"{rid}  {info['severity']:<7}  {info['name']:<28} {info['rationale']}")


COMMANDS = (validate, schema, new, rules)
