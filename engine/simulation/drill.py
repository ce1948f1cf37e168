"""Running a scenario: the simulated world, the runbook, the people, and the scorecard.

`run_scenario` is used by `runbook test` (unattended, virtual clock, scripted people)
and by `runbook drill` (a real clock, people at a terminal). The scorecard is computed
from the run's key times, folded from its events as the journal records them
(engine/run/key_times.py: the same fold as every report's, from the journal's records).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.fleet.hosts import Resolver, TargetError
from engine.language.duration import format_duration
from engine.language.inventory import Inventory, InventoryError
from engine.language.model import Runbook
from engine.language.scenario import Scenario
from engine.run.alerts import record
from engine.run.bus import EventBus
from engine.run.clock import Clock, Timers, VirtualClock
from engine.run.events import Acknowledged
from engine.run.inputs import resolve
from engine.run.journal_writer import MemoryJournal
from engine.run.key_times import KeyTimes
from engine.run.masking import Masker
from engine.run.metrics import MILESTONES, Timings
from engine.run.runner import Runner, RunResult
from engine.run.services import Services
from engine.templates import templating

from . import guard
from .checks import Check, sequence_checks
from .helpers import SimulatedHelpers
from .people import ACKNOWLEDGE, ScenarioPrompter, WorldReacts
from .world import SimulatedExecutor, SimulatedNotifier, SimulatedRemote, World


@dataclass
class Scorecard:
    scenario: str
    title: str
    outcome: str | None
    checks: list[Check]
    timings: Timings
    wrong_turns: list[str] = field(default_factory=list)
    unscripted: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.met for c in self.checks) and not self.unscripted

    @property
    def missed(self) -> list[Check]:
        return [c for c in self.checks if not c.met]


def _time_check(name: str, limit: float, actual: float | None, why: str = "") -> Check:
    if actual is None:
        return Check(name, f"<= {format_duration(limit)}", "never", False, why or "not reached")
    met = actual <= limit + 1e-9
    gap = abs(actual - limit)
    note = f"{format_duration(gap)} to spare" if met else f"missed by {format_duration(gap)}"
    return Check(name, f"<= {format_duration(limit)}", format_duration(actual), met,
                 f"{note}; {why}" if why else note)


def _mitigation(t: Timings) -> str:
    """Why the run counts as mitigated, or why not (time_to_mitigate is honest about it)."""
    if t.mitigated is not None:
        return t.mitigated_by
    if t.mitigated_when:
        return f"not mitigated: `{t.mitigated_when}` never held in the simulated world"
    return "not mitigated: no remediation step acted and succeeded"


def score(scenario: Scenario, t: Timings, unscripted: Sequence[str] = ()) -> Scorecard:
    """Compare a run's timings with the scenario's objectives."""
    obj = scenario.objectives
    checks: list[Check] = []
    if obj.outcome is not None:
        checks.append(Check("outcome", obj.outcome, str(t.outcome), t.outcome == obj.outcome))
    for m in MILESTONES:
        limit = getattr(obj, m.objective)
        if limit is not None:
            why = _mitigation(t) if m.attr == "mitigated" else ""
            checks.append(_time_check(m.objective, limit, getattr(t, m.attr), why))
    for step in obj.must_run:
        timing = t.steps.get(step)
        status = timing.status if timing else "did not run"
        checks.append(Check(f"must_run {step}", "ran ok", status, status == "ok"))
    for step in obj.must_not_run:
        ran = t.ran(step)
        checks.append(Check(f"must_not_run {step}", "not run", "ran" if ran else "not run", not ran))
    if obj.max_retries is not None:
        checks.append(Check("max_retries", f"<= {obj.max_retries}", str(t.retries), t.retries <= obj.max_retries))
    checks.extend(_command_checks(scenario, t))
    checks.extend(sequence_checks(obj, t))
    return Scorecard(scenario.id, scenario.title, t.outcome, checks, t, wrong_turns(t, obj.must_not_run),
                     list(unscripted))


def _command_checks(scenario: Scenario, t: Timings) -> list[Check]:
    """Objectives about incident command: updates, escalation, priority, approvals."""
    obj = scenario.objectives
    checks = []
    if obj.first_update_within is not None:
        checks.append(_time_check("first_update_within", obj.first_update_within, t.first_update))
    if obj.escalated is not None:
        fired = bool(t.escalations)
        checks.append(Check("escalated", str(obj.escalated).lower(), str(fired).lower(), fired == obj.escalated))
    if obj.priority is not None:
        checks.append(Check("priority", obj.priority, str(t.priority), t.priority == obj.priority))
    for step, role in obj.approved_by_role.items():
        roles = [a.get("role") for a in t.approvals if a.get("step") == step and a.get("approved")]
        actual = ", ".join(str(r) for r in roles) or "no approval"
        checks.append(Check(f"approved_by_role {step}", role, actual, role in roles))
    return checks


def wrong_turns(t: Timings, must_not_run: Sequence[str] = ()) -> list[str]:
    """Steps run that must not run, refused approvals, and failed steps (not rollbacks)."""
    turns = [f"ran {s}, which must not run" for s in must_not_run if t.ran(s)]
    turns += [f"{a.get('step')}: approval refused ({a.get('message')})" for a in t.approvals if not a.get("approved")]
    turns += [f"{s.step} failed" for s in t.steps.values() if s.status == "failed" and not s.rollback_of]
    return turns


@dataclass
class DrillRun:
    result: RunResult
    records: list[dict[str, Any]]  # the journal's records (empty when the setup kept none)
    timings: Timings
    scorecard: Scorecard
    world: World


class _Acknowledge:
    """Runner hook: someone takes the page before the first phase starts. The page waits
    like a prompt, so `unacknowledged` escalation rules watch it and Ctrl-C stops it."""

    def __init__(self, runner: Runner, ack: Callable[[], tuple[str | None, str | None, float] | None],
                 emit: Callable[[Any], Any]) -> None:
        self.runner, self.ack, self.emit, self.done = runner, ack, emit, False

    def on_phase(self, phase: str) -> None:
        if self.done:
            return
        self.done = True
        _unhook(self.runner, self)
        try:
            with self.runner.asking(ACKNOWLEDGE):
                taken = self.ack()
        except KeyboardInterrupt:
            self.runner.interrupt()  # nobody took the page: the run stops before its first step
            return
        if taken is not None:
            self.emit(Acknowledged(taken[0], taken[1]))


class _WatchMitigation:
    """Runner hook: once the run has started, the world watches `mitigated_when`."""

    def __init__(self, runner: Runner, world: World) -> None:
        self.runner, self.world = runner, world

    def on_start(self) -> None:
        _unhook(self.runner, self)
        self.world.watch_mitigation()


def _unhook(runner: Runner, hook: Any) -> None:
    """A drill's hook that has done its work leaves the runner: with no hook left, a
    step's end calls none (every step of every trial looked for on_step_finished)."""
    runner.hooks = [h for h in runner.hooks if h is not hook]  # a new list: the loop calling it goes on


