"""Values a live run cannot use as they are (nested too deeply for JSON, a lone surrogate,
a NUL byte, an unknown charset): each ends as a clean step result with a whole journal."""

from __future__ import annotations

import pytest
from livekit import (
    Server,
    Workspace,
    assert_clean_failure_output,
    complete_journal,
    finished_step,
    runbook_text,
)

pytestmark = pytest.mark.integration


def test_json_nested_too_deeply_still_gives_the_step_its_finish(ws: Workspace) -> None:
    """500 levels parse (or not) depending on the stack; either way the journal is whole."""
    ws.write("live.yaml", runbook_text("""\
        triage:
          - id: deep
            run: python3 -c "print('['*500 + ']'*500)"
            outputs: {doc: "{{ stdout | from_json }}", has_json: "{{ json is none }}"}
            continue_on_error: true
          - id: surrogate
            run: echo '"\\udc00 x"'
            outputs: {text: "{{ stdout | from_json }}"}
        """))
    done = ws.run("run", "live.yaml", "--non-interactive")
    assert_clean_failure_output(done)
    records = complete_journal(ws.only_run())
    deep, surrogate = finished_step(records, "deep"), finished_step(records, "surrogate")
    assert deep["status"] in ("ok", "failed") and surrogate["status"] == "ok", done.text
    assert surrogate["outputs"] == {"text": "\ufffd x"}


def test_a_nul_byte_reaching_a_command_fails_that_step_cleanly(ws: Workspace) -> None:
    ws.write("live.yaml", runbook_text("""\
        triage:
          - {id: produce, run: "printf 'a\\\\0b'"}
          - {id: consume, run: "echo {{ steps.produce.stdout }}"}
          - {id: via_env, run: "echo $X", env: {X: "{{ steps.produce.stdout }}"}, continue_on_error: true}
        """))
    done = ws.run("run", "live.yaml", "--non-interactive")
    assert done.code == 1, done.text
    assert_clean_failure_output(done)
    records = complete_journal(ws.only_run())
    assert "NUL byte" in finished_step(records, "consume")["error"]
    assert records[-1]["outcome"] == "failed"


def test_an_unknown_charset_decodes_as_utf8_with_a_note(ws: Workspace) -> None:
    routes = {"/odd": lambda r: (200, "caf\u00e9".encode(), {"Content-Type": "text/plain; charset=x-made-up"}),
              "/codec": lambda r: (200, b"plain", {"Content-Type": "text/plain; charset=base64"})}
    with Server(routes) as server:
        ws.write("live.yaml", runbook_text(f"""\
            triage:
              - {{id: odd, http: {{url: "{server.url}/odd"}}, outputs: {{text: "{{{{ body }}}}"}}}}
              - {{id: codec, http: {{url: "{server.url}/codec"}}}}
            """))
        done = ws.run("run", "live.yaml", "--non-interactive")
    assert done.code == 0, done.text
    assert_clean_failure_output(done)
    records = complete_journal(ws.only_run())
    odd = finished_step(records, "odd")
    assert odd["outputs"] == {"text": "caf\u00e9"}
    assert "charset 'x-made-up'" in odd["stderr"] and "decoded as UTF-8" in done.out
    assert finished_step(records, "codec")["status"] == "ok"
