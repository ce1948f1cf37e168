"""A live run, assembled: inputs, lock, journal, console, executors, signals.

`runbook run` and `runbook resume` (engine/cli/live.py) parse flags into a LiveOptions
and call `run_live` or `resume_run`; everything a run needs is put together here, and
taken apart again however it ends.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from engine.errors import EngineError, UsageError
from engine.executors.base import Cancel, Invocation, OutputSink
from engine.executors.channels_file import config_path
from engine.executors.http import HttpExecutor
from engine.executors.local import LocalExecutor
from engine.executors.prompts import Participant, Prompter, ScriptedPrompter, TerminalPrompter
from engine.home import home
from engine.language.model import Runbook
from engine.templates import templating

from .bus import EventBus
from .clock import RealClock
from .console import Console
from .journal_writer import JournalWriter, new_run_id
from .lock import RunLock
from .lock import lock_dir as machine_lock_dir
from .masking import Masker
from .runner import Runner, RunResult
from .services import Services

if TYPE_CHECKING:  # types only: a run without targets imports no fan-out code, a new run none
    import signal  # of what reads an earlier attempt's journal (resume), and no signal.py (below)

    from engine.executors.notify import Notifier
    from engine.fleet.fanout import FanOutResult, OnHost, Policy

    from .continuation import Choices, Resume
    from .recovery import Recovered
else:  # the C module signal.py wraps (signal.py makes enums of every signal at import)
    import _signal as signal

RUNS = "runs"
OUTCOME_EXIT = {"resolved": 0, "failed": 1, "not_confirmed": 5, "escalated": 6, "refused": 7, "aborted": 130}


@dataclass
class LiveOptions:
    """How a live run is carried out: what the command line (or a worker) chose."""

    inputs: Mapping[str, Any] = field(default_factory=dict)
    answers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    yes: bool = False
    interactive: bool = False
    participants: tuple[Participant, ...] = ()
    runs_dir: Path | None = None
    channels: str | None = None
    rollback_on_abort: bool = True
    color: bool = False
    show_output: bool = True
    stream: TextIO | None = None
    rerun_interrupted: bool | None = None
    install_signals: bool = True
    secrets: tuple[str, ...] = ()
    inventory: str | None = None
    accept_new_host_keys: bool = False
    extra_services: Callable[[Services], None] | None = None
    alert: Mapping[str, Any] | None = None  # what the journal keeps of the alert (alerts.record)
    # Where the journal goes: journal.jsonl in the run directory, or (a service's worker)
    # the store; either way the same observer interface (on_event, barrier, close).
    journal: Callable[[Path], Any] | None = None
    machine_lock: bool = True  # a worker's runs are coordinated by the store's leases instead
    on_runner: Callable[[Runner], None] | None = None  # who may stop the run (a worker's lease)


def _prompter(options: LiveOptions, console: Console) -> Prompter:
    if options.interactive:
        return TerminalPrompter(options.participants, read=console.ask, write=console.line)
    return ScriptedPrompter(options.answers, options.yes, options.participants)


def _load_runbook(path: Path) -> Runbook:
    """validation.load_runbook, imported when an include first needs it: a run of a model
    kept on disk (engine/language/model_cache.py) then never imports the YAML reader."""
    from engine.language.validation import load_runbook

    return load_runbook(path)


def _services(options: LiveOptions, console: Console) -> Services:
    services = Services(
        local=LocalExecutor(), http=HttpExecutor(), prompter=_prompter(options, console),
        notifier=_notifier(options, console),
        load_runbook=_load_runbook,
    )
    _remote(services, options)
    if options.extra_services is not None:
        options.extra_services(services)
    return services


def _notifier(options: LiveOptions, console: Console) -> Notifier:
    """The notifier of the channels config in force. Without a config every message is
    shown on the console only, and the notifier (its channel types, webhooks, secrets)
    is imported when the first message is sent: most runs send none."""
    from_file = config_path(options.channels)
    if from_file is None:
        return cast("Notifier", _OnFirstUse(lambda: _new_notifier(None, console)))
    return _new_notifier(from_file, console)


def _new_notifier(from_file: str | None, console: Console) -> Notifier:
    from engine.executors.notify import Notifier, load_channels

    return Notifier(load_channels(from_file), console=console.line)


class _OnFirstUse:
    """Stands for an object built when one of its attributes is first used (by any thread)."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._made: Any = None
        self._lock = threading.Lock()

    @property
    def made(self) -> bool:
        return self._made is not None

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self._made is None:
                self._made = self._build()
        return getattr(self._made, name)


