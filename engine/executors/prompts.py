"""Questions and approvals for people: one interface, a terminal and a scripted version.

Manual steps (`manual` + `ask`) and confirmations (`confirm`) go through a Prompter.
The terminal prompter asks on the console; the scripted one answers from flags
(`--answer step.field=value`, `--yes`) and says which flag to pass when it cannot.
"""

# Annotations are evaluated (no `from __future__ import annotations`): `dataclass` checks
# each one given as text against patterns (ClassVar, InitVar) at every start.
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.errors import EngineError
from engine.language.model import MISSING, AskField


@dataclass(frozen=True)
class Participant:
    """A person taking part in a run, and the role they act in."""

    name: str
    role: str | None = None

    def __str__(self) -> str:
        return f"{self.name} ({self.role})" if self.role else self.name


@dataclass(frozen=True)
class Question:
    """A manual step's question: what a person is asked, and which fields they fill."""

    step: str
    title: str
    text: str
    fields: tuple[AskField, ...] = ()
    role: str | None = None
    hint: str | None = None


@dataclass(frozen=True)
class Answer:
    """A person's answer to a Question: the fields' values, who gave them, after how long."""

    values: Mapping[str, Any]
    by: str | None = None
    role: str | None = None
    waited: float = 0.0
    hints: tuple[str, ...] = ()
    via: str | None = None  # how it came, when not from the run's own terminal (cli, api, slack, console)


@dataclass(frozen=True)
class ApprovalRequest:
    """A confirmation asked before a step runs."""

    step: str
    message: str
    role: str | None = None  # only a participant in this role may approve
    ask_why: bool = False  # a refusal asks for its reason (a step's approval; not the engine's own questions)


@dataclass(frozen=True)
class ApprovalReply:
    """Whether a confirmation was given, by whom, after how long."""

    approved: bool
    by: str | None = None
    role: str | None = None
    waited: float = 0.0
    reason: str = ""
    via: str | None = None  # how it came, when not from the run's own terminal (cli, api, slack, console)


class Unanswered(EngineError):
    """A non-interactive run reached a question nobody scripted an answer for."""


class Prompter(Protocol):
    interactive: bool

    def ask(self, question: Question) -> Answer: ...

    def approve(self, request: ApprovalRequest) -> ApprovalReply: ...

    def confirm_rollback(self, steps: int) -> bool: ...


def coerce(field_: AskField, raw: Any) -> Any:
    """An answer converted to the field's type; ValueError with the allowed values."""
    if field_.type == "confirm":
        text = str(raw).strip().lower()
        if isinstance(raw, bool):
            return raw
        if text in ("y", "yes", "true", "1"):
            return True
        if text in ("n", "no", "false", "0"):
            return False
        raise ValueError("answer yes or no")
    if field_.type == "number":
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError("answer a number") from None
        value_out: Any = int(value) if value.is_integer() else value
        if field_.minimum is not None and value < field_.minimum:
            raise ValueError(f"answer at least {field_.minimum:g}")
        if field_.maximum is not None and value > field_.maximum:
            raise ValueError(f"answer at most {field_.maximum:g}")
        return value_out
    if field_.choices is not None:
        for choice in field_.choices:
            if str(choice) == str(raw).strip():
                return choice
        raise ValueError(f"answer one of: {', '.join(map(str, field_.choices))}")
    return str(raw)


