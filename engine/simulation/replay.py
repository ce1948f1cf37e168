"""Record and replay: a past live run's journal becomes a scenario whose responses
replay the recorded outputs, exit codes and durations, so a past incident becomes a
drill. Replayed unattended, it follows the same path as the original run."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.errors import EngineError, UsageError
from engine.language.duration import format_duration
from engine.run.journal import JournalContents, logged_output, read_journal
from engine.run.records import clean
from engine.templates.templating import has_template

SECRET_PLACEHOLDER = "replayed-secret"
UNANSWERED = 599  # the status a replayed HTTP request gets when the original got no answer
_HTTP_STATUS = re.compile(r"HTTP status (\d{3})")
# A replayed output is the last MiB of what the live step printed: a drill needs what a
# step's checks read, and a 100 MB log copied into a scenario file helps nobody.
OUTPUT_LIMIT = 1 << 20


def _dur(seconds: float) -> str:
    return f"{max(round(seconds, 3), 0):g}s"


def _tail_or_log(record: Mapping[str, Any], run_dir: Path, stream: str) -> str:
    logged = logged_output(record, run_dir, stream, limit=OUTPUT_LIMIT)
    return logged if logged is not None else str(record.get(stream) or "")


def _attempt(record: Mapping[str, Any]) -> dict[str, Any]:
    reply: dict[str, Any] = {"exit_code": record.get("exit_code") or 0, "duration": _dur(record.get("duration", 0))}
    for stream in ("stdout", "stderr"):
        if record.get(stream):
            reply[stream] = _escape(record[stream])
    if record.get("exit_code") is None and record.get("error"):
        reply["exit_code"] = 1
        reply["stderr"] = _escape(str(record.get("error")))
    return reply


def _escape(text: str) -> str:
    # Replies are templates (they may use `state`); recorded text is literal.
    if has_template(text):
        return "{% raw %}" + text + "{% endraw %}"
    return text


def _final(record: Mapping[str, Any], run_dir: Path, spent: float) -> dict[str, Any]:
    return _attempt({**record, "stdout": _tail_or_log(record, run_dir, "stdout"),
                     "stderr": _tail_or_log(record, run_dir, "stderr"),
                     "duration": max(float(record.get("duration") or 0) - spent, 0.0)})


def _as_http(reply: dict[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
    """An HTTP step's reply: its status and body. Each attempt and poll journals its own
    status (`status_code`); a journal from before that is read from the error text. A
    request that got no answer at all (refused, timed out) replays as status 599, so it
    fails again instead of passing."""
    reply.pop("exit_code", None)
    reply.pop("stderr", None)
    status = record.get("status_code")
    if status is None:
        error = str(record.get("error") or "")
        found = _HTTP_STATUS.search(error)
        answered = not error or error.startswith(("expect `", "until `"))  # the check failed, not the request
        status = int(found.group(1)) if found else (200 if answered else UNANSWERED)
    reply["status"] = status
    reply["body"] = reply.pop("stdout", "")
    return reply


def _responses(records: list[dict[str, Any]], run_dir: Path) -> list[dict[str, Any]]:
    responses: list[dict[str, Any]] = []
    attempts: dict[str, list[dict[str, Any]]] = {}
    commands: dict[str, str] = {}
    for r in records:
        kind = r.get("event")
        if not r.get("step"):
            continue
        if kind == "step.started" and r.get("command"):
            commands[str(r["step"])] = str(r["command"])
        elif kind == "step.attempt":
            attempts.setdefault(str(r["step"]), []).append(r)
        elif kind == "step.finished" and r.get("kind") in ("run", "http") and r.get("status") != "skipped":
            found = _step_responses(r, attempts.pop(str(r["step"]), []), run_dir)
            responses.extend(_per_item(found, r, commands.get(str(r["step"]))))
    return responses


def _per_item(found: list[dict[str, Any]], done: Mapping[str, Any], command: str | None) -> list[dict[str, Any]]:
    """A step inside a block with for_each ran once per item: each item's reply answers the
    command that item ran, not every item alike."""
    if done.get("index") is None or command is None or done.get("kind") != "run" or "***" in command:
        return found  # a command shown with a secret as *** is not the one the replay will run
    return [{**f, "match": {"command": glob.escape(command)}} if "match" not in f else f for f in found]


def _step_responses(done: dict[str, Any], tries: list[dict[str, Any]], run_dir: Path) -> list[dict[str, Any]]:
    step = str(done["step"]).rsplit("/", 1)[-1]
    if done.get("hosts"):
        return [{"step": step, "match": {"host": host}, **_attempt(result)} for host, result in done["hosts"].items()]
    if done.get("items") and not tries and done.get("kind") == "run":
        replies = _item_replies(done)
        return [{"step": step, "attempts": replies}] if replies else []
    spent = sum(float(t.get("duration") or 0) + float(t.get("next_in") or 0) for t in tries)
    replies = [_attempt(t) for t in tries] + [_final(done, run_dir, spent)]
    if done.get("kind") == "http":
        replies = [_as_http(reply, record) for reply, record in zip(replies, [*tries, done], strict=True)]
    if len(replies) == 1:
        return [{"step": step, **replies[0]}]
    return [{"step": step, "attempts": replies}]


def _item_replies(done: Mapping[str, Any]) -> list[dict[str, Any]]:
    """for_each: one reply per item, in order (each item is one invocation), so the replay
    fails at the item that failed. The journal keeps no per-item time: it is shared evenly."""
    items = [i for i in done["items"] if i.get("status") != "skipped"]  # skipped ones ran nothing
    each = float(done.get("duration") or 0) / max(len(items), 1)
    replies = []
    for item in items:
        failed = item.get("status") == "failed"
        code = item.get("exit_code")
        reply: dict[str, Any] = {"exit_code": code if code is not None else int(failed), "duration": _dur(each)}
        if failed and item.get("error"):
            reply["stderr"] = _escape(str(item["error"]))
        replies.append(reply)
    return replies


def _participants(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    people: dict[str, dict[str, Any]] = {}
    for r in records:
        step = str(r.get("step", "")).rsplit("/", 1)[-1]
        if r.get("event") == "prompt.answered":
            entry = people.setdefault(step, {})
            entry["answers"] = dict(r.get("answers") or {})
        elif r.get("event") == "approval":
            entry = people.setdefault(step, {})
            entry["approve"] = bool(r.get("approved"))
        else:
            continue
        entry["after"] = _dur(float(r.get("waited") or 0))
        for key in ("by", "role"):
            if r.get(key):
                entry[key] = r[key]
    return people


def scenario_from_run(run_dir: str | os.PathLike[str], output: str | None = None) -> dict[str, Any]:
    """The scenario data (ready to dump as YAML) that replays a recorded live run."""
    directory = Path(run_dir)
    contents = read_journal(directory)
    started = _replayable(contents)
    records = [clean(r) for r in contents.records]
    finished = clean(contents.finished or {})
    base = Path(output).resolve().parent if output else Path.cwd()
    run_id = str(started.get("run_id") or directory.name)
    name = str(started.get("runbook") or Path(started["file"]).stem)
    inputs = {k: (SECRET_PLACEHOLDER if v == "***" else v) for k, v in (started.get("inputs") or {}).items()}
    steps_ok = [str(r["step"]) for r in records if r.get("event") == "step.finished" and r.get("step")
                and r.get("status") == "ok" and not r.get("rollback_of") and "/" not in str(r["step"])]
    duration = format_duration(float(finished.get("duration") or 0))
    return {
        "kind": "scenario", "version": 1,
        "id": f"replay-{name[:40]}-{run_id[:15].lower()}".rstrip("-"),
        "title": f"Replay of {started.get('title') or name} ({run_id})",
        "description": f"Recorded from run {run_id} ({finished.get('outcome') or 'unfinished'} in {duration}). "
                       f"Secret inputs were replaced with '{SECRET_PLACEHOLDER}'; an output longer than "
                       f"{OUTPUT_LIMIT >> 20} MiB replays its last MiB.",
        "runbook": os.path.relpath(str(started["file"]), base),
        "inputs": inputs,
        "briefing": f"A replay of the incident handled in run {run_id} at {started.get('t')}.",
        "responses": _responses(records, directory),
        **_fan_outs(records, str(started["file"])),
        "participants": _participants(records),
        "objectives": {"outcome": finished.get("outcome") or "resolved", "must_run": steps_ok},
    }


def _fan_outs(records: list[dict[str, Any]], file: str) -> dict[str, Any]:
    """`pods:` and `inventory:` for the scenario, so the replay fans out to the hosts the
    live run did: the pods (nodes) each Kubernetes target listed, and the hosts of each
    `group:` target as the inventory gave them, in the order first seen (without them, a
    selector target stands for one pod named after it, a group for one host)."""
    from engine.language.validation import load_runbook

    try:
        targets = load_runbook(file).targets
    except EngineError:  # the runbook changed or went: the responses still replay
        return {}
    seen: dict[str, dict[str, None]] = {}
    for r in records:
        # A step of an included runbook (`inc/step`) names that runbook's targets.
        if r.get("event") == "step.started" and str(r.get("target")) in targets and "/" not in str(r.get("step")):
            seen.setdefault(str(r.get("target")), {}).update(dict.fromkeys(r.get("hosts") or ()))
    pods = {name: list(hosts) for name, hosts in seen.items() if hosts and targets[name].kube is not None}
    groups: dict[str, dict[str, None]] = {}
    for name, hosts in seen.items():
        group = targets[name].group
        if group is not None and "{" not in group and targets[name].kube is None:  # a templated one: not known
            groups.setdefault(group, {}).update(hosts)
    found: dict[str, Any] = {"pods": pods} if pods else {}
    if any(groups.values()):
        found["inventory"] = {"groups": {g: {"hosts": list(h)} for g, h in groups.items() if h}}
    return found


def _replayable(contents: JournalContents) -> dict[str, Any]:
    """The run.started record of a journal a scenario can be made from, or why not."""
    if contents.started is None:
        raise UsageError(f"{contents.path} is not the journal of a run (no run.started)")
    started = clean(contents.started)
    if started.get("mode") not in ("live", None):
        raise UsageError(f"run {started.get('run_id')} is a {started.get('mode')} run; replay needs a live run")
    if not started.get("file"):
        raise UsageError(f"{contents.path}: run.started does not name the runbook file the run used; "
                         "a scenario cannot be made from it")
    return started


def dump(data: Mapping[str, Any]) -> str:
    import yaml

    header = "# yaml-language-server: $schema=../schemas/scenario.schema.json\n"
    return header + yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True, width=100)
