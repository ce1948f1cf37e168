"""The `runbook` command's cache of the code dataclasses, namedtuple and typing generate
(engine/cli/_code_cache.py): a second process compiles none of it, and every class is
exactly what compiling would have made."""

from __future__ import annotations

import json
import marshal
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import one_step_runbook

from engine.cli._code_cache import CodeCache, default_path

# Classes of every kind the cache serves: a frozen dataclass (exec), a NamedTuple (eval of
# its __new__, a ForwardRef compiled per string annotation), a slotted dataclass.
_DEFINE = """\
import dataclasses, json, sys, typing
from engine.cli import _code_cache
cache = _code_cache.install(__import__("pathlib").Path(sys.argv[1]))

@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    tags: tuple = ()
    note: "str | None" = None

class Pair(typing.NamedTuple):
    left: "int"
    right: "str" = "r"

@dataclasses.dataclass(slots=True, unsafe_hash=True)
class Slot:
    a: int = 1

p = Point(1, ("t",))
try:
    p.x = 2
    frozen = False
except dataclasses.FrozenInstanceError:
    frozen = True
seen = [repr(p), p == Point(1, ("t",)), hash(p) == hash(Point(1, ("t",))), frozen,
        repr(Pair(3)), Pair._fields, Pair._field_defaults, repr(typing.get_type_hints(Pair)),
        repr(Slot()), Slot() == Slot(2), Slot.__slots__, str(Point.__init__.__annotations__),
        [f.name for f in dataclasses.fields(Point)]]
print(json.dumps({"seen": repr(seen), "added": cache.added, "used": len(cache.used)}))
"""


def _define(path: Path, env: dict[str, str] | None = None) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", _DEFINE, str(path)], capture_output=True, text=True,
                          check=True, env=env or _env())
    found: dict[str, object] = json.loads(proc.stdout)
    return found


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **extra}


def test_a_second_process_compiles_none_of_the_generated_code(tmp_path: Path) -> None:
    path = tmp_path / "code.marshal"
    first = _define(path)
    assert first["added"] and path.is_file()
    second = _define(path)
    assert second["added"] is False and second["used"] == first["used"]


def test_classes_made_from_cached_code_are_the_classes_compiling_makes(tmp_path: Path) -> None:
    path = tmp_path / "code.marshal"
    compiled = _define(path)["seen"]  # the first process compiles (and fills the cache)
    assert _define(path)["seen"] == compiled
    uncached = subprocess.run([sys.executable, "-c", _DEFINE.replace("cache = _code_cache.install(",
                                                                      "cache = _code_cache.CodeCache(None) or ("),
                               str(path)], capture_output=True, text=True, check=True, env=_env())
    assert json.loads(uncached.stdout)["seen"] == compiled


def test_the_cached_code_of_a_run_is_what_the_standard_library_compiles(tmp_path: Path) -> None:
    """After a real `runbook run`, every code object in the file equals compiling its text
    in a module without __future__ flags (as dataclasses, collections and typing are)."""
    prefix = tmp_path / "pycache"
    book = one_step_runbook(tmp_path)
    subprocess.run([sys.executable, "-m", "engine", "run", str(book), "--runs-dir", str(tmp_path / "runs"), "-q",
                    "--non-interactive"], check=True, cwd=tmp_path, capture_output=True,
                   env=_env(PYTHONPYCACHEPREFIX=str(prefix), RUNBOOK_HOME=str(tmp_path / "home")))
    files = list(prefix.rglob("generated-code.*.marshal"))
    assert len(files) == 1
    check = ("import marshal, sys\nd = marshal.loads(open(sys.argv[1], 'rb').read())\n"
             "print(len(d), all(compile(s, '<string>', m) == c for (m, s, o), c in d.items()))")
    proc = subprocess.run([sys.executable, "-c", check, str(files[0])], capture_output=True, text=True, check=True)
    count, same = proc.stdout.split()
    assert int(count) > 100 and same == "True"


def test_a_damaged_cache_file_is_compiled_past_and_replaced(tmp_path: Path) -> None:
    path = tmp_path / "code.marshal"
    path.write_bytes(b"\x00not marshal")
    assert _define(path)["added"] is True
    assert isinstance(marshal.loads(path.read_bytes()), dict)


def test_an_entry_that_is_not_code_is_compiled_again(tmp_path: Path) -> None:
    path = tmp_path / "code.marshal"
    path.write_bytes(marshal.dumps({("exec", "x: int = 1", sys.flags.optimize): 42}))
    cache = CodeCache(path)
    assert cache.code("x: int = 1", "exec") == compile("x: int = 1", "<string>", "exec", dont_inherit=True)
    assert cache.added


