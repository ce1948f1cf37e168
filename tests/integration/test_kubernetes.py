"""`run` steps on a Kubernetes target (`pods:`, `nodes:`), live.

No cluster can run here: these tests put a recording stand-in `kubectl` on PATH
(kubekit.py), which answers `get pods` from a fixture and runs an exec'd command on this
machine. They prove the exact command lines the engine gives kubectl, the fan-out over
the pods it lists and what the journal keeps of each pod; not that a real cluster
answers as the stand-in does.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubekit import FakeKubectl, node, pod
from livekit import kill_leftovers, live_processes_with, sleep_marker, wait_for

pytestmark = pytest.mark.integration

WEB = {"app": "web"}


def state(**extra: Any) -> dict[str, Any]:
    pods = [pod("web-a", labels=WEB), pod("web-b", labels=WEB), pod("web-c", labels=WEB),
            pod("web-old", labels=WEB, terminating=True), pod("web-new", labels=WEB, phase="Pending"),
            pod("db-0", labels={"app": "db"}), pod("web-x", namespace="other", labels=WEB)]
    return {"contexts": ["prod", "staging"], "pods": pods, **extra}


@pytest.fixture
def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKubectl:
    fake = FakeKubectl(tmp_path / "kube", state())
    for key, value in fake.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RUNBOOK_HOME", str(tmp_path / ".runbook"))
    return fake


@pytest.fixture
def run_text(tmp_path: Path, kube: FakeKubectl) -> Callable[..., Any]:
    """Run a runbook (YAML text) for real in this process; (result, journal records, console)."""
    from engine.language.validation import load_runbook
    from engine.run.inputs import resolve
    from engine.run.journal import read_journal
    from engine.run.session import LiveOptions, run_live

    def run(text: str, **inputs: Any) -> tuple[Any, list[dict[str, Any]], str]:
        path = tmp_path / "runbook.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        runbook = load_runbook(path)
        stream = io.StringIO()
        opts = LiveOptions(runs_dir=tmp_path / "runs", stream=stream, install_signals=False, yes=True)
        result, run_dir = run_live(runbook, resolve(runbook, from_file=inputs, environ={}).values, opts)
        return result, read_journal(run_dir).records, stream.getvalue()

    return run


def runbook(target: str, steps: str) -> str:
    return (f"kind: runbook\nversion: 1\nid: kube-test\ntitle: Kubernetes test\ndefaults: {{timeout: 30s}}\n"
            f"inputs:\n  ns: {{default: shop}}\ntargets:\n  web:\n{textwrap.indent(textwrap.dedent(target), '    ')}"
            f"detection:\n{textwrap.indent(textwrap.dedent(steps), '  ')}")


PODS = """\
pods:
  context: prod
  namespace: "{{ inputs.ns }}"
  selector: app=web
  container: app
"""


def finished(records: list[dict[str, Any]], step: str) -> dict[str, Any]:
    return next(r for r in records if r["event"] == "step.finished" and r["step"] == step)


def test_a_step_runs_in_every_running_pod_that_matches_through_kubectl_exec(run_text: Callable,
                                                                            kube: FakeKubectl) -> None:
    """The running pods of the selector in the namespace, no other; `{{ host }}` is the pod;
    the step's env reaches the container; each pod journaled with its own result."""
    result, records, console = run_text(runbook(PODS, """\
        - id: who
          target: web
          run: echo "in $FAKE_POD as {{ host }} says $GREETING"; echo warn >&2
          env: {GREETING: "hi; $(not run)"}
        """))
    assert result.outcome == "resolved"
    hosts = finished(records, "who")["hosts"]
    assert list(hosts) == ["web-a", "web-b", "web-c"]
    for name, view in hosts.items():
        assert view["status"] == "ok" and view["exit_code"] == 0
        assert view["stdout"] == f"in {name} as {name} says hi; $(not run)\n"
        assert view["stderr"] == "warn\n"
    assert sorted(e["host"] for e in records if e["event"] == "host.finished") == ["web-a", "web-b", "web-c"]
    [listing] = kube.calls_of("get")
    assert listing == ["--context=prod", "get", "pods", "--request-timeout=20s", "--output=json",
                       "--namespace=shop", "--selector=app=web"]
    execs = kube.calls_of("exec")
    assert sorted(c[c.index("--") - 1] for c in execs) == ["web-a", "web-b", "web-c"]
    first = execs[0]
    assert first[:4] == ["--context=prod", "exec", "--namespace=shop", "--container=app"]
    tail = first[first.index("--") + 1:]
    assert tail[:2] == ["/bin/sh", "-c"] and tail[3] == "sh"
    assert tail[4] == 'echo "in $FAKE_POD as ' + first[first.index("--") - 1] + ' says $GREETING"; echo warn >&2'
    assert "hi; $(not run)" in tail[5:]
    assert "web-a: in web-a" in console