def _check_channels(runbook: Runbook, notifier: Any) -> None:
    """With a channels config, every channel the runbook names must be in it: refused
    before anything runs (exit 2), all at once, like the inputs; an update or escalation
    to a misspelt channel would otherwise reach nobody. Included runbooks are checked
    when they run (their notify steps fail)."""
    if isinstance(notifier, _OnFirstUse) and not notifier.made:
        return  # no channels config: nothing to check the names against
    config = getattr(notifier, "config", None)
    if config is None or config.file is None:
        return
    from engine.executors.notify import did_you_mean
    from engine.language.channels import channel_uses

    problems = [f"  {runbook.where(path)}: channel '{name}' is not in {config.file}"
                f"{did_you_mean(name, config.channels)}"
                for path, name in channel_uses(runbook) if name not in config]
    if problems:
        raise UsageError(f"{runbook.file} names {len(problems)} channel(s) the channels config does not:\n"
                         + "\n".join(problems))


def _remote(services: Services, options: LiveOptions) -> None:
    """SSH fan-out for steps with a `target`, built on first use (see _Remote)."""
    remote = _Remote(options)
    services.remote = remote
    services.resolve_hosts = remote.resolve_hosts


class _Remote:
    """Services.remote until a step needs it: a run without targets imports none of the
    SSH, inventory, kubectl or fan-out code, and paramiko is imported by the first
    connection only. Kubernetes targets (`pods:`, `nodes:`) go through kubectl, the
    others over SSH."""

    def __init__(self, options: LiveOptions) -> None:
        self.options = options
        self._resolver: Any = None
        self._fanout: Any = None
        self._pods: Any = None
        self._pod_fanout: Any = None
        self._kube: dict[str, Any] = {}  # Kubernetes targets of the run's runbook, as rendered (bind)

    @property
    def resolver(self) -> Any:
        if self._resolver is None:
            from engine.fleet.hosts import Resolver

            self._resolver = Resolver(self.options.inventory)
        return self._resolver

    @property
    def fanout(self) -> Any:
        if self._fanout is None:
            from engine.fleet.fanout import FanOut
            from engine.fleet.ssh import SshExecutor, SshOptions

            ssh_options = SshOptions.from_env(accept_new=self.options.accept_new_host_keys)
            self._fanout = FanOut(SshExecutor(self.resolver.host, ssh_options))
        return self._fanout

    @property
    def pods(self) -> Any:
        if self._pods is None:
            from engine.fleet.fanout import FanOut
            from engine.fleet.pod_exec import PodExecutor
            from engine.fleet.pods import PodResolver

            self._pods = PodResolver()
            self._pod_fanout = FanOut(PodExecutor(self._pods.place))
        return self._pods

    def resolve_hosts(self, name: str, target: Any, ctx: dict[str, Any]) -> list[str]:
        hosts: list[str] = (self.pods if target.kube is not None else self.resolver)(name, target, ctx)
        return hosts

    def execute(self, base: Invocation, hosts: Sequence[str], policy: Policy, sink: OutputSink, cancel: Cancel,
                on_host: OnHost | None = None) -> FanOutResult:
        kube = self._pods is not None and self._pods.knows(base.target)
        fanout = self._pod_fanout if kube else self.fanout
        result: FanOutResult = fanout.execute(base, hosts, policy, sink, cancel, on_host)
        return result

    def bind(self, runbook: Runbook, inputs: Mapping[str, Any]) -> None:
        """The run's runbook and inputs: a resume reaches the pods of a Kubernetes target
        through kubectl (where its templates render with the inputs), never over SSH."""
        from .state import RunState

        ctx = RunState(runbook, "resume", "live", dict(inputs), 0.0).context()
        self._kube = {name: (target, ctx) for name, target in runbook.targets.items() if target.kube is not None}

    def _executor_for(self, target: str | None) -> Any:
        if target not in self._kube:
            return self.fanout.executor
        from engine.fleet.pods import place_of

        if not self.pods.knows(target):
            spec, ctx = self._kube[target]
            self.pods.remember(place_of(target, spec, ctx))
        return self._pod_fanout.executor

    def shell(self, target: str | None, host: str, command: str) -> str:
        """Run a short command of the engine's own on a host or a pod (resume looks for leftovers)."""
        from engine.executors.base import NullSink

        cancel = Cancel()
        try:
            result = self._executor_for(target).run(Invocation("resume", "run", command, host, target, timeout=60.0),
                                                    NullSink(), cancel)
        finally:
            cancel.close()
        if not result.ok:
            raise EngineError(f"cannot look for commands still running on {host}: {result.error}")
        return str(result.stdout)

    def close(self) -> None:
        if self._fanout is not None:
            self._fanout.close()


