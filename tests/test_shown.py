"""engine.run._shown: what the engine shows and journals is rendered with secrets as ***, so
no encoding, slice, item or computation of a secret reaches a person or a file, while the
commands and requests that run get the real values."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from test_masking import leaked

from engine.run.events import StepFinished, StepStarted
from engine.testing import Recorder, ScriptedExecutor, run_text

SECRET = "it's \"s3cret\" $x\\y"


def runbook(body: str) -> str:
    return ("kind: runbook\nversion: 1\nid: shown\ntitle: Shown\ndefaults: {timeout: 30s}\n"
            "inputs: {token: {type: string, secret: true}, host: {type: string, default: db-1}}\n"
            + textwrap.dedent(body))


def everything(events: Recorder) -> str:
    """Every event, as the journal and the console would get it."""
    return "\n".join(json.dumps(e.record(), default=str) for e, _ in events.events)


def started(events: Recorder) -> dict[str, list[StepStarted]]:
    out: dict[str, list[StepStarted]] = {}
    for e in events.named("step.started"):
        assert isinstance(e, StepStarted)
        out.setdefault(e.step, []).append(e)
    return out


def finished(events: Recorder) -> dict[str, StepFinished]:
    return {e.step: e for e in events.named("step.finished") if isinstance(e, StepFinished)}


STEPS = """\
    triage:
      - {id: plain, run: "login --token {{ inputs.token }} --host {{ inputs.host }}"}
      - {id: quoted, run: "curl -H \\"Authorization: Bearer {{ inputs.token }}\\" {{ inputs.host }}"}
      - id: encoded
        run: "echo {{ inputs.token | to_json }} {{ inputs.token | urlencode }} {{ inputs.token | quote }}"
      - id: derived
        run: probe
        outputs: {upper: "{{ inputs.token | upper }}", tail: "{{ inputs.token[-6:] }}",
                  n: "{{ inputs.token | length }}", host: "{{ inputs.host }}",
                  tagged: "{{ inputs.token ~ '@' ~ inputs.host }}"}
      - {id: remember, set: {copy: "{{ inputs.token }}", label: "x={{ inputs.host }}"}}
      - {id: reuse, run: "use {{ vars.copy }} {{ steps.derived.outputs.upper }} {{ steps.derived.outputs.tagged }}"}
      - {id: each_char, for_each: "inputs.token | list", run: "put {{ item }}"}
      - {id: each_word, for_each: "inputs.token.split(' ')", run: "put {{ item }}"}
      - {id: ask, manual: "Paste {{ inputs.token[:4] }}... into the form", confirm: "Use {{ inputs.token }}?"}
      - id: call
        http: {url: "https://api.example/v1?token={{ inputs.token | urlencode }}", method: POST,
               headers: {X-Token: "{{ inputs.token }}"}, body: {token: "{{ inputs.token }}"}}
"""


def run() -> tuple[Any, Recorder, ScriptedExecutor]:
    executor = ScriptedExecutor({"*": "ok", "call": {"status": 200, "body": "{}"}})
    result, events = run_text(runbook(STEPS), inputs={"token": SECRET}, executor=executor)
    assert result.outcome == "resolved", result.reason
    return result, events, executor


def test_nothing_shown_or_journaled_holds_the_secret_in_any_form() -> None:
    _, events, _ = run()
    text = everything(events)
    assert leaked(text, SECRET) == []
    for piece in ["s3cret", "S3CRET", '3cret"', "$x\\\\y"]:
        assert piece not in text, piece


def test_what_runs_gets_the_real_values() -> None:
    _, _, executor = run()
    commands = {c.step: c.command for c in executor.calls}
    assert commands["plain"] == "login --token 'it'\"'\"'s \"s3cret\" $x\\y' --host db-1"
    assert commands["quoted"] == 'curl -H "Authorization: Bearer it\'s \\"s3cret\\" \\$x\\\\y" db-1'
    call = next(c for c in executor.calls if c.step == "call")
    assert call.http is not None and call.http.headers["X-Token"] == SECRET
    assert json.loads(call.http.body or b"") == {"token": SECRET}


def test_commands_show_the_secret_as_stars_before_any_quoting() -> None:
    _, events, _ = run()
    shown = {sid: [e.command for e in es] for sid, es in started(events).items()}
    assert shown["plain"] == ["login --token *** --host db-1"]
    assert shown["quoted"] == ['curl -H "Authorization: Bearer ***" db-1']
    assert shown["encoded"] == ["echo '\"***\"' *** '***'"]
    assert shown["reuse"] == ["use *** *** '***@db-1'"]
    assert shown["call"] == ["POST https://api.example/v1?token=***"]


def test_values_computed_from_a_secret_are_shown_as_stars_and_others_as_they_are() -> None:
    _, events, _ = run()
    done = finished(events)
    assert done["derived"].outputs == {"upper": "***", "tail": "***", "n": "***", "host": "db-1",
                                       "tagged": "***@db-1"}
    assert done["remember"].vars["copy"] == "***" and done["remember"].vars["label"] == "x=db-1"


def test_every_item_of_a_for_each_over_a_secret_is_stars_whatever_its_length() -> None:
    _, events, _ = run()
    chars = started(events)["each_char"]
    assert len(chars) == len(SECRET)
    assert {e.item for e in chars} == {"***"} and {e.command for e in chars} == {"put ***"}
    assert {i["item"] for i in finished(events)["each_char"].items} == {"***"}
    assert {e.item for e in started(events)["each_word"]} == {"***"}


def test_what_a_person_reads_is_rendered_with_stars() -> None:
    _, events, _ = run()
    [ask] = started(events)["ask"]
    assert ask.instructions == "Paste ***... into the form"
    [approval] = events.named("approval")
    assert getattr(approval, "message", "") == "Use ***?"


def test_a_run_without_secrets_renders_once_as_before() -> None:
    executor = ScriptedExecutor({"*": "ok"})
    text = runbook("triage:\n  - {id: a, run: \"echo {{ inputs.host }}\", outputs: {h: \"{{ inputs.host }}\"}}\n")
    result, events = run_text(text.replace("secret: true", "secret: false"), inputs={"token": "x"},
                              executor=executor)
    assert result.outcome == "resolved"
    assert started(events)["a"][0].command == "echo db-1" and finished(events)["a"].outputs == {"h": "db-1"}
