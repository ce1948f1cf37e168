"""Helpers for live-run tests: the real `runbook` command in a subprocess, in a temporary
directory, and checks that every journal it leaves is whole."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNBOOK_BIN = Path(sys.executable).parent / "runbook"
ROOT = Path(__file__).resolve().parent.parent.parent


def runbook_text(body: str, *, id: str = "live-test", head: str = "") -> str:
    """A runbook with a short default timeout around `body` (phases and steps)."""
    return (f"kind: runbook\nversion: 1\nid: {id}\ntitle: Live test {id}\ndefaults: {{timeout: 30s}}\n"
            + textwrap.dedent(head) + textwrap.dedent(body))


def environment(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a test run: its own RUNBOOK_HOME, no colour, no channel config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNBOOK_", "NO_COLOR"))}
    env.update({"RUNBOOK_HOME": str(home / ".runbook"), "RUNBOOK_LOCK_DIR": str(home / ".runbook" / "locks"),
                "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


@dataclass
class Done:
    """A finished `runbook` process."""

    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


class Workspace:
    """A directory with runbooks, where `runbook` runs with RUNBOOK_HOME inside it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = environment(root)

    @property
    def runs(self) -> Path:
        return self.root / ".runbook" / "runs"

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.write_text(text, encoding="utf-8")
        return path

    def command(self, *args: str | os.PathLike[str]) -> list[str]:
        return [str(RUNBOOK_BIN), *map(str, args)]

    def run(self, *args: str | os.PathLike[str], timeout: float = 60, stdin: str | None = None,
            env: dict[str, str] | None = None) -> Done:
        proc = subprocess.run(self.command(*args), cwd=self.root, env={**self.env, **(env or {})},
                              input=stdin if stdin is not None else "", capture_output=True, text=True,
                              timeout=timeout)
        return Done(proc.returncode, proc.stdout, proc.stderr)

    def start(self, *args: str | os.PathLike[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command(*args), cwd=self.root, env={**self.env, **(env or {})},
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)

    def run_dirs(self, runs: Path | None = None) -> list[Path]:
        base = runs or self.runs
        return sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []

    def only_run(self, runs: Path | None = None) -> Path:
        [run_dir] = self.run_dirs(runs)
        return run_dir


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


# -- journals ------------------------------------------------------------------------------------------


def journal_records(run_dir: Path) -> list[dict[str, Any]]:
    """Every line of the journal, each of which must be a JSON object."""
    records = []
    with open(run_dir / "journal.jsonl", "rb") as handle:
        for number, raw in enumerate(handle, 1):
            assert raw.endswith(b"\n"), f"line {number} is cut short"
            record = json.loads(raw)
            assert isinstance(record, dict), f"line {number} is not an object"
            records.append(record)
    return records


def complete_journal(run_dir: Path) -> list[dict[str, Any]]:
    """Records of a journal that is whole: numbered in order, one run.started first, one
    run.finished last, and a step.finished for every step.started."""
    records = journal_records(run_dir)
    seqs = [r["seq"] for r in records]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "sequence numbers have gaps"
    names = [r["event"] for r in records]
    assert names[0] == "run.started" and names[-1] == "run.finished", names
    # A resumed run appends a run.started of its own (resumed_from set) to the same journal,
    # followed by who resumed it and why; an attempt that failed ended with a run.finished.
    assert all(r["resumed_from"] for r in events(records, "run.started")[1:])
    for at, name in enumerate(names):
        if name == "run.finished":
            assert at == len(names) - 1 or names[at + 1] == "run.started", "run.finished ends an attempt"
        if name == "run.started" and at:
            assert names[at + 1] == "run.resumed", "a resumed attempt says who resumed it and why"
    open_steps: list[str] = []
    for record in records:
        if record["event"] == "run.started":
            open_steps = []  # what a crash cut short before a resume stays open, as it should
        elif record["event"] == "step.started":
            open_steps.append(record["step"])
        elif record["event"] == "step.finished" and record["step"] in open_steps:
            open_steps.remove(record["step"])
    assert open_steps == [], f"steps without step.finished: {open_steps}"
    return records


def events(records: Sequence[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [r for r in records if r["event"] == name]


def finished_step(records: Sequence[dict[str, Any]], step: str) -> dict[str, Any]:
    return next(r for r in records if r["event"] == "step.finished" and r["step"] == step)


def started_steps(records: Sequence[dict[str, Any]]) -> list[str]:
    return [r["step"] for r in records if r["event"] == "step.started"]


def assert_clean_failure_output(done: Done) -> None:
    """Whatever went wrong, the user sees messages, never a Python traceback."""
    assert "Traceback" not in done.text, done.text
    assert "internal error" not in done.text, done.text


# -- processes -----------------------------------------------------------------------------------------


def live_processes_with(marker: str) -> list[int]:
    """Pids of running (not zombie) processes whose command line contains `marker`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read()
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        state = stat[stat.rfind(b")") + 2:][:1]
        if marker.encode() in cmdline and state != b"Z":
            found.append(int(entry))
    return found


def kill_leftovers(marker: str) -> None:
    """Teardown: end the processes this test started (found by their unique marker)."""
    for pid in live_processes_with(marker):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)


def collected(proc: subprocess.Popen[str], timeout: float = 60) -> Done:
    out, err = proc.communicate(timeout=timeout)
    return Done(proc.returncode, out, err)


def sleep_marker() -> str:
    """A `sleep` duration no other process on the machine has: `sleep MARKER` is findable."""
    return f"1000.{os.getpid()}{time.monotonic_ns() % 10**9}"


def iter_files(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*"):
        if path.is_file():
            yield path


# -- a local HTTP server ----------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


# A route answers (status, body) or (status, body, headers); headers win over the defaults.
Route = Callable[[Request], "tuple[int, str | bytes] | tuple[int, str | bytes, dict[str, str]]"]


class Server:
    """A real HTTP server on a loopback address (127.0.0.1 unless told, a free port)
    answering from `routes` by path prefix; it records every request. With `tls`, it
    speaks HTTPS with a self-signed certificate (steps need `verify: false`). Use with `with`."""

    def __init__(self, routes: dict[str, Route], *, address: str = "127.0.0.1", tls: bool = False) -> None:
        import http.server
        import threading

        self.routes = routes
        self.requests: list[Request] = []
        self.address, self.scheme = address, "https" if tls else "http"
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(self.command, self.path, dict(self.headers), self.rfile.read(length))
                server.requests.append(request)
                route = next((r for prefix, r in server.routes.items() if self.path.startswith(prefix)), None)
                status, body, *more = route(request) if route else (404, "no such route")
                data = body.encode() if isinstance(body, str) else body
                headers = {"Content-Type": "application/json" if data[:1] in (b"{", b"[") else "text/plain",
                           "Content-Length": str(len(data)), **(more[0] if more else {})}
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.httpd = http.server.ThreadingHTTPServer((address, 0), Handler)
        self.httpd.block_on_close = False  # a deliberately slow handler must not hold the test
        if tls:
            self.httpd.socket = _tls_context(address).wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.address}:{self.httpd.server_address[1]}"

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


def _tls_context(address: str) -> Any:
    """A server-side TLS context with a fresh self-signed certificate for `address`."""
    import datetime
    import ipaddress
    import ssl
    import tempfile

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
    return context


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a pseudo-terminal --------------------------------------------------------------------------------------


class Terminal:
    """`runbook` on a pseudo-terminal, as an operator runs it: Ctrl-C is typed, not sent."""

    def __init__(self, args: Sequence[str], cwd: Path, env: dict[str, str]) -> None:
        import pty

        pid, fd = pty.fork()
        if pid == 0:  # the child: become `runbook`
            try:
                os.chdir(cwd)
                os.execve(args[0], list(args), env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.output = b""
        self.code: int | None = None

    @property
    def text(self) -> str:
        return self.output.decode("utf-8", errors="replace")

    def expect(self, needle: str, timeout: float = 20.0) -> None:
        end = time.monotonic() + timeout
        while needle.encode() not in self.output:
            if time.monotonic() > end or not self._read(end - time.monotonic()):
                raise AssertionError(f"{needle!r} never appeared; the terminal shows:\n{self.text}")

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def wait(self, timeout: float = 30.0) -> int:
        end = time.monotonic() + timeout
        while self.code is None:
            self._read(0.05)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                while self._read(0.05):
                    pass
                self.code = os.waitstatus_to_exitcode(status)
            elif time.monotonic() > end:
                self.kill()
                raise AssertionError(f"runbook did not exit; the terminal shows:\n{self.text}")
        return self.code

    def kill(self) -> None:
        if self.code is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self.code = -9
        try:
            os.close(self.fd)
        except OSError:
            pass

    def _read(self, timeout: float) -> bool:
        import select

        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not ready:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.output += data
        return bool(data)
