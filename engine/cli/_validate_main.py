"""The body of `runbook validate`, shared by the click command and the fast entry point
(`engine.cli.entry`), so both behave the same."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.language.channels import KnownChannels

FORMATS = ("text", "json", "github", "sarif", "junit")


def use_color(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    return "NO_COLOR" not in os.environ and sys.stdout.isatty()


def write_report(path: str, text: str) -> None:
    """Write a report file; an unwritable path is a usage error (exit 2), not a crash."""
    from engine.errors import UsageError

    try:
        # A lone surrogate (from `\udc00` in a journal or a payload) is written escaped,
        # never a crash after the work is done.
        with open(path, "w", encoding="utf-8", errors="backslashreplace") as handle:
            handle.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc


def known_channels(path: str | None) -> KnownChannels | None:
    """The channels config to check channel names against: the one given, else
    $RUNBOOK_CHANNELS, else channels.yaml in the runbook home if there is one."""
    from engine.executors.channels_file import config_path

    if config_path(path) is None:
        return None
    from engine.executors.notify import load_channels
    from engine.language.channels import KnownChannels

    config = load_channels(path)
    return KnownChannels(str(config.file), frozenset(config.channels))


def run_validate(paths: tuple[str, ...] | list[str], *, fmt: str = "text", output: str | None = None,
                 strict: bool = False, jobs: int | None = None, inventory: str | None = None,
                 color: bool | None = None, cache: bool | None = None, channels: str | None = None) -> int:
    """Validate, print the report, and return the exit status (0 clean, 1 problems, 2 I/O)."""
    from engine.language.formats import render
    from engine.language.validation import Options, validate_paths

    groups = None
    if inventory:
        from engine.language.inventory import inventory_groups

        groups = inventory_groups(inventory)
    options = Options(strict=strict, jobs=jobs, inventory_groups=groups, cache=cache,
                      channels=known_channels(channels))
    report = validate_paths(paths or (".",), options)
    text = render(report, fmt, color=use_color(color) and not output)
    if output:
        write_report(output, text)
        sys.stderr.write(render(report, "text").splitlines()[-1] + "\n")
    else:
        sys.stdout.write(text)
    sys.stdout.flush()
    if any(d.rule == "RB000" for d in report.diagnostics):
        return 2
    return 1 if report.errors or (strict and report.warnings) else 0
