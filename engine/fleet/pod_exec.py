"""Run a step's command in a pod (`kubectl exec`) or on a node (`kubectl debug node/…
-- chroot /host`) of a Kubernetes target: the executor the fan-out drives for such targets.

kubectl runs here, as a local program given as an argv (no shell on this machine), with
the user's kubeconfig. In the container, the command first prints its pid (see
kubectl.wrapper): that line is taken out of the output, and whether it came tells a
command that ran (its exit code is kubectl's) from a kubectl that never reached the
pod (a pod gone mid-fan-out, a refused exec: the host is `unreachable`, in kubectl's
words). On timeout or Ctrl-C the local kubectl is stopped, and so is the command in the
container: its process group is signalled through a second `kubectl exec` (a node's
debugging pod is deleted instead).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace

from engine.executors.base import Cancel, Invocation, OutputSink, Result
from engine.executors.local import LocalExecutor

from . import kubectl
from .kubectl import Done
from .pods import Place

__all__ = ["PodExecutor"]

_KUBECTL_ERROR = re.compile(r"^(error: |Error from server|Unable to connect|The connection to the server)")
_DEBUG_POD = re.compile(r"Creating debugging pod (\S+) with container")
_PID_LINE = re.compile(rb"^" + re.escape(kubectl.PID_MARK.encode()) + rb"(\d+)\r?$")
# kubectl's own first line on stderr: which container of several it picked (a pod), which
# debugging pod it created (a node). Not the command's: left out of its stderr.
_NOTICE = re.compile(rb'^(Defaulted container "[^"]*" out of: |Creating debugging pod \S+ with container )')


class _Marked:
    """The output sink of one command in a container. stdout is held back until its first
    line (the pid mark) has come, and stderr until its first line, which is dropped when
    it is kubectl's notice (not the command's); everything else passes on as it comes."""

    def __init__(self, sink: OutputSink, host: str | None) -> None:
        self.sink, self.host = sink, host
        self.heads = {"stdout": bytearray(), "stderr": bytearray()}
        self.pid: int | None = None

    def output(self, stream: str, data: bytes, host: str | None) -> None:
        head = self.heads.get(stream)
        if head is None:  # that stream's first line has come
            self.sink.output(stream, data, self.host)
            return
        head += data
        line, newline, rest = bytes(head).partition(b"\n")
        if not newline:
            return
        del self.heads[stream]
        match = _PID_LINE.match(line) if stream == "stdout" else None
        if match is not None:
            self.pid = int(match.group(1))
        elif stream == "stdout" or not _NOTICE.match(line):
            rest = bytes(head)  # the command's own first line: pass it on
        if rest:
            self.sink.output(stream, rest, self.host)

    def flush(self) -> None:
        """What is still held back (a first line that never ended) goes on as it is."""
        for stream, head in list(self.heads.items()):
            if head:
                self.sink.output(stream, bytes(head), self.host)
        self.heads.clear()

    def process_started(self, pgid: int, host: str | None) -> None:
        self.sink.process_started(pgid, None)  # kubectl, on this machine

    def stdout(self, text: str) -> str:
        """The command's stdout without the mark line."""
        first, newline, rest = text.partition("\n")
        return rest if newline and _PID_LINE.match(first.encode()) else text

    @staticmethod
    def stderr(text: str) -> str:
        """The command's stderr without kubectl's notice."""
        first, newline, rest = text.partition("\n")
        return rest if newline and _NOTICE.match(first.encode()) else text


