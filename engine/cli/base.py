"""What every `runbook` command shares: the group class that turns an EngineError into a
one-line message and its exit code (and a bug into exit 70, with a traceback only under
--debug), and where a command's output goes (stdout or a file, coloured or not).
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import click

from engine.errors import EngineError

from ._validate_main import write_report

EXIT_INTERNAL = 70


class EngineGroup(click.Group):
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


def use_color(flag: bool | None, stream: Any) -> bool:
    """--color/--no-color if given, else colour on a terminal unless $NO_COLOR is set."""
    if flag is not None:
        return flag
    return "NO_COLOR" not in os.environ and bool(getattr(stream, "isatty", lambda: False)())


def emit(text: str, output: str | None) -> None:
    """`text` on stdout, or into `output` (saying so on stderr)."""
    if output:
        write_report(output, text)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
