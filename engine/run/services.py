"""What a run drives: the executors, the prompter, the notifier, and the fan-out of a
step over the hosts of its target. Live runs (session.py), drills (simulation/drill.py)
and unattended tests (engine.testing) differ only in these; the runner does not know
which it drives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from engine.executors.base import Cancel, Executor, Invocation, OutputSink, Result
from engine.executors.prompts import Prompter
from engine.language.model import Runbook

if TYPE_CHECKING:  # types only: a run without targets imports no fan-out code, one without
    # a channels config no notifier until it sends (engine/run/session.py)
    from engine.executors.notify import Notifier
    from engine.fleet.fanout import OnHost, Policy

    from .policy import RunPolicy


class HostsOutcome(Protocol):
    """What running a step on the hosts of its target came to (engine.fleet.fanout's
    FanOutResult, or a drill's simulated hosts)."""

    @property
    def ok(self) -> bool: ...

    @property
    def cancelled(self) -> bool: ...

    def error(self) -> str | None:
        """Why the step failed on its hosts; None when it did not."""

    def views(self) -> dict[str, dict[str, Any]]:
        """host -> what `steps.<id>.hosts.<host>` shows to templates and the journal."""

    def only(self) -> Result | None:
        """The Result of the one host of a one-host target, which is the step's own; else None."""


class Remote(Protocol):
    """Runs a step's command on the hosts of its target under the step's policy
    (`parallel`, `serial`, `max_failures`), telling `on_host` of each host as it ends:
    over SSH (engine.fleet.fanout.FanOut), or on a drill's simulated hosts."""

    def execute(self, base: Invocation, hosts: Sequence[str], policy: Policy, sink: OutputSink,
                cancel: Cancel, on_host: OnHost | None = None) -> HostsOutcome: ...


@dataclass
class Services:
    """What the runner drives. A drill swaps every executor for a simulated one."""

    local: Executor
    http: Executor
    prompter: Prompter
    notifier: Notifier
    remote: Remote | None = None  # steps with a `target`
    resolve_hosts: Callable[[str, Any, dict[str, Any]], list[str]] | None = None
    load_runbook: Callable[[Path], Runbook] | None = None
    hints: Mapping[str, str] = field(default_factory=dict)
    background: Any = None  # starts a block's background helpers; None: processes on this machine
    policy: RunPolicy | None = None  # what a service route adds to the runbook (engine/run/policy.py)
