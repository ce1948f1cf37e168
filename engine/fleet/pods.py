"""Pods and nodes of a Kubernetes target: which ones a step runs on, asked of the cluster
through kubectl when the step starts.

A target's templates (context, namespace, selector or name, container, image) are
rendered with the run's context and checked (engine/language/kube_names.py); then the
cluster is asked: the running pods that match (terminating ones left out), or the Ready
nodes. Before any cluster is asked, what would fail anyway fails with its reason: no
kubectl on PATH, no kubeconfig, a context the kubeconfig does not have. The rendered
target (a Place) is kept per target for the executor (engine/fleet/pod_exec.py) and for
what the console and the journal say about where a step ran.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.errors import TemplateError
from engine.language.kube_names import problem
from engine.language.model import Target

from . import kubectl
from .hosts import TargetError
from .kubectl import Cluster, Done

__all__ = ["Place", "PodResolver", "Unasked", "lock_key", "place_of", "plan_targets"]

SHOWN_SKIPPED = 5  # pods or nodes named in a "none match" error


class Unasked(TargetError):
    """The cluster could not be asked which pods a target means; `why` says it in a few
    words (a dry-run shows those)."""

    def __init__(self, message: str, why: str, *, where: str) -> None:
        super().__init__(message, where=where)
        self.why = why


@dataclass(frozen=True)
class Place:
    """A Kubernetes target with its templates rendered: where its pods or nodes are."""

    target: str
    kind: str  # "pods" or "nodes"
    cluster: Cluster
    namespace: str | None = None
    selector: str | None = None
    name: str | None = None
    container: str | None = None
    image: str | None = None
    profile: str | None = None

    @property
    def noun(self) -> str:
        """What one host of the target is: "pod" or "node"."""
        return self.kind[:-1]

    def describe(self) -> str:
        """In words, e.g. `pods app=web in namespace shop (context prod)`."""
        which = f"{self.kind} {self.selector}" if self.selector is not None else f"{self.noun} {self.name}"
        where = f" in namespace {self.namespace}" if self.namespace and self.kind == "pods" else ""
        inside = f", container {self.container}" if self.container else ""
        return f"{which}{where} ({self.cluster.describe()}{inside})"


def place_of(name: str, target: Target, ctx: Mapping[str, Any]) -> Place:
    """The target's templates rendered with `ctx` and checked; TemplateError (or its
    TargetError) names the property that is wrong."""
    from engine.templates import templating

    kube = target.kube
    if kube is None:
        raise TargetError(f"target '{name}' is not a Kubernetes target", where=f"targets.{name}")
    values: dict[str, str | None] = {}
    for key, text in kube.fields():
        where = f"targets.{name}.{kube.kind}.{key}"
        rendered = templating.render(text, ctx, where=where).strip()
        why = problem(key, rendered, kube.kind)
        if why is not None:
            raise TargetError(why, where=where)
        values[key] = rendered
    return Place(name, kube.kind, Cluster(kube.kubeconfig, values.get("context")), values.get("namespace"),
                 values.get("selector"), values.get("name"), values.get("container"), values.get("image"),
                 kube.profile)


def lock_key(name: str, target: Target, ctx: Mapping[str, Any]) -> str:
    """What a live run locks for a Kubernetes target: the pods or nodes it means, by
    context, namespace and selector or name (listing them would ask the cluster)."""
    kube = target.kube
    assert kube is not None
    try:
        place = place_of(name, target, ctx)
    except TemplateError:  # a name known only at run time (or a bad one): lock on the target's name
        return f"<{name}>"
    which = place.selector if place.selector is not None else place.name
    return f"k8s:{place.cluster.context or '-'}/{place.namespace or '-'}/{kube.kind}/{which}"


class PodResolver:
    """`Services.resolve_hosts` for Kubernetes targets: a target -> the names of its
    pods (or nodes) now, remembering where they are (`place`) for the executor."""

    def __init__(self, short: Callable[[Sequence[str]], Done] = kubectl.run_short,
                 which: Callable[[], str | None] = kubectl.find) -> None:
        self._short, self._which = short, which
        self._places: dict[str, Place] = {}
        self._contexts: dict[str | None, list[str]] = {}
        self._lock = threading.Lock()

    def __call__(self, name: str, target: Target, ctx: Mapping[str, Any]) -> list[str]:
        place = place_of(name, target, ctx)
        names = self.find(place)
        with self._lock:
            self._places[name] = place
        return names

    def place(self, target: str | None) -> Place:
        """Where the pods of a target resolved earlier in this run are."""
        with self._lock:
            found = self._places.get(target or "")
        if found is None:
            raise TargetError(f"target '{target}' was not resolved in this run", where=f"targets.{target}")
        return found

    def knows(self, target: str | None) -> bool:
        """Whether the target's place is known (resolved, or remembered, in this run)."""
        with self._lock:
            return (target or "") in self._places

    def remember(self, place: Place) -> None:
        """Know where a target's pods are without listing them (a resume reaching the pods
        an earlier attempt ran on)."""
        with self._lock:
            self._places[place.target] = place

    def find(self, place: Place) -> list[str]:
        """The running pods (or Ready nodes) the place means; TargetError if none, or if
        the cluster cannot be asked."""
        self.check(place)
        argv = kubectl.list_argv(place.cluster, place.kind, place.namespace, place.selector, place.name)
        done = self._short(argv)
        if done.code != 0:
            why = kubectl.message(done.stderr)
            raise Unasked(f"cannot list the {place.kind} of target '{place.target}' ({place.describe()}): {why}",
                          why, where=f"targets.{place.target}")
        items = (done.json() or {}).get("items")
        if not isinstance(items, list):
            raise TargetError(f"kubectl listed the {place.kind} of target '{place.target}' in a form the "
                              "engine does not know (not a JSON List)", where=f"targets.{place.target}")
        usable, skipped = _sort(place.kind, items)
        if not usable:
            raise TargetError(_none_match(place, skipped), where=f"targets.{place.target}")
        return usable

    def check(self, place: Place) -> None:
        """What fails before any cluster is asked: kubectl, the kubeconfig, the context."""
        if self._which() is None:
            raise Unasked(f"target '{place.target}' runs through kubectl, which is not on PATH "
                          "(install kubectl, or add its directory to PATH)", "kubectl is not on PATH",
                          where=f"targets.{place.target}")
        why = kubectl.kubeconfig_problem(place.cluster.kubeconfig)
        if why is not None:
            raise Unasked(f"target '{place.target}' cannot reach its cluster: {why}", why,
                          where=f"targets.{place.target}")
        context = place.cluster.context
        if context is not None:
            known = self._known_contexts(place)
            if context not in known:
                from engine.language.rules import did_you_mean

                hint = f"{did_you_mean(context, known)} (its contexts: {', '.join(known) or 'none'})"
                raise Unasked(f"context '{context}' of target '{place.target}' is not in the kubeconfig{hint}",
                              f"context '{context}' is not in the kubeconfig{hint}",
                              where=f"targets.{place.target}.{place.kind}.context")

    def _known_contexts(self, place: Place) -> list[str]:
        key = place.cluster.kubeconfig
        with self._lock:
            cached = self._contexts.get(key)
        if cached is not None:
            return cached
        done = self._short(kubectl.contexts_argv(place.cluster))
        if done.code != 0:
            why = f"cannot read the contexts of the kubeconfig: {kubectl.message(done.stderr)}"
            raise Unasked(why, why, where=f"targets.{place.target}")
        names = [line.strip() for line in done.stdout.splitlines() if line.strip()]
        with self._lock:
            self._contexts[key] = names
        return names

    def plan(self, name: str, target: Target, ctx: Mapping[str, Any]) -> list[str]:
        """For a dry-run: the pods a step would use now when the cluster can be asked (read
        only), else why it cannot; nothing runs in them."""
        try:
            place = place_of(name, target, ctx)
        except TargetError as exc:
            return [f"<error: {exc.reason}>"]
        except TemplateError as exc:
            return [f"{target.kube.kind if target.kube else 'pods'} <known at run time: {exc.reason}>"]
        try:
            names = self.find(place)
        except Unasked as exc:
            return [f"{place.describe()}: cannot ask the cluster now ({exc.why}); "
                    "a run lists them when each step starts"]
        except TargetError as exc:  # asked: none it could run in
            return [f"<error: {exc.reason}>"]
        return [f"{place.describe()}, now: {', '.join(names)}"]