class PodExecutor:
    """Executes invocations whose `host` is a pod or a node of a Kubernetes target.

    `places(target)` says where the target's pods are (PodResolver.place); `short` runs
    kubectl's short commands (kubectl.run_short, or a fake)."""

    def __init__(self, places: Callable[[str | None], Place],
                 short: Callable[[Sequence[str]], Done] = kubectl.run_short,
                 local: LocalExecutor | None = None) -> None:
        self._places, self._short = places, short
        self._local = local or LocalExecutor()

    def run(self, invocation: Invocation, sink: OutputSink, cancel: Cancel) -> Result:
        place = self._places(invocation.target)
        host = invocation.host or ""
        command = kubectl.wrapper(invocation.command, invocation.env)
        stdin = invocation.stdin is not None
        if place.kind == "nodes":
            argv = kubectl.debug_argv(place.cluster, place.namespace, host, place.image or "", place.profile,
                                      command, stdin=stdin)
        else:
            argv = kubectl.exec_argv(place.cluster, place.namespace, host, place.container, command, stdin=stdin)
        marked = _Marked(sink, invocation.host)
        # The step's environment went into the container (the wrapper); kubectl itself
        # runs with the engine's, where KUBECONFIG and the user's credentials are.
        result = self._local.run(replace(invocation, argv=tuple(argv), env={}), marked, cancel)
        marked.flush()
        debug_pod = _debug_pod(result.stderr) if place.kind == "nodes" else None
        if marked.pid is not None and (result.timed_out or result.cancelled) and place.kind == "pods":
            self._short(kubectl.exec_argv(place.cluster, place.namespace, host, place.container,
                                          kubectl.kill_argv(marked.pid), stdin=False))
        ended = marked.pid is not None and not (result.timed_out or result.cancelled)
        code = self._node_code(place, debug_pod) if debug_pod is not None and ended else None
        if debug_pod is not None:
            self._short(kubectl.delete_argv(place.cluster, place.namespace, debug_pod))
        return _finish(invocation, place, result, marked, code)

    def _node_code(self, place: Place, pod: str) -> int | None:
        """How the command in a node's debugging pod ended: its container's exit code
        (kubectl debug does not always pass it on); None when the pod does not say."""
        done = self._short(kubectl.pod_argv(place.cluster, place.namespace, pod))
        data = done.json() if done.code == 0 else None
        status = data.get("status") if isinstance(data, dict) else None
        for container in (status.get("containerStatuses") or []) if isinstance(status, dict) else []:
            state = container.get("state") if isinstance(container, dict) else None
            terminated = state.get("terminated") if isinstance(state, dict) else None
            if isinstance(terminated, dict) and isinstance(terminated.get("exitCode"), int):
                return int(terminated["exitCode"])
        return None


def _lost(result: Result) -> bool:
    """kubectl failed after the command started, with an error of its own: when the
    command itself exits non-zero, kubectl's last line says so (`command terminated with
    exit code N`) and its exit code is the command's."""
    if result.exit_code in (0, None) or result.timed_out or result.cancelled:
        return False
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    return kubectl.terminated_code(last) is None and _KUBECTL_ERROR.match(last) is not None


def _debug_pod(stderr: str) -> str | None:
    match = _DEBUG_POD.search(stderr)
    return match.group(1) if match else None


def _finish(inv: Invocation, place: Place, result: Result, marked: _Marked, code: int | None) -> Result:
    """The Result of the command in the container, as a local one would read."""
    stdout = marked.stdout(result.stdout)
    result = replace(result, stderr=marked.stderr(result.stderr))
    if marked.pid is None and not (result.timed_out or result.cancelled):
        why = result.error if result.exit_code is None else kubectl.message(result.stderr)
        if result.exit_code in (126, 127) and "/bin/sh" in result.stderr:
            why = f"the container has no /bin/sh, which `run` steps need ({why})"
        return replace(result, host=inv.host, stdout=stdout, ok=False,
                       error=f"kubectl could not run the command in {place.noun} {inv.host}: {why}",
                       extra={"status": "unreachable"})
    if place.kind == "pods" and _lost(result):
        return replace(result, host=inv.host, stdout=stdout, exit_code=None, ok=False,
                       error=f"kubectl lost pod {inv.host} while the command ran (it may have run partly): "
                             f"{kubectl.message(result.stderr)}", extra={"status": "unreachable"})
    if code is not None and code != result.exit_code and not (result.timed_out or result.cancelled):
        ok = code in inv.exit_codes
        return replace(result, host=inv.host, stdout=stdout, exit_code=code, ok=ok,
                       error=None if ok else f"exit code {code}")
    return replace(result, host=inv.host, stdout=stdout)