def scenario_inputs(scenario: Scenario, runbook: Runbook) -> dict[str, Any]:
    alert = dict(scenario.alert) if scenario.alert is not None else None
    return resolve(runbook, from_file=scenario.inputs, alert=alert, environ={}, read_sources=False).values


class DrillHosts(Resolver):
    """The hosts of a target in a drill, resolved by the live resolver (each templated
    entry split on commas and spaces, `user@host:port` reduced to the host), so a drill
    fans out to exactly the hosts a live run or a dry-run would. A `group:` target fans
    out to the group's hosts in the scenario's `inventory:`, and stands for one host named
    after the group when the scenario has none. A Kubernetes target lists the scenario's
    `pods:` for it (a template follows the world's state), else its `name:`, else one pod
    named after the target; no cluster is asked."""

    reads_environment = False  # never $RUNBOOK_INVENTORY: a drill must not depend on the machine

    def __init__(self, world: World | None = None) -> None:
        super().__init__(None)
        self.world = world
        self._scripted = world is not None and world.scenario.inventory is not None

    @property
    def inventory(self) -> Inventory | None:
        """The scenario's inventory, read on first use (a bad one fails the step, as live)."""
        if self._inventory is None and self._scripted:
            assert self.world is not None
            try:
                self._inventory = self.world.scenario.load_inventory()
            except InventoryError as exc:
                raise TargetError(f"the scenario's inventory: {exc.message}") from None
        return self._inventory

    def _group(self, target: str, group: str) -> list[str]:
        if not self._scripted:
            return [group]
        return super()._group(target, group)

    def __call__(self, name: str, target: Any, ctx: Mapping[str, Any]) -> list[str]:
        if target.kube is None:
            return super().__call__(name, target, ctx)
        from engine.fleet.pods import place_of

        place = place_of(name, target, ctx)  # its templates rendered and checked, as live
        listed = self.world.scenario.pods.get(name) if self.world is not None else None
        if listed is None:
            return [place.name or name]
        if isinstance(listed, str):
            assert self.world is not None
            rendered = templating.render(listed, self.world.context(), where=self.world.scenario.file)
            listed = tuple(p for p in re.split(r"[\s,]+", rendered) if p)
        if not listed:
            raise TargetError(f"no running {place.kind} match {place.describe()}: the scenario's pods.{name} "
                              "lists none now", where=f"targets.{name}")
        return list(dict.fromkeys(listed))