def _hosts_for_lock(runbook: Runbook, services: Services, inputs: Mapping[str, Any]) -> list[str]:
    from .state import RunState

    ctx = RunState(runbook, "lock", "live", dict(inputs), 0.0).context()
    hosts: list[str] = []
    for name, target in runbook.targets.items():
        try:
            if target.kube is not None:  # by what it names: listing pods would ask the cluster
                from engine.fleet.pods import lock_key

                hosts.append(lock_key(name, target, ctx))
            elif services.resolve_hosts is not None:
                hosts += services.resolve_hosts(name, target, ctx)
            else:
                from engine.templates import templating

                hosts += [templating.render(h, ctx) for h in target.hosts]
        except EngineError:
            hosts.append(f"<{name}>")
    return hosts


@contextmanager
def _signals(runner: Runner, enabled: bool) -> Iterator[None]:
    """Ctrl-C once: stop the step, then ask about rollbacks; twice: skip rollbacks.
    SIGTERM: stop the step; rollbacks follow the run's policy."""
    if not enabled:
        yield
        return
    presses = {"n": 0}

    def on_int(signum: int, frame: Any) -> None:
        presses["n"] += 1
        runner.interrupt(hard=presses["n"] > 1, reason="interrupted by Ctrl-C")
        if runner.prompting:
            raise KeyboardInterrupt
        templating.stop_render()

    def on_term(signum: int, frame: Any) -> None:
        runner.services.prompter = ScriptedPrompter(yes=False)  # no one to ask any more
        runner.interrupt(hard=not runner.rollback_on_abort, reason="stopped by SIGTERM")
        if runner.prompting:
            raise KeyboardInterrupt
        templating.stop_render()

    old_int, old_term = signal.signal(signal.SIGINT, on_int), signal.signal(signal.SIGTERM, on_term)
    try:
        with templating.stopped_when(runner.cancel.is_set):  # a signal just before a render stops it too
            yield
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


def run_live(runbook: Runbook, inputs: Mapping[str, Any], options: LiveOptions, *,
             secrets: tuple[str, ...] = ()) -> tuple[RunResult, Path]:
    """Run a runbook for real. Returns the result and the run directory."""
    run_id = new_run_id(runbook.id)
    runs = options.runs_dir or home() / RUNS
    result = _journaled_run(runbook, inputs, options, secrets, run_id=run_id, run_dir=runs / run_id,
                            lock_dir=machine_lock_dir())
    return result, runs / run_id


def _journaled_run(runbook: Runbook, inputs: Mapping[str, Any], options: LiveOptions, secrets: tuple[str, ...],
                   *, run_id: str, run_dir: Path, lock_dir: Path, continuing: Continuing | None = None) -> RunResult:
    """Lock, journal, console, executors and signals around one run (new or resumed)."""
    console = Console(options.stream or sys.stdout, color=options.color, show_output=options.show_output)
    services = _services(options, console)
    bind = getattr(services.remote, "bind", None)
    if bind is not None:
        bind(runbook, inputs)
    _check_channels(runbook, services.notifier)
    clock = RealClock()
    lock = RunLock(lock_dir, runbook.id, _hosts_for_lock(runbook, services, inputs)) if options.machine_lock else None
    if lock is not None:
        lock.acquire(run_id, clock.now())
        _note_takeover(console, lock)
    try:
        # Decided before the journal is touched: a resume the operator declines writes nothing.
        resume = continuing.decide(runbook, services, console.line) if continuing is not None else None
        return _run_journaled(runbook, inputs, options, Masker(secrets), services, console, clock,
                              run_id=run_id, run_dir=run_dir, resume=resume, continuing=continuing)
    finally:
        if lock is not None:
            lock.release()
        _close(services)


