"""The hosts of a step with a `target`: which hosts it means, the command rendered for
each one when it names `{{ host }}`, and the fan-out over them (Services.remote) made
the step's attempt, with a host.finished event as each host ends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from engine.errors import TemplateError
from engine.executors.base import Invocation
from engine.language.model import Step
from engine.templates import templating

from ._driver import Driver, Where
from ._shown import visible
from .attempt import Attempt
from .bus import EventBus
from .events import HostFinished

if TYPE_CHECKING:  # types only: a run without targets imports no fan-out code
    from engine.fleet.fanout import HostResult, Progress


def hosts_of(d: Driver, target: str, step: Step) -> list[str]:
    """The hosts a target means now (its templates rendered, an inventory group read)."""
    r = d.r
    spec = r.runbook.targets.get(target)
    if spec is None:
        raise TemplateError(f"target '{target}' is not defined", where=d.where(step, "target"))
    if r.services.resolve_hosts is not None:
        return r.services.resolve_hosts(target, spec, r.state.context())
    from engine.fleet.hosts import host_entries

    ctx = r.state.context()
    hosts = [entry for i, h in enumerate(spec.hosts)
             for entry in host_entries(h, ctx, Where(r.runbook, ("targets", target, "hosts", i)))]
    if not hosts:  # a group or pods need a resolver (an inventory, kubectl): never run on none
        raise TemplateError(f"target '{target}' has no hosts to run on here: its group, pods or nodes are "
                            "listed by a host resolver, and none was given", where=d.where(step, "target"))
    return list(dict.fromkeys(hosts))


def per_host(d: Driver, step: Step, command: str, extra: dict[str, Any]) -> Callable[[str], str]:
    """A command that names `{{ host }}` is rendered once per host of the fan-out."""
    state = d.r.state
    names = visible(extra)

    def render_for(host: str) -> str:
        return templating.render(command, state.context(**names, host=host), shell=True, where=d.where(step, "run"))

    return render_for


def rendered_for(render: Callable[[str], str], hosts: list[str]) -> Callable[[str], str]:
    """The command of each host rendered here, in the main thread, where a render has its
    deadline and Ctrl-C can stop it; the fan-out's threads only look them up."""
    done: dict[str, str | TemplateError] = {}
    for host in hosts:
        try:
            command = render(host)
        except TemplateError as exc:
            done[host] = exc
            continue
        nul = "\0" in command
        done[host] = TemplateError(f"the command for {host} contains a NUL byte") if nul else command

    def lookup(host: str) -> str:
        command = done[host] if host in done else render(host)
        if isinstance(command, TemplateError):
            raise command
        return command

    return lookup


def fan_out(d: Driver, step: Step, sid: str, base: Invocation, hosts: list[str],
            commands: Mapping[str, str] | None = None) -> Attempt:
    """One attempt of a step on its target's hosts, under the step's (or target's) policy.
    `commands`: each host's own command as shown, when it differs from host to host."""
    r = d.r
    remote = r.services.remote
    if remote is None:
        return Attempt(False, f"step {sid} runs on target '{base.target}' but remote execution "
                              "is not available in this mode")
    from engine.fleet.fanout import Policy

    policy = Policy.of(step, r.runbook.targets.get(base.target or ""))
    r.bus.barrier()
    with d.sink(sid) as sink:
        outcome = remote.execute(base, hosts, policy, sink, r.cancel, _host_finished(r.bus, sid, commands or {}))
        return Attempt(outcome.ok, outcome.error(), outcome.only(), hosts=outcome.views(),
                       cancelled=outcome.cancelled)


def _host_finished(bus: EventBus, sid: str, commands: Mapping[str, str],
                   ) -> Callable[[HostResult, Progress], None]:
    def finished(hr: HostResult, p: Progress) -> None:
        res = hr.result
        bus.emit(HostFinished(sid, hr.host, hr.status, res.exit_code if res else None,
                              round(res.duration, 3) if res else 0.0, hr.error,
                              p.done, p.failed, p.running, p.total, commands.get(hr.host)))

    return finished
