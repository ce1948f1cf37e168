"""The hostile suite's harness: run one `runbook` command on hostile input in a process
of its own (forked from zygote.py), then check what every case must hold.

Every case, whatever its input:
- exits with a status its command documents (never 70, "internal error"),
- prints no Python traceback, on stdout or stderr,
- finishes within its time bound (else: a hang) and within its address-space limit,
  and is not killed by a signal (else: a crash),
- shows no secret of the case in any form the engine itself makes (raw, shell-quoted,
  JSON-escaped, URL-encoded, HTML-escaped, Python repr) in stdout, stderr, the journal,
  step logs, reports or files it wrote,
- leaves a whole journal (ending with run.finished) for every run it started,
- and, where a case plants a canary (a file a shell injection would create), leaves it unmade.

Outcomes are tallied per command and per failure kind; the tally is printed at the end
of the session (conftest.py) and by summary.py.
"""

from __future__ import annotations

import html
import json
import os
import shlex
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ZYGOTE = Path(__file__).with_name("zygote.py")

# Exit statuses each command documents (README): anything else is a failure.
CODES: dict[str, frozenset[int]] = {
    "validate": frozenset({0, 1, 2}),
    "dry-run": frozenset({0, 2}),
    "run": frozenset({0, 1, 2, 3, 4, 5, 6, 7, 130}),
    "resume": frozenset({0, 1, 2, 3, 4, 5, 6, 7, 130}),
    "test": frozenset({0, 1, 2}),
    "report": frozenset({0, 2, 3}),
    "from-run": frozenset({0, 2, 3}),
    "graph": frozenset({0, 2}),
    "stats": frozenset({0, 2, 3}),
    "coverage": frozenset({0, 1, 2, 3}),
}
KINDS = ("traceback", "internal-error", "exit-code", "hang", "crash", "memory", "leak", "journal", "injection")
MEMORY = 1 << 30  # address space of a case: the engine and a hostile input must fit in 1 GiB
PARALLEL = (os.cpu_count() or 2) + 1  # cases of one check run side by side (each forked, own limits)
TIMEOUT = 10.0  # the slowest sound case takes about a second on a loaded 2-core machine


@dataclass
class Case:
    """One `runbook` command on hostile input."""

    kind: str  # what is hostile: "alias-bomb", "template:pow", ...
    command: str  # a key of CODES
    argv: list[str]
    secrets: tuple[str, ...] = ()
    canary: Path | None = None  # a shell injection would create it
    timeout: float = TIMEOUT
    memory: int = MEMORY
    stdin: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    codes: frozenset[int] | None = None  # narrower than the command's documented set


@dataclass
class Outcome:
    case: Case
    code: int | None
    signal: int | None
    hung: bool
    seconds: float
    maxrss_kb: int
    stdout: str
    stderr: str
    runs: list[Path] = field(default_factory=list)  # run directories the case made
    failures: list[tuple[str, str]] = field(default_factory=list)  # (kind, detail)

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


