"""HTTP requests with the standard library (no extra dependency): TLS verified by
default, bounded body, every failure a Result with a reason. Redirects are followed as
the step says (`redirect_decision`): credentials never leave their origin, and nothing
goes from https to http."""

from __future__ import annotations

import threading
import time
import urllib.parse  # its functions read as a request is made (the runbook command defers the module)
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .base import Cancel, HttpRequest, Invocation, OutputSink, Result

# urllib, ssl and http.client cost ~40 ms to import: only a run with an HTTP step pays.

BODY_LIMIT = 10 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0


CREDENTIALS = frozenset({"authorization", "proxy-authorization", "cookie"})


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL, the port filled in from the scheme."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


def redirect_decision(follow: bool | str, old_url: str, new_url: str) -> str:
    """What to do with a redirect from `old_url` to `new_url`: "follow" (credentials kept),
    "strip" (follow without credentials: another origin), "stop" (answer with the 3xx) or
    "refuse" (https to http: the request would travel unencrypted).

    `follow` is the step's follow_redirects: "same-origin" (the default) follows only to the
    same scheme, host and port (and http to https on the same host, as requests does);
    True also to other origins, without credentials; False never."""
    old, new = origin(old_url), origin(new_url)
    if follow is False:
        return "stop"
    if old[0] == "https" and new[0] != "https":
        return "refuse"
    if old == new or (old[0], new[0], old[1], old[2], new[2]) == ("http", "https", new[1], 80, 443):
        return "follow"
    return "strip" if follow is True else "stop"


class _Trail:
    """What the redirects of one request did, for the step's error message."""

    def __init__(self) -> None:
        self.stopped: str | None = None  # why a redirect was answered with its 3xx


def _opener(request: HttpRequest, trail: _Trail) -> Any:
    import urllib.request

    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=tls_context(request)),
                                       _redirect_handler(request, trail))


def tls_context(request: HttpRequest) -> Any:
    """The TLS context of a request: the system's CAs or `tls.ca_file`, a client
    certificate, and the name the server's certificate must carry (also sent as SNI)."""
    import ssl

    tls = request.tls
    if tls is None:
        return ssl.create_default_context() if request.verify else ssl._create_unverified_context()
    context = _named_context(tls.server_name) if tls.server_name else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if not request.verify or tls.insecure_skip_verify:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    elif tls.ca_file:
        context.load_verify_locations(cafile=tls.ca_file)
    else:
        context.load_default_certs()
    if tls.cert_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


def _named_context(name: str) -> Any:
    """A client context that checks the certificate (and sends SNI) for `name`, whatever
    host the URL names: Prometheus's `server_name`."""
    import ssl

    class Named(ssl.SSLContext):
        def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> Any:
            kwargs["server_hostname"] = name
            return super().wrap_socket(sock, *args, **kwargs)

    return Named(ssl.PROTOCOL_TLS_CLIENT)


def _redirect_handler(request: HttpRequest, trail: _Trail) -> Any:
    import urllib.error
    import urllib.request

    private = CREDENTIALS | request.private_headers

    class Redirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
            decision = redirect_decision(request.follow_redirects, req.full_url, newurl)
            if decision == "refuse":
                raise urllib.error.URLError(f"refused to follow the redirect from {req.full_url} to {newurl}: "
                                            "from https to http the request would travel unencrypted")
            if decision == "stop":
                trail.stopped = _not_followed(request.follow_redirects, newurl)
                return None
            new = super().redirect_request(req, fp, code, msg, headers, newurl)
            if new is not None and decision == "strip":
                for table in (new.headers, new.unredirected_hdrs):
                    for name in [k for k in table if k.lower() in private]:
                        del table[name]
            return new

    return Redirects()


def _not_followed(follow: bool | str, url: str) -> str:
    if follow is False:
        return f"a redirect to {url}, not followed (follow_redirects: false)"
    return (f"a redirect to {url}, another origin, not followed: `follow_redirects: true` follows it "
            "(without Authorization, cookies or headers holding a secret)")


class HttpExecutor:
    """Executes `http` steps."""

    def run(self, invocation: Invocation, sink: OutputSink, cancel: Cancel) -> Result:
        request = invocation.http
        assert request is not None, "http invocation without a request"
        started, t0 = time.time(), time.monotonic()
        label = f"{request.method} {request.url}"
        scheme = urllib.parse.urlsplit(request.url).scheme
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
        trail = _Trail()
        try:
            with _opener(request, trail).open(req, timeout=timeout) as resp:
                return self._result(label, resp, started, t0, request)
        except urllib.error.HTTPError as err:
            result = self._result(label, err, started, t0, request)
            return replace(result, error=f"{result.error}: {trail.stopped}") if trail.stopped and result.error \
                else result
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


