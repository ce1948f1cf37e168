"""engine.run.terminal: messages from other threads never land inside an open prompt."""

from __future__ import annotations

import io
import os
import resource
import threading
import time
from collections.abc import Iterator

import pytest

from engine.run.terminal import Terminal


@pytest.fixture
def keyboard() -> Iterator[tuple[io.TextIOWrapper, int]]:
    """A pipe standing in for the keyboard: (what the terminal reads, where the test types)."""
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "r", encoding="utf-8")
    try:
        yield reader, write_fd
    finally:
        reader.close()
        os.close(write_fd)


def answer_after_message(term: Terminal, out: io.StringIO, keys: int, message: str, typed: str) -> str:
    """Ask a question; while it is open, another thread prints `message`, then the answer is typed."""

    def other_thread() -> None:
        deadline = time.monotonic() + 10
        while "Press Enter:" not in out.getvalue() and time.monotonic() < deadline:
            time.sleep(0.005)
        term.write(message)
        os.write(keys, typed.encode())

    worker = threading.Thread(target=other_thread)
    worker.start()
    try:
        return term.ask("   Press Enter: ")
    finally:
        worker.join()


def test_a_message_at_an_open_prompt_on_a_pipe_ends_the_prompt_line_and_is_a_line_of_its_own(
        keyboard: tuple[io.TextIOWrapper, int]) -> None:
    out = io.StringIO()
    term = Terminal(out, stdin=keyboard[0])
    assert not term.redraw
    answer = answer_after_message(term, out, keyboard[1], "-> update [status] still open\n", "done\n")
    term.write("answered\n")
    assert answer == "done"
    assert out.getvalue() == "   Press Enter: \n-> update [status] still open\nanswered\n"


def test_a_prompt_nobody_interrupted_ends_its_line_before_the_next_output(
        keyboard: tuple[io.TextIOWrapper, int]) -> None:
    out = io.StringIO()
    term = Terminal(out, stdin=keyboard[0])
    os.write(keyboard[1], b"\n")
    assert term.ask("   Press Enter: ") == ""
    term.write("answered\n")
    assert out.getvalue() == "   Press Enter: \nanswered\n"


def test_a_keyboard_on_a_descriptor_past_1023_is_read(keyboard: tuple[io.TextIOWrapper, int]) -> None:
    """select() refuses descriptors past FD_SETSIZE; a process with many files open still reads."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))  # a soft limit of 1024 is common
    try:
        high = os.dup2(keyboard[0].fileno(), 1500)
        with os.fdopen(high, "r", encoding="utf-8") as stdin:
            term = Terminal(io.StringIO(), stdin=stdin)
            os.write(keyboard[1], b"yes\n")
            assert term.ask("   Sure? ") == "yes"
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

def test_on_a_terminal_the_prompt_line_is_cleared_and_the_question_drawn_again(
        keyboard: tuple[io.TextIOWrapper, int]) -> None:
    out = io.StringIO()
    term = Terminal(out, stdin=keyboard[0], redraw=True)
    answer_after_message(term, out, keyboard[1], "-> update\n", "x\n")
    assert "   Press Enter: \r\033[K-> update\n   Press Enter: " in out.getvalue()


def test_escape_codes_in_a_redrawn_prompt_are_shown_not_marked_for_readline(
        keyboard: tuple[io.TextIOWrapper, int]) -> None:
    out = io.StringIO()
    term = Terminal(out, stdin=keyboard[0], redraw=True)
    term._prompt = "\001\033[1m\002PAGE\001\033[0m\002 "  # as readline would be given it
    term.write("-> update\n")
    assert out.getvalue() == "\r\033[K-> update\n\033[1mPAGE\033[0m "


def test_end_of_input_at_a_prompt_is_eof_and_the_line_is_ended() -> None:
    out = io.StringIO()
    term = Terminal(out, stdin=io.StringIO(""))
    with pytest.raises(EOFError):
        term.ask("   Press Enter: ")
    term.write("next\n")
    assert out.getvalue() == "   Press Enter: \nnext\n"


def test_held_lines_are_shown_even_when_nothing_follows_them() -> None:
    """What write(flush=False) holds goes out with the next write, or at the latest when
    the process ends (a run stopped by an error after a step's last line)."""
    import subprocess
    import sys

    script = ("import sys\nfrom engine.run.terminal import Terminal\nt = Terminal(sys.stdout)\n"
              "t.write('first\\n', flush=False)\nt.write('second\\n')\nt.write('last\\n', flush=False)\n"
              "sys.stderr.write('error\\n')\nraise SystemExit(3)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "first\nsecond\nlast\n", "error\n")



def test_held_lines_go_out_when_their_terminal_is_collected() -> None:
    """A terminal dropped with a line held sends it then (the run's console is collected
    before exit when a program runs several runs)."""
    import gc

    stream = io.StringIO()
    terminal = Terminal(stream)
    terminal.write("held\n", flush=False)
    assert stream.getvalue() == ""
    del terminal
    gc.collect()
    assert stream.getvalue() == "held\n"


def test_at_most_one_write_is_held() -> None:
    """Lines held one after another (steps finishing with nothing between them) go out two
    by two as they come: what is held never grows with the run."""
    stream = io.StringIO()
    terminal = Terminal(stream)
    terminal.write("a\n", flush=False)
    assert stream.getvalue() == ""
    terminal.write("b\n", flush=False)
    assert stream.getvalue() == "a\nb\n"
    terminal.write("c\n", flush=False)
    terminal.flush()
    assert stream.getvalue() == "a\nb\nc\n"


def test_a_line_is_written_under_the_lock_without_a_with_statement_s_exit_call() -> None:
    """A step writes two lines: `with self._lock` called the lock's __exit__ from C at
    each (about 2,500 instructions); the lock is still held while the line is written."""
    out = io.StringIO()
    term = Terminal(out)
    calls: list[str] = []
    held_while_written: list[bool] = []

    class Stream(io.StringIO):
        def write(self, text: str) -> int:
            held_while_written.append(term._lock._is_owned())  # type: ignore[attr-defined]
            return out.write(text)

    term.stream = Stream()

    def profile(frame: object, event: str, arg: object) -> None:
        if event == "c_call":
            calls.append(getattr(arg, "__name__", ""))

    import sys

    sys.setprofile(profile)
    try:
        term.write("one\n")
    finally:
        sys.setprofile(None)
    assert out.getvalue() == "one\n" and held_while_written == [True]
    assert "__exit__" not in calls and "__enter__" not in calls
    term.write("two\n")  # and the lock was released
    assert out.getvalue() == "one\ntwo\n"


def test_a_line_without_an_open_prompt_is_written_without_a_call_past_write() -> None:
    """A console line (one or two a step) goes to the stream from write() itself, not
    through _put(); the line is whole and a held line still goes out with the next."""
    from support import python_calls

    out = io.StringIO()
    term = Terminal(out)
    entered = python_calls(lambda: term.write("one\n"))
    assert "terminal.py:_put" not in entered and out.getvalue() == "one\n"
    term.write("two\n", flush=False)
    term.write("three\n")
    assert out.getvalue() == "one\ntwo\nthree\n"
