"""A live run with a secret holding quotes, a dollar sign and a backslash: no form of it
(shell-quoted, JSON-escaped, URL-encoded, base64 in basic auth, item by item) reaches the
console, the journal, the step logs, the reports or a scenario made from the run."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from livekit import Request, Server, Workspace, assert_clean_failure_output, journal_records, runbook_text

pytestmark = pytest.mark.integration

SECRET = "it's \"s3cret\" $HOME\\x"


def echo(request: Request) -> tuple[int, str]:
    """Answers with what it got, JSON-escaped: the request's body and headers, and the
    token as HTTP basic auth would carry it."""
    basic = base64.b64encode(f"ops:{request.headers.get('X-Token', '')}".encode()).decode()
    return 500, json.dumps({"got": json.loads(request.body or b"null"), "headers": dict(request.headers),
                            "basic": basic})


def leaks(text: str) -> list[str]:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from test_masking import leaked

    return leaked(text, SECRET) + [piece for piece in ("s3cret", "S3CRET") if piece in text]


def test_no_form_of_a_secret_leaves_the_engine(ws: Workspace) -> None:
    with Server({"/echo": echo}) as server:
        ws.write("live.yaml", runbook_text(f"""\
            inputs: {{token: {{type: string, secret: true, env: API_TOKEN}}}}
            triage:
              - {{id: quoted, run: "printf '%s\\\\n' {{{{ inputs.token }}}} \\"in quotes: {{{{ inputs.token }}}}\\""}}
              - {{id: chars, for_each: "inputs.token | list", run: "printf '%s' {{{{ item }}}}"}}
              - {{id: derived, run: "true", outputs: {{upper: "{{{{ inputs.token | upper }}}}"}}}}
              - id: call
                http:
                  url: "{server.url}/echo?t={{{{ inputs.token | urlencode }}}}"
                  method: POST
                  headers: {{Authorization: "Bearer {{{{ inputs.token }}}}", X-Token: "{{{{ inputs.token }}}}"}}
                  body: {{token: "{{{{ inputs.token }}}}"}}
                continue_on_error: true
            """))
        done = ws.run("run", "live.yaml", "--non-interactive", env={"API_TOKEN": SECRET})
    assert done.code == 0, done.text
    assert_clean_failure_output(done)
    run_dir = ws.only_run()
    assert journal_records(run_dir)[-1]["event"] == "run.finished"
    report_md = ws.run("report", run_dir)
    report_html = ws.run("report", run_dir, "-f", "html")
    scenario = ws.run("scenario", "from-run", run_dir)
    texts = {"console": done.text, "journal": (run_dir / "journal.jsonl").read_text(),
             "logs": "".join(p.read_text() for p in (run_dir / "logs").rglob("*.log")),
             "report": report_md.out, "html": report_html.out, "scenario": scenario.out}
    assert all(t for t in texts.values())
    assert {name: leaks(text) for name, text in texts.items()} == {name: [] for name in texts}
    assert "in quotes: ***" in done.out  # the command printed the secret; its output is masked
