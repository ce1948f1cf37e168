"""`make demo`, part 5: the service end to end on this machine, nothing else needed.

`runbook serve` (SQLite under a fresh RUNBOOK_HOME, workers in-process) receives an
Alertmanager webhook (version 4, with a bearer token), routes StaleLockFile to
runbooks/stale-lock.yaml, and a worker runs it live against a real lock file left behind
by a dead process. The same notification sent again (as an HA pair of Alertmanagers does)
is a duplicate; the run's report is read back from the store; SIGTERM drains and stops.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNBOOK = str(Path(sys.executable).with_name("runbook"))
TOKEN = "demo-token"


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="runbook-demo-service-"))
    env = {**os.environ, "RUNBOOK_HOME": str(home), "RUNBOOK_DEMO_TOKEN": TOKEN}
    lock = home / "export.lock"
    lock.write_text("999999\n")  # the PID of an export the OOM killer took: nothing runs it
    url = f"http://127.0.0.1:{free_port()}"
    log = (home / "serve.log").open("w")
    server = subprocess.Popen([RUNBOOK, "serve", "-c", str(HERE / "serve.yaml"), "--listen", url[7:]],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(url, server)
        print(f"   runbook serve is ready at {url} (store: {home / 'service.db'})")
        answers = []
        body = payload(str(lock))  # once: the same bytes both times (startsAt is in the dedup key)
        for attempt in ("sent", "sent again, as an HA pair of Alertmanagers does"):
            status, answer = post(url, body)
            answers.append(answer)
            print(f"   POST /hooks/alertmanager ({attempt}): {status} {answer}")
        run_id = str(json.loads(answers[0])["alerts"][0]["run_id"])
        if queued_run(home, env) != run_id:
            raise SystemExit("the store does not hold exactly the run the first delivery queued")
        outcome = wait_finished(home, env, run_id)
        print(f"   run {run_id}: {outcome}; the lock file is {'still there' if lock.exists() else 'gone'}")
        report = subprocess.run([RUNBOOK, "report", "--database", database(home), run_id], env=env,
                                capture_output=True, text=True, check=True).stdout
        print("   its report, read back from the store:\n" + indent(report.split("## Timeline")[0]))
        console_hint(home, run_id)
        return 0 if outcome == "resolved" and not lock.exists() else 1
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(60)
        print(f"   SIGTERM: runbook serve drained and exited {code}; its log: {home / 'serve.log'}")


def payload(lock: str) -> dict[str, object]:
    labels = {"alertname": "StaleLockFile", "job": "nightly-export", "lock": lock, "severity": "ticket"}
    alert = {"status": "firing", "labels": labels,
             "annotations": {"summary": f"{lock} is 3h old and nightly-export has not finished since"},
             "startsAt": three_hours_ago(), "endsAt": "0001-01-01T00:00:00Z",
             "generatorURL": "http://prometheus:9090/graph", "fingerprint": "5e1a7f0c2b9d4e61"}
    return {"version": "4", "groupKey": '{}:{alertname="StaleLockFile"}', "truncatedAlerts": 0,
            "status": "firing", "receiver": "runbook", "groupLabels": {"alertname": "StaleLockFile"},
            "commonLabels": labels, "commonAnnotations": alert["annotations"],
            "externalURL": "http://alertmanager:9093", "alerts": [alert]}


def three_hours_ago() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3 * 3600))


def post(url: str, body: dict[str, object]) -> tuple[int, str]:
    request = urllib.request.Request(f"{url}/hooks/alertmanager", data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def queued_run(home: Path, env: dict[str, str]) -> str:
    """The one run the deliveries started (`runbook runs` lists the store's runs)."""
    rows = subprocess.run([RUNBOOK, "runs", "--database", database(home)], env=env,
                          capture_output=True, text=True, check=True).stdout.split("\n")[1:]
    ids = [row.split()[0] for row in rows if row.strip()]
    if len(ids) != 1:
        raise SystemExit(f"expected one run, the store has {len(ids)}: {ids}")
    return ids[0]


def wait_finished(home: Path, env: dict[str, str], run_id: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = subprocess.run([RUNBOOK, "runs", "--database", database(home)], env=env,
                              capture_output=True, text=True, check=True).stdout
        for row in rows.splitlines():
            if row.startswith(run_id) and row.split()[2] not in ("-", "running", "queued"):
                return row.split()[2]
        time.sleep(0.2)
    raise SystemExit(f"run {run_id} did not finish in 60 s")


def console_hint(home: Path, run_id: str) -> None:
    """Where to see the run in the web console: the demo does not wait for a person, so it
    says how to serve its store again and which page to open."""
    config = HERE / "serve.yaml"
    print(f"""   to see it in the web console, give the demo person a password and serve this store again:
     export RUNBOOK_HOME={home} RUNBOOK_DEMO_TOKEN={TOKEN}
     {RUNBOOK} password demo -c {config}
     {RUNBOOK} serve -c {config} --listen 127.0.0.1:8080
   then open http://127.0.0.1:8080/runs/{run_id} and sign in as demo""")


def wait_ready(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"runbook serve exited {server.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("runbook serve was not ready in 60 s")


def database(home: Path) -> str:
    return f"sqlite:///{home / 'service.db'}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def indent(text: str) -> str:
    return "\n".join(f"     {line}" for line in text.strip().splitlines())


if __name__ == "__main__":
    sys.exit(main())
