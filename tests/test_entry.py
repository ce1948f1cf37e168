"""The console script's fast path for `runbook validate` must behave exactly like the
click command, and hand anything unusual to click."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import loaded_modules_script, one_step_runbook, probe_one_step_run

from engine.cli.entry import plain_validate

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("args", "expected"), [
    (["a.yaml"], {"paths": ("a.yaml",)}),
    (["--strict", "-f", "json", "a", "b"], {"paths": ("a", "b"), "strict": True, "fmt": "json"}),
    (["--format=sarif", "-o", "out.sarif", "."], {"paths": (".",), "fmt": "sarif", "output": "out.sarif"}),
    (["--jobs", "2", "--no-color", "x"], {"paths": ("x",), "jobs": 2, "color": False}),
    (["--", "-odd-name.yaml"], {"paths": ("-odd-name.yaml",)}),
    (["--channels", "ch.yaml", "rb.yaml"], {"paths": ("rb.yaml",), "channels": "ch.yaml"}),
])
def test_plain_arguments_are_parsed_without_click(args: list[str], expected: dict[str, object]) -> None:
    found = plain_validate(args)
    assert found is not None
    for key, value in expected.items():
        assert found[key] == value


@pytest.mark.parametrize("args", [
    ["--help"], ["-h"], ["--bogus", "x"], ["-f", "xml", "x"], ["--jobs", "0", "x"], ["--jobs", "many"],
    ["-o"], ["-fjson", "x"],
])
def test_anything_unusual_is_left_to_click(args: list[str]) -> None:
    assert plain_validate(args) is None


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("fmt", ["text", "json", "github", "junit"])
def test_fast_path_and_click_give_the_same_output_and_exit_code(fmt: str) -> None:
    target = str(ROOT / "tests" / "fixtures" / "ten-mistakes.yaml")
    fast = _run("validate", "-f", fmt, "--no-color", target)
    # `--debug` is a group option: it forces the click path for the same command.
    slow = _run("--debug", "validate", "-f", fmt, "--no-color", target)
    assert fast.returncode == slow.returncode == 1
    assert fast.stdout == slow.stdout
    assert fast.stderr == slow.stderr


def test_fast_path_reports_usage_errors_like_click(tmp_path: Path) -> None:
    fast = _run("validate", str(tmp_path / "missing.yaml"))
    slow = _run("--debug", "validate", str(tmp_path / "missing.yaml"))
    assert fast.returncode == slow.returncode == 2
    # (--debug adds a traceback on the click side; the message itself is the same)
    assert fast.stderr.splitlines()[-1] == slow.stderr.splitlines()[-1]
    assert "no such file or directory" in fast.stderr


# -- a reader that goes away (`runbook runs | head -1`) ----------------------------------------------

PIPE_RUNBOOK = """\
kind: runbook
version: 1
id: pipe
title: Output nobody reads
defaults: {timeout: 30s}
detection:
  - id: probe
    run: seq 1 3000
    expect: exit_code == 0
recovery:
  - id: verify
    run: "true"
"""


def _into_closed_pipe(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run `runbook ARGS` with its standard output a pipe whose reader is already gone:
    every write finds it closed, whatever the size of the output (what `| head -1` does
    to a command whose output outgrows the pipe's buffer)."""
    import os

    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", "engine", *args], stdout=write, stderr=subprocess.PIPE,
                              text=True, cwd=cwd, timeout=120)
    finally:
        os.close(write)