class Zygote:
    """The fork server, started once per session."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        self.proc = subprocess.Popen([sys.executable, str(ZYGOTE)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env)
        self.lock = threading.Lock()
        ready = self._read()
        assert "ready" in ready, ready

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, "the hostile suite's fork server died"
        return dict(json.loads(line))

    def map(self, requests: list[dict[str, Any]], parallel: int = PARALLEL) -> list[dict[str, Any]]:
        """Run the requests, at most `parallel` at a time; their replies, in order."""
        assert self.proc.stdin is not None
        replies: dict[int, dict[str, Any]] = {}
        with self.lock:
            sent = 0
            while len(replies) < len(requests):
                while sent < len(requests) and sent - len(replies) < parallel:
                    self.proc.stdin.write(json.dumps({**requests[sent], "id": sent}) + "\n")
                    self.proc.stdin.flush()
                    sent += 1
                reply = self._read()
                replies[reply["id"]] = reply
        return [replies[i] for i in range(len(requests))]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


class Tally:
    """Cases tried per command and failures per kind, for the session's summary."""

    def __init__(self, path: Path | None = None) -> None:
        self.tried: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.kinds: Counter[str] = Counter()
        self.failing: list[str] = []
        self.path = path

    @classmethod
    def load(cls, path: Path) -> Tally:
        """A tally read back from the JSON lines a session wrote ($HOSTILE_TALLY)."""
        tally = cls()
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if "command" not in row:
                tally.fail(row["test"], row["kind"], row["detail"])
                continue
            tally.tried[row["command"]] += 1
            tally.kinds[row["kind"].split(":")[0]] += 1
            for kind, detail in row["failures"]:
                tally.failed[kind] += 1
                tally.failing.append(f"{row['test']} [{row['command']} {row['kind']}] {kind}: {detail[:200]}")
        return tally

    def lines(self) -> list[str]:
        """The figures the issue's note quotes: cases tried per command and per family of
        hostile input, and failures per kind (each failing case listed)."""
        tried = sum(self.tried.values())
        lines = [f"hostile-input suite: {tried} case(s) tried",
                 "  per command: " + ", ".join(f"{c} {n}" for c, n in sorted(self.tried.items())),
                 "  per input family: " + ", ".join(f"{k} {n}" for k, n in sorted(self.kinds.items())),
                 "  failures: " + ", ".join(f"{kind} {self.failed[kind]}" for kind in KINDS)]
        if self.failing:
            lines.append(f"  {len(self.failing)} failure(s):")
            lines += [f"    {line}" for line in self.failing]
        return lines

    def fail(self, test: str, kind: str, detail: str) -> None:
        """A broken promise found by a test itself, outside a case's own checks."""
        self.failed[kind] += 1
        self.failing.append(f"{test} {kind}: {detail[:200]}")
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"test": test, "kind": kind, "detail": detail}) + "\n")

    def add(self, outcome: Outcome, test: str) -> None:
        self.tried[outcome.case.command] += 1
        self.kinds[outcome.case.kind.split(":")[0]] += 1
        for kind, detail in outcome.failures:
            self.failed[kind] += 1
            self.failing.append(f"{test} [{outcome.case.command} {outcome.case.kind}] {kind}: {detail[:200]}")
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"test": test, "command": outcome.case.command, "kind": outcome.case.kind,
                                         "failures": outcome.failures, "seconds": round(outcome.seconds, 3),
                                         "maxrss_kb": outcome.maxrss_kb}) + "\n")


# -- secrets in every form the engine makes -----------------------------------------------------


def secret_forms(secret: str) -> set[str]:
    """The secret as the engine could write it: as it is, shell-quoted, JSON-escaped (ASCII
    or not), URL-encoded, HTML-escaped, and as Python's repr shows it inside quotes."""
    forms = {secret, shlex.quote(secret), json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
             urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret), urllib.parse.quote(secret),
             html.escape(secret), html.escape(secret, quote=False), repr(secret)[1:-1]}
    return {f for f in forms if f}


def _files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


def leaks(secrets: Iterable[str], texts: dict[str, str]) -> list[str]:
    """Where each secret shows, in any of its forms: `name: form`."""
    found = []
    for secret in secrets:
        for form in sorted(secret_forms(secret)):
            found += [f"{name}: {form!r}" for name, text in texts.items() if form in text]
    return found


# -- running and checking a case ----------------------------------------------------------------


class Runner:
    """Runs cases in a work directory and checks them; the pytest fixture `hostile`.

    A case's argv may say `{runs}`: its own runs directory (runs/N), so that cases run
    side by side never read each other's journals."""

    def __init__(self, zygote: Zygote, tally: Tally, work: Path, test: str) -> None:
        self.zygote, self.tally, self.work, self.test = zygote, tally, work, test
        self.home = work / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home), "LANG": "C.UTF-8",
                "RUNBOOK_HOME": str(self.work / ".runbook"), "RUNBOOK_JOURNAL_FSYNC": "0", "NO_COLOR": "1",
                "RUNBOOK_NO_CACHE": "1", "TMPDIR": str(self.work)}
        return {**base, **extra}

    def execute(self, *cases: Case) -> list[Outcome]:
        """Run the cases side by side; their outcomes, checked and tallied (not asserted)."""
        prepared = []
        for case in cases:
            self.count += 1
            runs = self.work / "runs" / str(self.count)
            prepared.append((case, runs, self.work / f"case-{self.count}.out", self.work / f"case-{self.count}.err",
                             self._stdin(case)))
        started = time.time_ns() - 1_000_000_000  # file times may lag the clock a little
        replies = self.zygote.map([
            {"argv": [a.replace("{runs}", str(runs)) for a in case.argv], "cwd": str(self.work),
             "env": self.env(case.env), "stdout": str(out), "stderr": str(err), "timeout": case.timeout,
             "memory": case.memory, "stdin": stdin} for case, runs, out, err, stdin in prepared])
        outcomes = []
        for (case, runs, out, err, _), reply in zip(prepared, replies, strict=True):
            made = sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []
            outcome = Outcome(case, reply["code"], reply["signal"], reply["hung"], reply["seconds"],
                              reply["maxrss_kb"], _read(out), _read(err), made)
            outcome.failures = judge(outcome, self.work, started, runs)
            self.tally.add(outcome, self.test)
            outcomes.append(outcome)
        return outcomes

    def _stdin(self, case: Case) -> str | None:
        if case.stdin is None:
            return None
        path = self.work / f"case-{self.count}.in"
        path.write_text(case.stdin, encoding="utf-8")
        return str(path)

    def check(self, *cases: Case) -> list[Outcome]:
        """Run every case (all of them, whatever the first ones did: the tally counts each),
        then fail the test with every broken promise."""
        outcomes = self.execute(*cases)
        broken = [describe(o) for o in outcomes if o.failures]
        assert not broken, "\n".join(broken)
        return outcomes

    def write(self, name: str, content: str | bytes) -> Path:
        """An input file under in/ (never read for secrets: inputs hold them on purpose)."""
        path = self.work / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    @staticmethod
    def run_args(runbook: Path, *extra: str) -> list[str]:
        """`run` unattended, local, into the case's own runs directory."""
        return ["run", str(runbook), "--non-interactive", "--yes", "--runs-dir", "{runs}", *extra]


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8", "replace") if path.exists() else ""


