"""kubectl, the program: the command lines the engine gives it and running the short ones.

Every command line is an argv list: no name or value passes through a shell on this
machine. Values go in as `--flag=value` (a value starting with `-` stays the flag's
value) and names are checked before they get here (engine/language/kube_names.py). A
step's command reaches the container as one argument of `/bin/sh -c`, with the step's
environment as further arguments (see `wrapper`), so it runs there exactly as a local
command runs here. The cluster is reached with the user's own kubeconfig: $KUBECONFIG,
~/.kube/config, or the target's `kubeconfig`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Cluster", "Done", "find", "kubeconfig_problem", "message", "run_short", "terminated_code", "wrapper"]

KUBECTL = "kubectl"
REQUEST_TIMEOUT = "20s"  # each API request of a short command (kubectl's own limit)
SHORT_TIMEOUT = 30.0  # a short command in all, should kubectl itself hang
PID_MARK = "RUNBOOK-PID "
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TERMINATED = re.compile(r"^command terminated with exit code (\d+)$")


@dataclass(frozen=True)
class Cluster:
    """Which cluster, as whom: a kubeconfig (None: kubectl's default) and a context in it
    (None: its current context)."""

    kubeconfig: str | None = None
    context: str | None = None

    def flags(self) -> list[str]:
        out = [f"--kubeconfig={os.path.expanduser(self.kubeconfig)}"] if self.kubeconfig else []
        return out + ([f"--context={self.context}"] if self.context else [])

    def describe(self) -> str:
        where = f"context {self.context}" if self.context else "the current context"
        return f"{where} of {self.kubeconfig}" if self.kubeconfig else where


def find() -> str | None:
    """kubectl's path on PATH, or None."""
    return shutil.which(KUBECTL)


def kubeconfig_problem(path: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """Why kubectl would have no kubeconfig to read; None when it has one (or runs in a pod,
    where it uses the pod's service account)."""
    environ = os.environ if environ is None else environ
    if path:
        full = os.path.expanduser(path)
        return None if os.path.isfile(full) else f"the kubeconfig {path} does not exist"
    listed = [p for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    if listed:
        if any(os.path.isfile(os.path.expanduser(p)) for p in listed):
            return None
        return f"no file that KUBECONFIG names exists ({environ['KUBECONFIG']})"
    home = environ.get("HOME") or os.path.expanduser("~")
    if os.path.isfile(os.path.join(home, ".kube", "config")) or environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    return ("no kubeconfig: ~/.kube/config does not exist and KUBECONFIG is not set "
            "(set KUBECONFIG, or the target's `kubeconfig`)")


# -- command lines ------------------------------------------------------------------------------


def contexts_argv(cluster: Cluster) -> list[str]:
    """The contexts of the kubeconfig, one name a line (reads the file; no cluster)."""
    return [KUBECTL, *Cluster(cluster.kubeconfig).flags(), "config", "get-contexts", "--output=name"]


def list_argv(cluster: Cluster, kind: str, namespace: str | None, selector: str | None,
              name: str | None) -> list[str]:
    """Pods (in `namespace`) or nodes, by label selector or by name, as a JSON List."""
    argv = [KUBECTL, *cluster.flags(), "get", kind, f"--request-timeout={REQUEST_TIMEOUT}", "--output=json"]
    if kind == "pods" and namespace:
        argv.append(f"--namespace={namespace}")
    if selector is not None:
        argv.append(f"--selector={selector}")
    if name is not None:
        argv.append(f"--field-selector=metadata.name={name}")
    return argv


def exec_argv(cluster: Cluster, namespace: str | None, pod: str, container: str | None,
              command: Sequence[str], *, stdin: bool) -> list[str]:
    """`kubectl exec` of `command` (an argv) in a pod; stdin passed only when there is some."""
    argv = [KUBECTL, *cluster.flags(), "exec"]
    argv += [f"--namespace={namespace}"] if namespace else []
    argv += [f"--container={container}"] if container else []
    argv += ["--stdin"] if stdin else []
    return [*argv, pod, "--", *command]


def debug_argv(cluster: Cluster, namespace: str | None, node: str, image: str, profile: str | None,
               command: Sequence[str], *, stdin: bool) -> list[str]:
    """`kubectl debug node/NAME` running `command` in the node's root filesystem (chroot /host),
    attached until it ends. kubectl prints the debugging pod's name before it starts."""
    argv = [KUBECTL, *cluster.flags(), "debug", f"node/{node}", f"--image={image}", "--attach"]
    argv += [f"--namespace={namespace}"] if namespace else []
    argv += [f"--profile={profile}"] if profile else []
    argv += ["--stdin"] if stdin else []
    return [*argv, "--", "chroot", "/host", *command]


def pod_argv(cluster: Cluster, namespace: str | None, pod: str) -> list[str]:
    """One pod as JSON (the debugging pod of a node step: how its command ended)."""
    argv = [KUBECTL, *cluster.flags(), "get", "pod", pod, f"--request-timeout={REQUEST_TIMEOUT}", "--output=json"]
    return argv + ([f"--namespace={namespace}"] if namespace else [])


def delete_argv(cluster: Cluster, namespace: str | None, pod: str) -> list[str]:
    """Delete a pod without waiting for it to go (its processes get SIGTERM, then SIGKILL)."""
    argv = [KUBECTL, *cluster.flags(), "delete", "pod", pod, "--wait=false", "--ignore-not-found",
            f"--request-timeout={REQUEST_TIMEOUT}"]
    return argv + ([f"--namespace={namespace}"] if namespace else [])


_SCRIPT = 'echo "RUNBOOK-PID $$"; {exports}exec /bin/sh -c "$1"'


def wrapper(command: str, env: Mapping[str, str]) -> list[str]:
    """The argv that runs `command` in a container as `/bin/sh -c` runs it here: first it
    prints its pid (which leads the process group the container runtime gave it: how a
    timeout stops it), then exports the environment and becomes `/bin/sh -c COMMAND`.
    The command and the values are arguments, never part of the script."""
    names = [k for k in env if _ENV_NAME.match(k)]
    exports = "".join(f'export {k}="${{{i}}}"; ' for i, k in enumerate(names, start=2))
    return ["/bin/sh", "-c", _SCRIPT.format(exports=exports), "sh", command, *(env[k] for k in names)]


def kill_argv(pid: int) -> list[str]:
    """SIGTERM the command's process group, SIGKILL what is left after the grace period."""
    from .ssh import kill_command

    return ["/bin/sh", "-c", kill_command(pid)]


# -- short commands -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Done:
    """How a short kubectl command ended."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except ValueError:
            return None


def run_short(argv: Sequence[str], timeout: float = SHORT_TIMEOUT) -> Done:
    """Run a short kubectl command to its end (no stdin). A missing kubectl gives 127."""
    try:
        proc = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout,
                              check=False)
    except FileNotFoundError:
        return Done(127, "", f"{argv[0]}: not found on PATH")
    except subprocess.TimeoutExpired:
        return Done(124, "", f"kubectl did not answer within {timeout:g}s")
    except OSError as exc:
        return Done(126, "", f"cannot start {argv[0]}: {exc.strerror or exc}")
    return Done(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))


def message(stderr: str) -> str:
    """kubectl's own words from its stderr: its error lines, without its usage hints."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith("See '")]
    if not lines:
        return "kubectl failed without a message"
    errors = [ln for ln in lines if ln.lower().startswith(("error", "unable", "the connection"))]
    return "; ".join((errors or lines)[-3:])


def terminated_code(line: str) -> int | None:
    """The exit code in kubectl's `command terminated with exit code N` line, else None."""
    match = _TERMINATED.match(line.strip())
    return int(match.group(1)) if match else None