@dataclass
class DrillSetup:
    """How to run a scenario: the clock, the people, who watches, and the seed."""

    clock: Clock | None = None
    prompter: Any = None
    acknowledge: Callable[[], tuple[str | None, str | None, float] | None] | None = None
    observers: Sequence[Any] = ()
    seed: int | None = None
    mode: str = "test"
    run_id: str | None = None
    participants: Sequence[Any] = ()
    speed: float = 1.0
    ready: Callable[[Runner, World], None] | None = None  # e.g. trainer controls, signal handlers
    channels: Any = None  # the channels config (notify.Channels): what each delivery would be is journaled
    keep_records: bool = True  # False: DrillRun.records stays empty (trials keep only timings and scores)
    # The scenario's inputs as scenario_inputs() resolves them for the runbook, when the
    # caller did so already (an estimate, once for all its trials); None: resolved here.
    inputs: Mapping[str, Any] | None = None


def run_scenario(scenario: Scenario, runbook: Runbook, setup: DrillSetup | None = None) -> DrillRun:
    """Run the runbook in the scenario's simulated world and score it."""
    setup = setup or DrillSetup()
    clock = setup.clock or VirtualClock()
    seed = setup.seed if setup.seed is not None else (scenario.seed if scenario.seed is not None else 0)
    rng = random.Random(seed)
    inputs = dict(setup.inputs) if setup.inputs is not None else scenario_inputs(scenario, runbook)
    world = World(scenario, clock, rng, inputs=inputs)
    memory, key_times = MemoryJournal() if setup.keep_records else None, KeyTimes()
    kept = [memory] if memory is not None else []
    bus = EventBus(clock, [*kept, key_times, *setup.observers], Masker(_secrets(runbook, inputs)))
    world.emit, world.shows_output = bus.emit, bus.wants_output
    inner = setup.prompter or ScenarioPrompter(scenario, clock, bus.emit, rng)
    prompter = WorldReacts(inner, world)
    services = _services(world, prompter, scenario, setup.channels)
    run_id = setup.run_id or f"{scenario.id}-seed{seed}"
    runner = Runner(runbook, inputs, services=services, bus=bus, clock=clock, run_id=run_id, mode=setup.mode,
                    masker=bus.masker, participants=setup.participants, scenario=scenario.id,
                    alert=record(scenario.alert) if scenario.alert is not None else None)
    if scenario.mitigated_when is not None:
        runner.hooks.append(_WatchMitigation(runner, world))
    ack = setup.acknowledge or getattr(inner, "acknowledge", None)  # the prompter's (WorldReacts forwards it)
    if ack is not None:
        runner.hooks.append(_Acknowledge(runner, ack, bus.emit))
    timers = _schedule(world, clock)
    if setup.ready is not None:
        setup.ready(runner, world)
    refused = guard.refuse()
    try:
        result = runner.run()
    finally:
        guard.restore(refused)
        if timers is not None:
            timers.stop()
    t = key_times.result()
    return DrillRun(result, memory.records if memory is not None else [], t, score(scenario, t, world.unscripted),
                    world)


