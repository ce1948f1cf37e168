"""Deterministic generator of realistic runbooks for the benchmarks.

    from bench.generate import generate_runbooks
    paths = generate_runbooks(directory, count=1000, seed=42)

Every file is a complete runbook: four phases, 8-25 top-level steps of every kind
(run, http, manual, notify, wait, set), inputs, targets, defaults, retries, polling,
confirmations, rollbacks, outputs, `when`/`expect` expressions, and in some files
roles, severity, escalation and status updates. The same seed gives the same files,
byte for byte. Files are meant to validate cleanly (the benchmarks check it).

Command line: `python bench/generate.py DIR [--count N] [--seed S]`.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

if not __package__:  # run as a script: make `import bench...` work
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._catalog import CHANNELS, FAMILIES, HOST_PREFIXES, TEAMS, Family, Fix, Look, Probe

Step = dict[str, Any]
SCHEMA_URL = "https://runbook-engine.dev/schemas/runbook.schema.json"
PHASES = ("detection", "triage", "remediation", "recovery")
ROLES = ("incident_commander", "responder", "communications")
ENVIRONMENTS = ("prod", "staging", "eu-west-1", "us-east-1", "ap-south-1", "dr-site")
# Deployments of one service differ by name: nginx-edge, checkout-canary, ...
SERVICE_SUFFIXES = ("", "", "", "-api", "-worker", "-edge", "-internal", "-blue", "-green", "-eu", "-us",
                    "-batch", "-canary", "-v2", "-replica", "-admin", "-public", "-01", "-02")
TIMEOUTS = ("30s", "45s", "60s", "90s", "2m", "5m")


@dataclass
class Draft:
    """The runbook being written: random source, choices made, what later steps may use."""

    rng: random.Random
    family: Family
    service: str
    channel: str
    env: str
    threshold: int
    literal_threshold: bool = False  # expressions hold the number, not inputs.threshold
    literal_service: bool = False  # commands name the service, not inputs.service
    roles: tuple[str, ...] = ()
    target: str | None = "box"  # None: commands run locally (or via defaults.target)
    fleet: bool = False
    ids: set[str] = field(default_factory=set)
    measured: list[tuple[str, Probe]] = field(default_factory=list)
    asked: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    vars: list[str] = field(default_factory=list)
    extra_inputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def new_id(self, base: str) -> str:
        name, n = base, 1
        while name in self.ids:
            n += 1
            name = f"{base}_{n}"
        self.ids.add(name)
        return name

    def maybe(self, p: float) -> bool:
        return self.rng.random() < p

    def pick(self, options: Sequence[Any]) -> Any:
        return self.rng.choice(options)

    def fill(self, text: str) -> str:
        """Fill the `<n>`-style placeholders of catalog text, each use afresh."""
        if self.literal_service:
            text = text.replace("{{ inputs.service }}", self.service)
        return _PLACEHOLDER.sub(lambda m: str(_FILLERS[m[1]](self)), text)

    def expr(self, text: str) -> str:
        return text.replace("inputs.threshold", str(self.threshold)) if self.literal_threshold else text

    def role(self, role: str) -> dict[str, str]:
        return {"role": role} if self.roles and self.maybe(0.6) else {}

    def on_target(self) -> dict[str, str]:
        return {"target": self.target} if self.target else {}

    def need(self, name: str, spec: dict[str, Any]) -> None:
        self.extra_inputs.setdefault(name, spec)


Builder = Callable[[Draft], Step]

_PLACEHOLDER = re.compile(r"<(n|secs|mins|size|days|depth|pct|nice|port|svc|env)>")
_FILLERS: dict[str, Callable[[Draft], Any]] = {
    "n": lambda d: d.rng.randint(5, 50),
    "secs": lambda d: d.rng.randint(2, 10),
    "mins": lambda d: 5 * d.rng.randint(1, 24),
    "size": lambda d: 50 * d.rng.randint(1, 40),
    "days": lambda d: d.rng.randint(1, 30),
    "depth": lambda d: d.rng.randint(1, 4),
    "pct": lambda d: d.rng.randint(50, 95),
    "nice": lambda d: d.rng.randint(5, 19),
    "port": lambda d: d.rng.choice((8080, 8443, 9090, 9100, 3000, 5000, 8000, 8081)),
    "svc": lambda d: d.service,
    "env": lambda d: d.env,
}

# -- run steps from the catalog ---------------------------------------------------------------


def _tuning(d: Draft, step: Step, *, timeout: float = 0.3, retries: float = 0.15) -> Step:
    if d.maybe(timeout):
        step["timeout"] = d.pick(TIMEOUTS)
    if d.maybe(retries):
        step["retries"] = d.pick((2, 3, {"attempts": 3, "delay": "5s"},
                                  {"attempts": 4, "delay": "2s", "backoff": 2, "max_delay": "30s"}))
    return step


def probe_step(probe: Probe, *, confirm: bool = True) -> Builder:
    def build(d: Draft) -> Step:
        step: Step = {"id": d.new_id(probe.name), "title": probe.title, **d.on_target(),
                      "run": d.fill(probe.command)}
        if probe.exit_codes:
            step["exit_codes"] = list(probe.exit_codes)
        step["outputs"] = {probe.output: "{{ " + probe.parse + " }}"}
        if confirm:
            step["expect"] = d.expr(probe.bad)
        d.measured.append((step["id"], probe))
        return _tuning(d, step, retries=0.3)

    return build


def look_step(look: Look) -> Builder:
    def build(d: Draft) -> Step:
        step: Step = {"id": d.new_id(look.name), "title": look.title, **d.on_target(),
                      "run": d.fill(look.command)}
        if look.exit_codes:
            step["exit_codes"] = list(look.exit_codes)
        if d.maybe(0.2):
            step["continue_on_error"] = True
        if d.maybe(0.15):
            step["env"] = {"LC_ALL": "C"}
        return _tuning(d, step, retries=0.05)

    return build


def _fix_condition(d: Draft, fix: Fix) -> dict[str, str]:
    if d.asked and d.maybe(0.85):
        step_id, causes = d.pick(d.asked)
        cause = fix.cause if fix.cause in causes else causes[0]
        return {"when": f"steps.{step_id}.answers.cause == '{cause}'"}
    if d.measured and d.maybe(0.6):
        step_id, probe = d.pick(d.measured)
        return {"when": d.expr(probe.bad.replace("outputs.", f"steps.{step_id}.outputs.", 1))}
    return {}


def _confirm(d: Draft, fix: Fix) -> Any:
    question = f"{fix.title} on {{{{ inputs.host }}}}?"
    if d.roles and d.maybe(0.6):
        return {"message": question, "role": "incident_commander"}
    return d.pick((question, True, question))


def _rollback(d: Draft, fix: Fix) -> list[Step]:
    if fix.undo:
        undo: Step = {"id": d.new_id(f"undo_{fix.name}"), **d.on_target(), "run": d.fill(fix.undo)}
        if fix.loop:
            undo["for_each"] = list(fix.loop)
        return [_tuning(d, undo, timeout=0.5, retries=0)]
    return [{"id": d.new_id(f"check_{fix.name}"),
             "manual": f"{fix.title} cannot be undone automatically. Check the service by hand "
                       "and write down what you see."}]


def fix_step(fix: Fix) -> Builder:
    def build(d: Draft) -> Step:
        step: Step = {"id": d.new_id(fix.name), "title": fix.title, **_fix_condition(d, fix)}
        if d.fleet and d.target and d.maybe(0.25):
            step.update({"target": "fleet", "serial": d.pick((1, 2, "25%", "50%")), "max_failures": 1})
        else:
            step.update(d.on_target())
        if fix.loop:
            step["for_each"] = list(fix.loop)
        step["run"] = d.fill(fix.command)
        if fix.destructive or d.maybe(0.5):
            step["confirm"] = _confirm(d, fix)
        if fix.undo or (fix.destructive and d.maybe(0.5)):
            step["rollback"] = _rollback(d, fix)
        if fix.destructive:
            step["destructive"] = True
        elif d.maybe(0.3):
            step["idempotent"] = True
        return _tuning(d, step, timeout=0.5, retries=0.35)

    return build


def verify_step(probe: Probe) -> Builder:
    def build(d: Draft) -> Step:
        step: Step = {"id": d.new_id(f"verify_{probe.name}"), "title": f"Wait until healthy: "
                      f"{probe.title.lower()}", **d.on_target(), "run": d.fill(probe.command)}
        if probe.exit_codes:
            step["exit_codes"] = list(probe.exit_codes)
        if d.maybe(0.3):
            step["outputs"] = {probe.output: "{{ " + probe.parse + " }}"}
            step["expect"] = d.expr(probe.good)
            return _tuning(d, step, timeout=0.5, retries=0.4)
        step.update({"until": d.expr(probe.good), "every": d.pick(("5s", "10s", "15s", "30s")),
                     "timeout": d.pick(("2m", "5m", "10m", "15m", "30m"))})
        return step

    return build


# -- generic steps ------------------------------------------------------------------------------


def health_check(d: Draft) -> Step:
    url = d.fill(d.pick(("https://{{ inputs.host }}/healthz", "http://{{ inputs.host }}:<port>/metrics",
                         "https://{{ inputs.host }}:<port>/-/ready", "http://{{ inputs.host }}:<port>/<svc>/health")))
    return {"id": d.new_id("health"), "title": "Health endpoint",
            "http": {"url": url, "method": "GET", "status": [200, 204, 500, 502, 503],
                     "verify": d.maybe(0.7)},
            "outputs": {"code": "{{ status }}"}, "continue_on_error": True,
            "timeout": d.pick(("5s", "10s", "15s"))}


def announce(d: Draft) -> Step:
    message = d.pick((
        "Investigating {{ runbook.title }} on {{ inputs.host }} (run {{ run.id }}, <env>)",
        ":rotating_light: <svc> on {{ inputs.host }} in <env>: {{ runbook.title }}",
        "Acknowledged {{ runbook.id }} for {{ inputs.host }}, started {{ run.started_at }}",
        "<svc> (<env>): looking into {{ runbook.title | lower }} on {{ inputs.host }}",
    ))
    return {"id": d.new_id("announce"), **d.role("communications"),
            "notify": {"channel": d.channel, "message": d.fill(message)}}


def dashboard(d: Draft) -> Step:
    return {"id": d.new_id("open_dashboard"), "title": "Open the dashboards", **d.role("responder"),
            "manual": f"Open the {d.family.title.lower()} dashboard for {{{{ inputs.host }}}} and the "
                      f"{d.service} service overview.\nKeep both open for the rest of the incident."}


def assess(d: Draft) -> Step:
    causes = tuple(dict.fromkeys(f.cause for f in d.family.fixes)) + ("unknown",)
    ask: dict[str, Any] = {"cause": {"prompt": "What is the most likely cause?", "choices": list(causes)}}
    if d.maybe(0.5):
        ask["impact"] = {"choices": ["high", "medium", "low"], "default": "medium",
                         "sets": "incident.impact"}
    if d.maybe(0.3):
        ask["ticket"] = {"type": "text", "prompt": "Incident ticket, if one exists"}
    step: Step = {"id": d.new_id("assess"), "title": "Decide on the cause", **d.role("responder"),
                  "manual": "Read the output of the triage steps above.\n"
                            f"Compare it with the last known good state of {d.service}.\n"
                            "Pick the cause that fits best; choose unknown to escalate.\n",
                  "ask": ask}
    d.asked.append((step["id"], causes))
    return step


def set_vars(d: Draft) -> Step:
    values: dict[str, Any] = {}
    if d.measured and d.maybe(0.7):
        step_id, probe = d.pick(d.measured)
        values[f"first_{probe.output}"] = f"{{{{ steps.{step_id}.outputs.{probe.output} | int }}}}"
    if d.maybe(0.5):
        values["incident.urgency"] = d.pick(("high", "medium", "low"))
    values.setdefault("affected", d.fill(d.pick(("{{ inputs.service }}@{{ inputs.host }}",
                                                 "<svc>@{{ inputs.host }} (<env>)"))))
    d.vars.extend(k for k in values if not k.startswith("incident."))
    return {"id": d.new_id("record"), "title": "Record what we know", "set": values}


def metrics_query(d: Draft) -> Step:
    d.need("prometheus", {"type": "string", "default": d.pick((
        "http://prometheus.monitoring:9090", "https://prometheus.internal.example.com"))})
    query = d.fill(d.pick(("rate(node_cpu_seconds_total{mode=\"idle\",env=\"<env>\"}[<mins>m])",
                           "up{job=\"<svc>\"}", "increase(kube_pod_container_status_restarts_total[<mins>m])",
                           "sum(rate(http_requests_total{job=\"<svc>\",code=~\"5..\"}[<mins>m]))")))
    return {"id": d.new_id("metrics"), "title": "Query the metrics",
            "http": {"url": "{{ inputs.prometheus }}/api/v1/query?query=" + query,
                     "headers": {"Accept": "application/json"}, "status": 200},
            "outputs": {"series": "{{ json.data.result | length }}"},
            "timeout": "20s"}


def progress(d: Draft) -> Step:
    text = d.fill(d.pick(("{{ runbook.title }} on {{ inputs.host }}: ", "<svc>/<env> {{ inputs.host }}: ",
                          "[<env>] {{ runbook.id }}: "))) + d.pick((
        "still working on it", "next update in <mins> minutes", "mitigation under way"))
    if d.asked:
        step_id, _ = d.asked[-1]
        text += f", cause {{{{ steps.{step_id}.answers.cause }}}}"
    if d.vars and d.maybe(0.5):
        text += f" ({{{{ vars.{d.pick(d.vars)} }}}})"
    return {"id": d.new_id("status_update"), **d.role("communications"),
            "notify": {"channel": d.channel, "message": d.fill(text)}}


def settle(d: Draft) -> Step:
    return {"id": d.new_id("settle"), "title": "Let the change settle",
            "wait": d.pick(("15s", "30s", "1m", "90s", "2m"))}


def drain(d: Draft) -> Step:
    d.need("lb_api", {"type": "string", "default": "https://lb.internal.example.com"})
    d.need("token", {"type": "string", "secret": True, "env": "LB_API_TOKEN",
                     "description": "Load balancer API token"})
    member = d.fill("{{ inputs.lb_api }}/v1/pools/<svc>-<env>/members/{{ inputs.host }}")
    headers = {"Authorization": "Bearer {{ inputs.token }}", "Content-Type": "application/json"}

    reason = d.fill(d.pick(("runbook {{ runbook.id }}, run {{ run.id }}", "incident on <svc> (<env>)")))

    def call(state: str) -> dict[str, Any]:
        return {"url": member, "method": "PUT", "headers": headers,
                "body": {"state": state, "reason": reason},
                "status": [200, 202]}

    return {"id": d.new_id("drain"), "title": "Take the host out of the pool", "http": call("drain"),
            "confirm": "Drain {{ inputs.host }} from the load balancer?",
            "rollback": [{"id": d.new_id("undrain"), "http": call("active")}],
            "retries": {"attempts": 3, "delay": "2s"}}


def escalate(d: Draft) -> Step:
    step: Step = {"id": d.new_id("escalate"), "title": "Escalate"}
    if d.asked:
        step["when"] = f"steps.{d.asked[-1][0]}.answers.cause == 'unknown'"
    step["notify"] = {"channel": d.pick(("oncall-secondary", "incident-managers", f"{d.service}-owners")),
                      "message": d.fill("{{ inputs.host }} (<env>): {{ runbook.title }} needs help from the "
                                        "<svc> owners, see run {{ run.id }}"),
                      "title": "Escalation"}
    return step


def http_verify(d: Draft) -> Step:
    return {"id": d.new_id("verify_health"), "title": "Health endpoint is green",
            "http": {"url": d.fill("https://{{ inputs.host }}:<port>/healthz"), "status": [200, 503]},
            "until": "status == 200", "every": "10s", "timeout": d.pick(("3m", "5m", "10m"))}


def resolved(d: Draft) -> Step:
    return {"id": d.new_id("resolved"), **d.role("communications"),
            "notify": {"channel": d.channel, "title": "Resolved",
                       "message": d.fill(d.pick((
                           "{{ runbook.title }} on {{ inputs.host }} is resolved (run {{ run.id }})",
                           "<svc> in <env> is healthy again on {{ inputs.host }}",
                           "Resolved: {{ runbook.id }} ({{ inputs.host }}), <svc> back to normal")))}}


def sign_off(d: Draft) -> Step:
    return {"id": d.new_id("sign_off"), **d.role("incident_commander"),
            "manual": "Confirm with the service owners that everything works, then close the incident.",
            "ask": {"follow_up": {"type": "confirm", "prompt": "Is a post-incident review needed?"}}}


# -- phases -------------------------------------------------------------------------------------


def _fill(d: Draft, count: int, anchors: list[Builder], once: list[Builder],
          again: Sequence[Builder] = ()) -> list[Step]:
    """`anchors` first, then builders from `once` (each at most once), then from `again`."""
    rest = d.rng.sample(once, min(len(once), max(0, count - len(anchors))))
    while again and len(anchors) + len(rest) < count:
        rest.append(d.pick(again))
    d.rng.shuffle(rest)
    return [build(d) for build in [*anchors, *rest][:count]]


def detection(d: Draft, count: int) -> list[Step]:
    first, *others = d.rng.sample(d.family.probes, len(d.family.probes))
    once = [*(probe_step(p) for p in others), health_check, announce, dashboard]
    return _fill(d, count, [probe_step(first)], once)


def triage(d: Draft, count: int) -> list[Step]:
    looks = [look_step(x) for x in d.family.looks]
    once = [*looks, set_vars, metrics_query, progress, probe_step(d.pick(d.family.probes), confirm=False)]
    steps = _fill(d, count - 1, [], once, [*looks, metrics_query]) if count > 1 else []
    steps.append(assess(d) if d.maybe(0.85) else d.pick(looks)(d))
    return steps


def remediation(d: Draft, count: int) -> list[Step]:
    fixes = [fix_step(f) for f in d.rng.sample(d.family.fixes, len(d.family.fixes))]
    once = [*fixes[1:], settle, progress, set_vars]
    if d.maybe(0.5):
        once.append(escalate)
    if d.target and d.maybe(0.35):
        once.append(drain)
    return _fill(d, count, fixes[:1], once, [*fixes, settle, progress])


def recovery(d: Draft, count: int) -> list[Step]:
    once = [*(verify_step(p) for p in d.family.probes), resolved, sign_off]
    if d.target:
        once.append(http_verify)
    return _fill(d, count, [verify_step(d.pick(d.family.probes))], once)


def phase_sizes(rng: random.Random) -> tuple[int, int, int, int]:
    total = rng.randint(8, 25)
    det, rec = rng.randint(1, 3), rng.randint(1, 3)
    rest = total - det - rec
    tri = rng.randint(max(1, rest // 3), max(1, rest * 3 // 5))
    return det, tri, rest - tri, rec


# -- the whole runbook --------------------------------------------------------------------------


def _inputs(d: Draft) -> dict[str, Any]:
    _, high, meaning = d.family.threshold
    inputs: dict[str, Any] = {
        "host": {"type": "string", "description": "Host that alerted", "alert": "labels.instance"},
        "service": {"type": "string", "default": d.service},
        "threshold": {"type": "integer", "default": d.threshold, "minimum": 1, "maximum": high * 2,
                      "description": meaning},
    }
    return {**inputs, **d.family.inputs, **d.extra_inputs}


def _targets(d: Draft) -> dict[str, Any]:
    box: dict[str, Any] = {"hosts": ["{{ inputs.host }}"], "user": d.pick(("ops", "root", "deploy"))}
    if d.maybe(0.2):
        box["connect_timeout"] = "10s"
    targets = {"box": box}
    if d.fleet:
        targets["fleet"] = {"group": d.family.group, "parallel": d.pick((5, 10, 20)), "serial": "25%"}
    return targets


def _defaults(d: Draft) -> dict[str, Any]:
    defaults: dict[str, Any] = {"timeout": d.pick(TIMEOUTS)}
    if d.maybe(0.2):
        defaults["retries"] = 1
    if d.roles and d.maybe(0.5):
        defaults["role"] = "responder"
    return defaults


def _command(d: Draft) -> dict[str, Any]:
    """Roles, severity, escalation and updates: the incident-command part."""
    out: dict[str, Any] = {}
    if d.roles:
        out["roles"] = list(d.roles)
        out["severity"] = d.pick(({"matrix": "default", "impact": "medium", "urgency": "high"},
                                  {"matrix": "default"},
                                  {"matrix": {"high": {"high": "P1", "low": "P2"},
                                              "low": {"high": "P3", "low": "P4"}}}))
    if d.maybe(0.5):
        out["escalation"] = _escalation(d)
    if d.maybe(0.35):
        out["updates"] = {"channel": "status", "every": d.pick(("15m", "30m", "1h")),
                          "message": d.fill("<svc> (<env>): {{ incident.priority }}, phase {{ run.phase }}, "
                                            "next update in <mins> minutes")}
    return out


def _escalation(d: Draft) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        {"after": d.pick(("5m", "10m", "15m")), "unacknowledged": True, "notify": "oncall-secondary"},
        {"when": "incident.priority == 'P1'", "notify": "incident-managers",
         "message": d.fill("P1 on <svc> in <env>: {{ runbook.title }} ({{ run.id }})")},
        {"on_failure": True, "notify": d.channel},
    ]
    return rules[: d.rng.randint(1, 3)]


def build_runbook(rng: random.Random, index: int) -> dict[str, Any]:
    """One runbook as plain data (the order of keys is the order in the file)."""
    family = rng.choice(FAMILIES)
    service = rng.choice(family.services) + rng.choice(SERVICE_SUFFIXES)
    env = rng.choice(ENVIRONMENTS)
    low, high, _ = family.threshold
    d = Draft(rng, family, service, rng.choice(CHANNELS), env, rng.randint(low, high),
              literal_threshold=rng.random() < 0.3, literal_service=rng.random() < 0.6,
              roles=ROLES if rng.random() < 0.4 else (),
              target=None if family.local else "box", fleet=not family.local and rng.random() < 0.3)
    sizes = phase_sizes(rng)
    phases = {name: build(d, n) for name, build, n in zip(PHASES, (detection, triage, remediation,
                                                                    recovery), sizes, strict=True)}
    head: dict[str, Any] = {
        "kind": "runbook", "version": 1, "id": f"{family.slug}-{service}-{index:04d}",
        "title": f"{family.title}: {service} ({env})", "summary": family.summary,
        "owner": rng.choice(TEAMS), "tags": [family.slug, env, rng.choice(HOST_PREFIXES)],
        "alerts": [family.alert],
        "links": [{"title": "Dashboard", "url": f"https://grafana.example.com/d/{rng.getrandbits(40):010x}/"
                   f"{family.slug}?var-host={{{{ inputs.host }}}}&var-env={env}"}],
        "inputs": _inputs(d),
    }
    if not family.local:
        head["targets"] = _targets(d)
    head["defaults"] = _defaults(d)
    if d.vars and rng.random() < 0.5:
        head["vars"] = {name: "" for name in d.vars}
    return {**head, **_command(d), **phases}


# -- YAML ---------------------------------------------------------------------------------------


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Block style, except short collections of scalars; literal blocks for multi-line text."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _short(value: dict[str, Any] | list[Any]) -> bool:
    items = value.values() if isinstance(value, dict) else value
    return len(repr(value)) <= 90 and not any(isinstance(v, (dict, list)) for v in items)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


def _map(dumper: yaml.SafeDumper, value: dict[str, Any]) -> yaml.MappingNode:
    return dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=_short(value))


def _seq(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.SequenceNode:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=_short(value))


_Dumper.add_representer(str, _str)
_Dumper.add_representer(dict, _map)
_Dumper.add_representer(list, _seq)


def to_yaml(runbook: dict[str, Any]) -> str:
    """The runbook as a YAML file: a schema comment, a blank line before big sections."""
    text = yaml.dump(runbook, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=120,
                     allow_unicode=True)
    return f"# yaml-language-server: $schema={SCHEMA_URL}\n" + _SECTION.sub(r"\n\1", text)


_SECTION = re.compile(rf"^((?:inputs|targets|roles|escalation|updates|{'|'.join(PHASES)}):)", re.M)


def generate_runbooks(directory: str | Path, count: int = 1000, seed: int = 42) -> list[Path]:
    """Write `count` runbooks into `directory` (created if needed); their paths, sorted."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths = []
    for index in range(count):
        data = build_runbook(rng, index)
        path = out / f"{index:04d}-{data['id']}.yaml"
        path.write_text(to_yaml(data), encoding="utf-8")
        paths.append(path)
    return paths


