"""engine.run.plan: the dry-run. Inputs rendered, what only a run can know shown as
placeholders, approvals and rollbacks listed, and nothing executed."""

from __future__ import annotations

import textwrap

import pytest

from engine.language.builder import build_runbook
from engine.language.loader import load_text
from engine.language.model import Runbook
from engine.run.inputs import resolve
from engine.run.masking import Masker
from engine.run.plan import build_plan, render_plan

TEXT = """\
kind: runbook
version: 1
id: disk-full
title: Filesystem nearly full
inputs:
  host: {type: string}
  mount: {type: string, default: /var}
  threshold: {type: integer, default: 90}
  token: {type: string, secret: true, default: hunter2-token}
targets:
  box: {hosts: ["{{ inputs.host }}"], user: ops}
defaults: {timeout: 1m}
detection:
  - id: usage
    target: box
    run: df --output=pcent {{ inputs.mount }} | tail -n1
    outputs: {pct: "{{ stdout | int }}"}
    expect: outputs.pct >= inputs.threshold
triage:
  - id: assess
    role: responder
    manual: "{{ inputs.mount }} is at {{ steps.usage.outputs.pct }}%. What fills it?"
    ask:
      cause: {choices: [logs, data]}
remediation:
  - id: compress
    when: steps.assess.answers.cause == 'logs'
    target: box
    run: find {{ inputs.mount }}/log -name '*.log' -exec gzip {} +
    confirm: {message: "Compress logs on {{ inputs.host }}?", role: incident_commander}
    retries: {attempts: 3, delay: 5s, backoff: 2}
    destructive: true
    rollback:
      - {id: note, manual: "Check the compressed logs on {{ inputs.host }}."}
  - id: call_api
    http: {url: "https://api.example.com/hosts/{{ inputs.host }}?t={{ inputs.token }}", method: POST}
  - id: tell
    notify: {channel: oncall, message: "{{ inputs.host }} cleaned, was {{ steps.usage.outputs.pct }}%"}
recovery:
  - id: verify
    target: box
    run: df --output=pcent {{ inputs.mount }}
    until: stdout | int < inputs.threshold
    every: 10s
    timeout: 10m
"""


@pytest.fixture
def book() -> Runbook:
    return build_runbook(load_text(textwrap.dedent(TEXT), "disk-full.yaml"))


def plan_text(book: Runbook, **given: str) -> str:
    resolved = resolve(book, given={"host": "db-1", **given}, environ={})
    return render_plan(build_plan(book, resolved.values), Masker(resolved.secrets))


def test_the_plan_names_the_runbook_and_says_nothing_is_executed(book: Runbook) -> None:
    text = plan_text(book)
    assert text.startswith("Plan: Filesystem nearly full (runbook disk-full) - dry-run, nothing is executed\n")


def test_inputs_and_targets_are_rendered(book: Runbook) -> None:
    text = plan_text(book, mount="/srv")
    assert "inputs: host=db-1 mount=/srv threshold=90 token=***" in text
    assert "target box: db-1 as ops" in text
    assert "$ df --output=pcent /srv | tail -n1" in text


def test_phases_and_steps_are_numbered_in_run_order(book: Runbook) -> None:
    lines = plan_text(book).splitlines()
    headers = [line for line in lines if line in ("detection", "triage", "remediation", "recovery")]
    assert headers == ["detection", "triage", "remediation", "recovery"]
    steps = [line.strip() for line in lines if line.startswith("  ") and line.strip()[:1].isdigit()]
    assert steps == ["1. usage", "2. assess", "3. compress", "4. call_api", "5. tell", "6. verify"]


def test_what_only_the_run_knows_shows_as_placeholders(book: Runbook) -> None:
    text = plan_text(book)
    assert "manual (responder): /var is at <steps.usage.outputs.pct>%. What fills it?" in text
    assert "notify [oncall]: db-1 cleaned, was <steps.usage.outputs.pct>%" in text


def test_conditions_approvals_retries_and_flags_are_listed(book: Runbook) -> None:
    text = plan_text(book)
    assert "when: steps.assess.answers.cause == 'logs'" in text
    assert "asks for approval (role incident_commander): Compress logs on db-1?" in text
    assert "retries: 3 attempts, 5s apart x2" in text
    assert "flags: destructive" in text
    assert "expect: outputs.pct >= inputs.threshold (false ends the run: not_confirmed)" in text
    assert "until: stdout | int < inputs.threshold (every 10s, up to 10m)" in text
    assert "asks cause [logs/data]" in text


def test_rollbacks_are_listed_under_their_step(book: Runbook) -> None:
    lines = plan_text(book).splitlines()
    rollback = next(i for i, line in enumerate(lines) if "rollback note:" in line)
    assert "Check the compressed logs on db-1." in lines[rollback]
    owner = max(i for i, line in enumerate(lines[:rollback]) if line.strip()[:2] == "3.")
    assert lines[owner].strip() == "3. compress"


def test_secrets_are_masked_in_the_plan(book: Runbook) -> None:
    text = plan_text(book)
    assert "hunter2-token" not in text
    assert "POST https://api.example.com/hosts/db-1?t=***" in text


