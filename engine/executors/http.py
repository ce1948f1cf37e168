"""HTTP requests with the standard library (no extra dependency): TLS verified by
default, redirects optional, bounded body, every failure a Result with a reason."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from .base import Cancel, HttpRequest, Invocation, OutputSink, Result

# urllib, ssl and http.client cost ~40 ms to import: only a run with an HTTP step pays.

BODY_LIMIT = 10 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0


def _opener(verify: bool, follow: bool) -> Any:
    import ssl
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    context = ssl.create_default_context() if verify else ssl._create_unverified_context()
    handlers: list[Any] = [urllib.request.HTTPSHandler(context=context)]
    if not follow:
        handlers.append(NoRedirect())
    return urllib.request.build_opener(*handlers)


class HttpExecutor:
    """Executes `http` steps."""

    def run(self, invocation: Invocation, sink: OutputSink, cancel: Cancel) -> Result:
        request = invocation.http
        assert request is not None, "http invocation without a request"
        started, t0 = time.time(), time.monotonic()
        label = f"{request.method} {request.url}"
        scheme = urlsplit(request.url).scheme
        if scheme not in ("http", "https"):
            return _failure(label, started, 0.0, f"unsupported URL scheme {scheme!r}: use http or https")
        timeout = invocation.timeout or DEFAULT_TIMEOUT
        # urllib blocks, and its timeout is per socket operation, not per request: it runs
        # in a thread while this one waits for it, a Ctrl-C, or the step's deadline.
        call = _Call(lambda: self._request(invocation, label, started, t0, timeout))
        result = call.wait(cancel, timeout)
        if result is None:
            waited = time.monotonic() - t0
            if cancel.is_set():
                return replace(_failure(label, started, waited, "interrupted"), cancelled=True)
            return _failure(label, started, waited, f"timed out after {timeout:g}s", timed_out=True)
        if result.body:
            sink.output("stdout", result.body.encode(), None)
        if result.stderr and result.status is not None:  # a note on the answer, not a failure
            sink.output("stderr", result.stderr.encode(), None)
        return result

    def _request(self, inv: Invocation, label: str, started: float, t0: float, timeout: float) -> Result:
        import urllib.error
        import urllib.request

        request = inv.http
        assert request is not None
        req = urllib.request.Request(request.url, data=request.body, method=request.method,
                                     headers=dict(request.headers))
        try:
            with _opener(request.verify, request.follow_redirects).open(req, timeout=timeout) as resp:
                return self._result(label, resp, started, t0, request)
        except urllib.error.HTTPError as err:
            return self._result(label, err, started, t0, request)
        except urllib.error.URLError as err:
            return _failure(label, started, time.monotonic() - t0, _reason(err.reason))
        except TimeoutError:
            return _failure(label, started, time.monotonic() - t0, f"timed out after {timeout:g}s",
                            timed_out=True)
        except (OSError, ValueError, http_client_errors()) as err:
            return _failure(label, started, time.monotonic() - t0, f"request failed: {err}")

    def _result(self, label: str, resp: Any, started: float, t0: float, request: HttpRequest) -> Result:
        raw = resp.read(BODY_LIMIT + 1)
        truncated = len(raw) > BODY_LIMIT
        body, note = decode(raw[:BODY_LIMIT], resp.headers.get_content_charset())
        status = int(resp.status if hasattr(resp, "status") else resp.code)
        headers = {k.lower(): v for k, v in resp.headers.items()}
        ok = request.accepts(status)
        error = None if ok else f"HTTP status {status}"
        return Result(label, None, body, note, None, started, time.monotonic() - t0, ok, error,
                      truncated=truncated, status=status, headers=headers, body=body)


def decode(raw: bytes, charset: str | None) -> tuple[str, str]:
    """The body as text, and a note when its declared charset could not be used: an
    unknown or non-text codec (`charset=x-made-up`, `base64`) decodes as UTF-8 instead."""
    try:
        return raw.decode(charset or "utf-8", errors="replace"), ""
    except (LookupError, UnicodeError, ValueError, TypeError):
        note = f"note: the response's charset {charset!r} is not a text encoding Python knows; decoded as UTF-8\n"
        return raw.decode("utf-8", errors="replace"), note


class _Call:
    """A blocking call in a daemon thread. If nobody waits for it any more (cancelled,
    past its deadline) it ends on its own socket timeout; its result is dropped."""

    POLL = 0.05

    def __init__(self, work: Callable[[], Result]) -> None:
        self._result: Result | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._work = work
        threading.Thread(target=self._run, name="http-request", daemon=True).start()

    def _run(self) -> None:
        try:
            self._result = self._work()
        except BaseException as exc:  # a bug, not a failed request: the waiting thread raises it
            self._error = exc
        finally:
            self._done.set()

    def wait(self, cancel: Cancel, timeout: float) -> Result | None:
        """The result; None when cancelled or when `timeout` (plus a little, so urllib's own
        and more precise error wins a race) has passed."""
        deadline = time.monotonic() + timeout + 1.0
        while not self._done.wait(self.POLL):
            if cancel.is_set() or time.monotonic() > deadline:
                return None
        if self._error is not None:
            raise self._error
        return self._result


def http_client_errors() -> type[Exception]:
    import http.client

    return http.client.HTTPException


def _reason(reason: Any) -> str:
    import socket
    import ssl

    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {reason.verify_message}"
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve host: {reason.strerror}"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "timed out"
    return str(reason)


def _failure(label: str, started: float, duration: float, error: str, *, timed_out: bool = False) -> Result:
    return Result(label, None, "", error, None, started, duration, False, error, timed_out=timed_out)


