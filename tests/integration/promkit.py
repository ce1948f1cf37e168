"""A real Prometheus on loopback for the monitoring tests (Debian package `prometheus`).

It scrapes itself (job `prometheus`) and a closed port (job `api`, 127.0.0.1:9), so
`up{job="api"} == 0` is a real TargetDown. With `tls=True` it serves HTTPS with a
certificate for `prom.test` (from a CA made here), and may require basic auth and a client
certificate (Prometheus's `--web.config.file`). Plain Python, no pytest.
See /work/shared/notes/real-components.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from sshd import free_port

PROMETHEUS = "/usr/bin/prometheus"
DOWN_TARGET = "127.0.0.1:9"  # nothing listens on the discard port here


def require(binary: str, package: str) -> None:
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"{binary} is missing: install {package} "
                           f"(`make test` does it as root: apt-get install -y {package})")


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@dataclass
class Certs:
    """A CA, a server certificate for prom.test (and 127.0.0.1), and a client certificate."""

    dir: Path

    @classmethod
    def make(cls, root: Path) -> Certs:
        d = root / "certs"
        d.mkdir()
        key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _openssl("req", "-x509", *key, "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"),
                 "-subj", "/CN=runbook test CA", "-days", "2")
        for name, ext in (("server", "subjectAltName=DNS:prom.test,IP:127.0.0.1"),
                          ("client", "extendedKeyUsage=clientAuth")):
            _openssl("req", *key, "-keyout", str(d / f"{name}.key"), "-out", str(d / f"{name}.csr"),
                     "-subj", f"/CN={name}")
            (d / f"{name}.ext").write_text(ext + "\n")
            _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"),
                     "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "2",
                     "-extfile", str(d / f"{name}.ext"), "-out", str(d / f"{name}.pem"))
        return cls(d)


@dataclass
class Prometheus:
    """One Prometheus process with its own config and data directory."""

    root: Path
    port: int
    tls: bool = False
    users: dict[str, str] = field(default_factory=dict)  # basic auth: user -> password
    client_cert: bool = False
    rules: str = ""  # a rules file's YAML (alerting rules), evaluated every second
    alertmanager: str | None = None  # host:port to send alerts to
    proc: subprocess.Popen[bytes] | None = None
    certs: Certs | None = None

    @classmethod
    def create(cls, **kwargs: object) -> Prometheus:
        require(PROMETHEUS, "prometheus")
        return cls(Path(tempfile.mkdtemp(prefix="rb-prom-")), free_port(), **kwargs)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _config(self) -> Path:
        jobs = [{"job_name": "api", "static_configs": [{"targets": [DOWN_TARGET]}]}]
        if not self.tls:  # scraping itself over its own TLS and auth is not what is tested
            jobs.append({"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{self.port}"]}]})
        config: dict[str, object] = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                                     "scrape_configs": jobs}
        if self.rules:
            (self.root / "rules.yml").write_text(self.rules)
            config["rule_files"] = [str(self.root / "rules.yml")]
        if self.alertmanager:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [self.alertmanager]}]}]}
        path = self.root / "prometheus.yml"
        path.write_text(json.dumps(config))  # JSON is YAML
        return path

    def _web_config(self) -> Path:
        web: dict[str, object] = {}
        if self.tls:
            self.certs = Certs.make(self.root)
            d = self.certs.dir
            server = {"cert_file": str(d / "server.pem"), "key_file": str(d / "server.key")}
            if self.client_cert:
                server |= {"client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": str(d / "ca.pem")}
            web["tls_server_config"] = server
        if self.users:
            web["basic_auth_users"] = {u: _bcrypt(p) for u, p in self.users.items()}
        path = self.root / "web.yml"
        path.write_text(json.dumps(web))
        return path

    def start(self) -> Prometheus:
        args = [PROMETHEUS, f"--config.file={self._config()}", f"--storage.tsdb.path={self.root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", f"--web.config.file={self._web_config()}",
                "--web.enable-lifecycle"]
        log = (self.root / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_ready()
        return self

    def _wait_ready(self, limit: float = 60.0) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {(self.root / 'prometheus.log').read_text()[-2000:]}")
            if _port_open(self.port) if self.tls else self._series("up"):  # over TLS: the port answering
                return
            time.sleep(0.3)
        raise RuntimeError(f"prometheus not ready in {limit}s: {(self.root / 'prometheus.log').read_text()[-2000:]}")

    def _series(self, query: str) -> list[object]:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/query?query={query}", timeout=5) as resp:
                return list(json.load(resp)["data"]["result"])
        except OSError:
            return []

    def wait_for(self, query: str, limit: float = 60.0) -> list[object]:
        """The series of `query` once it has any (a rule or a scrape takes a few seconds)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            found = self._series(query)
            if found:
                return found
            time.sleep(0.3)
        raise RuntimeError(f"no series for {query} in {limit}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _bcrypt(password: str) -> str:
    """A bcrypt hash, as Prometheus's web config wants: glibc's crypt() makes them (the
    `crypt` module is deprecated, not gone, in the Python the project runs on)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 4))


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0
