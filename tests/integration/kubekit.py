"""A stand-in for `kubectl`: no Kubernetes cluster can run on these machines, so tests put
this program on PATH as `kubectl`. It is NOT a cluster: it records every argv the engine
gives it (calls.jsonl) and answers from a JSON file the test writes (state.json):

- `config get-contexts --output=name`: the state's contexts;
- `get pods|nodes --output=json` with --namespace, --selector (`k=v`, `k!=v`, `k`, comma
  separated) and --field-selector=metadata.name=X: a JSON List of the matching items;
- `exec [flags] POD -- CMD...`: runs CMD here, in its own session (as a container's process
  outlives a killed kubectl), with FAKE_POD set; a pod in the state's `vanished` list
  answers as the API server does for a pod that is gone, one in `no_shell` as a distroless
  container without /bin/sh does; without --container, a pod of several containers gets
  kubectl's `Defaulted container` notice on stderr first; a pod in `lose` runs the command,
  then fails as kubectl does when the connection drops; a non-zero exit prints kubectl's
  `command terminated with exit code N` and exits N;
- `debug node/NAME ... -- chroot /host CMD...`: prints kubectl's `Creating debugging pod`
  line, runs CMD here and exits 0 whatever CMD did (the exit code is then only in the
  debugging pod's status, which `get pod NAME` answers): the engine must read it there;
- `delete pod NAME`: recorded.
A `--context` the state does not know fails as kubectl does.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

SCRIPT = r'''#!{python}
import json, os, subprocess, sys
STATE, CALLS = {state!r}, {calls!r}
argv = sys.argv[1:]
with open(CALLS, "a") as f:
    f.write(json.dumps(argv) + "\n")
state = json.load(open(STATE))
flags = {{}}
words = []
rest = []
for i, a in enumerate(argv):
    if a == "--":
        rest = argv[i + 1:]
        break
    if a.startswith("--"):
        k, _, v = a[2:].partition("=")
        flags[k] = v
    else:
        words.append(a)
ctx = flags.get("context")
if ctx is not None and ctx not in state.get("contexts", []):
    sys.stderr.write('error: context "%s" does not exist\n' % ctx)
    sys.exit(1)

def selected(item):
    labels = item.get("metadata", {{}}).get("labels", {{}})
    for term in filter(None, flags.get("selector", "").split(",")):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k) != v:
                return False
        elif term not in labels:
            return False
    name = flags.get("field-selector", "").partition("metadata.name=")[2]
    return not name or item["metadata"]["name"] == name

def run_here(cmd, pod):
    env = dict(os.environ, FAKE_POD=pod)
    proc = subprocess.Popen(cmd, env=env, start_new_session=True,
                            stdin=None if "stdin" in flags else subprocess.DEVNULL)
    return proc.wait()

if words[:2] == ["config", "get-contexts"]:
    print("\n".join(state.get("contexts", [])))
elif words[:1] == ["get"] and words[1] in ("pods", "nodes"):
    ns = flags.get("namespace", state.get("default_namespace", "default"))
    items = [i for i in state.get(words[1], []) if selected(i)
             and (words[1] == "nodes" or i["metadata"].get("namespace", "default") == ns)]
    print(json.dumps({{"apiVersion": "v1", "kind": "List", "items": items}}))
elif words[:2] == ["get", "pod"]:
    code = state.get("debug_codes", {{}}).get(words[2])
    if code is None:
        sys.stderr.write('Error from server (NotFound): pods "%s" not found\n' % words[2])
        sys.exit(1)
    term = {{"terminated": {{"exitCode": code}}}}
    print(json.dumps({{"status": {{"containerStatuses": [{{"name": "debugger", "state": term}}]}}}}))
elif words[:1] == ["exec"]:
    pod = words[1]
    if pod in state.get("vanished", []):
        sys.stderr.write('Error from server (NotFound): pods "%s" not found\n' % pod)
        sys.exit(1)
    item = next((i for i in state.get("pods", []) if i["metadata"]["name"] == pod), {{}})
    names = [c["name"] for c in item.get("spec", {{}}).get("containers", [])]
    if "container" not in flags and len(names) > 1:
        sys.stderr.write('Defaulted container "%s" out of: %s\n' % (names[0], ", ".join(names)))
        sys.stderr.flush()
    if pod in state.get("no_shell", []):
        sys.stderr.write('error: Internal error occurred: error executing command in container: failed to exec '
                         'in container: failed to start exec: OCI runtime exec failed: exec failed: unable to '
                         'start container process: exec: "/bin/sh": stat /bin/sh: no such file or directory: '
                         'unknown\n')
        sys.exit(126)
    code = run_here(rest, pod)
    if pod in state.get("lose", []):
        sys.stderr.write("error: lost connection to pod\n")
        sys.exit(1)
    if code:
        sys.stderr.write("command terminated with exit code %d\n" % code)
    sys.exit(code)
elif words[:1] == ["debug"]:
    node = words[1].split("/", 1)[1]
    pod = "node-debugger-%s-x7k2q" % node
    sys.stderr.write("Creating debugging pod %s with container debugger on node %s.\n" % (pod, node))
    sys.stderr.flush()
    code = run_here(rest[2:], node)
    state.setdefault("debug_codes", {{}})[pod] = code
    json.dump(state, open(STATE, "w"))
elif words[:2] == ["delete", "pod"]:
    pass
else:
    sys.stderr.write("fake kubectl: unknown command %r\n" % (argv,))
    sys.exit(2)
'''


def pod(name: str, namespace: str = "shop", labels: dict[str, str] | None = None, phase: str = "Running",
        terminating: bool = False, containers: tuple[str, ...] = ("app",)) -> dict[str, Any]:
    """A pod as `kubectl get pods -o json` lists it (the fields the engine reads)."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels or {}}
    if terminating:
        meta["deletionTimestamp"] = "2026-12-04T21:00:00Z"
    spec = {"containers": [{"name": c} for c in containers]}
    return {"kind": "Pod", "metadata": meta, "spec": spec, "status": {"phase": phase}}


