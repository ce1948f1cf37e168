"""People answering a service's runs from any machine: `runbook answer`, `runbook approve`,
`runbook refuse`, `runbook questions` (through the service's API with `--server URL`, or straight to its store
with `--database URL`), and `runbook token create` (an API token bound to a person of the
serve config), and `runbook password` (their sign-in to the web console). Either way the
person is the one the token proves, never a name given here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import click

from engine.errors import UsageError

from .stored import need_server_extra

MIN_PASSWORD = 10  # characters: below that, a guessing attack needs no patience
Answered = tuple[str, str]  # (who answered, the run's status now)


def _reach(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--token", envvar="RUNBOOK_TOKEN", metavar="TOKEN",
                     help="Your API token (also $RUNBOOK_TOKEN): it says who you are.")(f)
    f = click.option("--database", envvar="RUNBOOK_DATABASE", metavar="URL",
                     help="Answer in the service's store directly (also $RUNBOOK_DATABASE).")(f)
    return click.option("--server", envvar="RUNBOOK_SERVER", metavar="URL",
                        help="The service's URL, e.g. http://runbook.internal:8080 (also $RUNBOOK_SERVER).")(f)


def _send(server: str | None, database: str | None, token: str | None, run_id: str, step: str,
          values: Mapping[str, Any]) -> Answered:
    if bool(server) == bool(database):
        raise UsageError("say where the run is: --server URL (the service's API) or --database URL (its store)")
    if server:
        from engine.service.client import call

        path = f"/api/runs/{quote(run_id, safe='')}/questions/{quote(step, safe='')}/answer"
        reply = call(server, "POST", path, token, {"answer": dict(values)})
        return str(reply["answered_by"]), str(reply["run_status"])
    assert database is not None
    need_server_extra("--database")
    from engine.service.prompts import answer_as
    from engine.service.store import Store

    store = Store.open(database)
    try:
        _, person = answer_as(store, token, run_id, step, values, "cli")
        run = store.run(run_id)
        return person.name, run.status if run is not None else "gone"
    finally:
        store.close()


def _open(server: str | None, database: str | None, token: str | None, run_id: str | None) -> list[dict[str, Any]]:
    if bool(server) == bool(database):
        raise UsageError("say where the runs are: --server URL (the service's API) or --database URL (its store)")
    if server:
        from engine.service.client import call

        query = f"?run={quote(run_id, safe='')}" if run_id else ""
        return list(call(server, "GET", f"/api/questions{query}", token)["questions"])
    assert database is not None
    need_server_extra("--database")
    from engine.service.prompts import person_of
    from engine.service.store import Store

    store = Store.open(database)
    try:
        person_of(store, token)  # reading what runs ask takes a token too, as through the API
        return [q.to_dict() for q in store.questions(run_id=run_id)]
    finally:
        store.close()


def _how(question: Mapping[str, Any]) -> str:
    """The command that answers it, as a person would type it."""
    run, step = question["run_id"], question["step"]
    if question["kind"] == "approval":
        return f"runbook approve {run} {step}   (or: runbook refuse {run} {step} --reason ...)"
    if question["kind"] == "interrupted":
        return f"runbook answer {run} {step} interrupted=rerun|skip running=wait|stop"
    fields = " ".join(f"{f['name']}=" + ("|".join(map(str, f["choices"])) if f.get("choices") else "...")
                      for f in question["fields"])
    return f"runbook answer {run} {step} {fields}".rstrip()


def _pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"{pair!r}: expected FIELD=VALUE, e.g. cause=logs")
        values[name.strip()] = value
    return values


def _said(what: str, run_id: str, step: str, answered: Answered) -> None:
    who, status = answered
    then = "it goes on" if status in ("queued", "running") else f"it is {status}"
    click.echo(f"{what} step {step} of run {run_id} as {who}: {then}")


@click.command()
@click.argument("run_id", metavar="RUN")
@click.argument("step")
@click.argument("values", nargs=-1, metavar="FIELD=VALUE...")
@_reach
def answer(run_id: str, step: str, values: tuple[str, ...], server: str | None, database: str | None,
           token: str | None) -> None:
    """Answer the question a service run waits on at STEP (a manual step's `ask`)."""
    _said("answered", run_id, step, _send(server, database, token, run_id, step, _pairs(values)))


@click.command()
@click.argument("run_id", metavar="RUN")
@click.argument("step")
@click.option("--reason", default="", help="Why (kept in the journal).")
@_reach
def approve(run_id: str, step: str, reason: str, server: str | None, database: str | None,
            token: str | None) -> None:
    """Approve STEP of a service run (its `confirm:`); your token must hold the role it needs."""
    _said("approved", run_id, step,
          _send(server, database, token, run_id, step, {"approved": True, "reason": reason}))


@click.command()
@click.argument("run_id", metavar="RUN")
@click.argument("step")
@click.option("--reason", required=True, help="Why it must not run (kept in the journal).")
@_reach
def refuse(run_id: str, step: str, reason: str, server: str | None, database: str | None,
           token: str | None) -> None:
    """Refuse STEP of a service run: it does not run, and the run ends `refused`."""
    _said("refused", run_id, step,
          _send(server, database, token, run_id, step, {"approved": False, "reason": reason}))


@click.command()
@click.argument("run_id", metavar="[RUN]", required=False)
@_reach
def questions(run_id: str | None, server: str | None, database: str | None, token: str | None) -> None:
    """What the service's runs wait on (or RUN's): each question, who may answer, and how."""
    found = _open(server, database, token, run_id)
    if not found:
        click.echo("no run waits for a person")
    for q in found:
        role = f", role {q['role']}" if q.get("role") else ""
        click.echo(f"run {q['run_id']}, step {q['step']} ({q['kind']}{role}): {q['text']}")
        click.echo(f"  {_how(q)}")


@click.group()
def token() -> None:
    """API tokens: each is bound to a person of the serve config, with their roles."""


@token.command("create")
@click.argument("name")
@click.option("-c", "--config", "config_file", type=click.Path(dir_okay=False), metavar="FILE", required=True,
              help="The serve config whose `people:` names NAME.")
@click.option("--database", envvar="RUNBOOK_DATABASE", metavar="URL",
              help="The service's store (default: the config's, else service.db under $RUNBOOK_HOME).")
def create(name: str, config_file: str, database: str | None) -> None:
    """Make an API token for NAME and print it (once: the store keeps only its hash)."""
    need_server_extra()
    from engine.service.config import load_config
    from engine.service.prompts import people_of
    from engine.service.store import Store

    config = load_config(config_file)
    if name not in {p.name for p in config.people}:
        known = ", ".join(p.name for p in config.people) or "nobody"
        raise UsageError(f"{config_file} names no person {name!r} under people: (it names {known})")
    store = Store.open(database or config.database)
    try:
        store.set_people(people_of(config))
        made = store.create_token(name)
    finally:
        store.close()
    click.echo(made)


@click.command("password")
@click.argument("name")
@click.option("-c", "--config", "config_file", type=click.Path(dir_okay=False), metavar="FILE", required=True,
              help="The serve config whose `people:` names NAME.")
@click.option("--database", envvar="RUNBOOK_DATABASE", metavar="URL",
              help="The service's store (default: the config's, else service.db under $RUNBOOK_HOME).")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the password from standard input (scripts).")
def password(name: str, config_file: str, database: str | None, from_stdin: bool) -> None:
    """Set NAME's password for the web console (kept as an scrypt hash; their sessions end)."""
    need_server_extra()
    from engine.service.config import load_config
    from engine.service.prompts import people_of
    from engine.service.store import Store

    config = load_config(config_file)
    if name not in {p.name for p in config.people}:
        known = ", ".join(p.name for p in config.people) or "nobody"
        raise UsageError(f"{config_file} names no person {name!r} under people: (it names {known})")
    secret = _read_password(from_stdin)
    store = Store.open(database or config.database)
    try:
        store.set_people(people_of(config))
        store.set_password(name, secret)
    finally:
        store.close()
    click.echo(f"{name} can sign in to the console now")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        secret = str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    if len(secret) < MIN_PASSWORD:
        raise UsageError(f"a password needs at least {MIN_PASSWORD} characters")
    return secret


@token.command("revoke")
@click.argument("name")
@click.option("-c", "--config", "config_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="The serve config (its `database`).")
@click.option("--database", envvar="RUNBOOK_DATABASE", metavar="URL",
              help="The service's store (default: the config's, else service.db under $RUNBOOK_HOME).")
def revoke(name: str, config_file: str | None, database: str | None) -> None:
    """Revoke every API token of NAME at once (a lost laptop, someone leaving)."""
    need_server_extra()
    from engine.service.config import load_config
    from engine.service.store import Store

    config = load_config(config_file)
    store = Store.open(database or config.database)
    try:
        count = store.revoke_tokens(name)
    finally:
        store.close()
    click.echo(f"revoked {count} token(s) of {name}")


COMMANDS = (answer, approve, refuse, questions, token, password)
