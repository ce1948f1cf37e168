"""Fleet: many hosts. `hosts` decides which hosts a step's target means (inventory groups
and templated host lists); `ssh` runs a command on one host over SSH (connections pooled
and reused across steps, settings completed from ~/.ssh/config, host keys checked); `fanout`
runs one invocation on every host of a target under its policy (`parallel`, `serial`,
`max_failures`) and reports each host through callbacks. Kubernetes targets: `pods`
lists the pods or nodes a target means, `kubectl` builds kubectl's command lines, and
`pod_exec` runs a command in a pod or on a node through them. Fleet knows nothing of the run
loop: the run layer makes a fan-out's outcome the step's attempt and its events.

Layer: above executors. It may import `engine.executors`, `engine.language` and
`engine.templates`; never the run loop.
"""

__all__ = ["fanout", "hosts", "kubectl", "pod_exec", "pods", "ssh"]