@pytest.fixture(scope="module")
def pipe_work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A runbook and a runs directory holding one finished run of it."""
    work = tmp_path_factory.mktemp("pipe")
    (work / "pipe.yaml").write_text(PIPE_RUNBOOK, encoding="utf-8")
    done = _run("run", str(work / "pipe.yaml"), "--non-interactive", "--yes", "-q", "--runs-dir", str(work / "runs"))
    assert done.returncode == 0, done.stderr
    return work


@pytest.mark.parametrize("args", [
    ["rules"], ["rules", "-f", "json"], ["runs", "--runs-dir", "{work}/runs"], ["validate", "runbooks/"],
    ["--debug", "validate", "runbooks/"], ["schema", "runbook"], ["graph", "runbooks/disk-full.yaml"],
    ["run", "--dry-run", "runbooks/disk-full.yaml", "-i", "host=db-1"], ["report", "{run}"],
    ["report", "{run}", "-f", "html"], ["stats", "{work}/runs"], ["test", "scenarios/disk-full-log-storm.yaml"],
], ids=" ".join)
def test_a_closed_pipe_ends_the_output_quietly_with_141(pipe_work: Path, args: list[str]) -> None:
    """Like a Unix tool whose reader went away: no message, no traceback, exit 141
    (128 + SIGPIPE), never `internal error: BrokenPipeError` (exit 70)."""
    [run] = (pipe_work / "runs").iterdir()
    done = _into_closed_pipe(*(a.format(work=pipe_work, run=run) for a in args))
    assert (done.returncode, done.stderr) == (141, "")


def test_a_live_run_whose_reader_went_away_finishes_and_closes_its_journal(pipe_work: Path) -> None:
    """The console goes quiet; the run does not stop half-way: every step runs, the
    journal ends with run.finished, and the exit status says the output was cut off."""
    runs = pipe_work / "live-runs"
    done = _into_closed_pipe("run", str(pipe_work / "pipe.yaml"), "--non-interactive", "--yes", "--runs-dir", str(runs))
    assert (done.returncode, done.stderr) == (141, "")
    [journal] = runs.glob("*/journal.jsonl")
    last = journal.read_text(encoding="utf-8").splitlines()[-1]
    assert '"event": "run.finished"' in last and '"outcome": "resolved"' in last



@pytest.mark.parametrize("args", [["validate", "{book}"], ["run", "{book}", "-q", "--non-interactive", "--runs-dir",
                                   "{runs}"], ["run", "{book}", "--dry-run"], ["runs", "--runs-dir", "{runs}"]],
                         ids=" ".join)
def test_a_command_started_with_its_output_closed_writes_nowhere_on_either_path(tmp_path: Path,
                                                                                args: list[str]) -> None:
    """`runbook ... >&-`: the fast paths (a plain validate, a plain live run) do as click
    does, writing nothing and exiting as they would, never `internal error` (exit 70)."""
    book = one_step_runbook(tmp_path)
    command = [sys.executable, "-m", "engine", *(a.format(book=book, runs=tmp_path / "runs") for a in args)]
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                          timeout=120, preexec_fn=lambda: os.close(1))
    assert (done.returncode, "internal error" in done.stderr) == (0, False), done.stderr

def test_a_failing_command_keeps_its_own_exit_status_when_its_reader_went_away(tmp_path: Path) -> None:
    """141 says only "the output was cut off"; a command that failed on its own says so."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: runbook\nversion: 1\nid: Bad\n", encoding="utf-8")
    done = _into_closed_pipe("validate", str(bad))
    assert done.returncode == 1 and "Traceback" not in done.stderr


def test_each_command_is_where_the_lazy_group_looks_for_it() -> None:
    import importlib

    from engine.cli.commands import HOME, MODULES

    found = {command.name: module for module in MODULES
             for command in importlib.import_module(f"engine.cli.{module}").COMMANDS}
    assert found == HOME


_IMPORTED = """\
import sys
from engine.cli.entry import _command
code = _command(sys.argv[1:])
names = ("engine.cli.authoring", "engine.cli.drills", "engine.cli.reports", "engine.cli.service",
         "engine.executors.notify", "email.utils", "engine.fleet.fanout", "socket", "click", "subprocess",
         "engine.run.continuation", "engine.run.recovery", "engine.run.leftovers", "hashlib", "difflib",
         "engine.language._pruning", "engine.language._quoting_rules", "engine.language._shell_rules",
         "engine.run._promql", "engine.run._alertmanager", "engine.run._block", "engine.run._branch",
         "engine.run._for_each", "engine.executors.prometheus",
         "engine.executors.alertmanager")
print(code, " ".join(n for n in names if n in sys.modules))
"""


def test_start_up_imports_only_what_the_command_needs(tmp_path: Path) -> None:
    """`runbook run` loads no other command's module, and without a channels config, a
    target or a block neither the notifier nor the fan-out nor sockets; a plain run and a
    plain `runbook validate FILE` not click; a run that ends resolved nothing of resume's,
    and one whose inputs read no command not subprocess; `runbook validate FILE` neither the
    notifier (there is no channels config) nor the RFC 2822 date parser; neither loads
    OpenSSL (hashlib) nor difflib, which only words a suggestion for a problem; a clean file
    is not pruned; a run loads no lint family whose rules are all warnings (it drops them),
    nor the code of step kinds it has none of (Prometheus, Alertmanager, blocks, switches,
    for_each)."""
    book = one_step_runbook(tmp_path)
    env = {**os.environ, "RUNBOOK_HOME": str(tmp_path / "home")}
    env.pop("RUNBOOK_CHANNELS", None)

    def imported(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-c", _IMPORTED, *args], capture_output=True, text=True,
                              env=env, cwd=tmp_path, check=True)
        return proc.stdout.strip().splitlines()[-1]

    assert imported("run", str(book), "--runs-dir", str(tmp_path / "runs"), "-q", "--non-interactive") == "0"
    # validate reports warnings: it loads the warning-only lint families, and only those
    assert imported("validate", str(book)) == "0 engine.language._quoting_rules engine.language._shell_rules"


