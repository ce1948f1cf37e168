"""Lint rules for Kubernetes targets (`pods:` and `nodes:`): what they mean must not
depend on who runs the runbook, and what they name must be a name Kubernetes accepts."""

from __future__ import annotations

from collections.abc import Iterator

from engine.templates import templating

from .kube_names import problem
from .model import Target
from .rules import ERROR, WARNING, Finding, rule
from .runbook_check import RunbookCheck

_SSH_SETTINGS = ("hosts", "group", "user", "port", "identity_file", "password_env", "proxy_jump",
                 "connect_timeout")


def _kube_targets(c: RunbookCheck) -> Iterator[tuple[str, Target]]:
    for name, target in c.runbook.targets.items():
        if target.kube is not None:
            yield name, target


@rule("RB160", "kube-selector-and-name", ERROR,
      "A target that gives both a label selector and a pod or node name means two different "
      "things; which one kubectl would use is not what the reader sees.")
def _selector_and_name(c: RunbookCheck) -> Iterator[Finding]:
    for name, target in _kube_targets(c):
        kube = target.kube
        assert kube is not None
        if kube.selector is not None and kube.name is not None:
            yield Finding(("targets", name, kube.kind, "name"),
                          f"target '{name}' gives both a selector and a name: keep one "
                          f"(selector '{kube.selector}' finds every matching {kube.kind[:-1]}, "
                          f"name one {kube.kind[:-1]})", key=True)


@rule("RB161", "kube-namespace-missing", WARNING,
      "Without `namespace`, kubectl uses the namespace of the context, which differs between "
      "people's kubeconfigs: the same runbook would act on different pods for each of them.")
def _namespace_missing(c: RunbookCheck) -> Iterator[Finding]:
    for name, target in _kube_targets(c):
        kube = target.kube
        assert kube is not None
        if kube.kind == "pods" and kube.namespace is None:
            yield Finding(("targets", name, "pods"),
                          f"target '{name}' names no namespace: kubectl would use the context's "
                          "(set `namespace`, e.g. `namespace: \"{{ inputs.namespace }}\"`)", key=True)


@rule("RB162", "kube-context-missing", WARNING,
      "Without `context`, kubectl uses the kubeconfig's current context: whoever last switched "
      "clusters decides which cluster the runbook acts on.")
def _context_missing(c: RunbookCheck) -> Iterator[Finding]:
    for name, target in _kube_targets(c):
        kube = target.kube
        assert kube is not None
        if kube.context is None:
            yield Finding(("targets", name, kube.kind),
                          f"target '{name}' names no context: kubectl would use the current one, "
                          "whatever cluster that is (set `context`)", key=True)


@rule("RB163", "kube-mixed-target", ERROR,
      "A target reaches its hosts one way: over SSH (`hosts`, `group` and the SSH settings) or "
      "through kubectl (`pods` or `nodes`); a mix of both would leave half of it unused.")
def _mixed(c: RunbookCheck) -> Iterator[Finding]:
    for name, target in _kube_targets(c):
        kind = target.kube.kind if target.kube is not None else "pods"
        if kind == "pods" and _written(c, ("targets", name, "nodes")):
            yield Finding(("targets", name, "nodes"), f"target '{name}' gives both pods and nodes: "
                                                      "make them two targets", key=True)
        for key in _SSH_SETTINGS:
            if getattr(target, key) not in (None, ()):
                yield Finding(("targets", name, key), f"'{key}' is an SSH setting; target '{name}' "
                                                      f"runs in {kind} through kubectl", key=True)


def _written(c: RunbookCheck, path: tuple[str, ...]) -> bool:
    """Whether the file holds `path` itself (the source map gives the deepest node on the way)."""
    return c.doc.source.node(path) is not c.doc.source.node(path[:-1])


@rule("RB164", "kube-bad-name", ERROR,
      "A pod, node or container name, namespace, context, selector or image that Kubernetes "
      "cannot accept fails every step on the target; found now, it is not found mid-incident.")
def _bad_names(c: RunbookCheck) -> Iterator[Finding]:
    for name, target in _kube_targets(c):
        kube = target.kube
        assert kube is not None
        for key, text in kube.fields():
            if templating.has_template(text):
                continue  # checked once rendered, when a step on the target starts
            why = problem(key, text, kube.kind)
            if why is not None:
                yield Finding(("targets", name, kube.kind, key), why)
