"""Debian's Chromium, headless, driven over the Chrome DevTools Protocol through a pipe
(`--remote-debugging-pipe`: JSON messages ending in NUL on file descriptors 3 and 4), with
the standard library only. Enough for the console's tests: separate browser contexts
(each its own cookies), navigating, running a script in the page, and every console
message, CSP violation and uncaught exception the page produces."""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

CHROMIUM = "/usr/bin/chromium"


def _high(fds: tuple[int, int]) -> tuple[int, int]:
    """The pipe's ends moved to descriptors above 9 (close on exec): moving one onto 3 in the
    child must not overwrite the other."""
    moved = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in fds)
    for fd in fds:
        os.close(fd)
    return moved[0], moved[1]


class Chromium:
    """One browser process; `page()` opens a tab in a context of its own."""

    def __init__(self) -> None:
        assert os.path.isfile(CHROMIUM), "chromium is missing: run `make test` as root, or apt-get install chromium"
        self.profile = tempfile.mkdtemp(prefix="chromium-cdp-")
        self.log = os.path.join(tempfile.gettempdir(), os.path.basename(self.profile) + ".log")
        to_browser, self._out = _high(os.pipe())
        self._in, from_browser = _high(os.pipe())
        args = [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-dev-shm-usage", "--remote-debugging-pipe", f"--user-data-dir={self.profile}", "about:blank"]

        def onto_3_and_4() -> None:  # in the child: where --remote-debugging-pipe looks
            os.dup2(to_browser, 3)
            os.dup2(from_browser, 4)

        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(args, preexec_fn=onto_3_and_4, close_fds=False,
                                         stdout=subprocess.DEVNULL, stderr=log)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer, self._next, self.events = b"", 0, []  # events: (sessionId, method, params)

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
        except (AssertionError, OSError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._out)
        os.close(self._in)
        shutil.rmtree(self.profile, ignore_errors=True)

    def call(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 60) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline, f"the answer to {method}")
            if reply.get("id") == self._next:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return dict(reply.get("result", {}))

    def _stderr(self) -> str:
        with open(self.log, encoding="utf-8", errors="replace") as log:
            lines = [line for line in log if "dbus" not in line]
        return "".join(lines[-20:])

    def pump(self, seconds: float) -> None:
        """Read events for `seconds` (while the page lives on its own)."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self._read(deadline, "")
        except TimeoutError:
            pass

    def _read(self, deadline: float, what: str) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise TimeoutError(f"chromium did not send {what}")
            chunk = os.read(self._in, 1 << 20)
            assert chunk, f"chromium closed its pipe (it exited): {self._stderr()}"
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message = json.loads(raw)
        if "method" in message:
            self.events.append((message.get("sessionId"), message["method"], message.get("params", {})))
        return dict(message)

    def page(self) -> Page:
        context = self.call("Target.createBrowserContext")["browserContextId"]
        target = self.call("Target.createTarget", {"url": "about:blank", "browserContextId": context})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=session)
        return Page(self, session)


class Page:
    """A tab: navigate, evaluate, and what it complained about."""

    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser, self.session = browser, session

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.call(method, params, self.session)

    def go(self, url: str) -> None:
        self.browser.events.clear()
        self.call("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'", 30)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        assert "exceptionDetails" not in result, f"{expression}: {result['exceptionDetails']}"
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.evaluate(f"!!({expression})"):
                    return
            except AssertionError:
                pass  # the page is between documents
            self.browser.pump(0.1)
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what or expression}")

    def press(self, key: str) -> None:
        """A key pressed and released, as a person at the keyboard: `Tab` or `Enter`."""
        code, text = {"Tab": (9, ""), "Enter": (13, "\r")}[key]
        down = {"type": "keyDown", "key": key, "code": key, "windowsVirtualKeyCode": code, "text": text}
        self.call("Input.dispatchKeyEvent", down)
        self.call("Input.dispatchKeyEvent", {"type": "keyUp", "key": key, "code": key, "windowsVirtualKeyCode": code})

    def text(self) -> str:
        return str(self.evaluate("document.body.innerText"))

    def problems(self) -> list[str]:
        """Console errors and warnings, CSP violations, uncaught exceptions of this page."""
        found = []
        for session, method, params in self.browser.events:
            if session != self.session:
                continue
            if method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                found.append(f"{params['entry'].get('source')}: {params['entry']['text']}")
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "warning", "assert"):
                found.append(f"console.{params['type']}: {params['args']}")
            elif method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails']}")
        return found


@contextmanager
def chromium() -> Iterator[Chromium]:
    browser = Chromium()
    try:
        yield browser
    finally:
        browser.close()
