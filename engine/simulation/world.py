"""The simulated world of a scenario, and the executors that answer from it.

Commands, HTTP requests, SSH fan-out and notifications are answered from the
scenario's `responses` (by step id, or by `match` on command, host, URL), with
per-attempt faults, durations on the run's clock, output templated from `state`, and
`set:` changes to the state after each reply. Timed `events` change the state and
show a message when the clock passes their time, between or during steps. Nothing
here can start a process, open a socket or touch a file.
"""

from __future__ import annotations

import fnmatch
import json
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from engine.errors import TemplateError
from engine.executors.base import Cancel, Invocation, OutputSink, Result
from engine.executors.notify import Channels, Delivery
from engine.executors.prometheus import answer_body, targets_body
from engine.language.duration import format_duration
from engine.language.scenario import Event, Reply, Response, Scenario
from engine.run.events import InjectFired, Mitigated, MitigationWatched, StepOutput
from engine.templates import templating

from . import alertmanager

if TYPE_CHECKING:
    from engine.fleet.fanout import OnHost, Policy


@dataclass
class World:
    """The scenario's state as the drill goes on, and what matched what."""

    scenario: Scenario
    clock: Any
    rng: random.Random | None = None
    speed: float = 1.0
    state: dict[str, Any] = field(default_factory=dict)
    counts: dict[tuple[int, str, str | None], int] = field(default_factory=dict)
    unscripted: list[str] = field(default_factory=list)
    emit: Callable[[Any], Any] | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    mitigated: bool = False  # the scenario's `mitigated_when` has been true (once is enough)

    # Whether anyone shows or stores a command's live output (a drill's console, a journal's
    # logs): when nobody does (trials), a reply is neither encoded nor handed to the sink.
    shows_output: bool = True

    def __post_init__(self) -> None:
        if not self.state:
            self.state = json.loads(self.scenario.state_json)
        # The inputs as templates see them: copied once, not at every reply (templates
        # cannot change what they are given: the sandbox is immutable).
        self._inputs = dict(self.inputs)


    # -- matching ------------------------------------------------------------------------------

    def respond(self, inv: Invocation) -> tuple[Response, Reply] | None:
        """The first response that matches this invocation, and the reply for this attempt."""
        step = inv.step
        response = self.scenario.plain_first.get(step) or self._first_match(step, inv)
        if response is None:
            return None
        key = (response.index, step, inv.host)
        count = self.counts[key] = self.counts.get(key, 0) + 1
        return response, response.reply_for(count)

    def _first_match(self, step: str, inv: Invocation) -> Response | None:
        for i, response in enumerate(self.scenario.responses_for(step)):
            # Most responses name the step and nothing else: they match without a look.
            plain = response.match is None and response.when is None and response.step in (None, step)
            if plain and i == 0:
                self.scenario.plain_first[step] = response  # and answer it from there next time
            if plain or self._matches(response, step, inv):
                return response
        return None

    def _matches(self, response: Response, step: str, inv: Invocation) -> bool:
        if response.step is not None and response.step != step and response.step != step.rsplit("/", 1)[-1]:
            return False
        match = response.match
        if match is not None:
            url = inv.http.url if inv.http else None
            method = inv.http.method if inv.http else None
            checks = (
                (match.command, lambda p: inv.http is None and fnmatch.fnmatchcase(inv.command, p)),
                (match.command_regex, lambda p: inv.http is None and re.search(p, inv.command) is not None),
                (match.host, lambda p: inv.host is not None and fnmatch.fnmatchcase(inv.host, p)),
                (match.url, lambda p: url is not None and fnmatch.fnmatchcase(url, p)),
                (match.method, lambda p: method is not None and method.upper() == p.upper()),
                (match.query, lambda p: inv.kind == "promql" and fnmatch.fnmatchcase(inv.command, p)),
                (match.query_regex, lambda p: inv.kind == "promql" and re.search(p, inv.command) is not None),
            )
            if not all(test(pattern) for pattern, test in checks if pattern is not None):
                return False
        return response.when is None or bool(self.evaluate(response.when, {}))

    # -- state ---------------------------------------------------------------------------------

    def context(self, inv: Invocation | None = None) -> dict[str, Any]:
        if inv is None:
            return {"state": self.state, "inputs": self._inputs}
        http = inv.http
        return {"state": self.state, "inputs": self._inputs, "command": inv.command, "host": inv.host,
                "step": inv.step, "attempt": inv.attempt, "url": http.url if http else None,
                "query": inv.command if inv.kind == "promql" else None}

    def evaluate(self, expression: str, extra: Mapping[str, Any]) -> Any:
        return templating.evaluate(expression, {**self.context(), **extra}, where=self.scenario.file)

    def render(self, text: str, inv: Invocation) -> str:
        return templating.render(text, self.context(inv), where=self.scenario.file)

    def render_body(self, body: Any, inv: Invocation) -> str:
        """An HTTP reply's body as the response text: a string is a template; in a mapping
        or list every string is one (as in `set:`), and the result is sent as JSON."""
        if isinstance(body, str):
            return self.render(body, inv)
        return json.dumps(templating.render_value(body, self.context(inv), where=self.scenario.file), default=str)

    def series_body(self, series: Any, inv: Invocation) -> str:
        """A promql step's answer, as Prometheus would send it, from the reply's `series`."""
        value = self.listed(series, inv, "series")
        assert inv.http is not None
        return answer_body(value, "/api/v1/query_range?" in inv.http.url, self.clock.now())

    def listed(self, template: Any, inv: Invocation, key: str) -> list[Mapping[str, Any]]:
        """A reply's list of mappings (`series`, `targets`) rendered from the state."""
        value = templating.render_value(template, self.context(inv), where=self.scenario.file)
        if not isinstance(value, list) or not all(isinstance(s, Mapping) for s in value):
            raise TemplateError(f"`{key}` gave {type(value).__name__}, not a list of mappings")
        return value

    def apply(self, changes: Mapping[str, Any], inv: Invocation | None = None,
              extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Apply `set:` (templates see the state before the change, and `extra`)."""
        ctx = {**self.context(inv), **(extra or {})}
        rendered = {k: templating.render_value(v, ctx, where=self.scenario.file) for k, v in changes.items()}
        for key, value in rendered.items():
            _assign(self.state, key, value)
        return rendered

    # -- mitigation ----------------------------------------------------------------------------

    def watch_mitigation(self) -> None:
        """At the start of the run: say that the world decides mitigation, and check the
        initial state (only state changes can change the answer, so they check again)."""
        condition = self.scenario.mitigated_when
        if condition is None or self.emit is None:
            return
        self.emit(MitigationWatched(condition))
        self.check_mitigated(None, None)

    def check_mitigated(self, step: str | None, injected: int | None) -> None:
        """After a state change (by a reply of `step` or the injected event with index
        `injected`): journal the moment `mitigated_when` first holds."""
        condition = self.scenario.mitigated_when
        if condition is None or self.mitigated:
            return
        try:
            holds = bool(self.evaluate(condition, {}))
        except TemplateError:
            holds = False  # e.g. a state key that a later reply sets: not mitigated yet
        if holds:
            self.mitigated = True
            if self.emit is not None:
                self.emit(Mitigated(condition, step, injected))

    def duration(self, reply: Reply) -> float:
        return reply.duration.sample(self.rng) if reply.duration is not None else 0.0

    def pass_time(self, seconds: float) -> None:
        """Let simulated time go by (a virtual clock jumps; a drill clock waits, scaled)."""
        if seconds > 0:
            self.clock.sleep(seconds)

    # -- timed events --------------------------------------------------------------------------

    def schedule(self, scheduler: Callable[[float, Callable[[], None]], None]) -> None:
        for event in self.scenario.events:
            scheduler(event.at, self._firing(event))

    def _firing(self, event: Event) -> Callable[[], None]:
        return lambda: self.fire(event)

    def fire(self, event: Event, *, manual: bool = False) -> None:
        message = event.message
        try:
            applied = self.apply(event.set) if event.set else {}
        except TemplateError as exc:
            # A broken event must not end the drill (or, on a timer thread, every later
            # event): it is shown and journaled, and changes nothing.
            applied = {}
            message = f"{message or 'event'} (event {event.index}: its set failed, nothing changed: {exc})"
        if self.emit is not None:
            self.emit(InjectFired(event.index, event.at, message, event.kind, applied, manual))
        if applied:
            self.check_mitigated(None, event.index)


def _assign(state: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = state
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = node[part] = {}
        node = nxt
    node[parts[-1]] = value


_INVOCATION_NAMES = ("command", "host", "step", "attempt", "url", "query")  # world.context(inv) adds them


@lru_cache(maxsize=1024)
def _names_invocation(text: str) -> bool:
    """Whether a reply's template may read a name of the invocation: any text that spells
    one (most replies read only `state` and `inputs`). By its text, so no scoping rule of
    Jinja's can make it wrong."""
    return any(name in text for name in _INVOCATION_NAMES)


def _rendered(world: World, reply: Reply, inv: Invocation) -> tuple[str, str]:
    """A reply's stdout and stderr rendered from the state (as world.render, with one
    context: the invocation's names added only when a template may read one)."""
    small = not _names_invocation(reply.stdout) and not _names_invocation(reply.stderr)
    ctx, where = world.context(None if small else inv), world.scenario.file
    return (templating.render(reply.stdout, ctx, where=where) if reply.stdout else "",
            templating.render(reply.stderr, ctx, where=where) if reply.stderr else "")


def _show(sink: OutputSink, stdout: str, stderr: str, host: str | None) -> None:
    """A reply's output, as a live command's would reach the sink: bytes, ending a line."""
    if stdout:
        sink.output("stdout", (stdout if stdout.endswith("\n") else stdout + "\n").encode(), host)
    if stderr:
        sink.output("stderr", (stderr if stderr.endswith("\n") else stderr + "\n").encode(), host)


class SimulatedExecutor:
    """Answers `run` (local and per host) and `http` invocations from the world. With
    waits=False its replies take no time (a fan-out's hosts: it waits once, for the slowest)."""

    def __init__(self, world: World, *, waits: bool = True) -> None:
        self.world, self.waits = world, waits

    def run(self, inv: Invocation, sink: OutputSink, cancel: Cancel) -> Result:
        world = self.world
        started = world.clock.now()
        found = world.respond(inv)
        if found is None and inv.kind in alertmanager.KINDS:
            return alertmanager.answer(world.state, world.scenario.alert, inv, started)
        if found is None:
            what = inv.command if inv.http is None else f"{inv.http.method} {inv.http.url}"
            where = f" on {inv.host}" if inv.host else ""
            world.unscripted.append(inv.step)
            message = f"unscripted step {inv.step}: the scenario has no response for `{what}`{where}"
            return Result(inv.command, inv.host, "", message, None, started, 0.0, False, message)
        response, reply = found
        try:
            result = self._reply(inv, reply, started, sink, cancel)
        except TemplateError as exc:
            return Result(inv.command, inv.host, "", str(exc), None, started, 0.0, False,
                          f"scenario response {response.index}: {exc}")
        if result.cancelled or result.timed_out:
            return result  # the command never finished: its reply and state change never happen
        if reply.set:
            world.apply(reply.set, inv)
            world.check_mitigated(inv.step, None)
        if reply.message and world.emit is not None:
            world.emit(StepOutput(inv.step, "info", f"[world] {reply.message}", inv.host))
        return result

    def _reply(self, inv: Invocation, reply: Reply, started: float, sink: OutputSink, cancel: Cancel) -> Result:
        world = self.world
        duration = reply.duration.sample(world.rng) if reply.duration is not None else 0.0  # world.duration(reply)
        if inv.timeout and duration > inv.timeout:
            # As a live executor would: the step's timeout stops a command that takes too long.
            if self.waits:
                world.pass_time(inv.timeout)
            error = f"timed out after {format_duration(inv.timeout)}"
            return Result(inv.command, inv.host, "", "", None, started, inv.timeout, False, error, timed_out=True)
        if duration > 0 and self.waits:  # world.pass_time(duration), without the call
            world.clock.sleep(duration)
        if cancel.is_set():
            # Ctrl-C (or the trainer's :end) cut the wait short, as it would kill a live command.
            spent = max(world.clock.now() - started, 0.0)
            return Result(inv.command, inv.host, "", "", None, started, spent, False, "interrupted", cancelled=True)
        stdout, stderr = _rendered(world, reply, inv) if reply.stdout or reply.stderr else ("", "")
        # Not encoded for a sink that drops it (nobody shows output: the sink is not asked)
        if (stdout or stderr) and world.shows_output and getattr(sink, "wants_output", True):
            _show(sink, stdout, stderr, inv.host)
        if inv.http is not None:
            return self._http(inv, reply, stdout, started, duration)
        ok = reply.exit_code in inv.exit_codes
        return Result(inv.command, inv.host, stdout, stderr, reply.exit_code, started, duration, ok,
                      None if ok else f"exit code {reply.exit_code}")

    def _http(self, inv: Invocation, reply: Reply, stdout: str, started: float, duration: float) -> Result:
        assert inv.http is not None
        if reply.series is not None and inv.kind == "promql":
            body = self.world.series_body(reply.series, inv)
        elif reply.targets is not None and inv.kind == "scrape_targets":
            body = targets_body(self.world.listed(reply.targets, inv, "targets"))
        else:
            body = self.world.render_body(reply.body, inv) if reply.body is not None else stdout
        ok = inv.http.accepts(reply.status)
        return Result(inv.command, None, body, "", None, started, duration, ok,
                      None if ok else f"HTTP status {reply.status}", status=reply.status,
                      headers=dict(reply.headers), body=body)


@dataclass
class SimulatedHosts:
    """What a step came to on the simulated hosts: each host's view, as a step's hosts show."""

    hosts: dict[str, dict[str, Any]]
    cancelled: bool = False

    @property
    def failed(self) -> list[str]:
        return [h for h, r in self.hosts.items() if r["status"] != "ok"]

    @property
    def ok(self) -> bool:
        return not self.cancelled and bool(self.hosts) and not self.failed

    def error(self) -> str | None:
        if self.cancelled:
            return "interrupted"
        if not self.hosts:
            return "no hosts"
        failed = self.failed
        return f"{len(failed)} of {len(self.hosts)} host(s) failed: {', '.join(failed)}" if failed else None

    def views(self) -> dict[str, dict[str, Any]]:
        return self.hosts

    def only(self) -> Result | None:
        return None  # even one host answers through `hosts`, as a drill always has


class SimulatedRemote:
    """Fan-out in the simulated world: every host answers (the policy changes nothing);
    the step takes as long as the slowest host (hosts run in parallel)."""

    def __init__(self, world: World) -> None:
        self.world = world

    def execute(self, base: Invocation, hosts: Sequence[str], policy: Policy, sink: OutputSink, cancel: Cancel,
                on_host: OnHost | None = None) -> SimulatedHosts:
        world = self.world
        start = world.clock.monotonic()
        results: dict[str, dict[str, Any]] = {}
        longest = 0.0
        executor = SimulatedExecutor(world, waits=False)
        for host in hosts:
            result = self._one(executor, base, host, sink, cancel)
            longest = max(longest, result.duration)
            results[host] = {"status": "ok" if result.ok else "failed", "exit_code": result.exit_code,
                             "stdout": result.stdout, "stderr": result.stderr, "duration": result.duration,
                             "error": result.error}
            if on_host is not None:  # host.finished, as a live fan-out reports each host
                _report(on_host, host, result, results, len(hosts))
        world.pass_time(max(longest - (world.clock.monotonic() - start), 0.0))
        return SimulatedHosts(results, cancelled=cancel.is_set())

    @staticmethod
    def _one(executor: SimulatedExecutor, base: Invocation, host: str, sink: OutputSink, cancel: Cancel) -> Result:
        """One host's answer; a command that cannot be rendered for it fails that host alone."""
        try:
            command = base.per_host(host) if base.per_host is not None else base.command
        except TemplateError as exc:
            return Result(base.command, host, "", "", None, 0.0, 0.0, False, str(exc))
        inv = Invocation(base.step, base.kind, command, host, base.target, base.stdin, base.env,
                         base.timeout, base.exit_codes, attempt=base.attempt)
        return executor.run(inv, sink, cancel)


def _report(on_host: OnHost, host: str, result: Result, results: Mapping[str, Mapping[str, Any]], total: int,
            ) -> None:
    from engine.fleet.fanout import HostResult, Progress

    failed = sum(1 for r in results.values() if r["status"] != "ok")
    status = "ok" if result.ok else "failed"
    on_host(HostResult(host, status, result, None if result.ok else result.error),
            Progress(len(results), failed, 0, total))


class SimulatedNotifier:
    """Notifications in a drill go nowhere real; they are journaled like any other. With
    the channels config, the journal says what would have gone where (a PagerDuty
    trigger for the run, a mail to whom), so the debrief can check the paging."""

    def __init__(self, channels: Channels | None = None) -> None:
        self.sent: list[tuple[str, str]] = []
        self.channels = channels.channels if channels is not None else {}

    def send(self, channel: str, message: str, *, title: str | None = None,
             meta: Mapping[str, Any] | None = None, **_: Any) -> Delivery:
        self.sent.append((channel, message))
        spec = self.channels.get(channel)
        if spec is None or spec.type == "stdout":
            return Delivery(True, note="simulated")
        what = spec.describe()
        if spec.type in ("pagerduty", "opsgenie"):
            what += f": {(meta or {}).get('action') or 'trigger'} for the run ({(meta or {}).get('run_id', '')})"
        return Delivery(True, note=f"drill: not sent: {what}")
