"""Slack: approval messages with buttons, and the interactivity endpoint their clicks come
to (POST /slack/interactions).

Slack signs each request with the app's signing secret: `X-Slack-Signature` is `v0=` and
the hex HMAC-SHA256 of `v0:<X-Slack-Request-Timestamp>:<body>`; a request whose signature
does not match, or whose timestamp is more than five minutes away (a replay), is refused
before anything is read from it. The clicking Slack user (`user.id`) must be a person's
`slack:` id; their roles, not anything in the request, decide whether they may approve,
through the same `decide` as the API and the CLI.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from engine.errors import EngineError, UsageError

from .api import error_response
from .config import ServeConfig
from .prompts import Forbidden, NotWaiting, decide, open_question
from .store import QuestionRow, Store

log = logging.getLogger("runbook.slack")

MAX_AGE = 300.0  # seconds: Slack's own advice for refusing replays
MAX_BODY = 64 * 1024
APPROVE, REFUSE = "approve", "refuse"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Slack-Signature` Slack sends with `body` at `timestamp`."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def refusal(secret: str, headers: Any, body: bytes, now: float) -> str | None:
    """Why the request is not Slack's (None: it is)."""
    stamp, given = headers.get("x-slack-request-timestamp"), headers.get("x-slack-signature")
    if not stamp or not given:
        return "no X-Slack-Signature and X-Slack-Request-Timestamp: not a request from Slack"
    try:
        age = abs(now - int(stamp))
    except ValueError:
        return f"X-Slack-Request-Timestamp {stamp!r} is not a Unix time"
    if age > MAX_AGE:
        return f"X-Slack-Request-Timestamp is {age:.0f} s away from now (at most {MAX_AGE:.0f}): a replay is refused"
    if not hmac.compare_digest(signature(secret, stamp, body), given):
        return "X-Slack-Signature does not match the signing secret"
    return None


def approval_blocks(question: QuestionRow) -> dict[str, Any]:
    """The Slack message asking for a step's approval, with Approve and Refuse buttons."""
    value = json.dumps({"run": question.run_id, "step": question.step})
    who = f" (needs the role *{question.role}*)" if question.role else ""
    text = f"Run `{question.run_id}` waits for approval of step *{question.step}*{who}: {question.text}"
    buttons = [{"type": "button", "action_id": APPROVE, "style": "primary", "value": value,
                "text": {"type": "plain_text", "text": "Approve"}},
               {"type": "button", "action_id": REFUSE, "style": "danger", "value": value,
                "text": {"type": "plain_text", "text": "Refuse"}}]
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}},
                                     {"type": "actions", "block_id": f"q{question.id}", "elements": buttons}]}


def question_message(question: QuestionRow) -> dict[str, Any]:
    """The Slack message for a question: an approval's buttons, or the command that answers."""
    if question.kind == "approval":
        return approval_blocks(question)
    fields = " ".join(f"{f['name']}=" + ("|".join(map(str, f["choices"])) if f.get("choices") else "...")
                      for f in question.fields)
    text = (f"Run `{question.run_id}` waits at step *{question.step}*: {question.text}\n"
            f"`runbook answer {question.run_id} {question.step} {fields}`")
    return {"text": text}


