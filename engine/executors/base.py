"""The executor protocol and the data that crosses it."""

# Annotations are evaluated (no `from __future__ import annotations`): `dataclass` checks
# each one given as text against patterns (ClassVar, InitVar) at every start.
import dataclasses
import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from engine.language.model import empty_map
from engine.language.monitoring import Tls

CAPTURE_LIMIT = 1024 * 1024  # bytes of each stream kept in memory (the tail)
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL of a command's process group, local or remote
DRAIN_AFTER_EXIT = 0.2  # how long to keep reading output a background child holds open after the exit
READ_CHUNK = 65536  # bytes per read of a command's output (and per write of its stdin)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A rendered `http` step: the request, and what counts as its success."""

    url: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=empty_map)
    body: bytes | None = None
    verify: bool = True
    follow_redirects: bool | str = "same-origin"  # True, False or "same-origin" (see executors.http)
    status: tuple[int, ...] | None = None  # codes that count as success; None: any 2xx
    # Lower-case names of headers whose value holds a secret: dropped like Authorization
    # when a redirect leaves the origin.
    private_headers: frozenset[str] = frozenset()
    tls: Tls | None = None  # a CA, a client certificate, the server's name (see executors.http)

    def accepts(self, status: int) -> bool:
        """Whether a response with this status code counts as success."""
        return status in self.status if self.status else 200 <= status < 300


@dataclass(frozen=True, slots=True)
class Invocation:
    """One rendered thing to execute: a command on a host, or an HTTP request."""

    step: str
    kind: str
    command: str = ""
    host: str | None = None  # None: this machine
    target: str | None = None
    stdin: str | None = None
    env: Mapping[str, str] = field(default_factory=empty_map)
    timeout: float | None = None
    exit_codes: tuple[int, ...] = (0,)
    http: HttpRequest | None = None
    attempt: int = 1
    # For a command that names `{{ host }}`: renders it for one host of a fan-out.
    per_host: Callable[[str], str] | None = field(default=None, compare=False, repr=False)
    # A program to start as it is, without a shell (e.g. kubectl with the command as one
    # of its arguments); `command` is then what the program runs, as shown and journaled.
    argv: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """What happened: the shape every executor returns."""

    command: str
    host: str | None
    stdout: str
    stderr: str
    exit_code: int | None
    started_at: float
    duration: float
    ok: bool
    error: str | None = None
    timed_out: bool = False
    cancelled: bool = False
    truncated: bool = False
    status: int | None = None
    headers: Mapping[str, str] | None = None
    body: str | None = None
    extra: Mapping[str, Any] = field(default_factory=empty_map)


def _direct_init(cls: type) -> None:
    """Give a frozen, slotted dataclass an `__init__` that fills its slots with plain stores.

    A frozen class's own `__setattr__` refuses a store, so its fields can only be set by
    a C call each (`object.__setattr__`, or the slot's descriptor): about 800 instructions
    a field, 13k for a Result, which every command makes (and an Invocation). Instead
    the new instance becomes, for the time of its `__init__`, a twin class of the same
    slots without that `__setattr__` (a `__class__` assignment, which Python allows
    between classes of the same layout), is filled as any object is, and becomes the
    class again: less than half the cost. The class stays frozen and otherwise the same;
    an instance of a subclass is filled through the descriptors, as before."""
    missing = dataclasses.MISSING
    twin = _twin_of(cls)
    # Without a twin (a layout Python would not let it take), every instance takes the descriptors' path.
    env: dict[str, Any] = {"_LEFT_OUT": _LEFT_OUT, "_cls": cls if twin else None, "_twin": twin,
                           "_become": object.__setattr__}
    params, defaults, stores, slow = ["self"], [], [], []
    for i, f in enumerate(dataclasses.fields(cls)):
        env[f"_set{i}"] = cls.__dict__[f.name].__set__
        if f.default is not missing:
            env[f"_default{i}"] = f.default
            params.append(f"{f.name}=_default{i}")
        elif f.default_factory is not missing:
            env[f"_factory{i}"] = f.default_factory
            params.append(f"{f.name}=_LEFT_OUT")
            defaults.append(f"    if {f.name} is _LEFT_OUT: {f.name} = _factory{i}()")
        else:
            params.append(f.name)
        stores.append(f"    self.{f.name} = {f.name}")
        slow.append(f"        _set{i}(self, {f.name})")
    body = [*defaults, "    if self.__class__ is not _cls:", *slow, "        return",
            "    _become(self, '__class__', _twin)", *stores, "    self.__class__ = _cls"]
    exec(f"def __init__({', '.join(params)}):\n" + "\n".join(body) + "\n", env)  # the class's own field names
    cls.__init__ = env["__init__"]  # type: ignore[misc]


