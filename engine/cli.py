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

from . import __version__
from .errors import EngineError

EXIT_INTERNAL = 70
FORMATS = ("text", "json", "github", "sarif", "junit")


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
@click.option("--color/--no-color", default=None, help="Colour the text format.")
def validate(paths: tuple[str, ...], fmt: str, output: str | None, strict: bool,
             jobs: int | None, color: bool | None) -> None:
    """Check runbook and scenario files (and directories, recursively).

    Every problem in every file is reported at once, sorted by position. Exit 0 when
    clean, 1 when errors were found (warnings too with --strict), 2 on usage or I/O errors.
    """
    from .diagnostics import render
    from .validation import Options, validate_paths

    report = validate_paths(paths or (".",), Options(strict=strict, jobs=jobs))
    text = render(report, fmt, color=_use_color(color, sys.stdout) and not output)
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
        click.echo(render(report, "text").splitlines()[-1], err=True)
    else:
        click.echo(text, nl=False)
    if any(d.rule == "RB000" for d in report.diagnostics):
        sys.exit(2)
    sys.exit(1 if report.errors or (strict and report.warnings) else 0)


@cli.command()
@click.argument("kind", type=click.Choice(["runbook", "scenario"]))
def schema(kind: str) -> None:
    """Print the JSON Schema of a runbook or scenario file."""
    from .schema import schema_path

    with open(schema_path(kind), encoding="utf-8") as handle:
        click.echo(handle.read(), nl=False)


@cli.command()
@click.argument("name")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="File to write (default: runbooks/NAME.yaml, or ./NAME.yaml).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def new(name: str, output: str | None, force: bool) -> None:
    """Create a new runbook skeleton that validates cleanly."""
    from .scaffold import write_runbook

    path = write_runbook(name, output, force=force)
    click.echo(f"created {path}")
    click.echo(f"next: edit it, then `runbook validate {path}`")


@cli.command()
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def rules(fmt: str) -> None:
    """List every validation rule with its id and rationale."""
    import json

    from .diagnostics import rule_catalog

    catalog = rule_catalog()
    if fmt == "json":
        click.echo(json.dumps(catalog, indent=2))
        return
    for rid, info in sorted(catalog.items()):
        click.echo(f"{rid}  {info['severity']:<7}  {info['name']:<28} {info['rationale']}")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="runbook")
