"""Scenario lint rules (engine.language._scenario_rules): does a drill fit the runbook it exercises?

Fixtures are inline YAML, as in test_lint.py: each `‸` marks where a diagnostic of the
rule under test must be reported; a fixture without marks must not trigger the rule.
The scenario sits beside `runbook.yaml` (RUNBOOK below unless the case brings its own).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import MARK, positions, unmark

from engine.language.diagnostics import Diagnostic, Severity
from engine.language.lint import RULES
from engine.language.validation import check_file

ERROR, WARNING = Severity.ERROR, Severity.WARNING
HEADER = "kind: scenario\nversion: 1\nid: drill\ntitle: Drill\nrunbook: runbook.yaml\n"

RUNBOOK = """
kind: runbook
version: 1
id: disk
title: Disk full
inputs:
  host: {type: string, alert: labels.instance}
  mount: {type: string, default: /var}
  token: {type: string, secret: true, env: OPS_TOKEN}
defaults: {timeout: 1m}
detection:
  - id: usage
    run: df {{ inputs.mount }}
triage:
  - id: assess
    manual: What fills the disk?
    ask:
      cause: {choices: [logs, data]}
      size: {type: number, minimum: 0}
      sure: {type: confirm, default: true}
remediation:
  - id: restart
    run: systemctl restart {{ inputs.host }}-app
    confirm: Restart the app?
  - id: status
    http: {url: "https://status.example/{{ inputs.host }}/health"}
recovery:
  - {id: verify, run: "df {{ inputs.mount }}", expect: "stdout | int < 90"}
"""

KUBE_TARGETS = """\
targets:
  web: {pods: {context: prod, namespace: shop, selector: app=web}}
  disks: {nodes: {context: prod, selector: pool=a, image: busybox}}
  box: {hosts: [b-1]}
"""

# A scenario that scripts everything RUNBOOK needs: every rule is silent on it.
COMPLETE = """
inputs: {host: db-1}
responses:
  - {step: usage, stdout: "96"}
  - {step: restart, exit_code: 0}
  - {step: status, status: 200}
  - {step: verify, stdout: "60"}
participants:
  assess: {answers: {cause: logs, size: 12}}
  restart: {approve: true}
"""

SEVERITY = {"RB201": ERROR, "RB202": ERROR, "RB203": ERROR, "RB204": ERROR, "RB205": WARNING,
            "RB206": ERROR, "RB207": ERROR, "RB208": ERROR, "RB209": ERROR, "RB215": ERROR,
            "RB216": ERROR, "RB217": ERROR}


GROUP_TARGETS = """\
targets:
  lbs: {group: lbs}
  edge: {group: edge}
  picked: {group: "{{ inputs.mount }}"}
"""


MEMBERS = RUNBOOK.replace("recovery:\n", """recovery:
  - id: each_member
    for_each: [a, b]
    block:
      - {id: defrag, run: "defrag {{ item }}"}