def test_a_cache_that_cannot_be_written_only_costs_time(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    cache = CodeCache(blocker / "code.marshal")  # its directory cannot be made
    # dont_inherit: this module's `annotations` flag is not the standard library's
    assert cache.code("x: int = 1", "exec") == compile("x: int = 1", "<string>", "exec", dont_inherit=True)
    cache.save()
    assert not (blocker / "code.marshal").exists()


def test_nothing_is_written_when_python_writes_no_bytecode(tmp_path: Path) -> None:
    path = tmp_path / "code.marshal"
    assert _define(path, _env(PYTHONDONTWRITEBYTECODE="1"))["added"] is True
    assert not path.exists()


def test_the_file_is_beside_the_engines_bytecode() -> None:
    path = default_path()
    assert path is not None and path.name == f"generated-code.{sys.implementation.cache_tag}.marshal"
    assert path.parent.name == "__pycache__" or sys.pycache_prefix is not None


def test_only_the_command_installs_it_not_a_library_import() -> None:
    probe = "import dataclasses, engine, engine.run.session\nprint('exec' in vars(dataclasses))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"


def test_a_file_grown_past_its_limit_starts_over_with_what_the_process_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.cli import _code_cache

    monkeypatch.setattr(_code_cache, "MAX_ENTRIES", 3)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    path = tmp_path / "code.marshal"
    old = CodeCache(path)
    for n in range(4):
        old.code(f"x = {n}", "exec")
    old.save()
    assert len(marshal.loads(path.read_bytes())) == 4  # all four used by the process that made them
    cache = CodeCache(path)
    cache.code("x = 0", "exec")
    cache.code("y = 1", "exec")
    cache.save()
    assert {source for _, source, _ in marshal.loads(path.read_bytes())} == {"x = 0", "y = 1"}


def test_a_run_keeps_its_journal_line_functions_and_a_second_run_compiles_none_of_them(tmp_path: Path) -> None:
    """The journal's line functions and the executors' records' __init__ (made as
    engine/executors/base.py runs) are generated code too: the first run keeps them in
    the cache, and every later run uses them, the line functions from a class's first line."""
    prefix = tmp_path / "pycache"
    book = one_step_runbook(tmp_path)
    probe = ("import sys\nfrom engine.cli import _code_cache, entry\nfrom engine.run import journal_writer\n"
             "sys.argv = ['runbook', *sys.argv[1:]]\ntry:\n    entry.main()\nexcept SystemExit:\n    pass\n"
             "used = [source for (_, source, _) in _code_cache._installed.used]\n"
             "lines, inits = [s for s in used if 'def line(event' in s], [s for s in used if '_set0(self, ' in s]\n"
             "made = sorted(cls.name for cls, line in journal_writer._LINES.items() if line is not None)\n"
             "print(len(lines), len(inits), _code_cache._installed.added, ','.join(made))\n")

    def run() -> list[str]:
        proc = subprocess.run([sys.executable, "-c", probe, "run", str(book), "--runs-dir", str(tmp_path / "runs"),
                               "-q", "--non-interactive"], check=True, cwd=tmp_path, capture_output=True, text=True,
                              env=_env(PYTHONPYCACHEPREFIX=str(prefix), RUNBOOK_HOME=str(tmp_path / "home")))
        return proc.stdout.strip().splitlines()[-1].split()

    lines, inits, _, made = run()  # a one-step run: each class's first line
    assert int(lines) >= 5 and int(inits) >= 2
    assert {"run.started", "step.started", "step.finished", "run.finished"} <= set(made.split(","))
    assert run() == [lines, inits, "False", made]  # nothing compiled the second time


def test_a_run_keeps_its_code_apart_from_other_commands_and_loads_only_its_own(tmp_path: Path) -> None:
    """A one-step run uses about 270 entries of the 650 every command makes together
    (`runbook test` alone adds over 200): it loads its own file, not theirs."""
    prefix = tmp_path / "pycache"
    env = _env(PYTHONPYCACHEPREFIX=str(prefix), RUNBOOK_HOME=str(tmp_path / "home"))
    book = one_step_runbook(tmp_path)
    run = [sys.executable, "-m", "engine", "run", str(book), "--runs-dir", str(tmp_path / "runs"), "-q",
           "--non-interactive"]
    subprocess.run(run, check=True, cwd=tmp_path, capture_output=True, env=env)
    subprocess.run([sys.executable, "-m", "engine", "validate", str(book)], check=True, cwd=tmp_path,
                   capture_output=True, env=env)
    subprocess.run([sys.executable, "-m", "engine", "rules"], check=True, cwd=tmp_path, capture_output=True,
                   env=env)
    names = {path.name for path in prefix.rglob("generated-code.*.marshal")}
    tag = sys.implementation.cache_tag
    assert names == {f"generated-code.run.{tag}.marshal", f"generated-code.validate.{tag}.marshal",
                     f"generated-code.{tag}.marshal"}
    own = next(prefix.rglob(f"generated-code.run.{tag}.marshal"))
    kept = own.read_bytes()
    subprocess.run(run, check=True, cwd=tmp_path, capture_output=True, env=env)
    assert own.read_bytes() == kept  # nothing new to keep: the run compiled nothing


def test_a_commands_own_file_starts_over_past_twice_what_a_process_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Code the engine no longer generates (a dataclass since changed) is not loaded at
    every start for ever: a command's file keeps at most twice what one process used."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    path = tmp_path / "code.marshal"
    old = CodeCache(path, own=True)
    for n in range(6):
        old.code(f"x = {n}", "exec")
    old.save()
    cache = CodeCache(path, own=True)
    for source in ("x = 0", "x = 1", "y = 2"):
        cache.code(source, "exec")
    cache.save()  # 7 known, 3 used: 7 > 6
    assert {source for _, source, _ in marshal.loads(path.read_bytes())} == {"x = 0", "x = 1", "y = 2"}
    shared = CodeCache(path)  # the shared file keeps what every command uses, up to MAX_ENTRIES
    shared.code("z = 3", "exec")
    shared.save()
    assert len(marshal.loads(path.read_bytes())) == 4