# -- the fast path of a plain live run -------------------------------------------------------------


@pytest.mark.parametrize(("args", "expected"), [
    (["a.yaml"], {"runbook_file": "a.yaml", "inputs": (), "quiet": False, "color": None}),
    (["-q", "--non-interactive", "a.yaml", "--runs-dir", "runs"],
     {"runbook_file": "a.yaml", "quiet": True, "non_interactive": True, "runs_dir": "runs"}),
    (["-i", "host=db-1", "--input=mount=/var", "a.yaml", "--as", "ann:lead", "--answer", "s.ok=yes"],
     {"inputs": ("host=db-1", "mount=/var"), "people": ("ann:lead",), "answers": ("s.ok=yes",)}),
    (["--yes", "--no-color", "--color", "--no-rollback-on-abort", "--accept-new-host-keys", "a.yaml"],
     {"yes": True, "color": True, "no_rollback_on_abort": True, "accept_new_host_keys": True}),
    (["--channels=ch.yaml", "--inventory", "inv.yaml", "--inputs-file", "in.yaml", "--", "-odd.yaml"],
     {"runbook_file": "-odd.yaml", "channels": "ch.yaml", "inventory": "inv.yaml", "inputs_file": "in.yaml"}),
])
def test_plain_run_arguments_are_parsed_without_click(args: list[str], expected: dict[str, object]) -> None:
    from engine.cli._run_main import plain_run

    found = plain_run(args)
    assert found is not None
    for key, value in expected.items():
        assert found[key] == value


@pytest.mark.parametrize("args", [
    [], ["--help"], ["-h", "a.yaml"], ["--dry-run", "a.yaml"], ["--alert", "p.json", "a.yaml"],
    ["--allow-resolved", "a.yaml"], ["a.yaml", "b.yaml"], ["-"], ["-qy", "a.yaml"], ["-ihost=x", "a.yaml"],
    ["--yes=1", "a.yaml"], ["-i"], ["-i", "--yes", "a.yaml"], ["--runs-dir", "{file}", "a.yaml"],
    ["{dir}"], ["--inputs-file", "{dir}", "a.yaml"], ["--bogus", "a.yaml"],
])
def test_anything_unusual_in_a_run_is_left_to_click(tmp_path: Path, args: list[str]) -> None:
    """Help, dry-runs, alerts, a path of the wrong kind: click's (it owns those messages)."""
    from engine.cli._run_main import plain_run

    (tmp_path / "f").write_text("x", encoding="utf-8")
    assert plain_run([a.format(file=tmp_path / "f", dir=tmp_path) for a in args]) is None


def test_the_fast_path_passes_every_option_the_click_command_has() -> None:
    """A new option of `run` must be known to the fast path's defaults, or a plain run
    would call the body without it."""
    from engine.cli._run_main import run_defaults
    from engine.cli.live import run

    assert {p.name for p in run.params} == {*run_defaults(), "runbook_file"}


FAILING = """\
kind: runbook
version: 1
id: failing
title: A step that fails
inputs:
  word: {type: string, default: hello}
detection:
  - id: say
    run: echo {{ inputs.word }}
  - id: fail
    run: exit 3
"""


@pytest.mark.parametrize("extra", [[], ["-i", "word=bye"], ["-i", "nope=1"], ["--answer", "x.y=1"],
                                   ["--as", "ann:nobody"]])
def test_fast_run_and_click_run_say_the_same_and_exit_the_same(tmp_path: Path, extra: list[str]) -> None:
    """A failed run (exit 1) and refused inputs or answers (exit 2): the same words, the
    same status, by either path (`--debug` takes the click path)."""
    book = tmp_path / "failing.yaml"
    book.write_text(FAILING, encoding="utf-8")

    def both(*args: str) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
        common = ["run", str(book), "--non-interactive", "--runs-dir", str(tmp_path / "runs"), *args]
        return _run(*common, cwd=tmp_path), _run("--debug", *common, cwd=tmp_path)

    fast, slow = both(*extra)
    assert fast.returncode == slow.returncode and fast.returncode in (1, 2)
    assert fast.stderr == _without_traceback(slow.stderr)
    # The console's lines, without what differs from run to run (ids, times, durations)
    assert _shape(fast.stdout) == _shape(slow.stdout)


def _shape(text: str) -> list[str]:
    import re

    return [re.sub(r"\d+(ms|s)\b|\[\d\d:\d\d\]|run \S+|/\S+", "#", line) for line in text.splitlines()]


