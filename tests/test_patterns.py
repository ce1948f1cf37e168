"""Patterns compiled at first use (engine/templates/patterns.py): they answer as the
compiled pattern does, and a command compiles none it does not use."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from support import probe_one_step_run

from engine.templates.patterns import deferred


def test_a_deferred_pattern_answers_as_the_compiled_one() -> None:
    source, flags = r"(?P<n>\d+)\s*(ms|s)", re.IGNORECASE
    lazy, eager = deferred(source, flags), re.compile(source, flags)
    text = "wait 10 MS then 3s"
    assert lazy.search(text).groupdict() == eager.search(text).groupdict()  # type: ignore[union-attr]
    assert lazy.findall(text) == eager.findall(text)
    assert lazy.sub("x", text) == eager.sub("x", text)
    assert [m.span() for m in lazy.finditer(text)] == [m.span() for m in eager.finditer(text)]
    assert (lazy.pattern, lazy.flags, lazy.groups) == (eager.pattern, eager.flags, eager.groups)


def test_a_deferred_pattern_is_compiled_at_its_first_use_only() -> None:
    lazy = deferred(r"a+")
    assert vars(lazy) == {"_source": "a+", "_flags": 0}
    assert lazy.match("aa") is not None
    assert callable(vars(lazy)["match"])  # kept: the next use goes straight to the method


def test_threads_first_using_one_deferred_pattern_all_get_answers() -> None:
    lazy = deferred(r"(\w+)@(\w+)")
    results: list[object] = []
    start = threading.Barrier(8)

    def use() -> None:
        start.wait()
        found = lazy.fullmatch("ann@example")
        results.append(found.groups() if found else None)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [("ann", "example")] * 8


_COMPILED = """\
import re, sys
compiled = []
original = re._compile
def spy(pattern, flags):
    key = (type(pattern), pattern, flags)
    if key not in re._cache and sys._getframe(1).f_code.co_name == "compile":
        frame = sys._getframe(2)
        if frame.f_code.co_name == "<module>" and "/engine/" in frame.f_code.co_filename:
            compiled.append(frame.f_code.co_filename.rsplit("/engine/", 1)[1] + ":" + str(frame.f_lineno))
    return original(pattern, flags)
re._compile = spy
from engine.cli.entry import _command
_command(sys.argv[1:])
print("compiled:", *compiled)
"""


def test_a_one_step_run_compiles_no_module_level_pattern_of_the_engine(tmp_path: Path) -> None:
    seen = probe_one_step_run(_COMPILED, tmp_path)
    assert seen == "compiled:", seen
