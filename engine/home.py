"""The runbook home: where runs, locks, the validation cache, channels.yaml and the
project's known_hosts live. $RUNBOOK_HOME, or ./.runbook."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def home(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("RUNBOOK_HOME", ".runbook"))
