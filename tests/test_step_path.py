"""The step path every mode shares (engine/run/_step.py and its helpers): what a plain
step pays for. Each test pins a cost a step no longer pays, beside the behaviour that
must stay as it was."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from support import python_calls

from engine.run.state import RunState
from engine.testing import ScriptedExecutor, run_text


def runbook(body: str) -> str:
    return ("kind: runbook\nversion: 1\nid: unit\ntitle: Unit runbook\ndefaults: {timeout: 30s}\n"
            + textwrap.dedent(body))


def _contexts(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every template context the run builds, in order."""
    built: list[dict[str, Any]] = []
    real = RunState.context

    def context(self: RunState, **current: Any) -> dict[str, Any]:
        ctx = real(self, **current)
        built.append(ctx)
        return ctx

    monkeypatch.setattr(RunState, "context", context)
    return built


def test_contexts_share_run_and_incident_until_a_phase_or_a_set_changes_them(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`run` and `incident` were built again for every context (two or more a step);
    they change only with the phase and with a `set:` of the incident."""
    built = _contexts(monkeypatch)
    text = runbook("""\
        triage:
          - {id: a, run: "echo {{ run.phase }} {{ incident.priority }}"}
          - {id: b, run: "echo {{ run.phase }} {{ incident.priority }}"}
          - {id: rate, set: {incident.impact: high, incident.urgency: medium}}
          - {id: c, run: "echo {{ run.phase }} {{ incident.priority }}"}
        remediation:
          - {id: d, run: "echo {{ run.phase }} {{ incident.priority }}"}
        """)
    executor = ScriptedExecutor({"*": "ok"})
    result, _ = run_text(text, executor=executor)
    assert result.outcome == "resolved"
    assert [c.command for c in executor.calls] == ["echo triage ''", "echo triage ''", "echo triage P2",
                                                   "echo remediation P2"]
    runs = [ctx["run"] for ctx in built]
    incidents = [ctx["incident"] for ctx in built]
    assert runs[0] is runs[1]  # a and b: the same phase
    assert runs[-1]["phase"] == "remediation" and runs[0]["phase"] == "triage"
    assert incidents[0] is incidents[1]
    assert incidents[-1] == {"impact": "high", "urgency": "medium", "priority": "P2"}
    assert incidents[0]["priority"] is None  # the view an earlier context holds is not changed


def test_a_step_s_where_runs_no_python_code_until_an_error_needs_it() -> None:
    """Every render names where its template is; making that locator ran an __init__."""
    from engine.run._driver import Driver, Where

    class Book:
        def where(self, path: tuple[Any, ...]) -> str:
            return "x.yaml:" + ".".join(map(str, path))

    class Step:
        path = ("remediation", 0)

    class Run:
        runbook = Book()

    driver = Driver.__new__(Driver)
    driver.r = Run()  # type: ignore[assignment]
    made: list[Where] = []
    calls = _calls(lambda: made.append(driver.where(Step(), "run")))  # type: ignore[arg-type]
    assert calls == ["<lambda>", "where"]  # the method itself, and nothing it calls
    where = made[0]
    assert where and str(where) == "x.yaml:remediation.0.run" and f"{where}" == str(where)
    assert str(Where(Book(), ("targets", "web"))) == "x.yaml:targets.web"  # made elsewhere with a whole path


def test_a_step_s_kind_gets_its_template_names_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """What step.started announced (the rendered command, target, hosts, instructions)
    was merged into the names each try renders with, and every context filtered it out
    again; it is the driver's (Driver.started), and a plain step's names are none."""
    from engine.language.model import RunSpec
    from engine.run import _kinds

    seen: list[dict[str, Any]] = []
    real = _kinds.KINDS[RunSpec]

    def command(d: Any, step: Any, sid: str, spec: Any, number: int, extra: dict[str, Any], timeout: Any) -> Any:
        seen.append(dict(extra))
        return real(d, step, sid, spec, number, extra, timeout)

    monkeypatch.setitem(_kinds.KINDS, RunSpec, command)
    text = runbook("""\
        remediation:
          - {id: a, run: "echo {{ attempt }}", retries: {attempts: 2, delay: 1s}}
          - {id: b, run: "echo {{ item }}", for_each: [x, y]}
        """)
    executor = ScriptedExecutor({"a": [1, 0], "*": "ok"})
    result, _ = run_text(text, executor=executor)
    assert result.outcome == "resolved"
    assert [c.command for c in executor.calls] == ["echo 1", "echo 2", "echo x", "echo y"]
    assert seen[:2] == [{"attempt": 1}, {"attempt": 2}]
    assert [{k: v for k, v in s.items() if not k.startswith("_")} for s in seen[2:]] == [
        {"attempt": 1, "item": "x", "index": 0}, {"attempt": 1, "item": "y", "index": 1}]
    assert not any(k in s for s in seen for k in ("_command", "_target", "_hosts", "_per_host", "_instructions"))


def _calls(fn: Any) -> list[str]:
    """The Python functions `fn()` runs, by name."""
    return [entered.rsplit(":", 1)[-1] for entered in python_calls(fn)]


def test_a_step_s_names_are_told_from_the_driver_s_own_without_a_loop_in_python() -> None:
    from engine.run._shown import visible

    names = {"attempt": 2, "item": "x"}
    assert _calls(lambda: visible(names)) == ["<lambda>", "visible"]
    copy = visible(names)
    assert copy == names and copy is not names
    assert visible({"item": "x", "_shown": {"item": "***"}, "_items": [], "attempt": 1}) == {"item": "x", "attempt": 1}


def test_a_step_s_empty_output_and_values_are_journaled_without_masking_or_converting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Most steps print nothing on stderr and have no outputs or answers: masking and
    converting an empty value gave it back as it was."""
    from engine.run import _step

    masked: list[Any] = []
    converted: list[Any] = []
    real_tail, real_jsonable = _step.masked_tail, _step.jsonable
    monkeypatch.setattr(_step, "masked_tail", lambda m, text, *a: masked.append(text) or real_tail(m, text, *a))
    monkeypatch.setattr(_step, "jsonable", lambda value: converted.append(value) or real_jsonable(value))
    text = runbook("""\
        remediation:
          - {id: a, run: "true"}
          - {id: b, run: "echo n", outputs: {n: "{{ stdout | trim }}"}}
        """)
    _, events = run_text(text, executor=ScriptedExecutor({"a": "", "b": "n"}))
    done = {e.step: e for e in events.named("step.finished")}
    assert (done["a"].stdout, done["a"].stderr, done["a"].outputs, done["a"].answers) == ("", "", {}, {})  # type: ignore[attr-defined]
    assert (done["b"].stdout, done["b"].outputs) == ("n", {"n": "n"})  # type: ignore[attr-defined]
    assert masked == ["n"] and converted == [{"n": "n"}]


def test_a_runbook_s_durations_are_checked_once_however_often_it_runs(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Lint checks every step's durations as the runbook loads, then the runner checked
    them again, and each trial of an estimate again: each a walk of all its steps."""
    from engine.executors.notify import Notifier
    from engine.executors.prompts import ScriptedPrompter
    from engine.language import model
    from engine.language.validation import load_runbook
    from engine.run.bus import EventBus
    from engine.run.clock import VirtualClock
    from engine.run.runner import Runner
    from engine.run.services import Services

    checked: list[str] = []
    real = model._step_too_long
    monkeypatch.setattr(model, "_step_too_long", lambda step: checked.append(step.id) or real(step))
    path = tmp_path / "runbook.yaml"
    path.write_text(runbook("remediation:\n  - {id: a, run: 'true'}\n"))
    book = load_runbook(str(path))
    assert checked == ["a"]  # lint's RB135
    for n in range(3):  # as the trials of an estimate run it
        clock = VirtualClock()
        executor = ScriptedExecutor({"a": ""}, clock=clock)
        services = Services(local=executor, http=executor, prompter=ScriptedPrompter({}, True, ()),
                            notifier=Notifier(console=lambda _: None))
        result = Runner(book, {}, services=services, bus=EventBus(clock, []), clock=clock, run_id=f"r{n}").run()
        assert result.outcome == "resolved"
    assert checked == ["a"]


def _built(text: str) -> Any:
    from engine.language.builder import build_runbook
    from engine.language.loader import load_text

    return build_runbook(load_text(text, "runbook.yaml"))


def test_a_file_that_never_says_json_is_not_walked_for_templates_that_read_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether any template reads `json` (then each step's output is parsed as JSON) was
    found by walking every field of every step at every run: about 2% of a live step."""
    from engine.language import fields
    from engine.run.runner import _mentions

    walked: list[str] = []
    real = fields.step_fields
    monkeypatch.setattr(fields, "step_fields", lambda step: walked.append(step.id) or real(step))
    assert _mentions(_built(runbook("remediation:\n  - {id: a, run: 'echo {{ inputs.x }}'}\n")), "json") is False
    assert walked == []
    reads = runbook("remediation:\n  - {id: a, run: 'true'}\n  - {id: b, run: 'echo {{ steps.a.json.n }}'}\n")
    assert _mentions(_built(reads), "json") is True
    # Only in an escape: the file's text does not say it, its template does.
    escaped = runbook('remediation:\n  - {id: a, run: "true"}\n  - {id: b, run: "echo {{ steps.a.\\u006Ason.n }}"}\n')
    assert "json" not in escaped and _mentions(_built(escaped), "json") is True
    # Said, but by no template (a step's id): walked, and found in none.
    walked.clear()
    assert _mentions(_built(runbook("remediation:\n  - {id: get-json, run: 'true'}\n")), "json") is False
    assert walked == ["get-json"]


def test_a_template_reading_json_through_an_escape_still_gets_the_parsed_output() -> None:
    text = runbook('remediation:\n  - {id: a, run: "true"}\n  - {id: b, run: "echo {{ steps.a.\\u006Ason.n }}"}\n')
    executor = ScriptedExecutor({"a": '{"n": 7}', "b": ""})
    result, _ = run_text(text, executor=executor)
    assert result.outcome == "resolved" and executor.calls[-1].command == "echo 7"


def test_the_journal_s_log_files_are_looked_up_once_a_run() -> None:
    """Each step.finished names the step's log files: every step asked each observer of
    the bus whether it keeps any."""
    asked: list[str] = []

    class Logs:
        def on_event(self, event: Any, stamp: Any) -> None:
            return None

        @property
        def logs_of(self) -> Any:
            asked.append("logs_of")
            return lambda sid: [f"logs/{sid}.log"]

    text = runbook("remediation:\n  - {id: a, run: 'true'}\n  - {id: b, run: 'true'}\n  - {id: c, run: 'true'}\n")
    _, events = run_text(text, executor=ScriptedExecutor({"*": ""}), observers=[Logs()])
    assert [e.logs for e in events.named("step.finished")] == [  # type: ignore[attr-defined]
        ["logs/a.log"], ["logs/b.log"], ["logs/c.log"]]
    assert asked == ["logs_of"]


def test_a_step_s_record_is_made_whole_from_its_last_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    """The record was made empty before the step ran and filled field by field after."""
    from engine.run import _step
    from engine.run.state import StepRecord

    made: list[tuple[str, str]] = []

    class Recorded(StepRecord):
        def __init__(self, id: str, status: str = "pending", *values: Any, **fields: Any) -> None:
            made.append((id, status))
            super().__init__(id, status, *values, **fields)

    monkeypatch.setattr(_step, "StepRecord", Recorded)
    text = runbook("""\
        remediation:
          - {id: a, run: "echo 4", outputs: {n: "{{ stdout | int }}"}}
          - {id: b, run: "false", continue_on_error: true}
          - {id: c, run: "echo {{ steps.a.outputs.n + steps.a.exit_code }}"}
        """)
    executor = ScriptedExecutor({"a": "4", "b": 1, "c": ""})
    result, events = run_text(text, executor=executor)
    assert result.outcome == "resolved" and executor.calls[-1].command == "echo 4"
    assert made == [("a", "ok"), ("b", "failed"), ("c", "ok")]
    done = {e.step: e for e in events.named("step.finished")}
    assert [(done[s].status, done[s].exit_code, done[s].attempts) for s in "abc"] == [  # type: ignore[attr-defined]
        ("ok", 0, 1), ("failed", 1, 1), ("ok", 0, 1)]


def test_a_command_without_a_template_is_not_located_or_rendered_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain command has nothing to render and nothing to mask: it made a locator (for
    an error it cannot have) and asked for its shown form all the same."""
    from engine.run._driver import Driver

    located: list[tuple[Any, ...]] = []
    real = Driver.where
    monkeypatch.setattr(Driver, "where", lambda self, step, *path: located.append(path) or real(self, step, *path))
    text = runbook("remediation:\n  - {id: a, run: df}\n  - {id: b, run: 'echo {{ inputs.t }}'}\n")
    text = text.replace("remediation:", "inputs: {t: {type: string, secret: true}}\nremediation:")
    executor = ScriptedExecutor({"*": ""})
    _, events = run_text(text, executor=executor, inputs={"t": "s3cr3t-value"})
    assert [c.command for c in executor.calls] == ["df", "echo s3cr3t-value"]
    assert [e.command for e in events.named("step.started")] == ["df", "echo ***"]  # type: ignore[attr-defined]
    assert located == [("run",)]  # b's, to render it


def test_a_step_without_when_or_output_skips_their_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """`when` is judged only for a step that has one, and a command that printed nothing
    leaves its output streams without looking at them."""
    from engine.run._output import StepSink, StepStreams
    from engine.run._step import StepDriver

    judged: list[str] = []
    real = StepDriver._guarded
    monkeypatch.setattr(StepDriver, "_guarded", lambda self, step, *a: judged.append(step.id) or real(self, step, *a))
    text = runbook("remediation:\n  - {id: a, run: 'true'}\n  - {id: b, run: 'true', when: 'false'}\n"
                   "  - {id: c, run: 'true', when: 'true'}\n")
    _, events = run_text(text, executor=ScriptedExecutor({"*": ""}))
    assert [(e.step, e.status) for e in events.named("step.finished")] == [  # type: ignore[attr-defined]
        ("a", "ok"), ("b", "skipped"), ("c", "ok")]
    assert judged == ["b", "c"]

    class Untouched(StepStreams):
        @property  # type: ignore[override]
        def in_items(self) -> bool:
            raise AssertionError("a silent command's streams were looked at")

        @in_items.setter
        def in_items(self, value: bool) -> None:
            return None

    with StepSink(None, None, Untouched(), "a"):  # type: ignore[arg-type]
        pass


def test_a_command_s_result_and_invocation_are_filled_without_a_c_call_per_field() -> None:
    """A frozen class's fields were each set by a C call (its slot's descriptor): 13k
    instructions a Result, which every command makes. They are filled with plain stores
    now, and the instances are what they were: equal by value, frozen, of their class
    (a subclass's too)."""
    import dataclasses
    import dis
    import sys

    from engine.executors.base import HttpRequest, Invocation, Result

    calls: list[str] = []  # the calls each __init__ makes, as it runs

    def trace(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_name != "__init__":
            return None
        frame.f_trace_opcodes = True
        if event == "opcode":
            op = dis.opname[frame.f_code.co_code[frame.f_lasti]]
            if op in ("CALL", "PRECALL", "CALL_FUNCTION"):
                calls.append(op)
        return trace

    made: list[Any] = []
    sys.settrace(trace)
    try:
        made.append(Result("true", None, "out", "", 0, 1.0, 0.25, True))
        made.append(Invocation("s", "run", "true", env={"A": "b"}, attempt=2))
    finally:
        sys.settrace(None)
    result, invocation = made
    # A class change each, and the Result's `extra` from its factory: each of 28 fields was a call.
    assert calls.count("CALL") <= 3
    assert type(result) is Result and result == Result("true", None, "out", "", 0, 1.0, 0.25, True)
    assert (result.stdout, result.error, dict(result.extra)) == ("out", None, {})
    assert type(invocation) is Invocation and invocation.attempt == 2 and dict(invocation.env) == {"A": "b"}
    assert dataclasses.replace(invocation, attempt=3).attempt == 3 and HttpRequest("http://x").method == "GET"
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.ok = False  # type: ignore[misc]

    class Later(Result):
        __slots__ = ()

    later = Later("true", None, "", "", 1, 1.0, 0.0, False, "exit code 1")
    assert type(later) is Later and later.error == "exit code 1"


def test_a_run_lists_its_steps_without_a_generator_or_a_branches_call_per_plain_step() -> None:
    """Every run lists its steps (and checks their durations) once: nested generators
    resumed twice a step and asked each step for its branches; now a generator walks only
    a rollback list. The same order, blocks, switches, on_refuse and rollbacks included."""
    from engine.language.builder import build_runbook
    from engine.language.flow import nested
    from engine.language.loader import load_text
    from engine.language.validation import check_document

    text = runbook("""\
        remediation:
          - {id: a, run: "true", rollback: [{id: a_undo, run: "true"}]}
          - id: b
            block: [{id: b1, run: "true"}, {id: b2, run: "true"}]
          - id: c
            run: "true"
            confirm: {message: go?, on_refuse: [{id: c_no, run: "true"}]}
          - id: s
            switch: "'x'"
            cases: {x: [{id: s_x, run: "true"}]}
            default: [{id: s_other, run: "true"}]
          - {id: d, run: "true"}
        """)
    doc = load_text(text, "runbook.yaml")
    assert check_document(doc).model is not None
    rb = build_runbook(doc)
    expected = [[s.id for p in rb.phases for s in nested(p.steps, rollbacks=back)] for back in (False, True)]
    rb.derived.clear()
    entered = python_calls(lambda: (rb.steps(), rb.steps(rollbacks=True)))
    assert [[s.id for s in rb.steps(rollbacks=back)] for back in (False, True)] == expected
    assert expected[1] == ["a", "a_undo", "b", "b1", "b2", "c", "c_no", "s", "s_x", "s_other", "d"]
    assert entered.count("flow.py:nested") == 2  # only a's rollback list is walked by a generator (in and out)
    assert entered.count("model.py:branches") == 7  # b, c and s for each list, and a_undo (nested asks it)


def test_a_frozen_class_no_twin_can_stand_for_is_still_filled_through_its_descriptors() -> None:
    """The twin a Result is filled as must have its layout: a frozen slotted class with a
    slotted base has another, and is filled field by field as before, not refused at its
    first instance."""
    import dataclasses

    from engine.executors import base

    class Slotted:
        __slots__ = ("extra",)

    @dataclasses.dataclass(frozen=True, slots=True)
    class Odd(Slotted):
        a: int
        b: tuple[int, ...] = ()

    base._direct_init(Odd)
    odd = Odd(1)
    assert type(odd) is Odd and (odd.a, odd.b) == (1, ()) and odd == Odd(1, ())
    with pytest.raises(dataclasses.FrozenInstanceError):
        odd.a = 2  # type: ignore[misc]


def test_a_plain_step_s_action_is_found_and_its_checks_skipped_without_a_call() -> None:
    """A kind of step already seen finds its action without action_of(), and a step with
    neither `outputs` nor `expect` skips check() without entering it; a step with them
    still goes through check() (its expect still fails it)."""
    text = runbook("remediation:\n  - {id: a, run: 'true'}\n  - {id: b, run: 'true'}\n"
                   "  - {id: c, run: 'true', expect: 'false'}\n")
    found: list[Any] = []
    entered = python_calls(lambda: found.append(run_text(text, executor=ScriptedExecutor({"*": ""}))))
    _, events = found[0]
    assert [(e.step, e.status) for e in events.named("step.finished")] == [  # type: ignore[attr-defined]
        ("a", "ok"), ("b", "ok"), ("c", "failed")]
    assert entered.count("_kinds.py:act") == 3
    assert (entered.count("_kinds.py:action_of"), entered.count("_polling.py:check")) == (0, 1)


def test_a_step_that_went_well_is_recorded_ok_without_a_status_call() -> None:
    """A step's record says `ok` for an attempt that went well without asking _status()
    (which tells failed, aborted, refused and not confirmed apart): a call a step."""
    text = runbook("remediation:\n  - {id: a, run: 'true'}\n  - {id: b, run: 'false', continue_on_error: true}\n")
    found: list[Any] = []
    entered = python_calls(lambda: found.append(run_text(text, executor=ScriptedExecutor(
        {"true": "", "false": {"exit_code": 1}}))))
    _, events = found[0]
    assert [(e.step, e.status) for e in events.named("step.finished")] == [  # type: ignore[attr-defined]
        ("a", "ok"), ("b", "failed")]
    assert entered.count("_step.py:_status") == 1
