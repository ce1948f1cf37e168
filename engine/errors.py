"""The engine's exceptions: one root, each carrying the data a user needs to act.

The CLI maps `EngineError.exit_code` to the process exit status (`engine.cli.base`,
and `engine.cli.entry` on the fast validate path); library code raises, never exits
or prints.
"""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    """Root of every error the engine reports to a user (never a traceback)."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(EngineError):
    """Bad command-line usage, unreadable paths, bad flag values: exit code 2."""

    exit_code = 2


class RunbookError(EngineError):
    """A problem located in a runbook or scenario file."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str = "",
        line: int = 0,
        column: int = 0,
        path: tuple[str | int, ...] = (),
    ) -> None:
        super().__init__(message)
        self.file, self.line, self.column, self.path = file, line, column, path

    def __str__(self) -> str:
        if not self.file:
            return self.message
        where = self.file if not self.line else f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.message}"


class InputError(EngineError):
    """A runbook input (or a scripted answer, or a participant) is missing, mistyped or
    out of range; raised before anything runs, with every problem found."""

    exit_code = 2

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems) if problems else [message]

    @classmethod
    def cannot_start(cls, problems: list[str]) -> InputError:
        """All the problems that keep a run from starting, in one error."""
        unique = list(dict.fromkeys(problems))
        return cls("the run cannot start:\n  " + "\n  ".join(unique), unique)


class TemplateError(EngineError):
    """A template failed to render: undefined name, bad filter, sandbox refusal."""

    def __init__(self, message: str, *, where: object = "") -> None:
        # `where` may be a lazy locator: turned into "file:line:col" only now, on error.
        place = str(where) if where else ""
        super().__init__(f"{place}: {message}" if place else message)
        self.where = place
        self.reason = message


class StepFailed(EngineError):
    """A step ended unsuccessfully; carries its result for the console and journal."""

    def __init__(self, step_id: str, message: str, result: Any = None) -> None:
        super().__init__(f"step {step_id}: {message}")
        self.step_id = step_id
        self.result = result


class JournalError(EngineError):
    """The journal could not be written or read (full disk, corrupt file)."""

    exit_code = 3
