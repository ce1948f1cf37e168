"""Where a Kubernetes target's pods are (engine.fleet.pods), without asking a cluster."""

from __future__ import annotations

import pytest

from engine.errors import TemplateError
from engine.fleet.pods import lock_key, place_of
from engine.language.model import Kube, Target


def pods(**spec: str) -> Target:
    return Target("web", kube=Kube("pods", **spec))


def test_a_place_is_the_target_rendered_and_described_in_words() -> None:
    target = pods(context="prod", namespace="{{ inputs.ns }}", selector="app=web", container="app")
    place = place_of("web", target, {"inputs": {"ns": " shop "}})
    assert (place.namespace, place.selector, place.noun) == ("shop", "app=web", "pod")
    assert place.describe() == "pods app=web in namespace shop (context prod, container app)"


def test_a_rendered_value_kubectl_would_misread_is_refused_naming_the_property() -> None:
    target = pods(context="prod", namespace="shop", name="{{ inputs.pod }}")
    with pytest.raises(TemplateError) as caught:
        place_of("web", target, {"inputs": {"pod": "--all-namespaces"}})
    assert caught.value.where == "targets.web.pods.name"


def test_runs_lock_the_pods_a_target_means_by_context_namespace_and_selector() -> None:
    """Two runbooks naming the same pods lock the same key; a name known only at run time
    locks the target's name; the cluster is never asked."""
    a = lock_key("web", pods(context="prod", namespace="shop", selector="app=web"), {})
    b = lock_key("front", pods(context="prod", namespace="{{ inputs.ns }}", selector="app=web"),
                 {"inputs": {"ns": "shop"}})
    assert a == b == "k8s:prod/shop/pods/app=web"
    later = pods(context="prod", namespace="shop", name="{{ steps.find.outputs.pod }}")
    assert lock_key("web", later, {"inputs": {}}) == "<web>"


@pytest.mark.parametrize("target", ["{pods: {context: prod, namespace: shop, selector: app=web}}",
                                    "{group: webservers}"])
def test_a_target_whose_hosts_need_a_resolver_never_runs_on_no_host_without_one(target: str) -> None:
    """engine.testing without `resolve_hosts`: a pods (or group) target fails its step,
    where it used to 'succeed' on zero hosts."""
    from engine.fleet.fanout import FanOut
    from engine.testing import FakeRemote, ScriptedExecutor, run_text

    text = ("kind: runbook\nversion: 1\nid: t\ntitle: T\n"
            f"targets:\n  web: {target}\ndetection:\n  - {{id: a, target: web, run: echo hi}}\n")
    result, _ = run_text(text, executor=ScriptedExecutor({}), remote=FanOut(FakeRemote({})))
    assert result.outcome == "failed"
    assert "target 'web' has no hosts to run on here" in str(result.reason)
