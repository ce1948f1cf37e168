"""Fan-out: one invocation (a step's command) on every host of a target, under a policy.

Hosts run `parallel` at a time (default 10). `serial` splits them into rolling
batches (`2` hosts, or `25%` of them): a batch starts when the previous one is done.
`max_failures` (a count, or a percentage of the hosts) is how many failed hosts the
step tolerates: once more have failed, no new host is started, hosts already running
finish, and the step fails. Without `max_failures` every host runs and any failure
fails the step; with `serial`, a batch with a failure stops the rollout.

Each host runs in a worker thread; the workers hand their output and results to the
calling thread through a queue, so the caller's sink and `on_host` hear of them from
one thread only, in order. What the hosts came to is a FanOutResult; the run layer
makes it the step's attempt and its events (fleet knows nothing of the run loop).
"""

from __future__ import annotations

import math
import queue
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from engine.errors import TemplateError
from engine.executors.base import Cancel, Executor, Invocation, OutputSink, Result
from engine.language.model import Step, Target

DEFAULT_PARALLEL = 10
LISTED = 5  # failed hosts named in the step's error


def _count(value: int | str | None, total: int, *, at_least_one: bool) -> int | None:
    """`3` -> 3; `25%` -> a quarter of `total` (rounded down)."""
    if value is None:
        return None
    if isinstance(value, str) and value.endswith("%"):
        number = math.floor(total * float(value[:-1]) / 100)
    else:
        number = int(value)
    return max(number, 1) if at_least_one else max(number, 0)


@dataclass(frozen=True)
class Policy:
    """How a step spreads over its hosts: the step's settings, else the target's."""

    parallel: int = DEFAULT_PARALLEL
    serial: int | str | None = None
    max_failures: int | str | None = None

    @classmethod
    def of(cls, step: Step | None, target: Target | None) -> Policy:
        def pick(name: str) -> Any:
            mine = getattr(step, name, None) if step is not None else None
            return mine if mine is not None else getattr(target, name, None)

        return cls(pick("parallel") or DEFAULT_PARALLEL, pick("serial"), pick("max_failures"))

    def batches(self, hosts: Sequence[str]) -> list[list[str]]:
        size = _count(self.serial, len(hosts), at_least_one=True) or len(hosts) or 1
        return [list(hosts[i:i + size]) for i in range(0, len(hosts), size)]

    def tolerated(self, total: int) -> int:
        """Failed hosts the step tolerates (0 without max_failures)."""
        return _count(self.max_failures, total, at_least_one=False) or 0


@dataclass(frozen=True)
class HostResult:
    """One host's outcome. status: ok, failed, timed_out, unreachable, auth_failed,
    host_key, aborted, or not_run (never started: max_failures exceeded or interrupted)."""

    host: str
    status: str
    result: Result | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def view(self) -> dict[str, Any]:
        """What `steps.<id>.hosts.<host>` shows to templates and the journal."""
        res = self.result
        return {"status": self.status, "exit_code": res.exit_code if res else None,
                "stdout": res.stdout if res else "", "stderr": res.stderr if res else "",
                "duration": round(res.duration, 3) if res else 0.0, "error": self.error}


@dataclass
class FanOutResult:
    """host -> HostResult in the target's order, with `.succeeded` and `.failed`."""

    hosts: dict[str, HostResult]
    tolerated: int = 0
    stopped: bool = False  # stopped starting hosts: too many failures
    cancelled: bool = False

    @property
    def succeeded(self) -> list[str]:
        return [h for h, r in self.hosts.items() if r.ok]

    @property
    def failed(self) -> list[str]:
        return [h for h, r in self.hosts.items() if r.status not in ("ok", "not_run")]

    @property
    def not_run(self) -> list[str]:
        return [h for h, r in self.hosts.items() if r.status == "not_run"]

    @property
    def ok(self) -> bool:
        return not self.cancelled and not self.not_run and len(self.failed) <= self.tolerated

    def views(self) -> dict[str, dict[str, Any]]:
        """host -> what `steps.<id>.hosts.<host>` shows (HostResult.view), in the target's order."""
        return {h: r.view() for h, r in self.hosts.items()}

    def only(self) -> Result | None:
        """The Result of the one host of a one-host target (the step's own stdout and exit code)."""
        return next(iter(self.hosts.values())).result if len(self.hosts) == 1 else None

    def error(self) -> str | None:
        if self.ok:
            return None
        if self.cancelled:
            return "interrupted"
        failed = self.failed
        if len(self.hosts) == 1 and failed:
            return self.hosts[failed[0]].error
        listed = "; ".join(f"{h}: {self.hosts[h].error}" for h in failed[:LISTED])
        more = f"; and {len(failed) - LISTED} more" if len(failed) > LISTED else ""
        why = f"{len(failed)} of {len(self.hosts)} host(s) failed"
        if self.tolerated:
            why += f" (max_failures tolerates {self.tolerated})"
        if self.not_run:
            why += f"; {len(self.not_run)} not started"
        return f"{why}: {listed}{more}"


