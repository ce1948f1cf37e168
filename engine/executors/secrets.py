"""Secrets from where teams keep them: a file (`/run/secrets/...`, a mounted Kubernetes or
Docker secret), a command (`vault kv get -field=token secret/ops`, `op read op://...`) or
an environment variable.

Reading one is the only thing done here; masking is the caller's (every value read goes
into the run's masker). A source that fails is a SecretError that names the source and
why, never the value: a command's error output is cut to its last line and anything the
command printed on stdout is masked in it, since a half-working command may have printed
the secret before it failed.
"""

from __future__ import annotations

import os
import signal
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

KINDS = ("env", "file", "command")
MAX_BYTES = 64 * 1024  # a secret is a token or a key; more than this is the wrong file
COMMAND_TIMEOUT = 30.0  # seconds: a vault or 1Password CLI asking for a login never ends


class SecretError(Exception):
    """A source that gave no secret: the message names the source and the reason."""


class SecretSource(NamedTuple):
    """Where one secret comes from: `kind` is env, file or command; `value` the variable,
    the path (relative paths are relative to `base`, the directory of the file naming it)
    or the shell command."""

    kind: str
    value: str
    base: str | None = None

    def describe(self) -> str:
        if self.kind == "env":
            return f"${self.value}"
        if self.kind == "file":
            return f"file {self.path()}"
        return f"command `{self.value}`"

    def path(self) -> str:
        path = Path(self.value).expanduser()
        return str(path if path.is_absolute() or self.base is None else Path(self.base) / path)


def read_secret(source: SecretSource, environ: Mapping[str, str] | None = None) -> str:
    """The secret `source` holds (a final newline removed: `echo` and editors add one);
    SecretError when there is none."""
    if source.kind == "env":
        env = os.environ if environ is None else environ
        if source.value not in env:
            raise SecretError(f"{source.describe()} is not set")
        value = env[source.value]
    elif source.kind == "file":
        value = _read_file(source.path())
    else:
        value = _run(source.value)
    value = value.removesuffix("\n").removesuffix("\r")
    if not value:
        raise SecretError(f"{source.describe()} is empty" if source.kind != "command"
                          else f"{source.describe()} printed nothing")
    return value


def _read_file(path: str) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the run
    except OSError as exc:
        raise SecretError(f"file {path}: cannot read it ({exc.strerror or exc})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SecretError(f"file {path} is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise SecretError(f"file {path} is larger than {MAX_BYTES // 1024} KiB: not a secret")
    return _text(data, f"file {path}")


def _run(command: str) -> str:
    import subprocess  # here: a run whose inputs read no command never loads it (start-up)

    where = f"command `{command}`"
    try:
        proc = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        raise SecretError(f"{where} could not start ({exc.strerror or exc})") from None
    try:
        stdout, stderr = proc.communicate(timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its whole group: a CLI waiting on a login prompt, its helpers
        proc.communicate()
        raise SecretError(f"{where} did not finish within {COMMAND_TIMEOUT:g}s") from None
    if proc.returncode != 0:
        said = _last_line(stderr, stdout)
        raise SecretError(f"{where} exited {proc.returncode}" + (f": {said}" if said else ""))
    if len(stdout) > MAX_BYTES:
        raise SecretError(f"{where} printed more than {MAX_BYTES // 1024} KiB: not a secret")
    return _text(stdout, where)


def _last_line(stderr: bytes, stdout: bytes) -> str:
    """The last line of a failed command's stderr, without anything it printed on stdout."""
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    said = lines[-1][:300] if lines else ""
    for piece in stdout.decode("utf-8", "replace").splitlines():
        if piece.strip():
            said = said.replace(piece.strip(), "***")
    return said


def _text(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(f"{where} is not UTF-8 text") from None
