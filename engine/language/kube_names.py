"""What Kubernetes accepts as the names a pod or node target gives (a pod, node or
container name, a namespace, a context, a label selector, an image).

Lint checks the values a runbook writes literally; the run checks them again once
their templates are rendered, before any of them reaches kubectl's command line: a
value kubectl would refuse, or read as one of its own flags, never gets there.
"""

from __future__ import annotations

import re

from engine.templates.patterns import deferred

__all__ = ["problem"]

# RFC 1123 names as Kubernetes validates them: a label (namespaces, containers) and a
# subdomain, dot-separated labels (pods, nodes).
_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = deferred(rf"{_LABEL}(?:\.{_LABEL})*")
_DNS_LABEL = deferred(_LABEL)
_CONTROL = deferred(r"[\x00-\x1f\x7f]")

_LIMITS = {"name": 253, "namespace": 63, "container": 63}


def problem(key: str, value: str, kind: str = "pods") -> str | None:
    """Why `value` cannot be the target's `key` (name, namespace, container, context,
    selector, image); None when it can."""
    what = {"name": "a pod name" if kind == "pods" else "a node name", "namespace": "a namespace",
            "container": "a container name"}.get(key)
    if what is not None:
        pattern = _SUBDOMAIN if key == "name" else _DNS_LABEL
        if len(value) > _LIMITS[key] or not pattern.fullmatch(value):
            chars = "lower-case letters, digits, '-' and '.'" if key == "name" else "lower-case letters, digits and '-'"
            return (f"{value!r} is not {what}: {chars}, starting and ending with a letter or digit, "
                    f"at most {_LIMITS[key]} characters")
        return None
    if not value.strip():
        return f"the {key} is empty"
    if _CONTROL.search(value):
        return f"the {key} {value!r} holds a control character (a newline?)"
    if key == "image" and re.search(r"\s", value):
        return f"{value!r} is not an image reference: it holds a space"
    return None
