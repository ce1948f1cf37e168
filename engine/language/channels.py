"""Channels: every channel a runbook sends to, and the channels config a check knows.

Lint checks the names against a config (RB121) and a live run refuses to start with a
name the config lacks; both read them here. Light on purpose: `runbook validate` builds
a KnownChannels before it knows whether any file needs checking.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from .model import NotifySpec, Path, Runbook


class KnownChannels(NamedTuple):
    """The channels config a check knows: its file and the channel names in it."""

    file: str
    names: frozenset[str]


def channel_uses(runbook: Runbook) -> Iterator[tuple[Path, str]]:
    """Every channel a runbook names, with where: notify steps (rollbacks too),
    escalation rules and updates. A templated channel (`{{ inputs.team }}-oncall`) is
    known only at run time, where an unknown one fails its step."""
    for step in runbook.steps(rollbacks=True):
        if isinstance(step.spec, NotifySpec) and "{" not in step.spec.channel:
            yield (*step.path, "notify", "channel"), step.spec.channel
    for rule_ in runbook.escalation:
        yield ("escalation", rule_.number, "notify"), rule_.notify
    if runbook.updates is not None:
        yield ("updates", "channel"), runbook.updates.channel