def test_one_pod_by_name_gives_the_step_its_stdout_and_exit_code(run_text: Callable, kube: FakeKubectl) -> None:
    """With `name:`, the one pod's stdout and exit code are the step's; the pid line is not
    in the output; a non-zero exit is the command's, not kubectl's."""
    target = "pods: {context: prod, namespace: shop, name: web-b}\n"
    result, records, _ = run_text(runbook(target, """\
        - id: pct
          target: web
          run: echo 97
          outputs: {pct: "{{ stdout | int }}"}
        - id: code
          target: web
          run: cat; exit 4
          stdin: fed
          continue_on_error: true
        """))
    assert finished(records, "pct")["outputs"] == {"pct": 97}
    assert finished(records, "pct")["stdout"] == "97\n"
    code = finished(records, "code")
    assert code["exit_code"] == 4 and code["stdout"] == "fed" and "exit code 4" in code["error"]
    assert kube.calls_of("get")[0][-1] == "--field-selector=metadata.name=web-b"
    assert "--stdin" in kube.calls_of("exec")[-1]
    assert result.outcome == "resolved"


def test_serial_rollout_stops_at_the_first_failed_pod(run_text: Callable, kube: FakeKubectl) -> None:
    """`serial: 1`: one pod at a time; a failure stops the rollout, the rest never start."""
    _, records, _ = run_text(runbook(PODS + "serial: 1\n", """\
        - id: roll
          target: web
          run: test "$FAKE_POD" != web-b
        """))
    hosts = finished(records, "roll")["hosts"]
    assert [hosts[h]["status"] for h in ("web-a", "web-b", "web-c")] == ["ok", "failed", "not_run"]
    assert len(kube.calls_of("exec")) == 2


def test_a_pod_gone_mid_fan_out_is_unreachable_in_kubectl_words(run_text: Callable, kube: FakeKubectl) -> None:
    """A pod listed, then gone before its exec: that pod is `unreachable` with the API's
    message; the others run; `max_failures: 1` tolerates it."""
    kube.state["vanished"] = ["web-b"]
    kube.save()
    result, records, _ = run_text(runbook(PODS + "max_failures: 1\n", """\
        - id: look
          target: web
          run: echo here
        """))
    hosts = finished(records, "look")["hosts"]
    assert hosts["web-b"]["status"] == "unreachable"
    assert hosts["web-b"]["error"] == ('kubectl could not run the command in pod web-b: '
                                       'Error from server (NotFound): pods "web-b" not found')
    assert hosts["web-a"]["status"] == hosts["web-c"]["status"] == "ok"
    assert result.outcome == "resolved"