def _secrets(runbook: Runbook, inputs: dict[str, Any]) -> list[str]:
    return [str(inputs[n]) for n, spec in runbook.inputs.items() if spec.secret and n in inputs]


def _load_runbook(path: Path) -> Runbook:
    """validation.load_runbook, imported when an include first needs it (not at every trial)."""
    from engine.language.validation import load_runbook

    return load_runbook(path)


def _services(world: World, prompter: Any, scenario: Scenario, channels: Any) -> Services:
    executor = SimulatedExecutor(world)
    notifier = SimulatedNotifier(channels)
    return Services(local=executor, http=executor, prompter=prompter, notifier=notifier,  # type: ignore[arg-type]
                    remote=SimulatedRemote(world), resolve_hosts=DrillHosts(world),
                    load_runbook=_load_runbook, hints=dict(scenario.hints), background=SimulatedHelpers(world))


def _schedule(world: World, clock: Any) -> Timers | None:
    if hasattr(clock, "call_at"):
        world.schedule(clock.call_at)
        return None
    timers = Timers(clock)
    world.schedule(timers.call_at)
    return timers


def render_scorecard(card: Scorecard) -> str:
    t = card.timings
    lines = [f"Scorecard: {card.title} ({card.scenario})", f"  outcome: {card.outcome}"]
    for c in card.checks:
        mark = "met   " if c.met else "MISSED"
        note = f"  ({c.note})" if c.note else ""
        lines.append(f"  {mark} {c.objective}: {c.actual} (objective {c.expected}){note}")
    for s in card.unscripted:
        lines.append(f"  UNSCRIPTED step {s}: the scenario has no response for it")
    lines.append(f"  retries: {t.retries}   polls: {t.polls}   hints used: {len(t.hints)}")
    for h in t.hints:
        lines.append(f"    hint for {h.get('step')}" + (f" (asked by {h.get('by')})" if h.get("by") else ""))
    if card.wrong_turns:
        lines.append("  wrong turns:")
        lines.extend(f"    - {w}" for w in card.wrong_turns)
    lines.append(f"  time waiting on people: {format_duration(t.human_time)}; "
                 f"on machines: {format_duration(t.machine_time)}")
    lines.append("  per role (steps owned; answers and approvals given):")
    for role, entry in t.per_role().items():
        given = f", {int(entry['responses'])} answer(s)/approval(s)" if entry["responses"] else ""
        lines.append(f"    {role}: {int(entry['steps'])} step(s), {format_duration(entry['time'])}{given}")
    if t.per_participant():
        lines.append("  per participant:")
    for who, entry in t.per_participant().items():
        lines.append(f"    {who}: {int(entry['responses'])} response(s), waited {format_duration(entry['waited'])}")
    slow = sorted((s for s in t.steps.values() if s.own), key=lambda s: s.duration, reverse=True)[:5]
    lines.append("  slowest steps: " + ", ".join(f"{s.step} {format_duration(s.duration)}" for s in slow))
    lines.append("  PASSED" if card.passed else f"  FAILED: {len(card.missed)} objective(s) missed")
    return "\n".join(lines) + "\n"
