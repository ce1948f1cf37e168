"""Test helpers shipped with the engine: a scripted executor, an event recorder, and a
one-call way to run a runbook in memory. Our own unit tests use them; so can yours.

    from engine.testing import ScriptedExecutor, run_text
    result, events = run_text(RUNBOOK_YAML, executor=ScriptedExecutor({"usage": "96"}))
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from engine.executors.base import Cancel, Invocation, OutputSink, Result
from engine.executors.notify import Notifier
from engine.executors.prompts import Participant, ScriptedPrompter
from engine.language.duration import format_duration
from engine.run.bus import EventBus
from engine.run.clock import VirtualClock
from engine.run.events import Event, Stamp
from engine.run.masking import Masker
from engine.run.runner import Runner, RunResult
from engine.run.services import Services

Reply = str | int | Mapping[str, Any] | Result | Callable[[Invocation], Result]


@dataclass
class ScriptedExecutor:
    """Answers invocations from a script keyed by step id or command glob.

    A reply may be a string (stdout, exit 0), an int (exit code), a mapping
    ({stdout, stderr, exit_code, status, body, duration}), a Result, a callable, or a
    list of those (one per call, the last repeating). Unscripted calls fail clearly.
    """

    script: Mapping[str, Reply | Sequence[Reply]] = field(default_factory=dict)
    clock: Any = None
    calls: list[Invocation] = field(default_factory=list)

    def run(self, invocation: Invocation, sink: OutputSink, cancel: Cancel) -> Result:
        self.calls.append(invocation)
        reply = self._reply(invocation)
        if reply is None:
            return Result(invocation.command, invocation.host, "", "unscripted", None, 0.0, 0.0, False,
                          f"unscripted step {invocation.step}: {invocation.command}")
        result = self._result(invocation, reply)
        if invocation.timeout is not None and result.duration > invocation.timeout:
            # Slower than the step allows: it times out, as a real command would.
            result = replace(result, duration=invocation.timeout, ok=False, timed_out=True, exit_code=None,
                             error=f"timed out after {format_duration(invocation.timeout)}")
        if result.stdout:
            sink.output("stdout", result.stdout.encode(), invocation.host)
        if self.clock is not None and result.duration:
            self.clock.sleep(result.duration)
        return result

    def _reply(self, invocation: Invocation) -> Reply | None:
        for key, reply in self.script.items():
            if key == invocation.step or fnmatch.fnmatchcase(invocation.command, key):
                if isinstance(reply, (list, tuple)):
                    count = sum(1 for c in self.calls if c.step == invocation.step)
                    return reply[min(count, len(reply)) - 1]
                return reply  # type: ignore[return-value]
        return None

    def _result(self, inv: Invocation, reply: Reply) -> Result:
        if callable(reply):
            return reply(inv)
        if isinstance(reply, Result):
            return reply
        if isinstance(reply, str):
            reply = {"stdout": reply}
        elif isinstance(reply, int):
            reply = {"exit_code": reply}
        code = int(reply.get("exit_code", 0))
        status = reply.get("status")
        ok = inv.http.accepts(status) if status is not None and inv.http is not None else code in inv.exit_codes
        body = reply.get("body")
        return Result(inv.command, inv.host, str(reply.get("stdout", body or "")), str(reply.get("stderr", "")),
                      None if status is not None else code, 0.0, float(reply.get("duration", 0.0)), ok,
                      None if ok else (f"HTTP status {status}" if status is not None else f"exit code {code}"),
                      status=status, body=body, headers=reply.get("headers"))


@dataclass
class FakeRemote:
    """A stand-in for the SSH executor, behind the real fan-out: `FanOut(FakeRemote(...))`.

    `script` keys: "host:step", a host name, a step id, or a command glob (tried in that
    order); replies as for ScriptedExecutor, plus `{"host_status": "unreachable", "error":
    "..."}` for a host that cannot be reached (or auth_failed, host_key, timed_out).
    Unscripted hosts answer `default` (exit 0, no output). `delay` is how long each host
    takes in real seconds, to watch concurrency: `max_running` and `log` (start/end in
    order) record it. Thread-safe: the fan-out calls it from several threads.
    """

    script: Mapping[str, Reply | Sequence[Reply]] = field(default_factory=dict)
    default: Reply = ""
    delay: float = 0.0
    calls: list[Invocation] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)
    max_running: int = 0
    _running: int = field(default=0, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def run(self, invocation: Invocation, sink: OutputSink, cancel: Cancel) -> Result:
        host = invocation.host or ""
        with self._lock:
            self.calls.append(invocation)
            self.log.append(("start", host))
            self._running += 1
            self.max_running = max(self.max_running, self._running)
        try:
            if self.delay and cancel_wait(cancel, self.delay):
                return Result(invocation.command, host, "", "", None, 0.0, self.delay, False, "interrupted",
                              cancelled=True)
            return self._answer(invocation, sink)
        finally:
            with self._lock:
                self._running -= 1
                self.log.append(("end", host))

    def _answer(self, inv: Invocation, sink: OutputSink) -> Result:
        reply = self._reply(inv)
        if isinstance(reply, Mapping) and reply.get("host_status"):
            return Result(inv.command, inv.host, "", "", None, 0.0, float(reply.get("duration", 0.0)), False,
                          str(reply.get("error", reply["host_status"])), timed_out=reply["host_status"] == "timed_out",
                          extra={"status": reply["host_status"]})
        result = ScriptedExecutor()._result(inv, reply)
        result = replace(result, host=inv.host)
        for stream in ("stdout", "stderr"):
            if getattr(result, stream):
                sink.output(stream, getattr(result, stream).encode(), inv.host)
        return result

    def _reply(self, inv: Invocation) -> Reply:
        host = inv.host or ""
        for key in (f"{host}:{inv.step}", host, inv.step):
            if key in self.script:
                return self._nth(key, inv)
        for key in self.script:
            if fnmatch.fnmatchcase(inv.command, key):
                return self._nth(key, inv)
        return self.default

    def _nth(self, key: str, inv: Invocation) -> Reply:
        reply = self.script[key]
        if isinstance(reply, (list, tuple)):
            with self._lock:
                count = sum(1 for c in self.calls if c.step == inv.step and c.host == inv.host)
            return reply[min(count, len(reply)) - 1]
        return reply  # type: ignore[return-value]


def cancel_wait(cancel: Cancel, seconds: float) -> bool:
    """Sleep up to `seconds` in real time; True if `cancel` was set meanwhile."""
    import select

    poller = select.poll()
    poller.register(cancel.fileno(), select.POLLIN)
    poller.poll(seconds * 1000)
    return cancel.is_set()


@dataclass
class Recorder:
    """An observer that keeps every event (journaled ones and output)."""

    events: list[tuple[Event, Stamp]] = field(default_factory=list)
    wants_output = True

    def on_event(self, event: Event, stamp: Stamp) -> None:
        self.events.append((event, stamp))

    def named(self, name: str) -> list[Event]:
        return [e for e, _ in self.events if e.name == name]

    def names(self) -> list[str]:
        return [e.name for e, _ in self.events if e.journaled]


def run_text(text: str, *, inputs: Mapping[str, Any] | None = None, executor: Any = None,
             http: Any = None, answers: Mapping[str, Mapping[str, Any]] | None = None, yes: bool = True,
             participants: Sequence[Participant] = (), file: str = "runbook.yaml",
             observers: Sequence[Any] = (), notifier: Notifier | None = None,
             secrets: Sequence[str] = (), remote: Any = None,
             resolve_hosts: Any = None) -> tuple[RunResult, Recorder]:
    """Validate and run a runbook given as YAML text, on a virtual clock, with fakes.

    `remote` runs steps that have a target, e.g. `FanOut(FakeRemote({...}))`;
    `resolve_hosts` maps targets to hosts (e.g. `engine.fleet.hosts.Resolver(path)`)."""
    from engine.language.builder import build_runbook
    from engine.language.loader import load_text
    from engine.language.validation import ValidationFailed, check_document
    from engine.run.inputs import resolve

    doc = load_text(text, file)
    checked = check_document(doc)
    if checked.model is None:
        raise ValidationFailed(file, checked.diagnostics)
    runbook = build_runbook(doc)
    resolved = resolve(runbook, from_file=inputs or {}, environ={})
    clock = VirtualClock()
    scripted = executor or ScriptedExecutor(clock=clock)
    if getattr(scripted, "clock", "absent") is None:
        scripted.clock = clock
    recorder = Recorder()
    masker = Masker([*resolved.secrets, *secrets])
    bus = EventBus(clock, [recorder, *observers], masker)
    services = Services(local=scripted, http=http or scripted,
                        prompter=ScriptedPrompter(answers or {}, yes, tuple(participants)),
                        notifier=notifier or Notifier(console=lambda _: None),
                        remote=remote, resolve_hosts=resolve_hosts)
    runner = Runner(runbook, resolved.values, services=services, bus=bus, clock=clock, run_id="test-run",
                    masker=masker, participants=participants)
    return runner.run(), recorder
