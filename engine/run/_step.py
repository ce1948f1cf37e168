"""Running one step: `when`, `for_each`, `confirm`, retries, `until` polling, the action
itself (through an executor, a prompter, the notifier), `outputs` and `expect`.

The Runner owns the run; this owns a step. It raises StepStop when the run must end.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from engine.errors import EngineError, JournalError, TemplateError
from engine.executors.base import HttpRequest, Invocation, Result, encode_body, marks, parse_json
from engine.executors.prompts import ApprovalReply, ApprovalRequest, Question, Unanswered
from engine.language.duration import format_duration
from engine.language.model import (
    HttpSpec,
    IncludeSpec,
    ManualSpec,
    NotifySpec,
    Retries,
    RunSpec,
    SetSpec,
    Step,
    WaitSpec,
)
from engine.templates import templating

from ._shown import Shown, visible
from .attempt import Attempt, StepStop
from .events import Approval, PromptAnswered, StepAttempt, StepFinished, StepOutput, StepProcess, StepStarted
from .journal_writer import jsonable
from .masking import MaskedStream
from .state import StepRecord

if TYPE_CHECKING:
    from .runner import Runner

DEFAULT_EVERY = 5.0
TAIL = 4096


class _Sink:
    """Live output of a step -> StepOutput events (console and log files).

    Output arrives in reads of any size: it is decoded incrementally and masked as a
    stream, so a UTF-8 character or a secret split between two reads is neither
    garbled nor leaked. The masked streams belong to the step, not to one command: the
    items of a `for_each` write one log, and a secret printed a piece per item is still
    masked there. Use it with `with`: leaving it emits what was held back (at the end of
    the step, for the items of a for_each)."""

    def __init__(self, runner: Runner, step_id: str) -> None:
        self.runner, self.step_id = runner, step_id
        self._decoders: dict[tuple[str, str | None], Any] = {}
        self._masked = runner.driver.masked

    def process_started(self, pgid: int, host: str | None) -> None:
        # Not fsynced on its own: a SIGKILL of the engine does not lose a written line, and
        # after a power loss `resume` finds the command by its marks on the hosts the
        # (fsynced) step.started names.
        self.runner.bus.emit(StepProcess(self.step_id, pgid, host))

    def output(self, stream: str, data: bytes, host: str | None) -> None:
        if not self.runner.bus.wants_output:
            return  # nobody shows or stores live output (unattended tests, trials)
        decoder = self._decoders.get((stream, host)) or self._open(stream, host)
        self._emit(stream, self._masked[(stream, host)].feed(decoder.decode(data)), host)

    def _open(self, stream: str, host: str | None) -> Any:
        decoder = self._decoders[(stream, host)] = codecs.getincrementaldecoder("utf-8")(errors="replace")
        if (stream, host) not in self._masked:
            self._masked[(stream, host)] = MaskedStream(self.runner.masker)
        return decoder

    def _emit(self, stream: str, text: str, host: str | None) -> None:
        if text:
            self.runner.bus.emit(StepOutput(self.step_id, stream, text, host))

    def __enter__(self) -> _Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        keep = self.runner.driver.in_items
        for (stream, host), decoder in self._decoders.items():
            masked = self._masked[(stream, host)] if keep else self._masked.pop((stream, host))
            self._emit(stream, masked.feed(decoder.decode(b"", final=True)) + ("" if keep else masked.flush()), host)
        self._decoders.clear()


class StepDriver:
    """Executes steps for one Runner."""

    def __init__(self, runner: Runner) -> None:
        self.r = runner
        self.shown = Shown(runner.state, runner.masker)  # what is shown, apart from what runs
        self.masked: dict[tuple[str, str | None], MaskedStream] = {}  # the output streams of the step
        self.in_items = False  # running the items of a for_each: their output is one stream
        self.announced = False  # step.started emitted for the step being executed

    # -- entry -------------------------------------------------------------------------------

    def execute(self, step: Step, *, rollback_of: str | None = None) -> StepRecord:
        """Run a step to completion and record it; StepStop if the run must end."""
        r = self.r
        sid = r.qualified(step.id)
        t0 = r.clock.monotonic()
        self.announced = False
        try:
            if step.for_each is not None:
                rec = self._for_each(step, sid, rollback_of)
            else:
                rec = self._guarded(step, sid, rollback_of, {})
        except JournalError as exc:
            # The journal cannot record more (a full disk): this step ends here, and says why.
            rec = StepRecord(step.id, status="failed", error=f"journal: {exc}")
        if rec.status == "failed" and r.cancel.is_set():
            rec.status = "aborted"  # it failed because Ctrl-C or SIGTERM stopped it (a render, a wait)
        rec.duration = r.clock.monotonic() - t0
        r.state.record(rec)
        self._finished(step, sid, rec, rollback_of)
        return rec

    def _guarded(self, step: Step, sid: str, rollback_of: str | None, extra: dict[str, Any]) -> StepRecord:
        r = self.r
        if step.when is not None:
            try:
                go = templating.evaluate(step.when, r.state.context(**visible(extra)), where=r.where(step, "when"))
            except TemplateError as exc:
                return StepRecord(step.id, status="failed", error=str(exc))
            if not go:
                return StepRecord(step.id, status="skipped", error=None,
                                  outputs={}, answers={}, stdout="", stderr="")
        return self._run(step, sid, rollback_of, extra)

    def _for_each(self, step: Step, sid: str, rollback_of: str | None) -> StepRecord:
        r = self.r
        try:
            items = self._items(step, r.state.context())
            shown_items = self.shown.items(items, lambda: self._items(step, r.state.shown_context()))
        except TemplateError as exc:
            return StepRecord(step.id, status="failed", error=str(exc))
        rec = StepRecord(step.id, status="ok")
        shown: list[dict[str, Any]] = []
        self.in_items = True
        try:
            self._items_of(step, sid, rollback_of, rec, items, shown_items, shown)
        finally:
            self.in_items = False
            self._flush(sid)
        if self.shown.active:
            rec.shown["items"] = shown
        if items and all(i["status"] == "skipped" for i in rec.items):
            rec.status = "skipped"  # the finished line says so; a count would only contradict it
        else:
            r.bus.emit(StepOutput(sid, "info", _items_done(rec.items, len(items)), None))
        return rec

    def _items_of(self, step: Step, sid: str, rollback_of: str | None, rec: StepRecord, items: list[Any],
                  shown_items: list[Any], shown: list[dict[str, Any]]) -> None:
        for index, (item, shown_item) in enumerate(zip(items, shown_items, strict=True)):
            sub = self._guarded(step, sid, rollback_of, {"item": item, "_shown": {"item": shown_item}})
            rec.items.append({"item": item, "index": index, **sub.view()})
            shown.append({**rec.items[-1], "item": shown_item, **sub.shown})
            rec.attempts += sub.attempts
            if sub.status in ("failed", "aborted", "refused", "not_confirmed"):
                rec.status, rec.error = sub.status, f"item {index} ({shown_item!r}): {sub.error}"
                break

    def _flush(self, sid: str) -> None:
        """What the step's output streams held back, now that no more output comes."""
        for (stream, host), masked in self.masked.items():
            text = masked.flush()
            if text:
                self.r.bus.emit(StepOutput(sid, stream, text, host))
        self.masked.clear()

    def _items(self, step: Step, ctx: dict[str, Any]) -> list[Any]:
        if isinstance(step.for_each, tuple):
            # A literal list: its strings are templates like any other (lint checks them so).
            return [templating.render_value(v, ctx, where=self.r.where(step, "for_each", i))
                    for i, v in enumerate(step.for_each)]
        value = templating.evaluate(str(step.for_each), ctx, where=self.r.where(step, "for_each"))
        if isinstance(value, str):
            return [line for line in value.splitlines() if line.strip()]
        if isinstance(value, Mapping):
            return [{"key": k, "value": v} for k, v in value.items()]
        try:
            return list(value)
        except TypeError:
            raise TemplateError(f"for_each must give a list, got {type(value).__name__}",
                                where=self.r.where(step, "for_each")) from None

    # -- one execution (an item, or the whole step) ---------------------------------------------

    def _run(self, step: Step, sid: str, rollback_of: str | None, extra: dict[str, Any]) -> StepRecord:
        r = self.r
        rec = StepRecord(step.id)
        try:
            started = self._start(step, sid, rollback_of, extra)
        except TemplateError as exc:
            rec.status, rec.error = "failed", str(exc)
            return rec
        try:
            reply = None if step.confirm is None else self._approval(step, sid, extra)
        except StepStop as stop:  # no one to ask, or Ctrl-C: the step still gets its step.finished
            rec.status, rec.error = stop.outcome, stop.reason
            return rec
        if reply is not None and not reply.approved:
            rec.status, rec.error = "refused", refusal(reply)
            return rec
        retries = step.retries or r.runbook.defaults.retries or Retries()
        attempt = Attempt(False, "not run")
        for number in range(1, retries.attempts + 1):
            rec.attempts = number
            attempt = self._attempt(step, sid, number, {**extra, **started})
            if attempt.ok or attempt.cancelled or attempt.refused or (attempt.expect_false and r.in_detection(step)):
                break
            if number < retries.attempts:
                delay = retries.delay_before(number + 1)
                r.bus.emit(_attempt_event(r, sid, number, attempt, delay, polling=False))
                if not r.sleep(delay):
                    attempt = Attempt(False, r.interruption(), cancelled=True)
                    break
        self._fill(rec, step, attempt)
        return rec

    def _start(self, step: Step, sid: str, rollback_of: str | None, extra: dict[str, Any]) -> dict[str, Any]:
        """Emit step.started with the rendered command (secrets masked by the bus)."""
        r = self.r
        command = shown = None
        target = step.target or (r.runbook.defaults.target if step.kind == "run" else None)
        per_host = None
        if isinstance(step.spec, RunSpec):
            spec_command = step.spec.command
            if target and "host" in templating.analyze(spec_command).names:
                per_host = self._per_host(step, spec_command, extra)
                extra = {**extra, "host": templating.Placeholder("host")}
            where = r.where(step, "run")
            command = templating.render(spec_command, r.state.context(**visible(extra)), shell=True, where=where)
            shown = self.shown.render(spec_command, extra, command, shell=True, where=where)
        elif isinstance(step.spec, HttpSpec):
            where = r.where(step, "http", "url")
            url = templating.render(step.spec.url, r.state.context(**visible(extra)), where=where)
            shown = f"{step.spec.method} {self.shown.render(step.spec.url, extra, url, where=where)}"
        # A manual step's text is rendered here, once, so that what the person reads (the
        # console shows step.started) is what the journal and every report say they read.
        instructions = self._instructions(step, extra) if isinstance(step.spec, ManualSpec) else None
        hosts = r.hosts_of(target, step) if target else []
        item = (extra.get("_shown") or {}).get("item", extra.get("item"))
        r.bus.emit(StepStarted(sid, step.phase, step.kind, step.title, shown, target, hosts,
                               step.role or r.runbook.defaults.role, rollback_of, _jsonable(item),
                               instructions))
        self.announced = True
        return {"_command": command, "_target": target, "_hosts": hosts, "_per_host": per_host,
                "_instructions": instructions}

    def _instructions(self, step: Step, extra: dict[str, Any]) -> str:
        assert isinstance(step.spec, ManualSpec)
        where = self.r.where(step, "manual")
        ctx = self.shown.context(extra) if self.shown.active else self.r.state.context(**visible(extra))
        return templating.render(step.spec.text, ctx, where=where).strip()

    def _per_host(self, step: Step, command: str, extra: dict[str, Any]) -> Callable[[str], str]:
        """A command that names `{{ host }}` is rendered once per host of the fan-out."""
        r = self.r
        names = visible(extra)

        def render_for(host: str) -> str:
            return templating.render(command, r.state.context(**names, host=host), shell=True,
                                     where=r.where(step, "run"))

        return render_for

    def _approval(self, step: Step, sid: str, extra: dict[str, Any]) -> ApprovalReply:
        r = self.r
        confirm = step.confirm
        assert confirm is not None
        text = confirm.message or f"Run step '{step.label}'?"
        try:
            ctx = self.shown.context(extra) if self.shown.active else r.state.context(**visible(extra))
            message = templating.render(text, ctx, where=r.where(step, "confirm"))
        except TemplateError:
            message = r.masker.text(text)
        try:
            with r.asking(sid):
                reply = r.services.prompter.approve(ApprovalRequest(sid, message, confirm.role, ask_why=True))
        except Unanswered as exc:
            reply_event = Approval(sid, False, required_role=confirm.role, message=str(exc))
            r.bus.emit(reply_event)
            raise StepStop("failed", str(exc), sid) from None
        except KeyboardInterrupt:
            r.interrupt()
            raise StepStop("aborted", "interrupted while waiting for approval", sid) from None
        r.bus.emit(Approval(sid, reply.approved, reply.by, reply.role, confirm.role, reply.waited,
                            message if reply.approved else (reply.reason or message)))
        return reply

    # -- attempts and polling ----------------------------------------------------------------

    def _attempt(self, step: Step, sid: str, number: int, extra: dict[str, Any]) -> Attempt:
        r = self.r
        timeout = r.timeout_for(step)
        if step.until is None:
            attempt = self._action(step, sid, number, extra, timeout)
            return self._check(step, attempt, extra) if attempt.ok else attempt
        deadline = r.clock.monotonic() + timeout if timeout else None
        every = step.every or DEFAULT_EVERY
        poll = 0
        while True:
            poll += 1
            left = deadline - r.clock.monotonic() if deadline else None
            attempt = self._action(step, sid, number, extra, left)
            if attempt.cancelled or (attempt.error and attempt.result is None and not attempt.hosts):
                return attempt  # template errors and the like: polling cannot fix them
            done = self._until(step, attempt, extra)
            if done is None:
                return replace(attempt, ok=False)
            if done:
                attempt.ok, attempt.error = True, None
                return self._check(step, attempt, extra)
            left = deadline - r.clock.monotonic() if deadline else None
            if left is not None and left < every:
                return replace(attempt, ok=False, error=f"until `{step.until}` was still false after "
                               f"{poll} poll(s) in {format_duration(timeout or 0)}")
            r.bus.emit(_attempt_event(r, sid, poll, attempt, every, polling=True))  # attempt = poll number
            if not r.sleep(every):
                return Attempt(False, r.interruption(), cancelled=True)

    def _until(self, step: Step, attempt: Attempt, extra: dict[str, Any]) -> bool | None:
        ctx = self._current(step, attempt, extra)
        try:
            attempt.outputs = self._outputs(step, ctx, attempt, extra)
            ctx["outputs"] = attempt.outputs
            return bool(templating.evaluate(step.until or "true", ctx, where=self.r.where(step, "until")))
        except TemplateError as exc:
            attempt.error = str(exc)
            return None

    def _check(self, step: Step, attempt: Attempt, extra: dict[str, Any]) -> Attempt:
        """outputs, then expect, on a successful action."""
        if not step.outputs and step.expect is None:
            return attempt  # nothing to compute: spare building the context
        ctx = self._current(step, attempt, extra)
        try:
            attempt.outputs = self._outputs(step, ctx, attempt, extra) if not attempt.outputs else attempt.outputs
            ctx["outputs"] = attempt.outputs
            if step.expect is not None and not templating.evaluate(
                    step.expect, ctx, where=self.r.where(step, "expect")):
                return replace(attempt, ok=False, expect_false=True, error=f"expect `{step.expect}` was false")
        except TemplateError as exc:
            return replace(attempt, ok=False, error=str(exc))
        return attempt

    def _outputs(self, step: Step, ctx: dict[str, Any], attempt: Attempt, extra: dict[str, Any]) -> dict[str, Any]:
        r = self.r
        outputs = {name: templating.render_value(text, ctx, where=r.where(step, "outputs", name))
                   for name, text in step.outputs.items()}
        if self.shown.active:
            seen = self._current(step, replace(attempt, outputs={}), extra, shown=True)
            attempt.shown_outputs = {name: self.shown.value(outputs[name], partial(templating.render_value, text, seen))
                                     for name, text in step.outputs.items()}
        return outputs

    def _current(self, step: Step, attempt: Attempt, extra: dict[str, Any], *, shown: bool = False,
                 ) -> dict[str, Any]:
        res = attempt.result
        only = next(iter(attempt.hosts.values())) if res is None and len(attempt.hosts) == 1 else {}
        current = {
            "stdout": res.stdout if res else only.get("stdout", ""),
            "stderr": res.stderr if res else only.get("stderr", ""),
            "exit_code": res.exit_code if res else only.get("exit_code"),
            "status": res.status if res and res.status is not None else ("ok" if attempt.ok else "failed"),
            "body": res.body if res else None, "headers": dict(res.headers or {}) if res else {},
            "json": _lazy_json(res) if self.r.uses_json else None,
            "outputs": attempt.outputs, "answers": attempt.answers,
            "hosts": attempt.hosts, "duration": res.duration if res else 0.0,
        }
        if shown:
            return self.shown.context(extra, **self.shown.current(current, attempt.shown_outputs))
        return self.r.state.context(**visible(extra), **current)

    # -- actions -----------------------------------------------------------------------------

    def _action(self, step: Step, sid: str, number: int, extra: dict[str, Any],
                timeout: float | None) -> Attempt:
        r = self.r
        spec = step.spec
        try:
            if isinstance(spec, RunSpec):
                return self._command(step, sid, spec, number, extra, timeout)
            if isinstance(spec, HttpSpec):
                return self._http(step, sid, spec, number, extra, timeout)
            if isinstance(spec, ManualSpec):
                return self._manual(step, sid, spec, extra)
            if isinstance(spec, WaitSpec):
                return Attempt(True) if r.sleep(spec.seconds) else Attempt(False, r.interruption(), cancelled=True)
            if isinstance(spec, NotifySpec):
                return self._notify(step, sid, spec, extra)
            if isinstance(spec, SetSpec):
                return self._set(step, sid, spec, extra)
            if isinstance(spec, IncludeSpec):
                return r.include(step, spec, sid, extra)
        except TemplateError as exc:
            return Attempt(False, str(exc))
        raise EngineError(f"step {sid}: unknown step kind {step.kind!r}")

    def _command(self, step: Step, sid: str, spec: RunSpec, number: int, extra: dict[str, Any],
                 timeout: float | None) -> Attempt:
        r = self.r
        command = extra.get("_command")
        stdin, env = None, {}
        variables = {**r.runbook.defaults.env, **step.env} if (r.runbook.defaults.env or step.env) else {}
        if command is None or spec.stdin or variables:  # most steps: nothing more to render
            ctx = r.state.context(**visible(extra))
            if command is None:
                command = templating.render(spec.command, ctx, shell=True, where=r.where(step, "run"))
            if spec.stdin:
                stdin = templating.render(spec.stdin, ctx, where=r.where(step, "stdin"))
            env = {k: templating.render(v, ctx, where=r.where(step, "env", k)) for k, v in variables.items()}
        nul = _nul_in(command, env)
        if nul:
            return Attempt(False, f"{nul} contains a NUL byte, which no command line or environment can carry")
        env = {**env, **marks(r.state.run_id, sid)}
        base = Invocation(sid, "run", command, None, extra.get("_target"), stdin, env, timeout,
                          spec.exit_codes, attempt=number, per_host=extra.get("_per_host"))
        target = extra.get("_target")
        if target:
            hosts = extra.get("_hosts") or []
            if base.per_host is not None:
                base = replace(base, per_host=_rendered_for(base.per_host, hosts))
            return r.fan_out(step, sid, base, hosts)
        r.bus.barrier()
        with _Sink(r, sid) as sink:
            result = r.services.local.run(base, sink, r.cancel)
        return Attempt(result.ok, result.error, result, cancelled=result.cancelled)

    def _http(self, step: Step, sid: str, spec: HttpSpec, number: int, extra: dict[str, Any],
              timeout: float | None) -> Attempt:
        r = self.r
        ctx = r.state.context(**visible(extra))
        url = templating.render(spec.url, ctx, where=r.where(step, "http", "url"))
        headers = {k: templating.render(v, ctx, where=r.where(step, "http", "headers", k))
                   for k, v in spec.headers.items()}
        body = templating.render_value(spec.body, ctx, where=r.where(step, "http", "body"))
        data, headers = encode_body(body, headers)
        # A header is private when a secret went into it: it does not follow a redirect elsewhere.
        private = frozenset(k.lower() for k, v in headers.items() if r.masker.text(v) != v or (
            k in spec.headers and self.shown.render(spec.headers[k], extra, v) != v))
        request = HttpRequest(url, spec.method, headers, data, spec.verify, spec.follow_redirects, spec.status,
                              private)
        invocation = Invocation(sid, "http", f"{spec.method} {url}", timeout=timeout, http=request,
                                attempt=number)
        r.bus.barrier()
        with _Sink(r, sid) as sink:
            result = r.services.http.run(invocation, sink, r.cancel)
        return Attempt(result.ok, result.error, result, cancelled=result.cancelled)

    def _manual(self, step: Step, sid: str, spec: ManualSpec, extra: dict[str, Any]) -> Attempt:
        r = self.r
        ctx = self.shown.context(extra) if self.shown.active else r.state.context(**visible(extra))
        text = extra.get("_instructions")
        if text is None:
            text = self._instructions(step, extra)
        fields = tuple(f._replace(prompt=templating.render(f.prompt, ctx, where=r.where(step, "ask", f.name)))
                       for f in spec.ask)
        question = Question(sid, step.label, text, fields, step.role or r.runbook.defaults.role,
                            r.services.hints.get(step.id))
        try:
            with r.asking(sid):
                answer = r.services.prompter.ask(question)
        except Unanswered as exc:
            return Attempt(False, str(exc))
        except KeyboardInterrupt:
            r.interrupt()
            return Attempt(False, "interrupted", cancelled=True)
        r.bus.emit(PromptAnswered(sid, dict(answer.values), answer.by, answer.role, answer.waited))
        self._apply_sets(step, spec, dict(answer.values), answer.by, answer.role)
        return Attempt(True, answers=dict(answer.values))

    def _apply_sets(self, step: Step, spec: ManualSpec, values: dict[str, Any], by: str | None,
                    role: str | None) -> None:
        changes = {f.sets: values[f.name] for f in spec.ask if f.sets and f.name in values}
        if changes:
            self.r.apply_set(step, changes, by=by, role=role)

    def _notify(self, step: Step, sid: str, spec: NotifySpec, extra: dict[str, Any]) -> Attempt:
        r = self.r
        # A message leaves the run: it is rendered as shown, secrets as ***.
        ctx = self.shown.context(extra) if self.shown.active else r.state.context(**visible(extra))
        message = templating.render(spec.message, ctx, where=r.where(step, "notify", "message"))
        title = templating.render(spec.title, ctx, where=r.where(step, "notify", "title")) if spec.title else None
        # A hand-off that reached nobody did not happen: it must be delivered, like `required`.
        attempt = r.notify(spec.channel, message, title=title, step=sid, budget=r.timeout_for(step),
                           required=spec.required or spec.handoff)
        if spec.handoff and attempt.ok:
            r.hand_off(f"handed off to {spec.channel} by step {sid}")
        return attempt

    def _set(self, step: Step, sid: str, spec: SetSpec, extra: dict[str, Any]) -> Attempt:
        r = self.r
        ctx = r.state.context(**visible(extra))
        values = {k: templating.render_value(v, ctx, where=r.where(step, "set", k))
                  for k, v in spec.values.items()}
        shown = self._shown_values(step, spec, values, extra)
        changes = {(k if k.startswith("incident.") else f"vars.{k}"): v for k, v in values.items()}
        r.apply_set(step, changes, by=None, role=None)
        return Attempt(True, outputs=values, shown_outputs=shown)

    def _shown_values(self, step: Step, spec: SetSpec, values: dict[str, Any], extra: dict[str, Any],
                      ) -> dict[str, Any] | None:
        """How the values of a `set:` are shown; a var a secret went into is *** from now on."""
        if not self.shown.active:
            return None
        ctx = self.shown.context(extra)
        shown = {k: self.shown.value(values[k], partial(templating.render_value, v, ctx))
                 for k, v in spec.values.items()}
        for k, v in shown.items():
            if not k.startswith("incident."):
                self.r.state.shown_vars[k] = v
        return shown

    # -- recording ---------------------------------------------------------------------------

    def _fill(self, rec: StepRecord, step: Step, attempt: Attempt) -> None:
        res = attempt.result
        rec.outputs, rec.answers, rec.hosts = attempt.outputs, attempt.answers, attempt.hosts
        rec.error = attempt.error
        if attempt.shown_outputs is not None:
            rec.shown["outputs"] = attempt.shown_outputs
        if res is not None:
            rec.exit_code, rec.stdout, rec.stderr = res.exit_code, res.stdout, res.stderr
            rec.status_code, rec.headers, rec.body = res.status, dict(res.headers or {}), res.body
            rec.truncated = res.truncated
            if self.r.uses_json:
                rec.json = parse_json(res.body if res.body is not None else res.stdout)
        if len(attempt.hosts) == 1 and res is None:
            # One host: the step's stdout is that host's (with several, use steps.X.hosts).
            only = next(iter(attempt.hosts.values()))
            rec.exit_code, rec.stdout = only.get("exit_code"), only.get("stdout", "")
            rec.stderr = only.get("stderr", "")
        if attempt.ok:
            rec.status = "ok"
        elif attempt.cancelled:
            rec.status = "aborted"
        elif attempt.refused:
            rec.status = "refused"
        elif attempt.expect_false and self.r.in_detection(step):
            rec.status = "not_confirmed"
        else:
            rec.status = "failed"

    def _finished(self, step: Step, sid: str, rec: StepRecord, rollback_of: str | None) -> None:
        r = self.r
        if not self.announced and rec.status != "skipped":
            # It failed before it could start (a template in `when` or `run`): the journal
            # still shows it starting, so every step.finished has its step.started.
            r.bus.emit(StepStarted(sid, step.phase, step.kind, step.title, None, step.target, [],
                                   step.role or r.runbook.defaults.role, rollback_of))
        r.bus.emit(StepFinished(
            sid, step.phase, step.kind, rec.status, rec.duration, rec.attempts, rec.exit_code,
            rec.error, "when was false" if rec.status == "skipped" else None,
            _tail(r, rec.stdout), _tail(r, rec.stderr), rec.truncated or len(rec.stdout) > TAIL,
            _jsonable(rec.shown.get("outputs", rec.outputs)), _jsonable(rec.answers), rec.status_code,
            {h: {k: v for k, v in d.items() if k not in ("stdout", "stderr")} | {
                "stdout": _tail(r, d.get("stdout", "")), "stderr": _tail(r, d.get("stderr", ""))}
             for h, d in rec.hosts.items()},
            [{k: _jsonable(v) if k == "item" else v for k, v in i.items()
              if k in ("index", "item", "status", "exit_code", "error")} for i in rec.shown.get("items", rec.items)],
            _jsonable({**r.state.vars, **r.state.shown_vars}) if _sets_vars(step) else {},
            r.logs_of(sid), rollback_of,
        ))


