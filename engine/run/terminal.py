"""The operator's terminal: one writer for every line, and the prompt that is open on it.

Messages from timer threads (stakeholder updates, escalations, a drill's injected
events) arrive while the main thread waits at a prompt. On a real terminal the prompt
line is cleared, the message printed, and the prompt drawn again with what was typed
so far (GNU readline's buffer, when readline edits the line). On a terminal without
escape codes (TERM=dumb) the message ends the prompt's line and the question is asked
again; on a pipe or in a file the message is just a line.
"""

from __future__ import annotations

import atexit
import os
import select
import sys
import threading
from _weakref import ref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from engine.templates.patterns import deferred

if TYPE_CHECKING:
    import signal
else:  # the C module signal.py wraps: importing signal.py makes enums of every signal and
    import _signal as signal  # handler (3.4M instructions, 1.5% of a one-step run), used nowhere here

_CLEAR_LINE = "\r\033[K"
READ_SLICE = 0.2  # seconds a read waits before it looks at signals again
_SGR = deferred(r"(\033\[[0-9;]*m)")


class Terminal:
    """Writes lines and reads answers; the one owner of the line a prompt is on."""

    def __init__(self, stream: TextIO | None = None, *, redraw: bool | None = None,
                 stdin: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.stdin = stdin or sys.stdin
        self.echoes = _isatty(self.stdin)  # a terminal shows what is typed, the final Enter too
        if redraw is None:
            redraw = self.echoes and _isatty(self.stream) and os.environ.get("TERM") != "dumb"
        self.redraw = redraw  # clear and draw the prompt again (escape codes): a real terminal only
        self._lock = threading.RLock()
        self._prompt: str | None = None  # the question waiting for an answer
        self._ended = True  # whether the last thing written ended its line
        self._readline: Any = None
        self._pending = b""  # typed ahead: read from the file descriptor, not used yet
        # Lines of write(flush=False), sent with the next write or flush(); and, should
        # nothing follow them (the run ended by an error), when this is collected or at exit.
        self._held = [""]
        _send_when_gone(self, self.stream, self._held)

    def write(self, text: str, *, flush: bool = True) -> None:
        """Write whole lines (`text` ends with a newline), around any open prompt.
        `flush=False` holds them for the next write (or flush()) to send along: one
        system call for lines shown a moment apart, whatever buffering the stream has."""
        lock = self._lock
        lock.acquire()  # not `with`: its __exit__ is called from C with three Nones, at every line
        try:
            held, prompt = self._held[0], self._prompt
            if held:
                text, self._held[0] = held + text, ""
            if prompt is None:
                if not flush and not held:  # at most one write held: a run of them goes out as made
                    self._held[0] = text
                    return
                if text:  # _put() without its call (a line or two a step)
                    self.stream.write(text)
                    self._ended = text.endswith("\n")
            elif self.redraw:
                # Clear the prompt's line, print, and draw the prompt again as it was.
                self._put(_CLEAR_LINE + text + _plain(prompt) + self._typed())
            else:
                # No escape codes: end the prompt's line, and where a person types, ask again.
                self._put(("" if self._ended else "\n") + text + (_plain(prompt) if self.echoes else ""))
            self.stream.flush()
        finally:
            lock.release()

    def flush(self) -> None:
        """Send what `write(flush=False)` holds."""
        if self._held[0]:
            self.write("")

    def ask(self, prompt: str) -> str:
        """One line typed at `prompt` (without its newline). EOFError when input ends;
        KeyboardInterrupt (Ctrl-C) passes through, after the prompt's line is ended."""
        self.flush()  # what is held comes before the question
        with self._lock:
            self._prompt = prompt
            self._ended = False  # the prompt is about to be written, without a newline
        finished = False
        try:
            answer = self._read(prompt)
            finished = True
            return answer
        finally:
            with self._lock:
                self._prompt = None
                # On a terminal the person's Enter ended the line (not a Ctrl-C); a pipe
                # echoes nothing: either way, what follows starts on a line of its own.
                if (not finished) if self.echoes else not self._ended:
                    self._put("\n")
                    self.stream.flush()
                self._ended = True

    def _read(self, prompt: str) -> str:
        if self.redraw and self.stream is sys.stdout and self.stdin is sys.stdin:
            self._readline = self._readline or _load_readline()  # line editing, what was typed so far
            if self._readline:
                # readline counts the prompt's width: escape codes must be marked as invisible.
                with _nudged():
                    return input(_SGR.sub("\001\\1\002", prompt))
        with self._lock:
            self._put(prompt)
            self.stream.flush()
        return self._line()

    def _line(self) -> str:
        """One line of input, waited for in short slices: a Ctrl-C that lands just before a
        blocking read would otherwise go unnoticed until Enter (the read never sees it)."""
        try:
            fd = self.stdin.fileno()
        except (AttributeError, ValueError, OSError):  # not a file (a test's StringIO)
            line = self.stdin.readline()
            if not line:
                raise EOFError from None
            return line.rstrip("\r\n")
        # poll, not select: select() refuses a descriptor past 1023, which a long-lived
        # process (the service, a test run) can hand a terminal.
        waiting = select.poll()
        waiting.register(fd, select.POLLIN)
        while b"\n" not in self._pending:
            if not waiting.poll(READ_SLICE * 1000):
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                if not self._pending:
                    raise EOFError
                break
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line.decode("utf-8", errors="replace").rstrip("\r")

    def _typed(self) -> str:
        if self._readline is None:
            return ""
        try:
            return str(self._readline.get_line_buffer())
        except Exception:  # a readline without the call (libedit): the question alone
            return ""

    def _put(self, text: str) -> None:
        if text:
            self.stream.write(text)
            self._ended = text.endswith("\n")


def _send_when_gone(owner: Terminal, stream: TextIO, held: list[str]) -> None:
    """_send the held lines once: when `owner` is collected or at exit, whichever comes
    first. weakref.finalize's promise, without importing weakref.py for it (2.9M
    instructions, 1.3% of a one-step run's start-up)."""
    def once(_: object = None) -> None:
        try:
            refs.pop()  # atomic: a collection in another thread and the exit call it once
        except IndexError:
            return
        atexit.unregister(once)
        _send(stream, held)

    refs = [ref(owner, once)]  # kept alive by `once`, which atexit holds until it ran
    atexit.register(once)


def _send(stream: TextIO, held: list[str]) -> None:
    if held[0]:
        try:
            stream.write(held[0])
            stream.flush()
        except (OSError, ValueError):  # closed meanwhile: there is nobody to show it to
            pass
        held[0] = ""


def _plain(prompt: str) -> str:
    return prompt.replace("\001", "").replace("\002", "")


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


NUDGE = 0.25  # seconds between nudges while readline waits for a line


@contextmanager
def _nudged() -> Iterator[None]:
    """While readline waits for a line, wake its wait now and then with a signal that does
    nothing. readline prints the prompt, then blocks in select(); a Ctrl-C that lands in
    between interrupts nothing, and its handler would only run at the next key press. Any
    signal that interrupts the select() runs the handlers still pending, that Ctrl-C's too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    main = threading.main_thread().ident
    previous = signal.signal(signal.SIGUSR2, _ignore)  # installed without SA_RESTART: select() returns
    stop = threading.Event()

    def nudge() -> None:
        while not stop.wait(NUDGE):
            signal.pthread_kill(main, signal.SIGUSR2)  # type: ignore[arg-type]

    thread = threading.Thread(target=nudge, name="prompt-nudge", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        signal.signal(signal.SIGUSR2, previous)


def _ignore(signum: int, frame: Any) -> None:
    """The nudge's handler: waking the wait is all it is for."""


def _load_readline() -> Any:
    try:
        import readline
    except ImportError:  # a Python built without it: plain input(), prompts redrawn without the typing
        return None
    return readline
