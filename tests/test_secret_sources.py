"""engine.executors.secrets: a secret read from a file, a command or the environment; a
source that fails says which and why, never the value."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.executors import secrets
from engine.executors.secrets import SecretError, SecretSource, read_secret


def test_a_file_gives_its_text_without_the_final_newline(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("line one\nline two\n")
    (tmp_path / "crlf").write_bytes(b"tok\r\n")
    assert read_secret(SecretSource("file", "key", str(tmp_path))) == "line one\nline two"
    assert read_secret(SecretSource("file", str(tmp_path / "crlf"))) == "tok"


def test_a_home_relative_file_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "pd").write_text("k")
    source = SecretSource("file", "~/pd", "/elsewhere")
    assert read_secret(source) == "k" and source.describe() == f"file {tmp_path / 'pd'}"


@pytest.mark.parametrize("make, reason", [
    (lambda p: None, "cannot read it (No such file or directory)"),
    (lambda p: p.write_text("\n"), "is empty"),
    (lambda p: p.write_bytes(b"x" * (secrets.MAX_BYTES + 1)), "is larger than 64 KiB: not a secret"),
    (lambda p: p.write_bytes(b"\xff\xfe"), "is not UTF-8 text"),
    (lambda p: p.mkdir(), "is not a regular file"),
    (lambda p: os.mkfifo(p), "is not a regular file"),  # and reading it never blocks
])
def test_a_file_that_holds_no_secret_says_why(tmp_path: Path, make: object, reason: str) -> None:
    path = tmp_path / "secret"
    make(path)  # type: ignore[operator]
    with pytest.raises(SecretError) as info:
        read_secret(SecretSource("file", str(path)))
    assert str(info.value).startswith(f"file {path}") and reason in str(info.value)


def test_a_command_gives_what_it_prints() -> None:
    assert read_secret(SecretSource("command", "printf 's3cr3t\\n'")) == "s3cr3t"


def test_a_failing_command_says_its_status_and_last_error_line_without_its_output() -> None:
    with pytest.raises(SecretError) as info:
        read_secret(SecretSource("command", "printf 'tok-%s' 9; printf 'first\\nlast: tok-9 expired\\n' >&2; exit 3"))
    assert str(info.value).endswith("exited 3: last: *** expired")


def test_a_command_that_is_missing_or_hangs_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SecretError, match=r"command `no-such-vault-cli get x` exited 127: .*not found"):
        read_secret(SecretSource("command", "no-such-vault-cli get x"))
    monkeypatch.setattr(secrets, "COMMAND_TIMEOUT", 0.5)
    with pytest.raises(SecretError, match=r"^command `sleep 30` did not finish within 0.5s$"):
        read_secret(SecretSource("command", "sleep 30"))


def test_an_environment_variable_must_be_set_and_not_empty() -> None:
    assert read_secret(SecretSource("env", "PD_KEY"), {"PD_KEY": "k\n"}) == "k"
    with pytest.raises(SecretError, match=r"^\$PD_KEY is not set$"):
        read_secret(SecretSource("env", "PD_KEY"), {})
    with pytest.raises(SecretError, match=r"^\$PD_KEY is empty$"):
        read_secret(SecretSource("env", "PD_KEY"), {"PD_KEY": ""})
