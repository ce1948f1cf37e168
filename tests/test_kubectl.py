"""kubectl's command lines (engine.fleet.kubectl): what runs in a container, and which
kubeconfig kubectl would read."""

from __future__ import annotations

import subprocess
from pathlib import Path

from engine.fleet import kubectl


def test_the_wrapper_runs_the_command_as_sh_c_with_the_env_exported_and_prints_its_pid_first() -> None:
    """Values and the command are arguments, never part of the script: quotes, `$(...)`
    and newlines arrive as written."""
    env = {"A": "it's \"quoted\" $(touch /tmp/never) `x`", "B": "two\nlines", "C": ""}
    argv = kubectl.wrapper('printf "%s|%s|%s|" "$A" "$B" "$C"; echo "$0"', env)
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    first, _, rest = out.partition("\n")
    assert first.startswith(kubectl.PID_MARK) and first[len(kubectl.PID_MARK):].isdigit()
    assert rest == "it's \"quoted\" $(touch /tmp/never) `x`|two\nlines||/bin/sh\n"
    assert not Path("/tmp/never").exists()


def test_the_kubeconfig_kubectl_would_read_or_why_there_is_none(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("apiVersion: v1\n")
    home = {"HOME": str(tmp_path / "home")}
    assert kubectl.kubeconfig_problem(str(config), home) is None
    gone = tmp_path / "gone"
    assert kubectl.kubeconfig_problem(str(gone), home) == f"the kubeconfig {gone} does not exist"
    assert kubectl.kubeconfig_problem(None, {**home, "KUBECONFIG": f"{tmp_path / 'gone'}:{config}"}) is None
    listed = kubectl.kubeconfig_problem(None, {**home, "KUBECONFIG": str(tmp_path / "gone")})
    assert listed == f"no file that KUBECONFIG names exists ({tmp_path / 'gone'})"
    assert "~/.kube/config does not exist and KUBECONFIG is not set" in str(kubectl.kubeconfig_problem(None, home))
    assert kubectl.kubeconfig_problem(None, {**home, "KUBERNETES_SERVICE_HOST": "10.0.0.1"}) is None
    (tmp_path / "home" / ".kube").mkdir(parents=True)
    (tmp_path / "home" / ".kube" / "config").write_text("")
    assert kubectl.kubeconfig_problem(None, home) is None


def test_kubectl_messages_keep_its_error_lines_without_usage_hints() -> None:
    stderr = ('Error from server (Forbidden): pods "web-a" is forbidden: User "bob" cannot create resource '
              '"pods/exec"\nSee \'kubectl exec -h\' for help and examples\n')
    assert kubectl.message(stderr).startswith('Error from server (Forbidden): pods "web-a" is forbidden')
    assert kubectl.message("") == "kubectl failed without a message"