def _twin_of(cls: type) -> type | None:
    """A class of `cls`'s slots without its frozen `__setattr__`, if an instance of `cls`
    can become one and back (checked here, once, not found out at the first instance)."""
    twin = type(f"_Filling{cls.__name__}", (), {"__slots__": cls.__slots__})  # type: ignore[attr-defined]
    probe: Any = object.__new__(cls)
    try:
        object.__setattr__(probe, "__class__", twin)
    except TypeError:  # another layout (a slotted base class, say)
        return None
    probe.__class__ = cls
    return twin


_LEFT_OUT = object()  # a field with a default_factory that the caller did not give
for _cls in (HttpRequest, Invocation, Result):
    _direct_init(_cls)


# Every command the engine starts (and whatever it starts) carries these in its
# environment, so a process an engine left behind when it died can be found again.
RUN_MARK, STEP_MARK = "RUNBOOK_RUN", "RUNBOOK_STEP"


def marks(run_id: str, step: str) -> dict[str, str]:
    """The environment that marks a step's processes as this run's."""
    return {RUN_MARK: run_id, STEP_MARK: step}


class OutputSink(Protocol):
    def output(self, stream: str, data: bytes, host: str | None) -> None:
        """Receive a chunk of live output (stdout or stderr)."""

    def process_started(self, pgid: int, host: str | None) -> None:
        """A command started: its process group (on `host`, None for this machine)."""


class NullSink:
    def output(self, stream: str, data: bytes, host: str | None) -> None:
        return None

    def process_started(self, pgid: int, host: str | None) -> None:
        return None


class Executor(Protocol):
    def run(self, invocation: Invocation, sink: OutputSink, cancel: "Cancel") -> Result: ...


class Cancel:
    """Set once to stop what is running; its fd lets executors wait on it with poll().

    Its pipe is made when its fd is first asked for: the runs of a drill (each trial of an
    estimate) wait on none, and making and closing one took seven system calls."""

    _making = threading.Lock()  # the threads of a fan-out asking at once make one pipe

    def __init__(self) -> None:
        self._read: int | None = None  # no pipe yet; -1 once closed
        self._write = -1
        self._set = False

    def set(self) -> None:
        # Called from a signal handler: only async-signal-safe work here.
        self._set = True
        if self._write >= 0:
            try:
                os.write(self._write, b"x")
            except OSError:
                pass

    def is_set(self) -> bool:
        return self._set

    def clear(self) -> None:
        self._set = False
        if self._read is None:
            return
        try:
            while os.read(self._read, 4096):
                pass
        except OSError:
            pass

    def fileno(self) -> int:
        fd = self._read
        return fd if fd is not None else self._pipe()

    def _pipe(self) -> int:
        with Cancel._making:
            if self._read is None:
                read, write = os.pipe()
                os.set_blocking(read, False)
                os.set_blocking(write, False)
                self._write, self._read = write, read  # a set() from here on writes to it
                if self._set:  # set before there was a pipe to write to
                    self.set()
            return self._read

    def close(self) -> None:
        """Close its pipe (once); setting it later does nothing but mark it set."""
        with Cancel._making:
            read, write = self._read, self._write
            self._read, self._write = -1, -1
        if read is None or read < 0:
            return  # never made (a drill's), or closed already
        for fd in (read, write):
            try:
                os.close(fd)
            except OSError:
                pass


class Tail:
    """The last `limit` bytes of a stream, and whether anything was dropped."""

    __slots__ = ("buf", "dropped", "limit")

    def __init__(self, limit: int = CAPTURE_LIMIT) -> None:
        self.buf = bytearray()
        self.limit = limit
        self.dropped = False

    def add(self, data: bytes) -> None:
        self.buf += data
        if len(self.buf) > 2 * self.limit:
            del self.buf[: len(self.buf) - self.limit]
            self.dropped = True

    def text(self) -> str:
        data = self.buf
        if len(data) > self.limit:
            data = data[len(data) - self.limit:]
            self.dropped = True
        if self.dropped:
            # The cut may fall inside a UTF-8 character: start at the next whole one.
            skip = 0
            while skip < min(3, len(data)) and 0x80 <= data[skip] <= 0xBF:
                skip += 1
            data = data[skip:]
        return bytes(data).decode("utf-8", errors="replace")


def parse_json(text: str | None) -> Any:
    """The JSON value of a body or stdout that looks like JSON, else None."""
    if not text:
        return None
    head = text.lstrip()[:1]
    if head not in ("{", "[", '"') and not head.isdigit() and head not in ("-", "t", "f", "n"):
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # nested deeper than the interpreter's stack: not usable data
        return None


def encode_body(body: Any, headers: Mapping[str, str]) -> tuple[bytes | None, dict[str, str]]:
    """A mapping or list becomes JSON (with its content type); a string is sent as is."""
    out = dict(headers)
    if body is None:
        return None, out
    if isinstance(body, (dict, list)):
        if not any(k.lower() == "content-type" for k in out):
            out["Content-Type"] = "application/json"
        return json.dumps(body).encode(), out
    return str(body).encode(), out
