"""Debian's chromium, headless, for the tests that look at what people see (reports, flow
pictures). A missing /usr/bin/chromium fails those tests (never a skip): `make test`
installs it when run as root."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
# Known to work as root in a container; without the background-networking flags it
# tries to reach the (closed) network at start-up.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM.is_file(), "chromium is missing: run `make test` as root, or apt-get install chromium"
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        done = subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def run_script(page_html: str, script: str, directory: Path, name: str, width: int = 1280) -> Any:
    """Lay out `page_html` in a window `width` pixels wide, run `script` after it (the script
    leaves its result, as JSON text, in a <pre id="measured">) and return that result."""
    probe = directory / f"{name}-measured.html"
    probe.write_text(page_html.replace("</body>", f"<script>{script}</script></body>"), encoding="utf-8")
    dumped = chromium(f"--window-size={width},900", "--dump-dom", probe.as_uri()).stdout
    start = dumped.find('<pre id="measured">')
    assert start >= 0, "the measuring script did not run"
    return json.loads(html.unescape(dumped[start + len('<pre id="measured">'):dumped.index("</pre>", start)]))
