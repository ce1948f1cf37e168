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
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from sshd import free_port

PROMETHEUS = "/usr/bin/prometheus"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
# Fires as soon as the api target is down (evaluated every second): a real TargetDown.
TARGET_DOWN_RULE = """\
groups:
  - name: targets
    interval: 1s
    rules:
      - alert: TargetDown
        expr: up{job="api"} == 0
        labels: {severity: page}
        annotations: {summary: "{{ $labels.instance }} of job {{ $labels.job }} is down"}
"""
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
    api_target: str = DOWN_TARGET  # what job `api` scrapes
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
        jobs = [{"job_name": "api", "static_configs": [{"targets": [self.api_target]}]}]
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
            with urllib.request.urlopen(f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': query})}",
                                        timeout=5) as resp:
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


@dataclass
class Alertmanager:
    """One Alertmanager process (no clustering) with a receiver that sends nothing."""

    root: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def create(cls) -> Alertmanager:
        require(ALERTMANAGER, "prometheus-alertmanager")
        return cls(Path(tempfile.mkdtemp(prefix="rb-am-")), free_port())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Alertmanager:
        config = self.root / "alertmanager.yml"
        config.write_text(json.dumps({"route": {"receiver": "nobody", "group_wait": "1s"},
                                      "receivers": [{"name": "nobody"}]}))
        args = [ALERTMANAGER, f"--config.file={config}", f"--storage.path={self.root / 'data'}",
                f"--web.listen-address={self.address}", "--cluster.listen-address="]
        log = (self.root / "alertmanager.log").open("wb")
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while self.get("/api/v2/status") is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log_text = (self.root / "alertmanager.log").read_text()[-2000:]
                raise RuntimeError(f"alertmanager did not start: {log_text}")
            time.sleep(0.3)
        return self

    def get(self, path: str) -> object:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as resp:
                return json.load(resp)
        except OSError:
            return None

    def alerts(self, name: str) -> list[dict[str, object]]:
        found = self.get(f"/api/v2/alerts?filter=alertname%3D%22{name}%22") or []
        return [a for a in found if isinstance(a, dict)]  # type: ignore[union-attr]

    def wait_for_alert(self, name: str, limit: float = 90.0) -> dict[str, object]:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            found = self.alerts(name)
            if found:
                return found[0]
            time.sleep(0.3)
        raise RuntimeError(f"no {name} alert in Alertmanager after {limit}s")

    def silences(self) -> list[dict[str, object]]:
        return list(self.get("/api/v2/silences") or [])  # type: ignore[call-overload]

    def destroy(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


class MetricsServer:
    """A scrape target that answers once started: `up` goes from 0 to 1 for real."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server: object = None

    def start(self) -> None:
        import http.server
        import threading

        class Metrics(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b"# TYPE api_ready gauge\napi_ready 1\n"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return None

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Metrics)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.server = server

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()  # type: ignore[attr-defined]
            self.server.server_close()  # type: ignore[attr-defined]
