"""Delivering a message with bounded retries: to a webhook (Slack-compatible JSON), and
the retry loop every network channel shares (paging APIs, Slack's Web API, SMTP).

A chat service that is down for a minute must not lose the message, nor hold the
run: a failed attempt that may succeed later (no connection, a timeout, HTTP 408,
429 or 5xx) is tried again after 1 s, 2 s, 4 s, as long as the attempts and the time
budget (the step's timeout, or a few seconds for updates and escalations) allow. A
`Retry-After` from the server is honoured when it fits in the budget. Other answers
(a 404 for a deleted webhook, a 403) are final at once.
"""

from __future__ import annotations

import json
import select
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

FIRST_DELAY = 1.0  # seconds before the second attempt; doubled after each failure
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_ANSWER = 64 * 1024  # bytes of an API's answer read: an acknowledgement, an error, a message id


class Cancellable(Protocol):
    def is_set(self) -> bool: ...

    def fileno(self) -> int: ...


@dataclass(frozen=True)
class Outcome:
    """How a delivery went: delivered or not, after how many attempts, and why not."""

    ok: bool
    attempts: int
    error: str | None = None
    value: Any = None  # what the accepted attempt returned (a response's body)


class Failure(Exception):
    """One attempt that failed: `retry` when a later one may succeed, `after` the seconds
    the server asked us to wait."""

    def __init__(self, text: str, *, retry: bool, after: float | None = None) -> None:
        super().__init__(text)
        self.retry, self.after = retry, after


def slack_text(text: str, run_id: str | None, run_url: str | None) -> str:
    """The message in Slack's mrkdwn: `&`, `<`, `>` escaped (so `<!channel>` in an output
    pings nobody and `<url|x>` links nowhere), then a link back to the run."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if run_url:
        return f"{escaped}\n<{run_url}|run {run_id}>" if run_id else f"{escaped}\n<{run_url}>"
    return f"{escaped}\nrun {run_id}" if run_id else escaped


def redact(url: str) -> str:
    """A webhook URL without its secret (Slack and Teams carry it in the path)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/..."


def deliver(url: str, payload: Mapping[str, Any], headers: Mapping[str, str], *, timeout: float,
            attempts: int, budget: float, cancel: Cancellable | None = None) -> Outcome:
    """POST `payload` as JSON until it is accepted, the attempts run out or the budget does;
    the accepted response's body is the outcome's value."""
    body = json.dumps(payload).encode()
    return retrying(lambda left: post_json(url, body, headers, min(timeout, left)), attempts=attempts,
                    budget=budget, cancel=cancel)


def retrying(attempt: Callable[[float], Any], *, attempts: int, budget: float,
             cancel: Cancellable | None = None) -> Outcome:
    """Call `attempt(seconds left)` until it returns, raises a final Failure, or the
    attempts or the budget run out; waits 1 s, 2 s, 4 s... (or what the server asked)."""
    deadline = time.monotonic() + budget
    delay, number = FIRST_DELAY, 0
    while True:
        number += 1
        try:
            return Outcome(True, number, value=attempt(max(deadline - time.monotonic(), 0.1)))
        except Failure as failure:
            wait = failure.after if failure.after is not None else delay
            give_up = not failure.retry or number >= attempts or wait > deadline - time.monotonic()
            if give_up or not _pause(wait, cancel):
                return Outcome(False, number, str(failure))
            delay *= 2


def post_json(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> bytes:
    """One POST; the response's body, or a Failure saying whether to try again."""
    import urllib.error
    import urllib.request  # only network channels need it (~40 ms to import)

    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=max(timeout, 0.1)) as resp:
            status, data = resp.status, resp.read(MAX_ANSWER)
    except urllib.error.HTTPError as exc:
        raise Failure(f"HTTP status {exc.code}{_said(exc)}", retry=exc.code in RETRY_STATUS,
                      after=_retry_after(exc.headers.get("Retry-After"))) from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = reason.strerror if isinstance(reason, OSError) and reason.strerror else str(reason)
        raise Failure(text, retry=True) from None
    except (OSError, ValueError) as exc:  # a timeout while reading, a bad URL
        raise Failure(str(exc) or type(exc).__name__, retry=isinstance(exc, OSError)) from None
    if not 200 <= status < 300:
        raise Failure(f"HTTP status {status}", retry=status in RETRY_STATUS)
    return bytes(data)


def _said(exc: Any) -> str:
    """What an API said about a refused request (PagerDuty's `errors`, Opsgenie's `message`),
    cut short: a 400 is the runbook author's to fix, and the status alone does not say how."""
    try:
        answer = json.loads(exc.read(MAX_ANSWER) or b"null")
    except (OSError, ValueError):
        return ""
    if not isinstance(answer, dict):
        return ""
    said = answer.get("errors") or answer.get("message") or answer.get("error")
    if isinstance(said, list):
        said = "; ".join(map(str, said))
    return f": {str(said)[:200]}" if said else ""


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (the date form is not worth it here)."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < 3600 else None


def _pause(seconds: float, cancel: Cancellable | None) -> bool:
    """Wait before the next attempt; False if the run was interrupted meanwhile."""
    if cancel is None:
        time.sleep(seconds)
        return True
    if cancel.is_set():
        return False
    poller = select.poll()
    poller.register(cancel.fileno(), select.POLLIN)
    poller.poll(seconds * 1000)
    return not cancel.is_set()
