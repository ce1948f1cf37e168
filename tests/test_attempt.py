"""`attempt` (1-based) in the templates of a retried or polled step: each try renders its
own command, request, `expect` and `until`, and the journal says what the next try runs."""

from __future__ import annotations

import textwrap

from engine.fleet.fanout import FanOut
from engine.run.events import StepAttempt, StepFinished, StepStarted
from engine.testing import FakeRemote, ScriptedExecutor, run_text


def runbook(body: str, head: str = "") -> str:
    return ("kind: runbook\nversion: 1\nid: unit\ntitle: Unit runbook\ndefaults: {timeout: 30s}\n"
            + textwrap.dedent(head) + textwrap.dedent(body))


def test_each_retry_renders_its_command_with_its_attempt_number() -> None:
    """The etcd docs' advice: a longer --command-timeout on each retry."""
    text = runbook("""\
        remediation:
          - id: defrag
            run: "etcdctl defrag --command-timeout={{ 30 * attempt }}s"
            retries: {attempts: 3, delay: 10s}
        """)
    executor = ScriptedExecutor({"defrag": [1, 1, "done"]})
    result, events = run_text(text, executor=executor)
    assert result.outcome == "resolved"
    assert [c.command for c in executor.calls] == [
        "etcdctl defrag --command-timeout=30s", "etcdctl defrag --command-timeout=60s",
        "etcdctl defrag --command-timeout=90s"]
    assert [c.attempt for c in executor.calls] == [1, 2, 3]
    [started] = [e for e in events.named("step.started") if isinstance(e, StepStarted)]
    assert started.command == "etcdctl defrag --command-timeout=30s"
    tries = [e for e in events.named("step.attempt") if isinstance(e, StepAttempt)]
    assert [t.command for t in tries] == ["etcdctl defrag --command-timeout=60s",
                                          "etcdctl defrag --command-timeout=90s"]


def test_a_command_that_does_not_name_attempt_is_not_repeated_in_the_journal() -> None:
    text = runbook("""\
        remediation:
          - {id: flaky, run: do-it, retries: {attempts: 2, delay: 1s}}
        """)
    _, events = run_text(text, executor=ScriptedExecutor({"flaky": [1, "ok"]}))
    assert [e.command for e in events.named("step.attempt") if isinstance(e, StepAttempt)] == [None]


def test_every_poll_counts_as_an_attempt_in_until_and_the_command() -> None:
    text = runbook("""\
        recovery:
          - id: health
            run: "check --try {{ attempt }}"
            until: "attempt >= 3 and stdout == 'ok'"
            every: 5s
            timeout: 2m
            outputs: {took: "{{ attempt }}"}
        """)
    executor = ScriptedExecutor({"health": "ok"})
    result, events = run_text(text, executor=executor)
    assert result.outcome == "resolved"
    assert [c.command for c in executor.calls] == ["check --try 1", "check --try 2", "check --try 3"]
    done = [e for e in events.named("step.finished") if isinstance(e, StepFinished)][-1]
    assert done.outputs == {"took": 3}


def test_retries_of_a_polled_step_keep_counting() -> None:
    """Two retries of a step that polls twice each: tries 1-2, then 3-4."""
    text = runbook("""\
        recovery:
          - id: wait_up
            run: "probe {{ attempt }}"
            until: "stdout == 'up'"
            every: 5s
            timeout: 9s
            retries: {attempts: 2, delay: 1s}
        """)
    executor = ScriptedExecutor({"wait_up": "down"})
    result, _ = run_text(text, executor=executor)
    assert result.outcome == "failed"
    assert [c.command for c in executor.calls] == ["probe 1", "probe 2", "probe 3", "probe 4"]


def test_expect_and_http_see_the_attempt() -> None:
    text = runbook("""\
        remediation:
          - id: api
            http: {url: "http://127.0.0.1:9/try/{{ attempt }}"}
            expect: "attempt == 2"
            retries: {attempts: 3, delay: 1s}
        """)
    executor = ScriptedExecutor({"api": {"status": 200, "body": "{}"}})
    result, _ = run_text(text, executor=executor)
    assert result.outcome == "resolved"
    assert [c.command for c in executor.calls] == ["GET http://127.0.0.1:9/try/1", "GET http://127.0.0.1:9/try/2"]


def test_a_fan_out_renders_each_hosts_command_for_each_attempt() -> None:
    text = runbook("""\
        remediation:
          - id: restart
            target: web
            run: "restart --host {{ host }} --wait {{ 10 * attempt }}"
            retries: {attempts: 2, delay: 1s}
        """, head="targets:\n  web: {hosts: [a, b]}\n")
    remote = FakeRemote({"a": [1, "ok"], "b": [1, "ok"]})
    result, _ = run_text(text, remote=FanOut(remote))
    assert result.outcome == "resolved"
    assert sorted(c.command for c in remote.calls) == [
        "restart --host a --wait 10", "restart --host a --wait 20",
        "restart --host b --wait 10", "restart --host b --wait 20"]


def test_a_runs_state_and_attempt_records_keep_their_field_types_evaluated_not_as_text() -> None:
    """`dataclass` matches each annotation kept as text against a pattern (ClassVar?
    InitVar?) at every start: the run's step records, incident, state and attempt (a
    million instructions of a one-step run) are declared with the types themselves."""
    import dataclasses

    from engine.run import attempt, state

    classes = (state.StepRecord, state.Incident, state.RunState, attempt.Attempt)
    text = [f"{cls.__name__}.{name}" for cls in classes for name, kind in cls.__annotations__.items()
            if isinstance(kind, str)]
    assert text == []
    # _seen is a ClassVar, not a field
    assert [f.name for f in dataclasses.fields(state.Incident)] == ["impact", "urgency", "priority"]


def test_the_run_paths_other_records_keep_their_field_types_evaluated_not_as_text() -> None:
    """The prompts' answers and participants, the inputs' and the policy's records: each
    annotation kept as text cost `dataclass` a pattern match at every start."""
    import dataclasses

    from engine.executors import prompts
    from engine.run import inputs, policy

    classes = [value for module in (prompts, inputs, policy) for value in vars(module).values()
               if dataclasses.is_dataclass(value) and value.__module__ == module.__name__]
    assert len(classes) >= 6
    assert [f"{cls.__name__}.{name}" for cls in classes for name, kind in cls.__annotations__.items()
            if isinstance(kind, str)] == []


def test_what_crosses_the_executor_protocol_keeps_its_field_types_evaluated_not_as_text() -> None:
    """HttpRequest, Invocation and Result, made for every command: their annotations kept
    as text cost `dataclass` a pattern match each at every start."""
    import dataclasses

    from engine.executors import base

    classes = [value for value in vars(base).values()
               if dataclasses.is_dataclass(value) and value.__module__ == base.__name__]
    assert {cls.__name__ for cls in classes} >= {"HttpRequest", "Invocation", "Result"}
    assert [f"{cls.__name__}.{name}" for cls in classes for name, kind in cls.__annotations__.items()
            if isinstance(kind, str)] == []
