"""Steps that run something through an executor: a command (on this machine, or on the
hosts of a target: see _hosts.py) and an HTTP request. What they show as they start
(the `$` line, the request line) is rendered here too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from engine.errors import TemplateError
from engine.executors.base import HttpRequest, Invocation, encode_body, marks
from engine.language.model import HttpSpec, RunSpec, Step
from engine.templates import templating

from ._driver import Driver
from ._hosts import fan_out, per_host, rendered_for
from ._shown import visible
from .attempt import Attempt


def started_command(d: Driver, step: Step, spec: RunSpec, target: str | None, extra: dict[str, Any],
                    ) -> tuple[str, str, Callable[[str], str] | None]:
    """The command as it runs and as it is shown, and its renderer per host when it names
    `{{ host }}`: then the `$` line shows `<host>` where each host's name goes, or the
    command as written when `host` selects a value (`{{ vars.pids[host] }}`); each host's
    own command is journaled and shown as it finishes."""
    spec_command = spec.command
    if not templating.has_template(spec_command):  # most commands: run as written, no context to build
        shown = d.shown.render(spec_command, extra, spec_command, shell=True) if d.r.state.secret_inputs \
            else spec_command
        return spec_command, shown, None
    where = d.where(step, "run")
    if target and "host" in templating.analyze(spec_command).names:
        render_for = per_host(d, step, spec_command, extra)
        return (*_per_host_line(d, spec_command, {**extra, "host": templating.Placeholder("host")}, where),
                render_for)
    command = templating.render(spec_command, d.r.state.context(**visible(extra)), shell=True, where=where)
    return command, d.shown.render(spec_command, extra, command, shell=True, where=where), None


def _per_host_line(d: Driver, text: str, extra: dict[str, Any], where: Any) -> tuple[str, str]:
    try:
        command = templating.render(text, d.r.state.context(**visible(extra)), shell=True, where=where)
    except TemplateError:
        return text, text  # no value is in it: each host's command is rendered for that host
    if str(extra["host"]) not in command:
        return text, text
    return command, d.shown.render(text, extra, command, shell=True, where=where)


def next_try(d: Driver, step: Step, extra: dict[str, Any]) -> str | None:
    """The command the next try runs, as shown, when it changes from try to try (it names
    `attempt`); None otherwise, and when it cannot be rendered (the try itself will say why)."""
    spec = step.spec
    if not isinstance(spec, RunSpec) or not _names_attempt(spec.command):
        return None
    try:
        return started_command(d, step, spec, d.started.target, extra)[1]
    except TemplateError:
        return None


def _names_attempt(command: str) -> bool:
    return "attempt" in templating.analyze(command).names


def started_request(d: Driver, step: Step, spec: HttpSpec, extra: dict[str, Any]) -> str:
    """The request line as it is shown: `GET https://...`."""
    where = d.where(step, "http", "url")
    url = templating.render(spec.url, d.context(extra), where=where)
    return f"{spec.method} {d.shown.render(spec.url, extra, url, where=where)}"


def command(d: Driver, step: Step, sid: str, spec: RunSpec, number: int, extra: dict[str, Any],
            timeout: float | None) -> Attempt:
    """A `run:` step's command, here or on every host of its target."""
    r = d.r
    rendered, target, hosts, per_host_command, _ = d.started
    if number > 1 and _names_attempt(spec.command):  # a later try runs its own command
        rendered, _, per_host_command = started_command(d, step, spec, target, extra)
    stdin, env = None, {}
    variables = {**r.runbook.defaults.env, **step.env} if (r.runbook.defaults.env or step.env) else {}
    if rendered is None or spec.stdin or variables:  # most steps: nothing more to render
        ctx = d.context(extra)
        if rendered is None:
            rendered = templating.render(spec.command, ctx, shell=True, where=d.where(step, "run"))
        if spec.stdin:
            stdin = templating.render(spec.stdin, ctx, where=d.where(step, "stdin"))
        env = {k: templating.render(v, ctx, where=d.where(step, "env", k)) for k, v in variables.items()}
    nul = _nul_in(rendered, env) if env or "\0" in rendered else None
    if nul:
        return Attempt(False, f"{nul} contains a NUL byte, which no command line or environment can carry")
    env = {**env, **marks(r.state.run_id, sid)} if env else marks(r.state.run_id, sid)
    # (by position: keywords cost a call more; `http` is None, `argv` left out)
    base = Invocation(sid, "run", rendered, None, target, stdin, env, timeout, spec.exit_codes, None, number,
                      per_host_command)
    if target:
        shown = None
        if base.per_host is not None:
            each = rendered_for(base.per_host, hosts)
            base, shown = replace(base, per_host=each), _shown_per_host(d, spec.command, each, hosts, extra)
        return fan_out(d, step, sid, base, hosts, shown)
    r.bus.barrier()
    sink = d.sink(sid)  # not `with`: __enter__ and __exit__ entered from C, at every command
    try:
        result = r.services.local.run(base, sink, r.cancel)
    finally:
        sink.close()
    return Attempt(result.ok, result.error, result, cancelled=result.cancelled) if result.cancelled \
        else Attempt(result.ok, result.error, result)


def _shown_per_host(d: Driver, text: str, real: Callable[[str], str], hosts: list[str], extra: dict[str, Any],
                    ) -> dict[str, str]:
    """Each host's command as shown (secrets as ***), for its host.finished and the console."""
    shown = {}
    for host in hosts:
        try:
            command = real(host)
        except TemplateError:
            continue  # the host fails with the error itself
        shown[host] = d.shown.render(text, {**extra, "host": host}, command, shell=True)
    return shown


def http(d: Driver, step: Step, sid: str, spec: HttpSpec, number: int, extra: dict[str, Any],
         timeout: float | None) -> Attempt:
    """An `http:` step's request."""
    r = d.r
    ctx = d.context(extra)
    url = templating.render(spec.url, ctx, where=d.where(step, "http", "url"))
    headers = {k: templating.render(v, ctx, where=d.where(step, "http", "headers", k))
               for k, v in spec.headers.items()}
    body = templating.render_value(spec.body, ctx, where=d.where(step, "http", "body"))
    data, headers = encode_body(body, headers)
    # A header is private when a secret went into it: it does not follow a redirect elsewhere.
    private = frozenset(k.lower() for k, v in headers.items() if r.masker.text(v) != v or (
        k in spec.headers and d.shown.render(spec.headers[k], extra, v) != v))
    request = HttpRequest(url, spec.method, headers, data, spec.verify, spec.follow_redirects, spec.status,
                          private)
    invocation = Invocation(sid, "http", f"{spec.method} {url}", timeout=timeout, http=request,
                            attempt=number)
    r.bus.barrier()
    with d.sink(sid) as sink:
        result = r.services.http.run(invocation, sink, r.cancel)
    return Attempt(result.ok, result.error, result, cancelled=result.cancelled) if result.cancelled \
        else Attempt(result.ok, result.error, result)


def _nul_in(command: str, env: Mapping[str, str]) -> str | None:
    """What holds a NUL byte (from a step's output, a JSON escape), if anything: the
    operating system cuts a command line at the first one."""
    if "\0" in command:
        return "the command"
    bad = next((k for k, v in env.items() if "\0" in v or "\0" in k), None)
    return f"env {bad}" if bad is not None else None
