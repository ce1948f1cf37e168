"""Declarative incident runbooks: live runs, dry-runs and game-day drills from one file.

The public API is re-exported here and imported on first use, so `import engine`
(and the start-up of `runbook validate`) stays cheap.
"""

from __future__ import annotations

import importlib

# Not typing's: the command imports typing after it pauses its collector (engine/cli/entry.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Diagnostic": "language.diagnostics",
    "Report": "language.diagnostics",
    "Severity": "language.diagnostics",
    "EngineError": "errors",
    "RunbookError": "errors",
    "StepFailed": "errors",
    "TemplateError": "errors",
    "UsageError": "errors",
    "Document": "language.loader",
    "LoadError": "language.loader",
    "load_file": "language.loader",
    "load_text": "language.loader",
    "Runbook": "language.model",
    "Step": "language.model",
    "Options": "language.validation",
    "ValidationFailed": "language.validation",
    "load_runbook": "language.validation",
    "load_scenario": "language.validation",
    "validate_paths": "language.validation",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