@dataclass(frozen=True)
class Announcer:
    """Posts each question a run parks at to a Slack channel (`chat.postMessage` with the
    bot token), off the worker's path: a Slack outage never holds a run."""

    url: str  # the Web API's base, https://slack.com/api unless the channel says otherwise
    channel: str
    token: str
    timeout: float = 10.0

    def __call__(self, question: QuestionRow) -> None:
        threading.Thread(target=self._post, args=(question,), name="slack-announce", daemon=True).start()

    def _post(self, question: QuestionRow) -> None:
        body = json.dumps({"channel": self.channel, "unfurl_links": False, **question_message(question)}).encode()
        request = urllib.request.Request(f"{self.url.rstrip('/')}/chat.postMessage", data=body, headers={
            "Content-Type": "application/json; charset=utf-8", "Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read() or b"{}")
        except (OSError, ValueError) as exc:
            log.warning("slack: could not post the question of run %s: %s", question.run_id, exc)
            return
        if not isinstance(answer, dict) or not answer.get("ok"):
            error = answer.get("error") if isinstance(answer, dict) else None
            log.warning("slack: refused the question of run %s: %s", question.run_id, error or "no reason given")


def announcer_of(config: ServeConfig) -> Announcer | None:
    """The announcer of the config's `slack.channel`; UsageError when that is not a Slack
    channel of its channels config, or its token cannot be read."""
    if config.slack_channel is None:
        return None
    from engine.executors.notify import load_channels
    from engine.executors.secrets import SecretError, read_secret

    name = config.slack_channel
    channel = load_channels(config.channels).channels.get(name) if config.channels else None
    if channel is None or channel.type != "slack" or channel.secret is None or channel.target is None:
        raise UsageError(f"{config.file}: slack.channel {name!r} is not a Slack channel (type: slack) of the "
                         f"channels config {config.channels or '(none: set channels:)'}")
    try:
        token = read_secret(channel.secret)
    except SecretError as exc:
        raise UsageError(f"{config.file}: slack.channel {name!r}: {exc}") from None
    return Announcer(channel.url or "https://slack.com/api", channel.target, token, channel.timeout)


class SlackInteractions:
    """POST /slack/interactions over a store, with the app's signing secret."""

    def __init__(self, store: Store, secret: str) -> None:
        self.store, self.secret = store, secret

    async def interact(self, request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": f"the body is over {MAX_BODY} bytes"}, status_code=413)
        why = refusal(self.secret, request.headers, body, time.time())
        if why is not None:
            log.warning("slack: refused a request: %s", why)
            return JSONResponse({"error": why}, status_code=401)
        try:
            click = _click(body)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        try:
            text = await run_in_threadpool(self._decide, click)
        except EngineError as exc:
            _reply(click.get("response_url"), str(exc), replace=False)
            return error_response(exc)
        _reply(click.get("response_url"), text, replace=True)
        return JSONResponse({"text": text})

    def _decide(self, click: dict[str, Any]) -> str:
        user = click["user"]
        person = self.store.slack_person(user)
        if person is None:
            raise Forbidden(f"Slack user {user} is nobody in the serve config's people: "
                            f"add `slack: {user}` to a person")
        question = open_question(self.store, click["run"], click["step"])
        if question.kind != "approval":
            raise NotWaiting(f"step {click['step']} of run {click['run']} asks for answers, not an approval")
        approved = click["action"] == APPROVE
        decide(self.store, question, person, {"approved": approved, "reason": "" if approved else
                                              f"refused by {person.name} in Slack"}, "slack")
        return (f"{'Approved' if approved else 'Refused'} by {person.name}: step {question.step} of run "
                f"{question.run_id}")


def _click(body: bytes) -> dict[str, Any]:
    """The button click in a block_actions payload; ValueError saying what is wrong."""
    form = parse_qs(body.decode("utf-8", errors="replace"))
    try:
        payload = json.loads(form["payload"][0])
        action = payload["actions"][0]
        target = json.loads(action["value"])
        click = {"user": str(payload["user"]["id"]), "action": str(action["action_id"]),
                 "run": str(target["run"]), "step": str(target["step"]), "response_url": payload.get("response_url")}
    except (KeyError, IndexError, TypeError, ValueError):
        raise ValueError("not a Slack block_actions payload from an approval message") from None
    if click["action"] not in (APPROVE, REFUSE):
        raise ValueError(f"unknown action {click['action']!r}: expected approve or refuse")
    return click


def _reply(url: Any, text: str, *, replace: bool) -> None:
    """Tell the person in Slack what became of the click (through the message's
    response_url, off the request: Slack wants its answer within three seconds)."""
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return
    data = json.dumps({"text": text, "replace_original": replace, "response_type": "ephemeral"}).encode()

    def send() -> None:
        request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except OSError as exc:
            log.warning("slack: could not answer on response_url: %s", exc)
    threading.Thread(target=send, name="slack-reply", daemon=True).start()
