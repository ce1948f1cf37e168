"""Declarative incident runbooks: live runs, dry-runs and game-day drills from one file.

The public API is re-exported here and imported on first use, so `import engine`
(and the start-up of `runbook validate`) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Diagnostic": "diagnostics",
    "Report": "diagnostics",
    "Severity": "diagnostics",
    "EngineError": "errors",
    "RunbookError": "errors",
    "StepFailed": "errors",
    "TemplateError": "errors",
    "UsageError": "errors",
    "Document": "loader",
    "LoadError": "loader",
    "load_file": "loader",
    "load_text": "loader",
    "Runbook": "model",
    "Step": "model",
    "Options": "validation",
    "ValidationFailed": "validation",
    "load_runbook": "validation",
    "load_scenario": "validation",
    "validate_paths": "validation",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
