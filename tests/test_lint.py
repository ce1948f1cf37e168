"""Runbook lint rules (engine.language.lint): one passing and one failing fixture per rule, positions exact.

A fixture is inline YAML. Each `‸` in it marks where a diagnostic of the rule under test
must be reported (line and column of the character after the mark); the mark is removed
before the file is written. A fixture without marks must produce no diagnostic of that rule.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support import MARK, positions, unmark

# Imported for their rules (registered in RULES), so the tables below do not depend on which test ran first.
import engine.language._include_rules
import engine.language._inventory_rules
import engine.language._quoting_rules
import engine.language._scenario_rules
import engine.language._shell_rules
import engine.language._value_rules  # noqa: F401
from engine.language.diagnostics import Diagnostic, Severity
from engine.language.lint import RULES, KnownChannels, describe_rules
from engine.language.validation import Options, check_file

ERROR, WARNING = Severity.ERROR, Severity.WARNING
DEFAULT = Options()
HEADER = "kind: runbook\nversion: 1\nid: demo\ntitle: Demo\n"

# The severity each rule must keep: changing one is a visible decision, not an accident.
SEVERITY = {
    "RB101": ERROR, "RB102": ERROR, "RB103": ERROR, "RB104": ERROR, "RB105": ERROR,
    "RB106": ERROR, "RB107": ERROR, "RB108": ERROR, "RB109": WARNING, "RB110": ERROR,
    "RB111": WARNING, "RB112": WARNING, "RB113": ERROR, "RB114": WARNING, "RB115": ERROR,
    "RB116": ERROR, "RB117": ERROR, "RB118": ERROR, "RB119": ERROR, "RB120": ERROR,
    "RB121": ERROR, "RB140": WARNING, "RB141": WARNING, "RB142": WARNING, "RB143": WARNING,
    "RB144": ERROR,
    "RB170": ERROR, "RB171": ERROR,
    "RB130": ERROR, "RB131": ERROR, "RB132": ERROR, "RB133": ERROR, "RB134": ERROR, "RB135": ERROR,
    "RB136": ERROR, "RB137": ERROR, "RB138": ERROR,
    "RB160": ERROR, "RB161": WARNING, "RB162": WARNING, "RB163": ERROR, "RB164": ERROR,
    "RB201": ERROR, "RB202": ERROR, "RB203": ERROR, "RB204": ERROR, "RB205": WARNING,
    "RB206": ERROR, "RB207": ERROR, "RB208": ERROR, "RB209": ERROR, "RB215": ERROR, "RB216": ERROR, "RB217": ERROR,
    "RB301": ERROR, "RB302": ERROR, "RB303": ERROR, "RB304": ERROR,
    "RB150": ERROR,
    "RB180": ERROR, "RB181": ERROR, "RB182": WARNING, "RB183": WARNING, "RB184": WARNING,
}


def runbook(body: str) -> str:
    """A runbook: the standard header, then `body` (unless it brings its own header)."""
    body = textwrap.dedent(body).lstrip("\n")
    return body if body.startswith("kind:") else HEADER + body


def lint(tmp_path: Path, text: str, *, files: Mapping[str, str] | None = None,
         options: Options = DEFAULT, name: str = "runbook.yaml") -> list[Diagnostic]:
    """Write `text` (and any extra files) under tmp_path and validate it."""
    for extra, content in (files or {}).items():
        (tmp_path / extra).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / extra).write_text(textwrap.dedent(content).lstrip("\n"))
    path = tmp_path / name
    path.write_text(text)
    return check_file(str(path), options).diagnostics


def of(diags: list[Diagnostic], rule_id: str) -> list[Diagnostic]:
    return [d for d in diags if d.rule == rule_id]


@dataclass(frozen=True)
class Case:
    """A fixture for one rule: marked positions must be exactly where the rule fires."""

    rule: str
    behaviour: str
    text: str
    message: str = ""  # a phrase every diagnostic of the rule must contain
    files: Mapping[str, str] = field(default_factory=dict)
    options: Options = DEFAULT

    @property
    def fails(self) -> bool:
        return MARK in self.text

    @property
    def id(self) -> str:
        return f"{self.rule} {'fires' if self.fails else 'silent'}: {self.behaviour}"


SWITCH = """
    defaults: {timeout: 1m}
    triage:
      - id: cause
        manual: What is it?
        ask: {cause: {choices: [tls, dns]}, n: {choices: [1, 2]}}
    remediation:
      - id: by_cause
        switch: steps.cause.answers.cause
        cases:
          tls: [{id: renew, run: echo renew}]
        default: [{id: other, run: echo other}]
      - id: by_n
        switch: steps.cause.answers.n
        cases:
          1: [{id: one, run: echo one}]
          2: [{id: two, run: echo two}]
    """

CASES = [
    # -- RB101 duplicate-step-id -------------------------------------------------------------
    Case("RB101", "distinct step ids", runbook("""
        detection:
          - {id: a, manual: look}
          - {id: b, manual: look}
        """)),
    Case("RB101", "second step with an id already used, in another phase", runbook("""
        detection:
          - {id: a, manual: look}
        triage:
          - {id: ‸a, manual: look again}
        """), message="duplicate step id 'a'"),
    Case("RB101", "a rollback step reusing a main step's id", runbook("""
        remediation:
          - id: fix
            manual: fix it
            rollback:
              - {id: ‸fix, manual: undo}
        """)),
    Case("RB101", "a block's background helper with its own id", runbook("""
        remediation:
          - id: tunnel
            background: [{id: forward, run: sleep 60}]
            block:
              - {id: use, run: echo hi, timeout: 5s}
        """)),
    Case("RB101", "a background helper reusing a step's id, and a step reusing a helper's", runbook("""
        remediation:
          - id: tunnel
            background: [{id: ‸tunnel, run: sleep 60}, {id: forward, run: sleep 60}]
            block:
              - {id: ‸forward, run: echo hi, timeout: 5s}
        """)),
    # -- RB102 undefined-step ----------------------------------------------------------------
    Case("RB102", "reference to a step that exists", runbook("""
        detection:
          - {id: usage, manual: look}
          - {id: show, manual: "{{ steps.usage.status }}"}
        """)),
    Case("RB102", "typo in a step reference inside a run template, with a suggestion", runbook("""
        defaults: {timeout: 1m}
        detection:
          - {id: usage, run: df}
          - id: show
            run: echo {{ ‸steps.usag.stdout }}
        """), message="did you mean 'usage'?"),
    Case("RB102", "unknown step in a when expression", runbook("""
        detection:
          - {id: a, manual: look, when: ‸steps.nope.status == 'ok'}
        """)),
    Case("RB102", "unknown step in the updates message", runbook("""
        updates: {channel: status, message: "now {{ ‸steps.nope.status }}"}
        detection:
          - {id: a, manual: look}
        """)),
    Case("RB102", "unknown steps in confirm questions, in both forms", runbook("""
        detection:
          - {id: a, manual: look, confirm: "ok {{ ‸steps.nope.status }}?"}
          - id: b
            manual: look
            confirm: {message: "ok {{ ‸steps.nope.status }}?"}
          - id: c
            manual: look
            confirm:
              role: ic
              message: "ok {{ ‸steps.nope.status }}?"
        """)),
    Case("RB102", "positioned at the missing step, not at a longer id sharing its prefix", runbook("""
        detection:
          - {id: checks, manual: look}
          - {id: b, manual: "{{ steps.checks.status }} {{ ‸steps.check.status }}"}
        """)),
    Case("RB102", "reference to a step that only exists as a rollback (defined, RB103's job)",
         runbook("""
        remediation:
          - id: fix
            manual: fix
            rollback:
              - {id: undo, manual: undo}
        recovery:
          - {id: after, manual: "{{ steps.undo.status }}"}
        """)),
    # -- RB103 step-used-before-run ----------------------------------------------------------
    Case("RB103", "reference to an earlier step", runbook("""
        defaults: {timeout: 1m}
        detection:
          - {id: first, run: df}
          - {id: second, run: "echo {{ steps.first.stdout }}"}
        """)),
    Case("RB103", "reference to a later step in run", runbook("""
        defaults: {timeout: 1m}
        detection:
          - id: first
            run: echo {{ ‸steps.later.stdout }}
          - {id: later, run: df}
        """), message="used before it runs"),
    Case("RB103", "reference to a step of a later phase in when", runbook("""
        triage:
          - {id: a, manual: look, when: ‸steps.b.status == 'ok'}
        remediation:
          - {id: b, manual: fix}
        """)),
    Case("RB103", "a target whose hosts, group and channel come from steps that ran before", runbook("""
        defaults: {timeout: 1m}
        inputs: {tier: {type: string}, team: {type: string}}
        targets:
          lbs: {hosts: ["{{ steps.find_lbs.outputs.hosts }}"]}
          web: {group: "{{ inputs.tier }}-{{ steps.find_lbs.outputs.pool }}"}
        detection:
          - {id: find_lbs, run: list-lbs, outputs: {hosts: "{{ stdout.split() }}", pool: "{{ stdout }}"}}
          - {id: drain, target: lbs, run: drain}
          - {id: check, target: web, run: check}
          - {id: tell, notify: {channel: "{{ inputs.team }}-oncall", message: drained}}
        """)),
    Case("RB103", "a target whose hosts come from a step that runs after a step using it", runbook("""
        defaults: {timeout: 1m}
        targets:
          lbs: {hosts: ["{{ ‸steps.find_lbs.outputs.hosts }}"]}
        detection:
          - {id: drain, target: lbs, run: drain}
          - {id: find_lbs, run: list-lbs, outputs: {hosts: "{{ stdout.split() }}"}}
        """), message="uses the target before find_lbs runs"),
    Case("RB103", "a step referring to itself instead of using its own results", runbook("""
        defaults: {timeout: 1m}
        detection:
          - id: usage
            run: df
            expect: ‸steps.usage.stdout | int > 90
        """), message="refers to itself"),
    Case("RB103", "a rollback step may reference any step, even a later one", runbook("""
        remediation:
          - id: fix
            manual: fix
            rollback:
              - {id: undo, manual: "undo {{ steps.fix.status }} {{ steps.check.status }}"}
        recovery:
          - {id: check, manual: check}
        """)),
    Case("RB103", "runbook-level templates may reference any step", runbook("""
        updates: {channel: status, message: "{{ steps.last.status }}"}
        escalation:
          - {when: "steps.last.status == 'failed'", notify: oncall}
        recovery:
          - {id: last, manual: check}
        """)),
    Case("RB103", "a main step referring to a rollback step, which runs only after a failure",
         runbook("""
        remediation:
          - id: fix
            manual: fix
            rollback:
              - {id: undo, manual: undo}
        recovery:
          - {id: after, manual: "{{ ‸steps.undo.status }}"}
        """), message="rollback"),
    # -- RB104 undefined-target --------------------------------------------------------------
    Case("RB104", "step on a declared target", runbook("""
        targets: {db: {hosts: [db-1]}}
        defaults: {timeout: 1m, target: db}
        detection:
          - {id: a, run: df, target: db}
        """)),
    Case("RB104", "step on an undeclared target, with a suggestion", runbook("""
        targets: {db: {hosts: [db-1]}}
        defaults: {timeout: 1m}
        detection:
          - {id: a, run: df, target: ‸dbs}
        """), message="did you mean 'db'?"),
    Case("RB104", "defaults.target not declared", runbook("""
        targets: {db: {hosts: [db-1]}}
        defaults: {timeout: 1m, target: ‸web}
        """)),
    Case("RB104", "inventory group unchecked without an inventory", runbook("""
        targets: {web: {group: webservers}}
        """)),
    Case("RB104", "inventory group present in the inventory", runbook("""
        targets: {web: {group: webservers}}
        """), options=Options(inventory_groups=frozenset({"webservers"}))),
    Case("RB104", "inventory group missing from the inventory", runbook("""
        targets: {web: {group: ‸webserver}}
        """), message="did you mean 'webservers'?",
         options=Options(inventory_groups=frozenset({"webservers", "db"}))),
    # -- RB105 template-syntax ---------------------------------------------------------------
    Case("RB105", "templates and expressions that parse", runbook("""
        defaults: {timeout: 1m}
        inputs: {host: {type: string}}
        detection:
          - id: a
            run: |
              echo {{ inputs.host }}
              {% if inputs.host %}echo yes{% endif %}
            when: inputs.host != ''
        """)),
    Case("RB105", "unclosed expression in a one-line run, at its braces", runbook("""
        defaults: {timeout: 1m}
        inputs: {host: {type: string}}
        detection:
          - {id: a, run: "echo ‸{{ inputs.host }"}
        """), message="template syntax error"),
    Case("RB105", "error on the second line of a block scalar, on that source line", runbook("""
        defaults: {timeout: 1m}
        inputs: {host: {type: string}}
        detection:
          - id: a
            run: |
              echo {{ inputs.host }}
              echo ‸{{ inputs.host | }}
              echo done
        """), message="line 2 of the template"),
    Case("RB105", "a when expression that does not parse, at the expression", runbook("""
        detection:
          - {id: a, manual: look, when: ‸inputs.x ==}
        """), message="expression syntax error"),
    # -- RB106 unknown-name ------------------------------------------------------------------
    Case("RB106", "item inside a for_each step", runbook("""
        defaults: {timeout: 1m}
        detection:
          - {id: a, run: "echo {{ item }}", for_each: [x, y]}
        """)),
    Case("RB106", "item outside a for_each step, not confused with the word in plain text",
         runbook("""
        defaults: {timeout: 1m}
        detection:
          - {id: a, run: "echo item {{ ‸item }}"}
        """), message="only defined in a step with for_each"),
    Case("RB106", "item in the for_each expression itself", runbook("""
        detection:
          - {id: a, manual: look, for_each: ‸item}
        """)),
    Case("RB106", "step results in outputs, expect and until", runbook("""
        detection:
          - id: a
            run: df
            timeout: 1m
            outputs: {pct: "{{ stdout | int }}", code: "{{ exit_code }}"}
            expect: outputs.pct > 1 and status == 'ok'
            until: stdout != ''
        """)),
    Case("RB106", "step results in run and when, before the step ran", runbook("""
        defaults: {timeout: 1m}
        detection:
          - id: a
            run: echo {{ ‸stdout }}
            when: ‸exit_code == 0
        """), message="result of the step"),
    Case("RB106", "host and attempt in a run template", runbook("""
        defaults: {timeout: 1m}
        detection:
          - {id: a, run: "echo {{ host }} {{ attempt }} {{ run.id }} {{ runbook.title }}"}
        """)),
    Case("RB106", "attempt before the first try: in when, confirm and instructions", runbook("""
        defaults: {timeout: 1m}
        detection:
          - {id: a, run: "echo {{ attempt }}", when: ‸attempt < 3, confirm: "try {{ ‸attempt }}?",
             expect: attempt == 1, outputs: {n: "{{ attempt }}"}}
          - {id: b, manual: "look {{ ‸attempt }}"}
        """), message="only defined while the step tries its action"),
    Case("RB106", "a typo of a context name, with a suggestion", runbook("""
        inputs: {host: {type: string}}
        detection:
          - {id: a, manual: "{{ ‸input.host }}"}
        """), message="did you mean 'inputs'?"),
    Case("RB106", "names bound in the template and Jinja globals", runbook("""
        detection:
          - id: a
            manual: "{% for i in range(3) %}{{ i }}{% endfor %}{% set n = 1 %}{{ n }}"
        """)),
    Case("RB106", "runbook-level names in target hosts, updates and escalation", runbook("""
        inputs: {host: {type: string}}
        targets: {box: {hosts: ["{{ inputs.host }}.{{ runbook.id }}"]}}
        updates: {channel: s, message: "{{ update }} {{ steps.a.status }} {{ run.phase }}"}
        escalation:
          - {when: "incident.priority == 'P1'", notify: ic, message: "{{ escalation }}"}
        detection:
          - {id: a, manual: look}
        """)),
    Case("RB106", "step names and results in runbook-level templates", runbook("""
        targets: {box: {hosts: ["{{ ‸host }}", "{{ steps.a.stdout }}"]}}
        updates: {channel: s, message: "{{ ‸stdout }} {{ ‸item }}"}
        escalation:
          - {when: ‸exit_code != 0, notify: ic, message: "{{ ‸host }}"}
        detection:
          - {id: a, manual: look}
        """)),
    # -- RB107 braces-in-expression ----------------------------------------------------------
    Case("RB107", "bare expressions", runbook("""
        inputs: {x: {type: string}}
        detection:
          - {id: a, manual: look, when: inputs.x == 'a'}
        """)),
    Case("RB107", "braces in when, expect and until", runbook("""
        inputs: {x: {type: string}}
        detection:
          - id: a
            run: df
            timeout: 1m
            when: ‸"{{ inputs.x == 'a' }}"
            expect: ‸"{{ stdout }}"
            until: ‸"{{ stdout }} == 'ok'"
        """), message="bare expression"),
    # -- RB108 destructive-unguarded ---------------------------------------------------------
    Case("RB108", "destructive step with a confirmation", runbook("""
        defaults: {timeout: 1m}
        remediation:
          - {id: wipe, run: rm -rf /tmp/x, destructive: true, confirm: Wipe?}
        """)),
    Case("RB108", "destructive step with a rollback", runbook("""
        defaults: {timeout: 1m}
        remediation:
          - id: stop
            run: systemctl stop x
            destructive: true
            rollback: [{id: start, run: systemctl start x}]
        """)),
    Case("RB108", "destructive step with neither, or with confirm: false", runbook("""
        defaults: {timeout: 1m}
        remediation:
          - id: wipe
            run: rm -rf /tmp/x
            ‸destructive: true
          - {id: wipe2, run: rm -rf /tmp/y, ‸destructive: true, confirm: false}
        """), message="neither confirm nor rollback"),
    # -- RB109 no-timeout --------------------------------------------------------------------
    Case("RB109", "run step with its own timeout; other kinds need none", runbook("""
        detection:
          - {id: a, run: df, timeout: 10s}
          - {id: b, manual: look}
          - {id: c, http: {url: "https://x"}}
        """)),
    Case("RB109", "defaults.timeout covers every run step", runbook("""
        defaults: {timeout: 1m}
        detection:
          - {id: a, run: df}
        """)),
    Case("RB109", "a top-level run timeout covers every run step", runbook("""
        timeout: 30m
        detection:
          - {id: a, run: df}
        """)),
    Case("RB109", "run steps without any timeout, a rollback too though its step has one", runbook("""
        detection:
          - {id: a, ‸run: df}
        remediation:
          - id: fix
            run: do-fix
            timeout: 1m
            rollback:
              - {id: undo, ‸run: undo-fix}
        """), message="has no timeout"),
    # -- RB110 until-without-timeout ---------------------------------------------------------
    Case("RB110", "until with its own timeout", runbook("""
        recovery:
          - {id: a, run: df, until: stdout == 'ok', every: 5s, timeout: 5m}
        """)),
    Case("RB110", "until without a step timeout, even with defaults.timeout", runbook("""
        defaults: {timeout: 1m}
        recovery:
          - id: a
            run: df
            ‸until: stdout == 'ok'
        """), message="polls with until"),
    # -- RB111 missing-detection -------------------------------------------------------------
    Case("RB111", "a detection phase", runbook("""
        detection:
          - {id: a, manual: look}
        """)),
    Case("RB111", "no detection phase, reported at the runbook id", runbook(f"""
        kind: runbook
        version: 1
        {MARK}id: demo
        title: Demo
        triage:
          - {{id: a, manual: look}}
        """)),
    Case("RB111", "an empty detection phase confirms nothing either", runbook(f"""
        kind: runbook
        version: 1
        {MARK}id: demo
        title: Demo
        detection: []
        """)),
    # -- RB112 missing-recovery-check --------------------------------------------------------
    Case("RB112", "recovery with an expect", runbook("""
        recovery:
          - {id: a, run: df, timeout: 1m, expect: stdout == 'ok'}
        """)),
    Case("RB112", "recovery with an until", runbook("""
        recovery:
          - {id: a, run: df, until: stdout == 'ok', timeout: 5m}
        """)),
    Case("RB112", "no recovery phase, reported at the runbook id", runbook(f"""
        kind: runbook
        version: 1
        {MARK}id: demo
        title: Demo
        """), message="no recovery phase"),
    Case("RB112", "a recovery phase that checks nothing, at its key", runbook("""
        ‸recovery:
          - {id: a, manual: look}
        """), message="checks anything"),
    # -- RB113 secret-in-message -------------------------------------------------------------
    Case("RB113", "secret in a command, plain input in a message", runbook("""
        defaults: {timeout: 1m}
        inputs:
          token: {type: string, secret: true}
          host: {type: string}
        detection:
          - {id: a, run: "login {{ inputs.token }}"}
          - {id: b, notify: {channel: c, message: "{{ inputs.host }}"}}
        """)),
    Case("RB113", "secret in notify message and title, updates and escalation messages", runbook("""
        inputs:
          token: {type: string, secret: true}
        updates: {channel: s, message: "t={{ ‸inputs.token }}"}
        escalation:
          - {after: 5m, notify: ic, message: "{{ ‸inputs.token }}"}
        detection:
          - id: a
            notify: {channel: c, title: "{{ ‸inputs.token }}", message: "x {{ ‸inputs.token }}"}
        """), message="secret input 'token'"),
    # -- RB114 unused-input ------------------------------------------------------------------
    Case("RB114", "unused input with a default, used input without one", runbook("""
        inputs:
          mount: {type: string, default: /var}
          host: {type: string}
        detection:
          - {id: a, manual: "{{ inputs.host }}"}
        """)),
    Case("RB114", "input used only in a template with a syntax error (RB105 reports that)",
         runbook("""
        inputs:
          host: {type: string}
        detection:
          - {id: a, manual: "{{ inputs.host }"}
        """)),
    Case("RB114", "input used only inside braces in a when (RB107 reports that)", runbook("""
        inputs:
          host: {type: string}
        detection:
          - {id: a, manual: look, when: "{{ inputs.host }}"}
        """)),
    Case("RB114", "required input nobody uses, at its key", runbook("""
        inputs:
          ‸host: {type: string}
          mount: {type: string, default: /var}
        """), message="never used"),
    # -- RB115 undefined-input ---------------------------------------------------------------
    Case("RB115", "declared inputs, by attribute and by subscript", runbook("""
        inputs: {host: {type: string}}
        detection:
          - {id: a, manual: "{{ inputs.host }} {{ inputs['host'] }}"}
        """)),
    Case("RB115", "an undeclared input, with a suggestion, beside a longer declared name", runbook("""
        inputs: {hostname: {type: string}}
        detection:
          - {id: a, manual: "{{ inputs.hostname }} {{ ‸inputs.host }}"}
        """), message="did you mean 'hostname'?"),
    Case("RB115", "an undeclared input in a for_each list item", runbook("""
        detection:
          - {id: a, manual: "{{ item }}", for_each: [a, "{{ ‸inputs.nope }}"]}
        """)),
    # -- RB116 undefined-var -----------------------------------------------------------------
    Case("RB116", "vars given initially, by a set step, or by an ask with sets", runbook("""
        vars: {count: 0}
        triage:
          - {id: s, set: {mode: fast, incident.impact: high}}
          - id: q
            manual: Which cause?
            ask:
              cause: {choices: [logs, data], sets: vars.cause}
          - {id: use, manual: "{{ vars.count }} {{ vars.mode }} {{ vars.cause }}"}
        """)),
    Case("RB116", "a var nobody assigns, with a suggestion", runbook("""
        vars: {count: 0}
        detection:
          - {id: a, manual: "{{ ‸vars.cont }}"}
        """), message="did you mean 'count'?"),
    # -- RB117 undeclared-role ---------------------------------------------------------------
    Case("RB117", "roles are not checked when none are declared", runbook("""
        defaults: {role: anyone}
        detection:
          - {id: a, manual: look, role: whoever, confirm: {role: boss}}
        """)),
    Case("RB117", "declared roles on steps, confirmations and defaults", runbook("""
        roles: [incident_commander, responder]
        defaults: {role: responder}
        detection:
          - {id: a, manual: look, role: responder, confirm: {role: incident_commander}}
        """)),
    Case("RB117", "undeclared roles on a step, a confirmation and defaults", runbook("""
        roles: [incident_commander, responder]
        defaults: {role: ‸responders}
        detection:
          - {id: a, manual: look, role: ‸respnder, confirm: {role: ‸commander}}
        """), message="is not declared in roles"),
    # -- RB118 unknown-filter ----------------------------------------------------------------
    Case("RB118", "filters and tests of the engine and of Jinja", runbook("""
        detection:
          - id: a
            run: df
            timeout: 1m
            outputs:
              pct: "{{ stdout | trim | regex_search('[0-9]+') | int }}"
              up: "{{ stdout | upper | from_json | to_json | urlencode }}"
            expect: stdout is search('ok') and stdout is not match('x') and stdout is string
        """)),
    Case("RB118", "an unknown filter and an unknown test, with suggestions", runbook("""
        detection:
          - id: a
            run: df
            timeout: 1m
            outputs: {pct: "{{ stdout | ‸intt }}"}
            expect: stdout is ‸serch('ok')
        """), message="did you mean"),
    Case("RB118", "positioned at the filter, not at the same word earlier in the text", runbook("""
        inputs: {f: {type: string}}
        detection:
          - {id: a, manual: "sorted {{ inputs.f | ‸sorted }}"}
        """), message="unknown filter 'sorted'"),
    # -- RB119 missing-include ---------------------------------------------------------------
    Case("RB119", "an include whose file exists, relative to the runbook", runbook("""
        remediation:
          - {id: a, include: sub/other.yaml}
          - {id: b, include: {runbook: sub/other.yaml, inputs: {x: 1}}}
        """), files={"sub/other.yaml": HEADER}),
    Case("RB119", "includes of a missing file, in both forms", runbook("""
        remediation:
          - {id: a, include: ‸other.yaml}
          - {id: b, include: {runbook: ‸sub/gone.yaml}}
        """), message="does not exist"),
    # -- RB120 private-attribute -----------------------------------------------------------------
    Case("RB120", "public attributes and keys, even ones with underscores inside", runbook("""
        inputs: {disk_path: {type: string}}
        detection:
          - {id: a, manual: "{{ inputs.disk_path }} {{ runbook['id'] }}", expect: "inputs.disk_path != ''"}
        """)),
    Case("RB120", "sandbox escapes in a template, an expression and a subscript", runbook("""
        inputs: {x: {type: string}}
        detection:
          - {id: a, manual: "{{ ''.‸__class__.‸__mro__ }}", expect: "inputs.x.‸__len__() > 0"}
          - {id: b, manual: "{{ inputs['‸_secret'] }}"}
        """), message="private attribute"),
    # -- RB140 template-in-shell-quotes ----------------------------------------------------------
    Case("RB140", "values left unquoted, numbers and raw text in quotes, env vars in quotes", runbook("""
        inputs: {x: {type: string}, port: {type: integer}}
        detection:
          - id: a
            run: |
              echo {{ inputs.x }} "{{ inputs.x | int }}" '{{ inputs.x | raw }}' 'sport = :{{ inputs.port }}'
              sh -c 'echo "$X"'
            env: {X: "{{ inputs.x }}"}
        """)),
    Case("RB140", "inside quotes, a heredoc, a comment and a nested shell", runbook("""
        inputs: {x: {type: string}}
        detection:
          - id: a
            run: |
              echo "v=‸{{ inputs.x }}" 'w=‸{{ inputs.x }}'
              cat <<EOF
              ‸{{ inputs.x }}
              EOF
              sh -c "echo ‸{{ inputs.x }}"  # ‸{{ inputs.x }}
        """), message="{{ inputs.x }}"),
    # -- RB160..RB164 Kubernetes targets --------------------------------------------------------
    Case("RB160", "a selector, or a name", runbook("""
        targets:
          web: {pods: {context: prod, namespace: shop, selector: app=web}}
          one: {nodes: {context: prod, name: node-1, image: busybox}}
        """)),
    Case("RB160", "both a selector and a name", runbook("""
        targets:
          web: {pods: {context: prod, namespace: shop, selector: app=web, ‸name: web-1}}
        """), message="gives both a selector and a name"),
    Case("RB161", "a namespace named; nodes have none", runbook("""
        targets:
          web: {pods: {context: prod, namespace: "{{ inputs.ns }}", selector: app=web}}
          disk: {nodes: {context: prod, selector: pool=a, image: busybox}}
        """)),
    Case("RB161", "pods without a namespace", runbook("""
        targets:
          web: {‸pods: {context: prod, selector: app=web}}
        """), message="names no namespace"),
    Case("RB162", "a context named", runbook("""
        targets:
          web: {pods: {context: prod, namespace: shop, name: web-1}}
        """)),
    Case("RB162", "pods and nodes without a context", runbook("""
        targets:
          web: {‸pods: {namespace: shop, name: web-1}}
          disk: {‸nodes: {name: n1, image: busybox}}
        """), message="names no context"),
    Case("RB163", "an SSH target and a pod target side by side", runbook("""
        targets:
          box: {hosts: [db1], user: root}
          web: {pods: {context: prod, namespace: shop, selector: app=web}}
        """)),
    Case("RB163", "SSH settings and nodes on a pod target", runbook("""
        targets:
          web:
            pods: {context: prod, namespace: shop, selector: app=web}
            ‸nodes: {context: prod, name: n1, image: busybox}
            ‸user: root
        """), message="target 'web'"),
    Case("RB164", "names Kubernetes accepts, and templates checked once rendered", runbook("""
        targets:
          web: {pods: {context: prod, namespace: shop-1, name: web-7d9f.abc, container: app}}
          one: {pods: {context: prod, namespace: "{{ inputs.ns }}", name: "{{ inputs.pod }}"}}
        """)),
    Case("RB164", "an upper-case pod name, a namespace with a dot, a selector with a newline", runbook("""
        targets:
          web: {pods: {context: prod, namespace: ‸shop.eu, name: ‸Web_1}}
          two: {pods: {context: prod, namespace: shop, selector: ‸"app=web\\nx"}}
        """)),
    # -- RB141-RB143 quoting traps ----------------------------------------------------------------
    Case("RB141", "backslashes doubled in template strings", runbook("""
        inputs: {x: {type: string}}
        detection:
          - id: a
            run: |
              echo {{ inputs.x | regex_replace('(\\\\d+)', '\\\\1') }} {{ inputs.x | regex_replace('(a)', '\\\\g<1>') }}
            when: inputs.x | regex_search('\\\\d')
        """)),
    Case("RB141", "a backreference that Jinja reads as chr(1), in a command and an expression", runbook("""
        inputs: {x: {type: string}}
        detection:
          - id: a
            run: |
              echo {{ inputs.x | regex_replace('(\\\\d+)', ‸'\\1 items') }}
            outputs: {n: "{{ stdout | regex_replace('(a)(b)', ‸'\\\\2') }}"}
        """), message="not a backreference"),
    Case("RB142", "one word either way, {% if %} text, and raw", runbook("""
        inputs: {f: {type: boolean, default: false}}
        detection:
          - id: a
            run: >-
              ls {{ 'json' if inputs.f else 'yaml' }} {% if inputs.f %}-a -l{% endif %}
              {{ '-a -l' if inputs.f else '' | raw }}
        """)),
    Case("RB142", "an inline if without else, with an empty branch, with several words", runbook("""
        inputs: {f: {type: boolean, default: false}}
        detection:
          - id: a
            run: "ls ‸{{ '--force' if inputs.f }} ‸{{ '-a -l' if inputs.f else '-1' }} ‸{{ '' if inputs.f else '-q' }}"
        """), message="quoted into one argument"),
    Case("RB143", "a home part written in the command, and a raw value", runbook("""
        inputs: {rel: {type: string, default: backup}, dir: {type: string, default: ~/backup}}
        detection:
          - {id: a, run: "cp x ~/{{ inputs.rel }} \"$HOME\"/{{ inputs.rel }} {{ inputs.dir | raw }}"}
        """)),
    Case("RB143", "a literal, an input default and a var holding ~/", runbook("""
        inputs: {dir: {type: string, default: ~/backup}}
        vars: {home: ~ops/x}
        detection:
          - {id: a, run: "cp x ‸{{ inputs.dir }} ‸{{ '~/y' }} ‸{{ vars.home }}"}
        """), message="is not your home directory"),
    # -- RB171 unsilence-not-a-silence ----------------------------------------------------------
    Case("RB171", "the silence step by id, or a silence id from a template", runbook("""
        connections: {am: {type: alertmanager, url: "http://127.0.0.1:9093"}}
        remediation:
          - id: quiet
            silence: {matchers: {alertname: TargetDown}, duration: 1h, comment: restarting}
            rollback: [{id: loud, unsilence: quiet}]
        recovery:
          - {id: loud_again, unsilence: "{{ steps.quiet.silence_id }}"}
        """)),
    Case("RB171", "a step that is not a silence, and one that does not exist", runbook("""
        connections: {am: {type: alertmanager, url: "http://127.0.0.1:9093"}}
        remediation:
          - {id: check, alert: TargetDown}
          - id: quiet
            silence: {matchers: [alertname="TargetDown"], duration: 1h, comment: restarting}
          - {id: a, unsilence: ‸check}
          - {id: b, unsilence: {silence: ‸quite}}
        """), message="expires the silence of"),
    # -- RB170 unknown-connection ---------------------------------------------------------------
    Case("RB170", "the only prometheus by default, and one by name", runbook("""
        connections:
          prom: {type: prometheus, url: "http://127.0.0.1:9090"}
        detection:
          - {id: a, promql: up}
          - {id: b, promql: {query: up, prometheus: prom}}
        """)),
    Case("RB170", "no connection, two to choose from, a name that is not defined", runbook("""
        detection:
          - {id: a, promql: ‸up}
        """), message="no prometheus connection"),
    Case("RB170", "two to choose from, and a typo", runbook("""
        connections:
          prom: {type: prometheus, url: "http://127.0.0.1:9090"}
          prom_eu: {type: prometheus, url: "http://127.0.0.1:9091"}
        detection:
          - {id: a, promql: ‸up}
          - {id: b, promql: {query: up, prometheus: ‸prom_e}}
        """), message="prom"),
    Case("RB144", "JMESPath queries that parse, and one built at run time", runbook("""
        inputs: {q: {type: string}}
        detection:
          - id: a
            run: kubectl get pods -o json
            outputs:
              up: "{{ json | json_query(\"items[?status.phase=='Running'].metadata.name\") }}"
              top: "{{ json | json_query('max_by(items, &status.restarts).metadata.name') }}"
              any: "{{ json | json_query(inputs.q) }}"
        """)),
    Case("RB144", "a query that does not parse", runbook("""
        detection:
          - id: a
            run: kubectl get pods -o json
            outputs: {up: "{{ json | json_query(‸'items[?status.phase==') }}"}
        """), message="is not a JMESPath query"),
    # -- RB130 include-outside-tree -------------------------------------------------------------
    Case("RB130", "includes in the runbook's directory and below", runbook("""
        remediation:
          - {id: a, include: sub/other.yaml}
          - {id: b, include: ./sub/../sub/other.yaml}
        """), files={"sub/other.yaml": HEADER}),
    Case("RB130", "an absolute path and a path up out of the tree", runbook("""
        remediation:
          - {id: a, include: ‸/etc/passwd}
          - {id: b, include: {runbook: ‸../elsewhere.yaml}}
        """), message="leads outside the runbook's tree"),
    # -- RB131 include-cycle --------------------------------------------------------------------
    Case("RB131", "a diamond of includes is no cycle", runbook("""
        remediation:
          - {id: a, include: b.yaml}
          - {id: b, include: c.yaml}
        """), files={"b.yaml": HEADER + "detection:\n  - {id: x, include: d.yaml}\n",
                     "c.yaml": HEADER + "detection:\n  - {id: x, include: d.yaml}\n", "d.yaml": HEADER}),
    Case("RB131", "a self-include and a cycle through another runbook", runbook("""
        remediation:
          - {id: a, include: ‸runbook.yaml}
          - {id: b, include: ‸b.yaml}
        """), files={"b.yaml": HEADER + "detection:\n  - {id: x, include: ./runbook.yaml}\n"},
         message="include '"),
    # -- RB132 include-invalid ------------------------------------------------------------------
    Case("RB132", "an include of a valid runbook", runbook("""
        remediation:
          - {id: a, include: ok.yaml}
        """), files={"ok.yaml": HEADER}),
    Case("RB132", "an include of a scenario, of an invalid runbook and of broken YAML", runbook("""
        remediation:
          - {id: a, include: ‸scenario.yaml}
          - {id: b, include: ‸bad.yaml}
          - {id: c, include: ‸broken.yaml}
        """), files={"scenario.yaml": "kind: scenario\nversion: 1\nid: s\ntitle: S\nrunbook: runbook.yaml\n",
                     "bad.yaml": HEADER + "detection: 3\n", "broken.yaml": "kind: runbook\ntitle: [\n"},
         message="included file"),
    # -- RB133 include-inputs -------------------------------------------------------------------
    Case("RB133", "required inputs given; optional and environment inputs left out", runbook("""
        remediation:
          - {id: a, include: {runbook: sub.yaml, inputs: {host: "{{ run.id }}"}}}
        """), files={"sub.yaml": HEADER + "inputs:\n  host: {type: string}\n  mount: {type: string, default: /}\n"
                                          "  token: {type: string, env: TOKEN}\n"}),
    Case("RB133", "an unknown input and a required input not given", runbook("""
        remediation:
          - {id: a, include: {runbook: ‸sub.yaml, inputs: {‸hots: db-1}}}
        """), files={"sub.yaml": HEADER + "inputs:\n  host: {type: string}\n"}, message="included runbook 'demo'"),
    # -- RB134 nul-byte -------------------------------------------------------------------------
    Case("RB134", "a NUL escape in text nobody executes", runbook("""
        detection:
          - {id: a, manual: "press \\0 then Enter"}
        """)),
    Case("RB134", "a NUL byte in a command, an environment value and a URL", runbook("""
        detection:
          - {id: a, run: "echo a‸\\0b", env: {X: "1‸\\0"}, timeout: 5s}
          - {id: b, http: {url: "http://127.0.0.1/‸\\0"}}
        """), message="NUL byte"),
    # -- RB135 duration-too-long ----------------------------------------------------------------
    Case("RB135", "durations up to 30 days", runbook("""
        timeout: 30d
        detection:
          - {id: a, run: "true", timeout: 720h, retries: {attempts: 2, delay: 1d}}
        """)),
    Case("RB135", "a 400-digit timeout, a long wait and a long escalation delay", runbook(f"""
        escalation:
          - {{after: ‸31d, notify: oncall}}
        detection:
          - {{id: a, run: "true", timeout: ‸{"9" * 400}s}}
          - {{id: b, wait: ‸1000h}}
        """), message="longer than the 30d maximum"),
    # -- RB136 input-pattern --------------------------------------------------------------------
    Case("RB136", "a valid pattern", runbook("""
        inputs: {mount: {type: string, pattern: "/[A-Za-z0-9._/-]*", default: /var}}
        """)),
    Case("RB136", "patterns that are not regular expressions, at the faulty character", runbook("""
        inputs:
          a: {type: string, pattern: "x‸[a-"}
          b: {type: string, pattern: "ab(?P<‸n"}
        """), message="is not a valid regular expression"),
    Case("RB136", "patterns `re` refuses with OverflowError or RecursionError, at the pattern", runbook("""
        inputs:
          a: {type: string, pattern: ‸"a{99999999999}", default: a}
          b: {type: string, pattern: ‸"%s"}
        """ % ("(" * 2000 + "x" + ")" * 2000)), message="is not a valid regular expression"),
    # -- RB137 input-default --------------------------------------------------------------------
    Case("RB137", "defaults within their constraints, a null default, an unchecked pattern", runbook("""
        inputs:
          n: {type: integer, default: 50, minimum: 1, maximum: 100}
          c: {type: string, default: b, choices: [a, b]}
          p: {type: string, default: "42", pattern: "[0-9]+"}
          o: {type: string, default: null, choices: [a]}
          bad: {type: string, default: x, pattern: "[x-"}
          l: {type: list, default: [a, b]}
        """)),
    Case("RB137", "defaults out of range, not a choice, not matching, of the wrong type", runbook("""
        inputs:
          n: {type: integer, default: ‸500, maximum: 100}
          m: {type: number, default: ‸-1, minimum: 0}
          c: {type: string, default: ‸zz, choices: [a, b]}
          p: {type: string, default: ‸"abc", pattern: "[0-9]+"}
          t: {type: integer, default: ‸ten}
          b: {type: boolean, default: ‸"yes"}
        """), message="the default of input"),
    # -- RB150 input-source ---------------------------------------------------------------------
    Case("RB150", "one source each: env and a file, a command alone", runbook("""
        inputs:
          key: {type: string, secret: true, env: PD_KEY, file: /run/secrets/pd}
          token: {type: string, secret: true, command: "vault kv get -field=token secret/ops"}
        """)),
    Case("RB150", "both a file and a command", runbook("""
        inputs:
          key: {type: string, secret: true, file: /run/secrets/pd, command: ‸"op read op://ops/pd/key"}
        """), message="names both a `file` and a `command`"),
    # -- RB138 answer-not-a-choice --------------------------------------------------------------
    Case("RB138", "answers compared with their choices; other fields and refs", runbook("""
        defaults: {timeout: 1m}
        triage:
          - id: assess
            manual: What is it?
            ask:
              cause: {choices: [oom, crashed]}
              note: {type: text}
        remediation:
          - {id: a, when: "steps.assess.answers.cause == 'oom'", run: "true"}
          - {id: b, when: "steps.assess.answers.cause in ['oom', 'crashed']", run: "true"}
          - {id: c, when: "steps.assess.answers.note == 'anything'", run: "true"}
          - {id: d, when: "'crashed' != steps.assess.answers.cause", run: "true"}
        """)),
    Case("RB138", "==, !=, in and not in with values the question never offers", runbook("""
        defaults: {timeout: 1m}
        triage:
          - id: assess
            manual: What is it?
            ask:
              cause: {choices: [oom, crashed, config]}
              n: {type: choice, choices: [1, 2]}
        remediation:
          - {id: a, when: "steps.assess.answers.cause == ‸'crashd'", run: "true"}
          - {id: b, when: "steps.assess.answers['cause'] not in ['oom', ‸'disk']", run: "true"}
          - {id: c, run: "echo {{ 'x' if steps.assess.answers.cause != ‸'OOM' else 'y' }}"}
          - {id: d, when: "steps.assess.answers.n == ‸3 or ‸'crash' == steps.assess.answers.cause", run: "true"}
        """), message="which is not one of its choices"),
    # -- RB121 unknown-channel -------------------------------------------------------------------
    Case("RB121", "channels unchecked without a channels config", runbook("""
        updates: {channel: anything}
        remediation:
          - {id: tell, notify: {channel: whatever, message: hi}}
        """)),
    Case("RB121", "every channel named in the channels config", runbook("""
        escalation:
          - {on_failure: true, notify: oncall}
        updates: {channel: status}
        remediation:
          - id: tell
            notify: {channel: oncall, message: hi}
            rollback: [{id: undo, notify: {channel: status, message: x}}]
        """), options=Options(channels=KnownChannels("channels.yaml", frozenset({"oncall", "status"})))),
    Case("RB121", "a misspelt channel in a step, a rollback, an escalation and the updates", runbook("""
        escalation:
          - {on_failure: true, notify: ‸oncal}
        updates: {channel: ‸stauts}
        remediation:
          - id: tell
            notify: {channel: ‸pager, message: hi}
            rollback: [{id: undo, notify: {channel: ‸oncll, message: x}}]
        """), message="is not in channels.yaml",
         options=Options(channels=KnownChannels("channels.yaml", frozenset({"oncall", "status"})))),
    # -- RB180..RB183: switch and end ---------------------------------------------------------
    Case("RB180", "cases among the choices, numbers compared as numbers", runbook(SWITCH)),
    Case("RB180", "a case its question never offers, with the nearest choice", runbook(SWITCH.replace(
        "      tls: [", "      ‸tsl: [")), message="(did you mean 'tls'?)"),
    Case("RB180", "a switch on an input with choices", runbook("""
        inputs: {mode: {type: string, choices: [drain, restart], default: drain}}
        remediation:
          - id: by_mode
            switch: inputs.mode
            cases:
              drain: [{id: d, manual: drain}]
              ‸restrat: [{id: r, manual: restart}]
        """), message="(did you mean 'restart'?)"),
    Case("RB181", "distinct cases", runbook(SWITCH)),
    Case("RB181", "a case for a value an earlier case takes", runbook(SWITCH.replace(
        "      2: [{id: two", '      ‸"1": [{id: two')), message="case 1 before it takes the same value"),
    Case("RB182", "a default covers the choices without a case", runbook(SWITCH)),
    Case("RB182", "a choice without a case and no default", runbook(SWITCH.replace(
        "default: [{id: other, run: echo other}]", "").replace(
        "switch: steps.cause.answers.cause", "switch: ‸steps.cause.answers.cause")), message="no case for 'dns'"),
    Case("RB183", "an end with `when` lets the next step run", runbook("""
        remediation:
          - {id: stop, when: inputs.x, end: {outcome: escalated, reason: handed over}}
          - {id: go_on, manual: go on}
        inputs: {x: {type: boolean, default: false}}
        """)),
    Case("RB183", "a step after an unconditional end, in a case", runbook(SWITCH.replace(
        "      tls: [{id: renew, run: echo renew}]",
        "      tls: [{id: bye, end: {outcome: resolved, reason: done}}, {id: ‸renew, run: echo renew}]")),
         message="step 'bye' before it always ends the run"),
    Case("RB184", "parallel on a block with for_each", runbook("""
        remediation:
          - id: each
            for_each: [a, b]
            parallel: 2
            block: [{id: one, manual: "do {{ item }}"}]
        """)),
    Case("RB184", "serial on a block without for_each", runbook("""
        remediation:
          - id: once
            ‸serial: 2
            block: [{id: one, manual: do it}]
        """), message="has no effect on block 'once'"),
    Case("RB111", "a library runbook has no detection of its own", runbook("""
        library: true
        remediation:
          - {id: fix, manual: fix}
        """)),
    Case("RB112", "a library runbook checks no recovery of its own", runbook("""
        library: true
        remediation:
          - {id: fix, manual: fix}
        """)),
    Case("RB112", "a recovery check inside a block counts", runbook("""
        recovery:
          - id: verify
            block:
              - {id: look, manual: look, expect: "answers.ok", ask: {ok: {type: boolean}}}
        """)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_rule_fires_exactly_at_the_marked_positions(case: Case, tmp_path: Path) -> None:
    """Each fixture: the rule fires at every mark, nowhere else, with its severity and message."""
    text, marks = unmark(case.text)
    diags = lint(tmp_path, text, files=case.files, options=case.options)
    assert positions(diags, case.rule) == sorted(marks), [str(d) for d in diags]
    for diag in of(diags, case.rule):
        assert diag.severity is SEVERITY[case.rule]
        assert case.message in diag.message


# -- meta: every rule is tested and explained --------------------------------------------------


def test_every_runbook_rule_has_a_failing_and_a_passing_fixture() -> None:
    """A new runbook rule without fixtures fails the suite."""
    runbook_rules = {r.id for r in RULES.values() if r.kind == "runbook"}
    assert runbook_rules <= {c.rule for c in CASES if c.fails}
    assert runbook_rules <= {c.rule for c in CASES if not c.fails}


def test_every_rule_has_a_pinned_severity() -> None:
    """The severity table covers exactly the registered rules (scenario rules included)."""
    assert set(SEVERITY) == set(RULES)
    assert {r.id: r.severity for r in RULES.values()} == SEVERITY


def test_the_families_a_run_does_not_load_hold_warnings_only() -> None:
    # A run drops warnings, so it never imports these families: an error rule there would
    # go unchecked before a run.
    from engine.language.lint import WARNING_FAMILIES

    modules = {f"engine.language.{name}" for name in WARNING_FAMILIES}
    theirs = [r for r in RULES.values() if r.check.__module__ in modules]
    assert {r.check.__module__ for r in theirs} == modules
    assert all(r.severity is WARNING for r in theirs), [r.id for r in theirs if r.severity is not WARNING]


def test_every_rule_has_a_one_line_rationale_and_a_name() -> None:
    """`runbook rules` prints a non-empty, single-line rationale and a kebab-case name for each."""
    for rule in describe_rules():
        assert rule["rationale"].strip() and "\n" not in rule["rationale"], rule["id"]
        assert rule["name"] and rule["name"] == rule["name"].lower() and " " not in rule["name"]
        assert rule["applies_to"] in ("runbook", "scenario", "inventory")


def test_fixture_marks_are_positions_in_the_written_file() -> None:
    """The `‸` helper reports 1-based line and column of the character after each mark."""
    assert unmark("ab\nc‸d‸e") == ("ab\ncde", [(2, 2), (2, 3)])


# -- the cases from the design, with their positions spelled out -------------------------------


def test_reference_inside_a_template_is_positioned_at_the_reference(tmp_path: Path) -> None:
    """`steps.later` inside `run: echo {{ steps.later.stdout }}` is reported at line 8, column 18."""
    text = runbook("""
        defaults: {timeout: 1m}
        detection:
          - id: first
            run: echo {{ steps.later.stdout }}
          - {id: later, run: df}
        """)
    [diag] = of(lint(tmp_path, text), "RB103")
    assert (diag.line, diag.column, diag.severity) == (8, 18, ERROR)


def test_block_scalar_syntax_error_is_on_the_source_line_of_the_error(tmp_path: Path) -> None:
    """In `run: |`, an error on template line 3 is reported on file line 11, at its `{{`."""
    text = runbook("""
        defaults: {timeout: 1m}
        detection:
          - id: a
            run: |
              echo one
              echo two
              echo {{ inputs.host
        """)
    [diag] = of(lint(tmp_path, text), "RB105")
    assert (diag.line, diag.column) == (11, 12)
    assert "line 3 of the template" in diag.message


@pytest.mark.parametrize("indicator", [">", ""])
def test_reference_in_a_folded_scalar_is_on_its_source_line(indicator: str, tmp_path: Path,
                                                             ) -> None:
    """In `run: >` (and a plain scalar over two lines) the reference on line 2 is found there."""
    text = runbook(f"""
        defaults: {{timeout: 1m}}
        detection:
          - id: a
            run: {indicator}
              echo one
              echo {{{{ steps.nope.stdout }}}}
        """)
    assert positions(lint(tmp_path, text), "RB102") == [(10, 15)]


# -- suppression comments ----------------------------------------------------------------------

UNTIMED = """
    detection:
      - id: a
        run: df{suppress_a}
      - id: b
        run: df
    """


def test_ignore_with_a_rule_silences_that_rule_on_that_line_only(tmp_path: Path) -> None:
    """`# runbook: ignore[RB109]` drops RB109 on its line; the same problem elsewhere stays."""
    text = runbook(UNTIMED.format(suppress_a="  # runbook: ignore[RB109]"))
    assert positions(lint(tmp_path, text), "RB109") == [(9, 5)]


def test_ignore_with_another_rule_keeps_the_diagnostic(tmp_path: Path) -> None:
    """`# runbook: ignore[RB101, RB110]` does not silence RB109 on the same line."""
    text = runbook(UNTIMED.format(suppress_a="  # runbook: ignore[RB101, RB110]"))
    assert positions(lint(tmp_path, text), "RB109") == [(7, 5), (9, 5)]


def test_ignore_without_a_list_silences_every_rule_on_the_line(tmp_path: Path) -> None:
    """A bare `# runbook: ignore` drops all diagnostics on its line, errors included."""
    text = runbook("""
        defaults: {timeout: 1m}
        detection:
          - {id: a, run: "echo {{ steps.nope.stdout }} {{ stdout }}"}  # runbook: ignore
          - {id: b, run: "echo {{ steps.nope.stdout }}"}
        """)
    diags = lint(tmp_path, text)
    assert [(d.line, d.rule) for d in diags if d.line == 7] == []
    assert positions(diags, "RB102") == [(8, 27)]


def test_ignore_lists_may_hold_several_rules(tmp_path: Path) -> None:
    """`ignore[RB109,RB110]` silences both rules on the line."""
    text = runbook("""
        recovery:
          - {id: a, run: df, until: "stdout == 'ok'"}  # runbook: ignore[RB109,RB110]
        """)
    diags = lint(tmp_path, text)
    assert of(diags, "RB109") == of(diags, "RB110") == []


# -- files the schema rejects are still linted ---------------------------------------------------


def test_schema_invalid_file_is_still_linted(tmp_path: Path) -> None:
    """A `timout` typo (schema) and a reference to an undefined step (lint) are both reported."""
    text = runbook("""
        detection:
          - id: a
            run: echo {{ steps.nope.stdout }}
            timout: 5s
        """)
    diags = lint(tmp_path, text)
    assert [(d.line, d.column, d.rule) for d in diags if d.rule in ("RB010", "RB102")] == [
        (8, 5, "RB010"), (7, 18, "RB102"),
    ]
    assert positions(diags, "RB109") == [(7, 5)]  # the misspelt timeout does not count


def test_step_with_an_invalid_field_keeps_its_id_for_references(tmp_path: Path) -> None:
    """A step cut for a schema error does not make later references to it 'undefined'."""
    text = runbook("""
        defaults: {timeout: 1m}
        detection:
          - {id: a, run: df, retries: many}
          - {id: b, run: "echo {{ steps.a.stdout }}"}
        """)
    diags = lint(tmp_path, text)
    assert of(diags, "RB013") or of(diags, "RB012")
    assert of(diags, "RB102") == []


def test_step_with_two_kinds_keeps_its_id_for_references(tmp_path: Path) -> None:
    """A step with both `run` and `manual` (RB014) is still a step others may reference."""
    text = runbook("""
        defaults: {timeout: 1m}
        detection:
          - {id: a, run: df, manual: look}
          - {id: b, run: "echo {{ steps.a.stdout }}"}
        """)
    diags = lint(tmp_path, text)
    assert positions(diags, "RB014") == [(7, 5)]
    assert of(diags, "RB102") == []


def test_a_confirm_question_is_found_at_its_own_data_path(tmp_path: Path) -> None:
    """`confirm: text` holds the question at .../confirm, `confirm: {message: text}` at
    .../confirm/message: the path tools read (JSON, SARIF) names where the string is."""
    text = runbook("""
        detection:
          - {id: a, manual: look, confirm: "ok {{ steps.nope.status }}?"}
          - {id: b, manual: look, confirm: {message: "ok {{ steps.nope.status }}?"}}
        """)
    paths = [d.path for d in of(lint(tmp_path, text), "RB102")]
    assert paths == [("detection", 0, "confirm"), ("detection", 1, "confirm", "message")]