OnHost = Callable[[HostResult, "Progress"], None]


@dataclass(frozen=True)
class Progress:
    """Where a fan-out stands as a host ends: hosts done, failed, still running, in all."""

    done: int
    failed: int
    running: int
    total: int


class _QueueSink:
    """A worker's output goes to the calling thread, which emits it."""

    def __init__(self, inbox: queue.SimpleQueue[tuple[Any, ...]]) -> None:
        self.inbox = inbox

    def output(self, stream: str, data: bytes, host: str | None) -> None:
        self.inbox.put(("out", stream, data, host))

    def process_started(self, pgid: int, host: str | None) -> None:
        self.inbox.put(("pid", pgid, host))


@dataclass
class _Rollout:
    """One fan-out in progress: starts hosts, collects results, decides when to stop."""

    executor: Executor
    base: Invocation
    policy: Policy
    sink: OutputSink
    cancel: Cancel
    on_host: OnHost | None
    total: int = 0
    results: dict[str, HostResult] = field(default_factory=dict)
    failed: int = 0  # hosts in `results` that failed: counted as they finish, read after every message
    running: int = 0
    inbox: queue.SimpleQueue[tuple[Any, ...]] = field(default_factory=queue.SimpleQueue)

    def run(self, hosts: Sequence[str]) -> FanOutResult:
        self.total = len(hosts)
        tolerated = self.policy.tolerated(self.total)
        stopped = False
        for batch in self.policy.batches(hosts):
            if stopped or self.cancel.is_set():
                break
            stopped = self._batch(batch, tolerated) or self.failed > tolerated
        why = "interrupted" if self.cancel.is_set() else "not started: too many hosts failed before it"
        ordered = {h: self.results.get(h) or HostResult(h, "not_run", error=why) for h in hosts}
        return FanOutResult(ordered, tolerated, stopped, self.cancel.is_set())

    def _batch(self, batch: list[str], tolerated: int) -> bool:
        todo = deque(batch)
        early = self.policy.max_failures is not None
        stop = False
        while todo or self.running:
            while todo and self.running < self.policy.parallel and not stop and not self.cancel.is_set():
                self._start(todo.popleft())
            if not self.running:
                break
            self._handle(self.inbox.get())
            stop = stop or (early and self.failed > tolerated)
        return stop

    def _start(self, host: str) -> None:
        self.running += 1
        if self.total == 1:  # nothing to overlap: run here, spare a thread and two hand-overs
            self._work(host, self.sink)
            return
        threading.Thread(target=self._work, args=(host, _QueueSink(self.inbox)), name=f"fanout-{host}",
                         daemon=True).start()

    def _work(self, host: str, sink: OutputSink) -> None:
        inv = replace(self.base, host=host)
        try:
            if inv.per_host is not None:
                inv = replace(inv, command=inv.per_host(host))
            result = self.executor.run(inv, sink, self.cancel)
        except TemplateError as exc:
            result = Result(inv.command, host, "", "", None, 0.0, 0.0, False, str(exc), extra={"status": "failed"})
        except Exception as exc:  # a bug in an executor must not hang the run
            result = Result(inv.command, host, "", "", None, 0.0, 0.0, False,
                            f"internal error: {type(exc).__name__}: {exc}", extra={"status": "failed"})
        self.inbox.put(("done", host, result))

    def _handle(self, message: tuple[Any, ...]) -> None:
        if message[0] == "out":
            _, stream, data, host = message
            self.sink.output(stream, data, host)
            return
        if message[0] == "pid":
            self.sink.process_started(message[1], message[2])
            return
        _, host, result = message
        self.running -= 1
        hr = HostResult(host, host_status(result), result, result.error)
        self.results[host] = hr
        if not hr.ok:
            self.failed += 1
        if self.on_host is not None:
            self.on_host(hr, Progress(len(self.results), self.failed, self.running, self.total))


def host_status(result: Result) -> str:
    status = (result.extra or {}).get("status")
    if status:
        return str(status)
    if result.ok:
        return "ok"
    if result.timed_out:
        return "timed_out"
    return "aborted" if result.cancelled else "failed"


class FanOut:
    """Runs an invocation on many hosts through `executor` (SSH, or a fake), under a Policy."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    def execute(self, base: Invocation, hosts: Sequence[str], policy: Policy, sink: OutputSink,
                cancel: Cancel, on_host: OnHost | None = None) -> FanOutResult:
        """Run `base` on every host; `on_host` hears of each host as it finishes."""
        return _Rollout(self.executor, base, policy, sink, cancel, on_host).run(list(dict.fromkeys(hosts)))

    def close(self) -> None:
        close = getattr(self.executor, "close", None)
        if close is not None:
            close()

