"""Where the channels config is: the one given, $RUNBOOK_CHANNELS, or channels.yaml in the
runbook home. Kept apart from the config itself (_channels.py) so that `runbook validate`
can tell there is none without importing the notifier and its dependencies."""

from __future__ import annotations

import os

from engine.home import home

CONFIG_NAME = "channels.yaml"
# What a delivery notes when there is no config (the console is told once).
NO_CONFIG = "console only: no channels config"


def default_config() -> os.PathLike[str]:
    """channels.yaml beside the runs and locks: in $RUNBOOK_HOME, or ./.runbook."""
    return home() / CONFIG_NAME


def config_path(path: str | os.PathLike[str] | None = None) -> str | None:
    """The channels config in force: the one given, $RUNBOOK_CHANNELS, or the runbook
    home's channels.yaml if it exists; None when there is none."""
    fallback = default_config()
    chosen = path or os.environ.get("RUNBOOK_CHANNELS") or (fallback if os.path.isfile(fallback) else None)
    return os.fspath(chosen) if chosen else None