def judge(outcome: Outcome, work: Path, since_ns: int, runs: Path) -> list[tuple[str, str]]:
    """Every promise the outcome breaks, as (kind, detail). Files are read for secrets when
    written since `since_ns` outside runs/, or under the case's own runs directory: what
    this case wrote, not what another did."""
    case, failures = outcome.case, []
    if outcome.hung:
        return [("hang", f"still running after {case.timeout:g}s")]
    if "Traceback (most recent call last)" in outcome.text:
        failures.append(("traceback", _tail(outcome.text)))
    if "MemoryError" in outcome.text:
        failures.append(("memory", f"past the {case.memory >> 20} MiB address-space limit"))
    if outcome.signal is not None:
        failures.append(("crash", f"killed by signal {outcome.signal}"))
    elif outcome.code == 70 or "internal error" in outcome.stderr:
        failures.append(("internal-error", _tail(outcome.stderr)))
    elif outcome.code not in (case.codes or CODES[case.command]):
        failures.append(("exit-code", f"exit {outcome.code}: {_tail(outcome.text)}"))
    failures += _journal_failures(outcome)
    if case.secrets:
        failures += [("leak", where) for where in leaks(case.secrets, _written(outcome, work, since_ns, runs))]
    if case.canary is not None and case.canary.exists():
        failures.append(("injection", f"{case.canary.name} was created: a value ran as shell code"))
    return failures


def _journal_failures(outcome: Outcome) -> list[tuple[str, str]]:
    out = []
    for run in outcome.runs:
        journal = run / "journal.jsonl"
        lines = journal.read_text(encoding="utf-8", errors="replace").splitlines() if journal.exists() else []
        try:
            last = json.loads(lines[-1]) if lines else {}
        except ValueError:
            last = {}
        if last.get("event") != "run.finished":
            out.append(("journal", f"{journal} ends with {lines[-1][:120] if lines else 'nothing'}"))
    return out


def _written(outcome: Outcome, work: Path, since_ns: int, runs: Path) -> dict[str, str]:
    """What the case printed and every file it wrote under the work directory."""
    texts = {"stdout": outcome.stdout, "stderr": outcome.stderr}
    inputs, all_runs = work / "in", work / "runs"
    for path in _files(work):
        if inputs in path.parents or path.name.startswith("case-"):
            continue
        if all_runs in path.parents and runs not in path.parents:
            continue
        try:
            info = path.stat()
            if info.st_mtime_ns >= since_ns and info.st_size <= 20 << 20:
                texts[str(path.relative_to(work))] = path.read_bytes().decode("utf-8", "replace")
        except OSError:
            continue
    return texts


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def describe(outcome: Outcome) -> str:
    case = outcome.case
    head = (f"{case.kind}: runbook {' '.join(case.argv)[:300]} -> exit {outcome.code}, signal {outcome.signal}, "
            f"{outcome.seconds:.2f}s, {outcome.maxrss_kb >> 10} MiB")
    return head + "".join(f"\n  {kind}: {detail}" for kind, detail in outcome.failures)
