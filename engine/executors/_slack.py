"""Slack with a bot token: a run's first message opens a thread in the channel and every
later message of the run is a reply under it, so a channel shows one line per incident.

`chat.postMessage` answers HTTP 200 even when it refuses (`{"ok": false, "error":
"channel_not_found"}`): that is a final failure naming Slack's error. Rate limits come
as HTTP 429 with Retry-After and are retried (see _webhook).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from ._channels import Channel
from ._webhook import Failure, post_json


class Threads:
    """The thread each run opened, per channel (the `ts` of its first message)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # updates are sent from the outbox's thread
        self._first: dict[tuple[str, str], str] = {}

    def parent(self, channel: str, run_id: str) -> str | None:
        with self._lock:
            return self._first.get((channel, run_id))

    def opened(self, channel: str, run_id: str, ts: str) -> None:
        with self._lock:
            self._first.setdefault((channel, run_id), ts)


def post(channel: Channel, token: str, text: str, thread: str | None, timeout: float) -> str:
    """One `chat.postMessage`; the new message's `ts`, or a Failure."""
    assert channel.url is not None and channel.target is not None
    payload: dict[str, Any] = {"channel": channel.target, "text": text, "unfurl_links": False}
    if thread is not None:
        payload["thread_ts"] = thread
    headers = {**channel.headers, "Authorization": f"Bearer {token}",
               "Content-Type": "application/json; charset=utf-8"}
    body = post_json(f"{channel.url.rstrip('/')}/chat.postMessage", json.dumps(payload).encode(), headers, timeout)
    try:
        answer = json.loads(body)
    except ValueError:
        raise Failure("Slack answered with something that is not JSON", retry=False) from None
    if not isinstance(answer, dict) or not answer.get("ok"):
        error = answer.get("error", "no reason given") if isinstance(answer, dict) else "no reason given"
        raise Failure(f"Slack refused the message: {error}", retry=error in ("ratelimited", "internal_error")) from None
    return str(answer.get("ts", ""))
