"""Plain commands run without `/bin/sh -c` (one exec fewer per step) and behave exactly
as they do through the shell; anything a shell would interpret still goes through it."""

from __future__ import annotations

import pytest

from engine.executors.base import Cancel, Invocation, NullSink
from engine.executors.local import LocalExecutor, direct_argv


@pytest.mark.parametrize(("command", "argv"), [
    ("true", ["true"]),
    ("df --output=pcent /var", ["df", "--output=pcent", "/var"]),
    ("systemctl restart nginx.service", ["systemctl", "restart", "nginx.service"]),
    ("curl -fsS http://127.0.0.1:8080/health", ["curl", "-fsS", "http://127.0.0.1:8080/health"]),
])
def test_plain_commands_run_without_a_shell(command: str, argv: list[str]) -> None:
    assert direct_argv(command, {}) == argv


@pytest.mark.parametrize("command", [
    "echo hi", "cd /tmp", "exit 3", "ls *.log", "du -sh ~", "a | b", "a; b", "a && b", "x > f",
    "FOO=1 env", "echo $HOME", "printf '%s' x", "test -f x", ": nothing", ". ./env.sh", "a # note",
    "kill -TERM 1", "",
])
def test_anything_a_shell_would_interpret_goes_through_the_shell(command: str) -> None:
    assert direct_argv(command, {}) is None


def test_a_step_that_sets_path_goes_through_the_shell() -> None:
    assert direct_argv("true", {"PATH": "/opt/bin"}) is None


@pytest.mark.parametrize("command", [
    "true", "false", "nosuchcommand --flag", "/etc/passwd", "ls /no-such-dir", "sh -c exit\\ 7",
])
def test_results_are_the_same_with_and_without_the_shell(command: str) -> None:
    """Exit code, output and error text, whichever way the command was started."""
    executor, cancel = LocalExecutor(), Cancel()
    direct = executor.run(Invocation("a", "run", command, timeout=10), NullSink(), cancel)
    through_shell = executor.run(Invocation("a", "run", command + " ;", timeout=10), NullSink(), cancel)
    assert (direct.exit_code, direct.ok, direct.error) == (through_shell.exit_code, through_shell.ok,
                                                           through_shell.error)
    assert direct.stdout == through_shell.stdout
    assert direct.stderr.replace(" ;", "") == through_shell.stderr.replace(" ;", "")


def test_a_command_is_looked_at_once_and_each_caller_gets_its_own_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run asks for every step, attempt and item: the answer for a command is kept (a
    bounded number of them), and the argv handed out is a new list each time."""
    from engine.executors import local

    looked: list[str] = []
    real = local._direct_words
    monkeypatch.setattr(local, "_DIRECT", {})
    monkeypatch.setattr(local, "_direct_words", lambda command: looked.append(command) or real(command))
    first = direct_argv("systemctl restart nginx", {})
    assert first == ["systemctl", "restart", "nginx"]
    first.append("changed")
    assert direct_argv("systemctl restart nginx", {}) == ["systemctl", "restart", "nginx"]
    assert direct_argv("echo $HOME", {}) is None and direct_argv("echo $HOME", {}) is None
    assert looked == ["systemctl restart nginx", "echo $HOME"]
    monkeypatch.setattr(local, "_DIRECT_KEPT", 3)
    for n in range(10):
        direct_argv(f"sleep {n}", {})
    assert len(local._DIRECT) <= 3