def corpus_stats(paths: Sequence[Path]) -> dict[str, Any]:
    """Size and variety of generated files: steps by kind, and how many templates repeat.

    The engine caches template analysis by text, so the share of distinct templates
    decides how much of that work a run really does; it belongs next to the timings.
    """
    kinds: dict[str, int] = {}
    templates: list[str] = []
    expressions: list[str] = []
    for path in paths:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
        for step in (s for phase in PHASES for s in data.get(phase) or ()):
            kind = next(k for k in ("run", "http", "manual", "notify", "wait", "set", "include") if k in step)
            kinds[kind] = kinds.get(kind, 0) + 1
        _strings(data, None, templates, expressions)
    sizes = sorted(p.stat().st_size for p in paths)
    return {"files": len(paths), "bytes": sum(sizes), "median_file_bytes": sizes[len(sizes) // 2],
            "top_level_steps": sum(kinds.values()), "steps_by_kind": kinds,
            "templates": len(templates), "distinct_templates": len(set(templates)),
            "expressions": len(expressions), "distinct_expressions": len(set(expressions))}


_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_EXPRESSION_KEYS = frozenset({"when", "expect", "until"})


def _strings(value: Any, key: Any, templates: list[str], expressions: list[str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _strings(v, k, templates, expressions)
    elif isinstance(value, list):
        for v in value:
            _strings(v, key, templates, expressions)
    elif isinstance(value, str):
        if key in _EXPRESSION_KEYS:
            expressions.append(value)
        elif "{{" in value:
            templates.append(value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    paths = generate_runbooks(args.directory, args.count, args.seed)
    print(f"wrote {len(paths)} runbooks to {args.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