def refusal(reply: ApprovalReply) -> str:
    """Why a step did not run: who refused its approval, and the reason they gave."""
    who = f" by {reply.by}" + (f" ({reply.role})" if reply.role else "") if reply.by else ""
    why = f": {reply.reason}" if reply.reason and reply.reason != "refused" else ""
    return f"approval refused{who}{why}"


def _rendered_for(render: Callable[[str], str], hosts: list[str]) -> Callable[[str], str]:
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


def _nul_in(command: str, env: Mapping[str, str]) -> str | None:
    """What holds a NUL byte (from a step's output, a JSON escape), if anything: the
    operating system cuts a command line at the first one."""
    if "\0" in command:
        return "the command"
    bad = next((k for k, v in env.items() if "\0" in v or "\0" in k), None)
    return f"env {bad}" if bad is not None else None


def _items_done(items: list[dict[str, Any]], total: int) -> str:
    """`3 of 3 item(s) done`, with the skipped and the failed counted apart."""
    done = sum(1 for i in items if i["status"] == "ok")
    parts = [f"{done} of {total} item(s) done"]
    skipped = sum(1 for i in items if i["status"] == "skipped")
    if skipped:
        parts.append(f"{skipped} skipped (when was false)")
    failed = len(items) - done - skipped
    if failed:
        parts.append(f"{failed} {items[-1]['status']}")
    return ", ".join(parts)