@dataclass
class ScriptedPrompter:
    """Answers from flags; fails naming the flag when an answer is missing."""

    answers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    yes: bool = False
    participants: tuple[Participant, ...] = ()
    interactive: bool = False

    def ask(self, question: Question) -> Answer:
        given = self.answers.get(question.step, {})
        values: dict[str, Any] = {}
        for f in question.fields:
            if f.name in given:
                try:
                    values[f.name] = coerce(f, given[f.name])
                except ValueError as exc:
                    raise Unanswered(f"step {question.step}: bad --answer {question.step}.{f.name}: {exc}") from None
            elif f.default is not MISSING:
                values[f.name] = f.default
            else:
                raise Unanswered(_missing_answer(question.step, f))
        if not question.fields and not self.yes and question.step not in self.answers:
            raise Unanswered(
                f"step {question.step} waits for a person (manual step) and this run is not "
                f"interactive: pass --yes to acknowledge manual steps, or run it in a terminal"
            )
        who = self._who(question.role)
        return Answer(values, who.name if who else None, who.role if who else question.role)

    def approve(self, request: ApprovalRequest) -> ApprovalReply:
        if not self.yes:
            raise Unanswered(
                f"step {request.step} needs approval ({request.message}) and this run is not "
                "interactive: pass --yes to approve" + (
                    f" together with --as NAME:{request.role}" if request.role else "")
            )
        who = self._who(request.role)
        if request.role is not None and (who is None or who.role != request.role):
            return ApprovalReply(False, reason=f"approval requires the role {request.role}: pass "
                                               f"--as NAME:{request.role}")
        return ApprovalReply(True, who.name if who else None, who.role if who else None)

    def confirm_rollback(self, steps: int) -> bool:
        return True

    def _who(self, role: str | None) -> Participant | None:
        if role is not None:
            for p in self.participants:
                if p.role == role:
                    return p
        return self.participants[0] if self.participants else None


def _missing_answer(step: str, f: AskField) -> str:
    choices = f" (one of: {', '.join(map(str, f.choices))})" if f.choices else ""
    return (f"step {step} asks '{f.prompt or f.name}' and this run is not interactive: "
            f"pass --answer {step}.{f.name}=VALUE{choices}")


def _terminal_read(prompt: str) -> str:
    """One line from the terminal. Ctrl-C stays a KeyboardInterrupt, which the run's
    signal handling turns into "stop the step" or "skip rollbacks"; click.prompt would
    turn it into click.Abort, which ends the process without closing the journal."""
    import click

    click.echo(prompt, nl=False)
    return input()