def test_a_missing_kubeconfig_fails_the_step_before_kubectl_is_asked(run_text: Callable, kube: FakeKubectl,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBECONFIG")
    result, records, _ = run_text(runbook(PODS, "- id: look\n  target: web\n  run: echo here\n"))
    assert result.outcome == "failed"
    error = finished(records, "look")["error"]
    assert "no kubeconfig: ~/.kube/config does not exist and KUBECONFIG is not set" in error
    assert kube.calls() == []


def test_a_context_the_kubeconfig_lacks_is_named_with_the_ones_it_has(run_text: Callable,
                                                                      kube: FakeKubectl) -> None:
    target = PODS.replace("context: prod", "context: prd")
    result, records, _ = run_text(runbook(target, "- id: look\n  target: web\n  run: echo here\n"))
    error = finished(records, "look")["error"]
    assert "context 'prd' of target 'web' is not in the kubeconfig" in error
    assert "did you mean 'prod'" in error and "prod, staging" in error
    assert kube.calls_of("exec") == [] and result.outcome == "failed"


def test_no_running_pod_says_which_ones_match_and_why_they_cannot_run(run_text: Callable,
                                                                      kube: FakeKubectl) -> None:
    kube.state["pods"] = [pod("web-old", labels=WEB, terminating=True), pod("web-new", labels=WEB, phase="Pending")]
    kube.save()
    _, records, _ = run_text(runbook(PODS, "- id: look\n  target: web\n  run: echo here\n"))
    error = finished(records, "look")["error"]
    assert "no running pods match pods app=web in namespace shop (context prod, container app)" in error
    assert "2 match but cannot run a command: web-old (terminating), web-new (pending)" in error


@pytest.fixture
def marker() -> Iterator[str]:
    value = sleep_marker()
    yield value
    kill_leftovers(value)


def test_a_timeout_stops_the_command_in_the_container_too(run_text: Callable, kube: FakeKubectl,
                                                          marker: str) -> None:
    """Killing kubectl does not stop what it started in a container: the engine signals the
    command's process group there through a second `kubectl exec`."""
    target = "pods: {context: prod, namespace: shop, name: web-a}\n"
    _, records, _ = run_text(runbook(target, f"""\
        - id: hang
          target: web
          run: sleep {marker}
          timeout: 1s
        """))
    step = finished(records, "hang")
    assert step["status"] == "failed" and "timed out" in step["error"]
    kills = [c for c in kube.calls_of("exec") if "kill -TERM" in c[-1]]
    assert len(kills) == 1 and kills[0][:3] == ["--context=prod", "exec", "--namespace=shop"]
    wait_for(lambda: not live_processes_with(marker), what="the command in the 'container' to stop")


def test_a_node_step_runs_through_kubectl_debug_and_reads_the_exit_code_from_the_pod(
        run_text: Callable, kube: FakeKubectl) -> None:
    """`nodes:` goes through `kubectl debug node/NAME -- chroot /host`; the stand-in exits 0
    whatever the command did, so the exit code 3 can only come from the debugging pod's
    status; that pod is deleted afterwards. NotReady nodes are left out."""
    kube.state["nodes"] = [node("n1", labels={"pool": "a"}), node("n2", ready=False, labels={"pool": "a"})]
    kube.save()
    target = "nodes: {context: prod, selector: pool=a, image: 'busybox:1.36', profile: sysadmin}\n"
    _, records, _ = run_text(runbook(target, """\
        - id: disk
          target: web
          run: echo "on {{ host }}"; exit 3
          exit_codes: [3]
        """))
    step = finished(records, "disk")
    assert list(step["hosts"]) == ["n1"]
    assert step["hosts"]["n1"]["exit_code"] == 3 and step["hosts"]["n1"]["stdout"] == "on n1\n"
    assert step["hosts"]["n1"]["stderr"] == ""  # kubectl's "Creating debugging pod" line is not the command's
    [debug] = kube.calls_of("debug")
    assert debug[:6] == ["--context=prod", "debug", "node/n1", "--image=busybox:1.36", "--attach",
                         "--profile=sysadmin"]
    assert debug[debug.index("--") + 1:][:4] == ["chroot", "/host", "/bin/sh", "-c"]
    assert kube.calls_of("delete")[0][:5] == ["--context=prod", "delete", "pod", "node-debugger-n1-x7k2q",
                                              "--wait=false"]


def test_a_dry_run_lists_the_pods_it_would_use_and_runs_nothing_in_them(tmp_path: Path, kube: FakeKubectl) -> None:
    """`runbook run --dry-run` asks the cluster which pods match (read only), never execs."""
    from livekit import Workspace

    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    path = ws.write("rb.yaml", runbook(PODS, "- id: look\n  target: web\n  run: echo {{ host }}\n"))
    done = ws.run("run", path, "--dry-run", env=kube.env())
    assert done.code == 0, done.text
    line = "pods app=web in namespace shop (context prod, container app), now: web-a, web-b, web-c"
    assert f"target web: {line}" in done.out and f"on web: {line}" in done.out
    assert {next(w for w in c if not w.startswith("--")) for c in kube.calls()} <= {"get", "config"}
    assert kube.calls_of("get") and not kube.calls_of("exec")


def test_a_dry_run_says_so_when_it_cannot_ask_the_cluster(tmp_path: Path, kube: FakeKubectl) -> None:
    from livekit import Workspace

    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    path = ws.write("rb.yaml", runbook(PODS, "- id: look\n  target: web\n  run: echo {{ host }}\n"))
    env = {**kube.env(), "KUBECONFIG": "", "HOME": str(tmp_path / "nohome")}
    done = ws.run("run", path, "--dry-run", env=env)
    assert done.code == 0, done.text
    assert ("target web: pods app=web in namespace shop (context prod, container app): cannot ask the "
            "cluster now (no kubeconfig: ~/.kube/config does not exist and KUBECONFIG is not set (set "
            "KUBECONFIG, or the target's `kubeconfig`)); a run lists them when each step starts") in done.out
    assert kube.calls() == []


def test_a_command_a_killed_engine_left_in_a_pod_is_found_and_stopped_through_kubectl(
        tmp_path: Path, kube: FakeKubectl, marker: str) -> None:
    """`runbook resume` looks for the earlier attempt's processes in the pod (kubectl exec,
    never SSH to a host named like the pod) and stops them there with --stop-running."""
    import signal
    import time

    from livekit import Workspace, collected, stop

    ws = Workspace(tmp_path / "ws")
    ws.root.mkdir()
    text = runbook("pods: {context: prod, namespace: shop, name: web-a}\n",
                   f"- id: work\n  target: web\n  run: touch {ws.root}/work.started; sleep {marker}\n"
                   f"- id: after\n  run: echo done\n")
    ws.write("rb.yaml", text)
    proc = ws.start("run", "rb.yaml", env=kube.env())
    try:
        wait_for(lambda: (ws.root / "work.started").exists() or proc.poll() is not None, what="the work step")
        assert proc.poll() is None, collected(proc).text
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        stop(proc)
    run_dir = ws.only_run()
    done = ws.run("resume", run_dir, "--rerun-interrupted", env=kube.env())
    assert done.code == 2, done.text
    assert "step work is still running (process group" in done.err and " on web-a" in done.err
    ws.write("rb.yaml", text.replace(f"sleep {marker}", "true"))
    done = ws.run("resume", run_dir, "--rerun-interrupted", "--stop-running", env=kube.env())
    assert done.code == 0, done.text
    assert live_processes_with(marker) == []
    assert any("kill -TERM" in c[-1] for c in kube.calls_of("exec"))


@pytest.mark.parametrize("value", ["--all-namespaces", "web-a --namespace=kube-system", "Web_A", "web-a\nx"])
def test_a_templated_pod_name_is_checked_once_rendered_and_never_reaches_kubectl(
        run_text: Callable, kube: FakeKubectl, value: str) -> None:
    """A name from an input that Kubernetes would refuse, or kubectl would read as its own
    flag, fails the step naming the property; kubectl is not called with it."""
    target = 'pods: {context: prod, namespace: shop, name: "{{ inputs.pod }}"}\n'
    text = runbook(target, "- id: look\n  target: web\n  run: echo here\n").replace(
        "inputs:\n", "inputs:\n  pod: {type: string}\n")
    result, records, _ = run_text(text, pod=value)
    error = finished(records, "look")["error"]
    assert "targets.web.pods.name" in error and "is not a pod name" in error
    assert kube.calls() == [] and result.outcome == "failed"


def test_a_container_without_a_shell_is_named_as_the_reason(run_text: Callable, kube: FakeKubectl) -> None:
    kube.state["no_shell"] = ["web-a"]
    kube.save()
    target = "pods: {context: prod, namespace: shop, name: web-a}\n"
    _, records, _ = run_text(runbook(target, "- id: look\n  target: web\n  run: echo here\n"))
    view = finished(records, "look")["hosts"]["web-a"]
    assert view["status"] == "unreachable"
    assert view["error"].startswith("kubectl could not run the command in pod web-a: the container has no "
                                    "/bin/sh, which `run` steps need (error: Internal error occurred")


def test_kubectls_defaulted_container_notice_is_not_the_commands_stderr(run_text: Callable,
                                                                         kube: FakeKubectl) -> None:
    """Without `container:`, kubectl tells which container of a multi-container pod it
    picked, on stderr: that is kubectl's line, not the command's."""
    kube.state["pods"] = [pod("web-a", containers=("app", "envoy"))]
    kube.save()
    target = "pods: {context: prod, namespace: shop, name: web-a}\n"
    _, records, console = run_text(runbook(target, """\
        - id: quiet
          target: web
          run: echo out
        - id: loud
          target: web
          run: echo out; echo err >&2
        """))
    assert finished(records, "quiet")["stderr"] == ""
    assert finished(records, "loud")["stderr"] == "err\n" and finished(records, "loud")["stdout"] == "out\n"
    assert "Defaulted container" not in console


def test_a_node_step_that_times_out_deletes_its_debugging_pod(run_text: Callable, kube: FakeKubectl,
                                                               marker: str) -> None:
    """A node's command is stopped by deleting its debugging pod (no second exec)."""
    kube.state["nodes"] = [node("n1")]
    kube.save()
    target = "nodes: {context: prod, name: n1, image: 'busybox:1.36'}\n"
    _, records, _ = run_text(runbook(target, f"- id: hang\n  target: web\n  run: sleep {marker}\n  timeout: 1s\n"))
    assert "timed out" in finished(records, "hang")["error"]
    [delete] = kube.calls_of("delete")
    assert delete[:4] == ["--context=prod", "delete", "pod", "node-debugger-n1-x7k2q"]
    assert kube.calls_of("exec") == [] and [c for c in kube.calls_of("get") if c[2] == "pod"] == []


def test_a_live_run_on_pods_replays_as_a_drill_on_the_same_pods(tmp_path: Path, run_text: Callable,
                                                                 kube: FakeKubectl) -> None:
    """`scenario from-run` records the pods each target listed (`pods:`), so the replay
    fans out to them with each pod's own recorded answer."""
    from engine.language.validation import load_runbook, load_scenario
    from engine.simulation.drill import run_scenario
    from engine.simulation.replay import dump, scenario_from_run

    _, records, _ = run_text(runbook(PODS, """\
        - id: who
          target: web
          run: echo "{{ host }}"; test "$FAKE_POD" != web-c
          continue_on_error: true
        """))
    [run_dir] = (tmp_path / "runs").iterdir()
    out = tmp_path / "replay.yaml"
    data = scenario_from_run(run_dir, str(out))
    assert data["pods"] == {"web": ["web-a", "web-b", "web-c"]}
    out.write_text(dump(data), encoding="utf-8")
    scenario = load_scenario(out)
    replayed = run_scenario(scenario, load_runbook(scenario.runbook_path))
    live_hosts = finished(records, "who")["hosts"]
    drill_hosts = finished(replayed.records, "who")["hosts"]
    assert list(drill_hosts) == list(live_hosts) == ["web-a", "web-b", "web-c"]
    assert {h: (v["stdout"], v["exit_code"]) for h, v in drill_hosts.items()} == {
        "web-a": ("web-a\n", 0), "web-b": ("web-b\n", 0), "web-c": ("web-c\n", 1)}


def test_a_connection_lost_while_the_command_ran_is_unreachable_not_an_exit_code(
        run_text: Callable, kube: FakeKubectl) -> None:
    """kubectl failing on its own after the command started (no `command terminated with
    exit code N` line) is not the command's exit code: the pod is unreachable, and the
    command may have run partly."""
    kube.state["lose"] = ["web-b"]
    kube.save()
    _, records, _ = run_text(runbook(PODS, "- id: look\n  target: web\n  run: echo here\n"))
    hosts = finished(records, "look")["hosts"]
    assert hosts["web-b"]["status"] == "unreachable" and hosts["web-b"]["exit_code"] is None
    assert hosts["web-b"]["error"] == ("kubectl lost pod web-b while the command ran (it may have run partly): "
                                       "error: lost connection to pod")
    assert hosts["web-a"]["status"] == "ok" and hosts["web-b"]["stdout"] == "here\n"