def _sets_vars(step: Step) -> bool:
    """Whether the step may change vars (journaled with it, so `resume` can restore them)."""
    spec = step.spec
    return isinstance(spec, SetSpec) or (isinstance(spec, ManualSpec) and any(f.sets for f in spec.ask))


def _tail(r: Runner, text: Any, size: int = TAIL) -> str:
    # Mask before cutting: a cut through a secret would leave a piece the bus cannot recognise.
    return r.masker.text(str(text))[-size:]


def _code(attempt: Attempt) -> int | None:
    return attempt.result.exit_code if attempt.result else None


ATTEMPT_TAIL = 1024


def _attempt_event(r: Runner, sid: str, number: int, attempt: Attempt, next_in: float, *,
                   polling: bool) -> StepAttempt:
    res = attempt.result
    return StepAttempt(sid, number, False, _code(attempt), attempt.error, res.duration if res else 0.0,
                       next_in, polling, _tail(r, res.stdout, ATTEMPT_TAIL) if res else "",
                       _tail(r, res.stderr, ATTEMPT_TAIL) if res else "", res.status if res else None)


def _lazy_json(res: Result | None) -> Any:
    if res is None:
        return None
    return parse_json(res.body if res.body is not None else res.stdout)


def _jsonable(value: Any) -> Any:
    """What a template computed, as the journal and the console can hold it (see jsonable)."""
    if not value:
        return value  # the common case: no outputs, answers or vars
    return jsonable(value)