class TerminalPrompter:
    """Asks on the terminal. `hint` at any question shows the step's hint (drills)."""

    interactive = True

    def __init__(self, participants: tuple[Participant, ...] = (),
                 on_hint: Callable[[str, str, str | None], None] | None = None,
                 read: Callable[[str], str] | None = None,
                 write: Callable[[str], None] | None = None) -> None:
        import click

        self.participants = participants
        self.on_hint = on_hint
        self._answering: Participant | None = None
        self._reader = read or _terminal_read  # a Console's `ask` keeps the prompt whole (see Terminal)
        self._write = write or (lambda text: click.echo(text))

    def _read(self, prompt: str) -> str:
        try:
            return self._reader(prompt)
        except EOFError:
            raise Unanswered("standard input was closed while a question was open") from None

    def ask(self, question: Question) -> Answer:
        t0 = time.monotonic()
        self._choose(question.role, question)  # a hint asked from now on is recorded as theirs
        values: dict[str, Any] = {}
        for f in question.fields:
            values[f.name] = self._field(question, f)
        if not question.fields:
            self._line(question, "   Press Enter when done: ")
        who = self._answering  # `as NAME` may have switched while answering
        return Answer(values, who.name if who else None, who.role if who else question.role,
                      time.monotonic() - t0)

    def approve(self, request: ApprovalRequest) -> ApprovalReply:
        t0 = time.monotonic()
        who = self._choose(request.role)
        answer = False
        if self._may_approve(who, request):
            role = f" [{request.role}]" if request.role else ""
            answer = self._yes_no(f"   {request.message}{role} [y/N]: ", default=False)
            who = self._answering  # `as NAME` may have switched at the question
        if not self._may_approve(who, request):
            self._write(f"   {who} cannot approve: this needs the role {request.role}")
            return ApprovalReply(False, who.name if who else None, who.role if who else None,
                                 time.monotonic() - t0, f"{who} does not hold the role {request.role}")
        why = "" if answer else self._why(request)
        return ApprovalReply(answer, who.name if who else None, who.role if who else request.role,
                             time.monotonic() - t0, why)

    def _why(self, request: ApprovalRequest) -> str:
        """A refusal is a decision: its reason goes to the journal, the escalation and the review."""
        if not request.ask_why:
            return "refused"
        return self._read("   Why not? (recorded; Enter to skip): ").strip() or "refused"

    @staticmethod
    def _may_approve(who: Participant | None, request: ApprovalRequest) -> bool:
        return request.role is None or who is None or who.role == request.role

    def confirm_rollback(self, steps: int) -> bool:
        try:
            return self._yes_no(f"   Run the rollbacks of {steps} completed step(s)? [Y/n]: ", default=True)
        except Unanswered:
            return True  # nobody left to ask: the policy's default, like a bare Enter

    def _field(self, question: Question, f: AskField) -> Any:
        label = f.prompt or f.name
        choices = f" [{'/'.join(map(str, f.choices))}]" if f.choices else ""
        default = f" (default {f.default})" if f.default is not MISSING else ""
        while True:
            raw = self._line(question, f"   {label}{choices}{default}: ")
            if raw == "" and f.default is not MISSING:
                return f.default
            try:
                return coerce(f, raw)
            except ValueError as exc:
                self._write(f"   {exc}")

    def _line(self, question: Question | None, prompt: str) -> str:
        """One answer; `hint` (shows the step's hint) and `as NAME` (someone else answers
        from now on) are handled here and the prompt asked again."""
        while True:
            raw = self._read(prompt).strip()
            if raw.lower() == "hint" and question is not None:
                self._hint(question)
                continue
            if raw.lower().startswith("as ") and len(self.participants) > 1:
                self._switch(raw[3:].strip())
                continue
            return raw

    def _switch(self, name: str) -> None:
        found = next((p for p in self.participants if p.name == name), None)
        if found is None:
            self._write(f"   {name!r} is not in the team: {', '.join(p.name for p in self.participants)}")
            return
        self._answering = found
        self._write(f"   answering: {found}")

    def _hint(self, question: Question) -> None:
        if question.hint:
            if self.on_hint:
                who = self._answering
                # Recorded (with who asked), and shown by the console.
                self.on_hint(question.step, question.hint, who.name if who else None)
            else:
                self._write(f"   hint: {question.hint}")
        else:
            self._write("   no hint for this step")

    def _yes_no(self, prompt: str, *, default: bool) -> bool:
        while True:
            raw = self._line(None, prompt).lower()
            if not raw:
                return default
            if raw in ("y", "yes"):
                return True
            if raw in ("n", "no"):
                return False

    def _choose(self, role: str | None, question: Question | None = None) -> Participant | None:
        """Who answers: the one who answered last, while they may (no role asked, or theirs);
        else asked once, suggesting who holds the role. `as NAME` at any prompt switches."""
        if len(self.participants) <= 1:
            self._answering = self.participants[0] if self.participants else None
            return self._answering
        current = self._answering
        if current is not None and (role is None or current.role == role):
            self._write(f"   answering: {current} (`as NAME` to switch)")
            return current
        names = [p.name for p in self.participants]
        fallback = current.name if current is not None else names[0]
        suggested = next((p.name for p in self.participants if p.role == role), fallback)
        while True:
            raw = self._read(f"   Who is answering? [{'/'.join(names)}] ({suggested}): ").strip()
            if raw.lower() == "hint" and question is not None:
                self._hint(question)
                continue
            name = raw or suggested
            found = next((p for p in self.participants if p.name == name), None)
            if found is not None:
                self._answering = found
                return found
            self._write(f"   {name!r} is not in the team: {', '.join(names)}")

    def answering(self, name: str) -> None:
        """Someone of the team takes over (e.g. the one who acknowledged the page)."""
        self._answering = next((p for p in self.participants if p.name == name), self._answering)