def test_fast_run_reports_a_missing_runbook_like_click(tmp_path: Path) -> None:
    fast = _run("run", str(tmp_path / "missing.yaml"), cwd=tmp_path)
    slow = _run("--debug", "run", str(tmp_path / "missing.yaml"), cwd=tmp_path)
    assert fast.returncode == slow.returncode == 2
    assert fast.stderr == _without_traceback(slow.stderr) and "missing.yaml" in fast.stderr


def _without_traceback(text: str) -> str:
    """What the click path says without the traceback `--debug` adds before an error."""
    if "Traceback (most recent call last):" not in text:
        return text
    before, _, after = text.partition("Traceback (most recent call last):")
    lines = after.splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if line.startswith("runbook:"))
    return before + "".join(lines[first:])


# -- the collector while a run starts --------------------------------------------------------------

_COLLECTED = """\
import gc, sys
runs = []
gc.callbacks.append(lambda phase, info: runs.append(info["generation"]) if phase == "start" else None)
sys.argv = ["runbook", *sys.argv[1:]]
from engine.cli.entry import main
try:
    main()
except SystemExit:
    pass
print("collections", len(runs), "frozen", gc.get_freeze_count(), "enabled", gc.isenabled())
"""


def test_a_run_starts_without_collecting_garbage_and_freezes_what_it_loaded(tmp_path: Path) -> None:
    """Start-up objects live as long as the run: the collector does not go over them (it
    ran 45 times in a one-step run), and runs as usual once the run begins."""
    words = probe_one_step_run(_COLLECTED, tmp_path).split()
    found = dict(zip(words[::2], words[1::2], strict=True))
    assert int(found["collections"]) < 20 and int(found["frozen"]) > 10_000 and found["enabled"] == "True", found


_SET_UP = """\
import gc, sys
runs = []
gc.callbacks.append(lambda phase, info: runs.append(info["generation"]) if phase == "start" else None)
sys.argv = ["runbook", *sys.argv[1:]]
from engine.cli import entry
typing_first = "typing" in sys.modules
command, during = entry._command, []

def spy(args):
    during.append(len(runs) - before)
    return command(args)

entry._command = spy
before = len(runs)
try:
    entry.main()
except SystemExit:
    pass
print(typing_first, during)
"""


def test_the_command_sets_itself_up_without_collecting_garbage(tmp_path: Path) -> None:
    """What the command imports before it begins (typing, the code cache) lives as long as
    the process: importing the entry point brings no typing, and the set-up runs with the
    collector paused (it went over those objects 12 times before any command began)."""
    assert probe_one_step_run(_SET_UP, tmp_path) == "False [0]"

def test_a_run_started_in_process_leaves_the_collector_as_it_was() -> None:
    import gc

    from engine.cli._run_main import _collector_paused

    frozen, enabled = gc.get_freeze_count(), gc.isenabled()
    with _collector_paused():
        assert not gc.isenabled()
    assert (gc.get_freeze_count(), gc.isenabled()) == (frozen, enabled)


_ENGINE_MODULES = loaded_modules_script(("engine.language.diagnostics", "engine.run.alerts",
                                         "engine.executors.secrets"))


def test_a_plain_run_of_a_kept_model_imports_no_diagnostics_no_alert_reader_and_no_secret_reader(
        tmp_path: Path) -> None:
    """The validation cache's stored results (diagnostics), the alert's labels (alerts) and
    an input's file or command (secrets) are read only by a command that has them."""
    probe_one_step_run(_ENGINE_MODULES, tmp_path)
    assert probe_one_step_run(_ENGINE_MODULES, tmp_path) == "[]"


_STDLIB_MODULES = loaded_modules_script(("datetime", "signal"))


def test_a_plain_run_imports_neither_the_signal_module_nor_datetime(tmp_path: Path) -> None:
    """signal.py makes enums of every signal and handler at import (3.4M instructions):
    the run installs its Ctrl-C and SIGTERM handlers through the C module it wraps. Its
    stamps and run id are written from time.gmtime; datetime (4.5M) only for a date."""
    probe_one_step_run(_STDLIB_MODULES, tmp_path)
    assert probe_one_step_run(_STDLIB_MODULES, tmp_path) == "[]"


def test_a_plain_run_holds_its_console_lines_without_importing_weakref(tmp_path: Path) -> None:
    """The terminal sends lines it holds when it is collected or at exit, as a
    weakref.finalize did, without weakref.py (2.9M instructions of a one-step run)."""
    script = loaded_modules_script(("weakref",))
    probe_one_step_run(script, tmp_path)
    assert probe_one_step_run(script, tmp_path) == "[]"
