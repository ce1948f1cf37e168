"""Background helpers in a drill: never started. The scenario's response for the helper's
id answers: none, or a zero `exit_code`, and it runs until the block ends; a non-zero
`exit_code` and it dies (before it is ready, or `duration` after it started: while the
block runs), its `stdout`/`stderr` being what it printed. A reply's `set:` applies when it
starts (the world knows the tunnel is up)."""

from __future__ import annotations

from collections.abc import Mapping

from engine.executors.background import Ready
from engine.executors.base import Invocation
from engine.language.scenario import Reply

from .world import World

SIGTERM_EXIT = -15  # what a live helper stopped by SIGTERM reports


class SimulatedHelper:
    """A helper as the world scripts it, on the run's clock."""

    pid = None

    def __init__(self, world: World, reply: Reply | None, inv: Invocation) -> None:
        self.world, self.reply = world, reply
        self.started = world.clock.now()
        self.lives = world.duration(reply) if reply is not None else 0.0
        self.output = ""
        if reply is not None:
            text = world.render(reply.stdout, inv) + world.render(reply.stderr, inv)
            self.output = text
            if reply.set:
                world.apply(reply.set, inv)
        self.stopped: int | None = None

    def exit_code(self) -> int | None:
        if self.stopped is not None:
            return self.stopped
        if self.reply is None or self.reply.exit_code == 0:
            return None
        return self.reply.exit_code if self.world.clock.now() >= self.started + self.lives else None

    def wait_ready(self, ready: Ready, timeout: float) -> str | None:
        code = self.exit_code()
        return None if code is None else f"exited with code {code} before it was ready"

    def stop(self) -> int | None:
        code = self.exit_code()
        self.stopped = SIGTERM_EXIT if code is None else code
        return self.stopped


class SimulatedHelpers:
    """`Services.background` of a drill."""

    def __init__(self, world: World) -> None:
        self.world = world

    def start(self, command: str, helper_id: str, env: Mapping[str, str] | None = None) -> SimulatedHelper:
        inv = Invocation(step=helper_id, kind="background", command=command)
        found = self.world.respond(inv)
        return SimulatedHelper(self.world, found[1] if found else None, inv)