def test_values_are_shell_quoted_as_the_run_would_quote_them(book: Runbook) -> None:
    text = plan_text(book, mount="/var/my logs; reboot")
    assert "$ df --output=pcent '/var/my logs; reboot' | tail -n1" in text


def test_a_template_the_plan_cannot_render_says_so_instead_of_failing() -> None:
    book = build_runbook(load_text(textwrap.dedent("""\
        kind: runbook
        version: 1
        id: computed
        title: Computed
        defaults: {timeout: 1m}
        detection:
          - {id: probe, run: echo 5, outputs: {n: "{{ stdout | int }}"}}
          - {id: twice, run: "echo {{ steps.probe.outputs.n * 2 }}"}
        """), "computed.yaml"))
    text = render_plan(build_plan(book, {}))
    assert "$ echo {{ steps.probe.outputs.n * 2 }}  (computed at run time)" in text


def test_building_a_plan_touches_no_executor(book: Runbook) -> None:
    """The plan is built from the model alone: no services, no clock, no journal."""
    plan = build_plan(book, resolve(book, given={"host": "db-1"}, environ={}).values)
    assert [name for name, _ in plan.phases] == ["detection", "triage", "remediation", "recovery"]


# -- dry-run truth: set values propagate, loops over unknown lists go round once ----------------

TRUTH = """\
kind: runbook
version: 1
id: truth
title: Truth
inputs:
  cluster: {type: string, default: prod}
  token: {type: string, secret: true, default: hunter2-token}
vars: {url: "", auth: "", ns: default, pick: ""}
defaults: {timeout: 1m}
detection:
  - id: base
    set:
      url: "https://{{ inputs.cluster }}.example.com:6443"
      auth: "Bearer {{ inputs.token }}"
      ns: "{{ steps.find.stdout }}"
  - {id: find, run: "kubectl get pods -o name", outputs: {pods: "{{ stdout.split() }}"}}
  - {id: maybe, when: inputs.cluster == 'dev', set: {pick: dev-only}}
  - {id: show, run: "curl -H {{ vars.auth }} {{ vars.url }}/healthz -n {{ vars.ns }} {{ vars.pick }}"}
  - id: each
    run: "{% for p in steps.find.outputs.pods %}kubectl get pod {{ p }} -o {{ p.name }}; {% endfor %}"
  - id: leaders
    run: "echo {{ steps.find.outputs.pods | selectattr('leader', 'eq', 'true') | join(' ') }}"
  - id: ask
    manual: "Which namespace?"
    ask:
      ns: {sets: vars.ns}
  - {id: after_ask, run: "echo {{ vars.ns }}"}
"""


def truth_plan() -> str:
    book = build_runbook(load_text(TRUTH, "truth.yaml"))
    resolved = resolve(book, given={}, environ={})
    return render_plan(build_plan(book, resolved.values), Masker(resolved.secrets))


def test_a_set_value_from_inputs_reaches_later_commands_in_the_plan() -> None:
    """Known values are shown; what only the run knows (a step's output, a `when`) stays a
    placeholder, and a secret stays ***."""
    text = truth_plan()
    assert ("$ curl -H 'Bearer ***' https://prod.example.com:6443/healthz -n <vars.ns> <vars.pick>"
            in text), text
    assert "$ echo <vars.ns>" in text  # set by a person's answer, after the set step
    assert "hunter2" not in text


def test_a_loop_over_a_list_only_the_run_knows_goes_round_once() -> None:
    text = truth_plan()
    assert ("$ kubectl get pod <steps.find.outputs.pods[*]> -o <steps.find.outputs.pods[*].name>; "
            in text), text
    assert "' s t e p s" not in text and "'<'" not in text


def test_a_comparison_with_an_unknown_value_is_computed_at_run_time_not_made_up() -> None:
    """selectattr over a placeholder would pick nothing and show `echo ''`: a made-up value."""
    text = truth_plan()
    assert "join(' ') }}  (computed at run time)" in text
    assert "$ echo ''" not in text


def test_a_set_that_may_not_run_leaves_a_placeholder_in_the_plan() -> None:
    """A switch case or a conditional block may not run: the var it sets is unknown after
    it; a rollback runs only once the run failed (no later step reads what it sets); a
    block that always runs sets it as a step would."""
    book = build_runbook(load_text(textwrap.dedent("""\
        kind: runbook
        version: 1
        id: branches
        title: Branches
        inputs: {cause: {type: string, default: tls}}
        vars: {fix: none, undo: none, gated: none, plain: none}
        defaults: {timeout: 1m}
        detection:
          - id: pick
            switch: inputs.cause
            cases:
              tls: [{id: set_fix, set: {fix: renew}}]
          - id: act
            run: "do {{ vars.fix }}"
            rollback: [{id: set_undo, set: {undo: yes-undo}}]
          - id: gated_block
            when: inputs.cause == 'dns'
            block: [{id: set_gated, set: {gated: flushed}}]
          - id: plain_block
            block: [{id: set_plain, set: {plain: always}}]
          - {id: show, run: "echo {{ vars.fix }} {{ vars.undo }} {{ vars.gated }} {{ vars.plain }}"}
        """), "branches.yaml"))
    text = render_plan(build_plan(book, {"cause": "tls"}))
    assert "$ echo <vars.fix> none <vars.gated> always" in text, text