def plan_targets(runbook: Any, inputs: Mapping[str, Any],
                 others: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """For a dry-run: a target's pods (PodResolver.plan) when it is a Kubernetes target,
    else what `others` (the SSH resolver's plan) says of it."""
    ctx = {"inputs": dict(inputs), "vars": dict(runbook.vars),
           "runbook": {"id": runbook.id, "title": runbook.title}}
    resolver = PodResolver()

    def hosts_of(name: str) -> list[str]:
        target = runbook.targets[name]
        return resolver.plan(name, target, ctx) if target.kube is not None else others(name)

    return hosts_of


def _sort(kind: str, items: list[Any]) -> tuple[list[str], list[str]]:
    """(usable names, `name (why not)` of the others) in kubectl's order."""
    usable: list[str] = []
    skipped: list[str] = []
    for item in items:
        meta = item.get("metadata") if isinstance(item, dict) else None
        name = meta.get("name") if isinstance(meta, dict) else None
        if not isinstance(name, str):
            continue
        why = _unusable(kind, item)
        if why is None:
            usable.append(name)
        else:
            skipped.append(f"{name} ({why})")
    return usable, skipped


def _unusable(kind: str, item: dict[str, Any]) -> str | None:
    found = item.get("status")
    status: dict[str, Any] = found if isinstance(found, dict) else {}
    if kind == "pods":
        if (item.get("metadata") or {}).get("deletionTimestamp"):
            return "terminating"
        phase = status.get("phase")
        return None if phase == "Running" else str(phase or "no phase").lower()
    ready = [c for c in status.get("conditions") or [] if isinstance(c, dict) and c.get("type") == "Ready"]
    return None if ready and ready[0].get("status") == "True" else "not Ready"


def _none_match(place: Place, skipped: list[str]) -> str:
    state = "running " if place.kind == "pods" else "Ready "
    if place.name is not None:
        head = f"{place.noun} {place.name} is not {state.strip()}" if skipped else f"no {place.noun} named {place.name}"
        head += f" ({place.describe()})"
    else:
        head = f"no {state}{place.kind} match {place.describe()}"
    if skipped and place.name is None:
        shown = ", ".join(skipped[:SHOWN_SKIPPED]) + (f" and {len(skipped) - SHOWN_SKIPPED} more"
                                                      if len(skipped) > SHOWN_SKIPPED else "")
        head += f"; {len(skipped)} match but cannot run a command: {shown}"
    elif skipped:
        head += f": {skipped[0]}"
    return head