""")


def scenario(body: str) -> str:
    """A scenario: the standard header (naming runbook.yaml), then `body`."""
    body = textwrap.dedent(body).lstrip("\n")
    return body if body.startswith("kind:") else HEADER + body


def lint(tmp_path: Path, text: str, runbook: str | None = RUNBOOK) -> list[Diagnostic]:
    """Write the runbook (unless None) and the scenario beside it; validate the scenario."""
    if runbook is not None:
        (tmp_path / "runbook.yaml").write_text(textwrap.dedent(runbook).lstrip("\n"))
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return check_file(str(path)).diagnostics


@dataclass(frozen=True)
class Case:
    """A scenario fixture for one rule: marks are exactly where the rule fires."""

    rule: str
    behaviour: str
    text: str
    message: str = ""  # a phrase every diagnostic of the rule must contain
    runbook: str | None = RUNBOOK

    @property
    def fails(self) -> bool:
        return MARK in self.text

    @property
    def id(self) -> str:
        return f"{self.rule} {'fires' if self.fails else 'silent'}: {self.behaviour}"


def complete(**changes: str) -> str:
    """COMPLETE with some of its lines replaced (old line -> new line)."""
    text = COMPLETE
    for old, new in changes.items():
        assert old in text, old
        text = text.replace(old, new)
    return scenario(text)


def extended(extra: str) -> str:
    """COMPLETE with more top-level keys."""
    return scenario(COMPLETE + textwrap.dedent(extra).lstrip("\n"))


CASES = [
    # -- RB201 scenario-runbook-missing ------------------------------------------------------
    Case("RB201", "the runbook exists and is valid", scenario(COMPLETE)),
    Case("RB201", "the runbook file does not exist, at the path", scenario(f"""
        kind: scenario
        version: 1
        id: drill
        title: Drill
        runbook: {MARK}gone.yaml
        """), message="does not exist", runbook=None),
    Case("RB201", "the runbook does not pass the schema", scenario("""
        kind: scenario
        version: 1
        id: drill
        title: Drill
        runbook: ‸runbook.yaml
        """), message="is not valid (1 error(s))", runbook=RUNBOOK.replace("timeout:", "timout:")),
    # -- RB215 scenario-pods-target ----------------------------------------------------------
    Case("RB215", "pods for a Kubernetes target", extended("""
        pods: {web: [web-1, web-2], disks: "{{ state.nodes }}"}
        """), runbook=RUNBOOK + KUBE_TARGETS),
    Case("RB215", "pods for a misspelt target and for an SSH target", extended("""
        pods: {‸webb: [web-1], ‸box: [b-1]}
        """), message="pods: ", runbook=RUNBOOK + KUBE_TARGETS),
    # -- RB216 scenario-inventory ------------------------------------------------------------
    Case("RB216", "an inline inventory with the runbook's groups (a templated group is not judged)", extended("""
        inventory:
          groups:
            lbs: {hosts: [lb-1, lb-2, lb-3]}
            edge: {children: [lbs]}
        """), runbook=RUNBOOK + GROUP_TARGETS),
    Case("RB216", "a group the inventory lacks, with a suggestion, and an empty group", extended("""
        inventory:
          ‸groups:
            lb: {hosts: [lb-1]}
            ‸edge: {hosts: []}
        """), message="inventory", runbook=RUNBOOK + GROUP_TARGETS),
    Case("RB216", "an inventory file that does not exist, at the path", extended("""
        inventory: ‸hosts.ini
        """), message="cannot read inventory", runbook=RUNBOOK + GROUP_TARGETS),
    Case("RB216", "an inline inventory the inventory format refuses", extended("""
        inventory:
          ‸groups:
            lbs: {hosts: [lb-1], children: [lbs]}
        """), message="inventory", runbook=RUNBOOK + GROUP_TARGETS),
    # -- RB202 unknown-response-step ---------------------------------------------------------
    Case("RB202", "responses for steps the runbook has", scenario(COMPLETE)),
    Case("RB202", "a response for a misspelt step, with a suggestion", complete(
        **{"- {step: usage, ": "- {step: usage, stdout: '1'}\n  - {step: ‸usag, "}),
         message="did you mean 'usage'?"),
    # -- RB203 unknown-participant-step ------------------------------------------------------
    Case("RB203", "participants for steps the runbook has", scenario(COMPLETE)),
    Case("RB203", "participants for a misspelt step, at its key", complete(
        **{"  restart: {approve: true}": "  restart: {approve: true}\n  ‸asses: {after: 5s}"}),
         message="did you mean 'assess'?"),
    # -- RB204 unknown-hint-step -------------------------------------------------------------
    Case("RB204", "hints for steps the runbook has, rollbacks included", extended("""
        hints: {usage: Look at df., assess: Which directory grew?}
        """)),
    Case("RB204", "a hint for a step the runbook lacks, at its key", extended("""
        hints:
          ‸top_dirs: Which directory grew?
        """), message="hints names step 'top_dirs'"),
    # -- RB205 unscripted-step ---------------------------------------------------------------
    Case("RB205", "every run and http step has a response, every prompt a participant",
         scenario(COMPLETE)),
    Case("RB205", "run and http steps covered by match globs", complete(**{
        "  - {step: usage, stdout: \"96\"}": "  - {match: {command: 'df *'}, stdout: \"96\"}",
        "  - {step: restart, exit_code: 0}": "  - {match: {command: 'systemctl restart *'}}",
        "  - {step: status, status: 200}": "  - {match: {url: 'https://status.example/*'}}",
    })),
    Case("RB205", "a literal match glob covers a templated command that can render to it",
         complete(**{"  - {step: restart, exit_code: 0}":
                     "  - {match: {command: systemctl restart db-1-app}}"})),
    Case("RB205", "a run step without a response, reported at responses", complete(**{
        "responses:": "‸responses:", "  - {step: restart, exit_code: 0}\n": ""}),
         message="step 'restart' has no response"),
    Case("RB205", "a match glob for another command does not cover a step", complete(**{
        "responses:": "‸responses:",
        "  - {step: usage, stdout: \"96\"}": "  - {match: {command: 'du *'}, stdout: \"96\"}",
        "  - {step: verify, stdout: \"60\"}": "  - {step: verify, stdout: \"6\"}"}),
         message="step 'usage' has no response"),
    Case("RB205", "an http step without a response", complete(**{
        "responses:": "‸responses:", "  - {step: status, status: 200}\n": ""}),
         message="step 'status' has no response"),
    Case("RB205", "a manual step and a confirm step without participants", complete(**{
        "participants:": "‸participants:", "  assess: {answers: {cause: logs, size: 12}}\n": ""}),
         message="waits for a person"),
    # -- RB206 unknown-objective-step --------------------------------------------------------
    Case("RB206", "objectives about existing steps; must_not_run may name any step",
         extended("""
        objectives:
          must_run: [restart]
          must_not_run: [reboot_host]
          approved_by_role: {restart: incident_commander}
        """)),
    Case("RB206", "must_run and approved_by_role naming missing steps", extended("""
        objectives:
          must_run: [restart, ‸restrat]
          approved_by_role: {‸reboot: incident_commander}
        """), message="objectives names step"),
    Case("RB206", "order and items naming steps inside blocks", extended("""
        objectives:
          order: [usage, restart, defrag]
          items: [{step: defrag, last: {item: b}}]
        """), runbook=MEMBERS),
    Case("RB206", "order and items naming missing steps", extended("""
        objectives:
          order: [usage, ‸defarg]
          items: [{step: ‸defarg, count: 2}]
        """), message="did you mean 'defrag'?", runbook=MEMBERS),
    # -- RB217 item-objective-step -----------------------------------------------------------
    Case("RB217", "items of a step inside a block with for_each", extended("""
        objectives:
          items: [{step: defrag, each: {status: ok}}]
        """), runbook=MEMBERS),
    Case("RB217", "items of a step that runs once", extended("""
        objectives:
          items: [{step: defrag, count: 2}, {step: ‸restart, count: 1}]
        """), message="runs once", runbook=MEMBERS),
    # -- RB207 bad-participant-answer --------------------------------------------------------
    Case("RB207", "answers that fit the questions, approval of a confirm step",
         scenario(COMPLETE)),
    Case("RB207", "an answer to a question the step does not ask, at its key", complete(
        **{"{answers: {cause: logs, size: 12}}": "{answers: {cause: logs, size: 12, ‸reason: x}}"}),
         message="asks no question 'reason'"),
    Case("RB207", "an answer outside the choices, at the answer", complete(
        **{"cause: logs": "cause: ‸disk"}), message="is not one of logs, data"),
    Case("RB207", "a number question answered with text", complete(
        **{"size: 12": "size: ‸lots"}), message="number"),
    Case("RB207", "a number answer below the minimum", complete(
        **{"size: 12": "size: ‸-1"}), message="at least 0"),
    Case("RB207", "a question without default left unanswered, at the answers", complete(
        **{"{answers: {cause: logs, size: 12}}": "{‸answers: {cause: logs}}"}),
         message="no answer for 'size'"),
    Case("RB207", "set on an answered question and on an approval", complete(**{
        "  assess: {answers: {cause: logs, size: 12}}":
        "  assess: {answers: {cause: logs, size: 12}, set: {cause: '{{ answers.cause }}'}}",
        "  restart: {approve: true}": "  restart: {approve: true, set: {restarted: '{{ approved }}'}}"})),
    Case("RB207", "set on a step that asks nobody anything, at its key", complete(**{
        "  restart: {approve: true}": "  restart: {approve: true}\n  usage: {‸set: {looked: true}}"}),
         message="its set never applies"),
    Case("RB207", "a confirm question answered with text", complete(
        **{"size: 12}}": "size: 12, sure: ‸maybe}}"}), message="must be true or false"),
    Case("RB207", "a participant who only takes time, for a step with questions", complete(
        **{"  assess: {answers: {cause: logs, size: 12}}": "  ‸assess: {after: 30s}"}),
         message="no answer for 'cause', 'size'"),
    Case("RB207", "an approval for a step that asks for no confirmation", complete(
        **{"  assess: {answers: {cause: logs, size: 12}}":
           "  assess: {answers: {cause: logs, size: 12}, ‸approve: true}"}),
         message="asks for no confirmation"),
    # -- RB208 scenario-inputs ---------------------------------------------------------------
    Case("RB208", "required inputs given; defaults and env inputs may be left out",
         scenario(COMPLETE)),
    Case("RB208", "required inputs from a secret file or command may be left out (a drill reads neither)",
         scenario(COMPLETE), runbook=RUNBOOK.replace(
             "  mount:", "  pd_key: {type: string, secret: true, file: /run/secrets/pd}\n"
                         "  vault: {type: string, secret: true, command: vault kv get -field=token ops}\n  mount:")),
    Case("RB208", "a required input given through the alert labels it declares", complete(
        **{"inputs: {host: db-1}": "alert: {labels: {instance: db-1}}"})),
    Case("RB208", "an input the runbook does not declare, with a suggestion, at its key",
         complete(**{"inputs: {host: db-1}": "inputs: {host: db-1, ‸mnt: /srv}"}),
         message="did you mean 'mount'?"),
    Case("RB208", "a required input missing, at the inputs key", complete(
        **{"inputs: {host: db-1}": "‸inputs: {mount: /srv}"}),
         message="required input 'host' is not given"),
    Case("RB208", "alert labels without the label the input reads", complete(
        **{"inputs: {host: db-1}": "alert: {labels: {host: db-1}}"}).replace(
        "runbook: runbook.yaml", "‸runbook: runbook.yaml")),
    # -- RB209 bad-mitigated-when ------------------------------------------------------------
    Case("RB209", "a condition over the world's state and the inputs", extended("""
        mitigated_when: state.pct < 90 and inputs.host == 'db-1'
        """)),
    Case("RB209", "a condition that does not parse", extended("""
        mitigated_when: ‸state.pct <
        """), message="not a valid expression"),
    Case("RB209", "a condition on a name the world does not have", extended("""
        mitigated_when: ‸steps.restart.status == 'ok'
        """), message="sees only `state` and `inputs`"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_rule_fires_exactly_at_the_marked_positions(case: Case, tmp_path: Path) -> None:
    """Each fixture: the rule fires at every mark, nowhere else, with its severity and message."""
    text, marks = unmark(case.text)
    diags = lint(tmp_path, text, case.runbook)
    assert positions(diags, case.rule) == sorted(marks), [str(d) for d in diags]
    for diag in diags:
        if diag.rule == case.rule:
            assert diag.severity is SEVERITY[case.rule]
            assert case.message in diag.message


def test_every_scenario_rule_has_a_failing_and_a_passing_fixture() -> None:
    """A new scenario rule without fixtures fails the suite."""
    scenario_rules = {r.id for r in RULES.values() if r.kind == "scenario"}
    assert scenario_rules == set(SEVERITY)
    assert scenario_rules <= {c.rule for c in CASES if c.fails}
    assert scenario_rules <= {c.rule for c in CASES if not c.fails}


def test_complete_scenario_has_no_diagnostics(tmp_path: Path) -> None:
    """The reference scenario is clean, so each case's diagnostics come from its change."""
    assert lint(tmp_path, scenario(COMPLETE)) == []


def test_scenario_rules_are_quiet_about_steps_when_the_runbook_is_missing(tmp_path: Path) -> None:
    """Without a runbook only RB201 fires: step names cannot be checked against nothing."""
    text = scenario("""
        responses: [{step: whatever}]
        participants: {anything: {approve: true}}
        hints: {nowhere: hint}
        """)
    assert {d.rule for d in lint(tmp_path, text, runbook=None)} == {"RB201"}


def test_unscripted_steps_without_responses_or_participants_point_at_the_runbook(
        tmp_path: Path) -> None:
    """With neither section to point at, every unscripted step is reported at `runbook:`."""
    text = scenario("""
        inputs: {host: db-1}
        """)
    found = [(d.line, d.column, d.message.split(":")[0]) for d in lint(tmp_path, text)
             if d.rule == "RB205"]
    assert found == [
        (5, 1, "step 'usage' has no response"),
        (5, 1, "step 'assess' waits for a person but participants has no entry for it"),
        (5, 1, "step 'restart' has no response"),
        (5, 1, "step 'restart' waits for a person but participants has no entry for it"),
        (5, 1, "step 'status' has no response"),
        (5, 1, "step 'verify' has no response"),
    ]
