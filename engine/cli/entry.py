"""The `runbook` console script.

`runbook validate FILE...` is what a pre-commit hook runs on every commit, so when its
arguments are plain (paths and known options with valid values) it starts without
importing click, which costs about a third of the start-up. Anything else - help, an
unknown or malformed option, every other command - goes to the click CLI, which owns
the messages for bad usage. Both paths call `_validate_main.run_validate`. A plain live
`runbook run` takes the same kind of fast path (`_run_main.plain_run`, `run_command`).

Both paths write through `PipeGuard`s: a reader that goes away (`runbook runs | head -1`)
ends the output, quietly, not the command (a live run never stops half-way because of
it), and the command then exits 141, as a tool killed by SIGPIPE would.
"""

from __future__ import annotations

import gc
import os
import sys

# Not typing's: main() imports typing after it pauses the collector.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TextIO

# What a shell reports for a process killed by SIGPIPE (128 + 13), as coreutils give
# when their reader goes away; Python ignores SIGPIPE, so it is said here instead.
EXIT_CLOSED_PIPE = 141
_VALUED = {"-f": "fmt", "--format": "fmt", "-o": "output", "--output": "output", "--jobs": "jobs",
           "--inventory": "inventory", "--channels": "channels"}
_FLAGS = {"--strict": ("strict", True), "--color": ("color", True), "--no-color": ("color", False),
          "--no-cache": ("cache", False)}


def plain_validate(args: list[str]) -> dict[str, Any] | None:
    """Options of `validate` when every argument is plain; None to let click decide."""
    from ._validate_main import FORMATS

    found: dict[str, Any] = {"paths": [], "inventory": os.environ.get("RUNBOOK_INVENTORY") or None}
    i, only_paths = 0, False
    while i < len(args):
        arg = args[i]
        i += 1
        if only_paths or not arg.startswith("-") or arg == "-":
            found["paths"].append(arg)
        elif arg == "--":
            only_paths = True
        elif arg in _FLAGS:
            key, flag = _FLAGS[arg]
            found[key] = flag
        else:
            name, eq, value = arg.partition("=")
            if name not in _VALUED or (not eq and i >= len(args)) or (name == "-f" and eq):
                return None
            if not eq:
                value, i = args[i], i + 1
            found[_VALUED[name]] = value
    if found.get("fmt", "text") not in FORMATS:
        return None
    jobs = found.get("jobs")
    if jobs is not None:
        if not jobs.isdigit() or int(jobs) < 1:
            return None
        found["jobs"] = int(jobs)
    found["paths"] = tuple(found["paths"])
    return found


def _fast_validate(options: dict[str, Any]) -> int:
    from ._validate_main import run_validate

    return _plainly(lambda: run_validate(**options))


def _fast_run(options: dict[str, Any]) -> int:
    from ._run_main import run_command

    def call() -> int:
        try:
            run_command(**options)
        except SystemExit as done:  # the run's outcome
            return _exit_status(done)
        return 0

    return _plainly(call)


def _plainly(call: Callable[[], int]) -> int:
    """Run a fast-path command with the click group's handling of errors: an EngineError
    is a one-line message and its exit code, a bug exit 70 (a traceback with --debug's
    RUNBOOK_DEBUG)."""
    from engine.errors import EngineError

    from ._run_main import echo_err

    debug = "RUNBOOK_DEBUG" in os.environ
    try:
        return call()
    except EngineError as exc:
        echo_err(f"runbook: error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        echo_err("runbook: error: interrupted")
        return 130
    except Exception as exc:  # a bug: same words as the click path
        if debug:
            import traceback

            traceback.print_exc()
        echo_err(f"runbook: error: internal error: {type(exc).__name__}: {exc} (run with --debug for a traceback)")
        return 70


def _exit_status(done: SystemExit) -> int:
    code = done.code
    if code is None or isinstance(code, int):
        return code or 0
    sys.stderr.write(f"{code}\n")
    return 1


class PipeGuard:
    """A text stream (stdout, stderr) that a closed pipe silences instead of failing:
    the first write or flush that finds the reader gone points the descriptor at
    /dev/null, so later writes (and the interpreter's last flush) go nowhere, quietly.
    Text it cannot encode (a lone surrogate from `\\udc00` in a payload or a journal) is
    written escaped, never an error after the work is done."""

    def __init__(self, stream: TextIO) -> None:
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
        self.stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self._silence()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._silence()

    def _silence(self) -> None:
        self.reader_gone = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self.stream.fileno())
        finally:
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding, buffer...
        return getattr(self.stream, name)


def _command(args: list[str]) -> int:
    """Run the command; its exit status."""
    options = plain_validate(args[1:]) if args[:1] == ["validate"] else None
    if options is not None:
        return _fast_validate(options)
    if args[:1] == ["run"]:
        from ._run_main import plain_run

        options = plain_run(args[1:])
        if options is not None:
            return _fast_run(options)
    from .commands import main as click_main

    try:
        click_main()
    except SystemExit as done:
        return _exit_status(done)
    return 0


def _set_up() -> None:
    """How the command imports: the standard library's seldom used modules deferred, the
    engine's found by listing, and generated code from the cache."""
    from ._deferred import defer

    defer()  # before anything imports them: see the module's docstring
    from ._finder import install as find_engine_modules

    find_engine_modules()
    from ._code_cache import install

    install(command=sys.argv[1] if len(sys.argv) > 1 else None)  # before anything defines a dataclass


def main() -> None:
    """Console-script entry point."""
    # No garbage collection while the command sets itself up (typing, the code cache): what
    # it makes lives as long as the process, and the collector went over it 12 times in a
    # run for nothing. It is then frozen, out of the collector's reach (as a run's imports
    # are, _run_main._collector_paused).
    enabled = gc.isenabled()
    gc.disable()
    try:
        _set_up()
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
    # Started with >&- (or 2>&-): what would go there goes nowhere, as click writes nothing
    # then, and the fast paths write as click does.
    out = PipeGuard(sys.stdout if sys.stdout is not None else _nowhere())
    sys.stdout = out
    sys.stderr = PipeGuard(sys.stderr if sys.stderr is not None else _nowhere())
    code = _command(sys.argv[1:])
    sys.exit(EXIT_CLOSED_PIPE if out.reader_gone and code == 0 else code)


def _nowhere() -> TextIO:
    return open(os.devnull, "w", encoding="utf-8")  # open as long as the process