def _run_journaled(runbook: Runbook, inputs: Mapping[str, Any], options: LiveOptions, masker: Masker,
                   services: Services, console: Console, clock: RealClock, *, run_id: str, run_dir: Path,
                   resume: Resume | None, continuing: Continuing | None) -> RunResult:
    last_seq = 0
    if continuing is not None and resume is not None:
        _cut_torn_line(run_dir / "journal.jsonl")
        last_seq, resume.started_ago = continuing.recovered.last_seq, continuing.since_start(clock.now())
    with (options.journal or JournalWriter)(run_dir) as journal:
        bus = EventBus(clock, [journal, console], masker, start_seq=last_seq,
                       elapsed_offset=resume.started_ago if resume is not None else 0.0)
        runner = Runner(runbook, inputs, services=services, bus=bus, clock=clock, run_id=run_id,
                        masker=masker, participants=options.participants,
                        rollback_on_abort=options.rollback_on_abort, resume=resume, alert=options.alert)
        if options.on_runner is not None:
            options.on_runner(runner)
        with _signals(runner, options.install_signals):
            result = runner.run()
    if isinstance(journal, JournalWriter):
        _report_end(console, journal, result, runbook)
    return result


def _report_end(console: Console, journal: JournalWriter, result: RunResult, runbook: Runbook) -> None:
    console.line(f"   journal: {journal.path}")
    for problem in dict.fromkeys(journal.log_errors):  # output that is missing from logs/
        console.line(f"   warning: step output not saved: {problem}")
    if result.outcome == "resolved":
        return  # nothing to continue, and nothing of resume's to import
    from .recovery import RESUMABLE, recover

    if result.outcome in RESUMABLE:
        from .continuation import advice

        for number, command in enumerate(advice(journal.run_dir, runbook, recover)):
            console.line(f"   {'to continue' if number == 0 else '         or'}: {command}")


def _note_takeover(console: Console, lock: RunLock) -> None:
    """Say so when the lock was left by a run that died: its journal may want a `resume`."""
    held = lock.took_over
    if held:
        console.line(f"   note: took over the lock of run {held.get('run_id', '?')} (pid {held.get('pid', '?')}), "
                     "which ended without releasing it")


def _close(services: Services) -> None:
    close = getattr(services.remote, "close", None)
    if close is not None:
        close()


# -- resume --------------------------------------------------------------------------------------


@dataclass
class Continuing:
    """A resume in the making: what the journal says, and what the operator chose."""

    recovered: Recovered
    choices: Choices

    def decide(self, runbook: Runbook, services: Services, say: Callable[[str], None]) -> Resume:
        from .continuation import plan
        from .leftovers import Settler

        settler = Settler(self.recovered.run_id, getattr(services.remote, "shell", None))
        return plan(runbook, self.recovered, self.choices, services.prompter, settler, say)

    def since_start(self, now: float) -> float:
        """Seconds since the run first started: the new attempt's clock goes on from
        there, so every report agrees with the journal's wall-clock stamps."""
        return max(now - self.recovered.started_at, self.recovered.last_elapsed)


def _cut_torn_line(journal: Path) -> None:
    """A crash mid-write can leave half a line; appending after it would corrupt both."""
    with open(journal, "rb+") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)


def run_at(runbook: Runbook, inputs: Mapping[str, Any], options: LiveOptions, *, run_id: str, run_dir: Path,
           secrets: tuple[str, ...] = (), recovered: Recovered | None = None, choices: Choices | None = None,
           ) -> RunResult:
    """Run (or, given what its journal says, continue) a run whose id and directory the
    caller chose: a service's worker, whose journal is in the store (`options.journal`) and
    whose run directory holds what the store exported of an earlier attempt."""
    from .continuation import Choices

    continuing = Continuing(recovered, choices or Choices()) if recovered is not None else None
    return _journaled_run(runbook, inputs, options, secrets, run_id=run_id, run_dir=run_dir,
                          lock_dir=machine_lock_dir(), continuing=continuing)


def resume_run(run_dir: Path, runbook: Runbook, recovered: Recovered, inputs: Mapping[str, Any],
               options: LiveOptions, choices: Choices, *, secrets: tuple[str, ...] = ()) -> RunResult:
    """Continue a run that crashed, failed, was aborted or refused, in its own journal."""
    return _journaled_run(runbook, inputs, options, secrets, run_id=recovered.run_id, run_dir=run_dir,
                          lock_dir=machine_lock_dir(), continuing=Continuing(recovered, choices))