def node(name: str, ready: bool = True, labels: dict[str, str] | None = None) -> dict[str, Any]:
    cond = {"type": "Ready", "status": "True" if ready else "False"}
    return {"kind": "Node", "metadata": {"name": name, "labels": labels or {}}, "status": {"conditions": [cond]}}


class FakeKubectl:
    """The stand-in installed in `root/bin`: `path` goes first on PATH; `calls()` are the
    argvs it was given, in order; `state` is what it answers from (`save()` after a change)."""

    def __init__(self, root: Path, state: dict[str, Any]) -> None:
        self.root = root
        self.bin = root / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.state_file, self.calls_file = root / "state.json", root / "calls.jsonl"
        self.state = state
        self.save()
        script = self.bin / "kubectl"
        script.write_text(SCRIPT.format(python=sys.executable, state=str(self.state_file),
                                        calls=str(self.calls_file)))
        script.chmod(0o755)
        self.kubeconfig = root / "kubeconfig"
        self.kubeconfig.write_text("apiVersion: v1\nkind: Config\n")

    def save(self) -> None:
        self.state_file.write_text(json.dumps(self.state))

    def env(self) -> dict[str, str]:
        """PATH with the stand-in first, and KUBECONFIG naming a file that exists."""
        return {"PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}", "KUBECONFIG": str(self.kubeconfig)}

    def calls(self) -> list[list[str]]:
        if not self.calls_file.exists():
            return []
        return [json.loads(line) for line in self.calls_file.read_text().splitlines()]

    def calls_of(self, verb: str) -> list[list[str]]:
        """The calls whose first word (after the global flags) is `verb`."""
        return [c for c in self.calls() if next((w for w in c if not w.startswith("--")), None) == verb]
