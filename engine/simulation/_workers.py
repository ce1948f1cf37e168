"""Numbered tasks spread over forked worker processes, their results handed back in task
order: the mechanism under `runbook test --trials` on several CPUs.

The workers are forked straight from this process (no multiprocessing pool: its import,
its three handler threads and its locks cost more than the work they spread, and its
terminate() killed a worker in the middle of whatever it was writing). They take task
numbers from one pipe as they get free, so a slow CPU takes fewer; each sends back the
pickled result of a task on a pipe of its own. A worker that dies is noticed when its
pipe ends early: an EngineError says which and how, and nothing waits for it.

Ctrl-C reaches the whole process group: a worker stops as the one process would, and
this process waits for it (a moment: the task in hand is cut short) before it goes on.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import struct
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn

from engine.errors import EngineError

_TASK = struct.Struct("=I")  # a task number, as a worker reads it from the task pipe
_FRAME = struct.Struct("=II")  # a task number and the length of the pickled result after it
_FAILED = 0xFFFFFFFF  # the task number of a frame that carries a worker's error instead
_READ = 1 << 16
QUEUED = 2  # tasks handed out per worker ahead of the results, so no worker waits for the next
GRACE = 5.0  # seconds a stopped worker has to end before it is killed
INTERRUPTED = 130  # a worker's exit status after Ctrl-C, as the command's


def in_order(run: Callable[[int], Any], tasks: int, jobs: int) -> Generator[Any, None, None]:
    """run(n) for n in range(tasks), each in one of `jobs` forked workers, handed back in
    order of n as soon as it and those before it are in (so no more than a few results
    are ever held here). Whatever run returns must pickle."""
    workers = _Workers(run, tasks, jobs)
    try:
        for n in range(tasks):
            yield workers.result(n)
        workers.finished = True
    finally:
        workers.close()


@dataclass
class _Worker:
    pid: int
    results: int  # the read end of its result pipe
    pending: bytearray = field(default_factory=bytearray)  # received, not yet a whole result

    def results_in(self) -> Iterator[tuple[int, Any]]:
        """(task, result) of each whole frame received, taken out of `pending`."""
        while len(self.pending) >= _FRAME.size:
            task, size = _FRAME.unpack_from(self.pending)
            end = _FRAME.size + size
            if len(self.pending) < end:
                return
            result = pickle.loads(memoryview(self.pending)[_FRAME.size:end])
            del self.pending[:end]
            if task == _FAILED:
                raise EngineError(f"a worker process running trials (pid {self.pid}) failed: {result}")
            yield task, result


class _Workers:
    """The forked workers of one in_order(): the task pipe they share, and the result
    pipe of each."""

    def __init__(self, run: Callable[[int], Any], tasks: int, jobs: int) -> None:
        self.tasks, self.handed, self.finished = tasks, 0, False
        self.ready: dict[int, Any] = {}
        self.workers: dict[int, _Worker] = {}  # by the descriptor of its result pipe
        self.poller = select.poll()
        task_read, self.task_write = os.pipe()
        try:
            for _ in range(jobs):
                self._fork(run, task_read)
        except BaseException:
            self.close()
            raise
        finally:
            os.close(task_read)
        self._hand_out(QUEUED * jobs)

    def _fork(self, run: Callable[[int], Any], task_read: int) -> None:
        result_read, result_write = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:  # too many processes, too little memory
            os.close(result_read)
            os.close(result_write)
            raise EngineError(f"cannot start a worker process for the trials ({exc.strerror}); "
                              "--jobs 1 runs them in this one") from None
        if pid == 0:  # the worker: it keeps the task pipe's read end and its own result pipe's write end
            for fd in (result_read, self.task_write, *self.workers):
                os.close(fd)
            _serve(run, task_read, result_write)
        os.close(result_write)
        self.workers[result_read] = _Worker(pid, result_read)
        self.poller.register(result_read, select.POLLIN)

    def _hand_out(self, count: int) -> None:
        numbers = range(self.handed, min(self.handed + count, self.tasks))
        self.handed = numbers.stop
        if numbers and self.task_write >= 0:
            try:
                os.write(self.task_write, b"".join(_TASK.pack(n) for n in numbers))  # under PIPE_BUF: one write
            except BrokenPipeError:  # every worker has ended: their result pipes say how
                pass
        if self.handed == self.tasks:
            self._close_tasks()  # a worker that finds no task left ends

    def result(self, n: int) -> Any:
        """The result of task n, waiting for it if need be."""
        while n not in self.ready:
            if not self.workers:  # cannot happen unless a worker skips a task: never wait on nobody
                raise EngineError(f"the worker processes ended without the result of task {n}")
            self._receive()
        return self.ready.pop(n)

    def _receive(self) -> None:
        for fd, _ in self.poller.poll():
            worker = self.workers[fd]
            data = os.read(fd, _READ)
            if not data:
                self._ended(worker)
                continue
            worker.pending += data
            for task, result in worker.results_in():
                self.ready[task] = result
                self._hand_out(1)

    def _ended(self, worker: _Worker) -> None:
        """A worker's result pipe ended: it exited. Fine once it found no task left;
        otherwise its tasks are lost, and the caller is told why."""
        self._forget(worker)
        _, status = os.waitpid(worker.pid, 0)
        if status == 0:
            return
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == INTERRUPTED:
            raise KeyboardInterrupt
        raise EngineError(f"a worker process running trials (pid {worker.pid}) {_death(status)}; "
                          "the trials stopped")

    def _forget(self, worker: _Worker) -> None:
        self.poller.unregister(worker.results)
        os.close(worker.results)
        del self.workers[worker.results]

    def _close_tasks(self) -> None:
        if self.task_write >= 0:
            os.close(self.task_write)
            self.task_write = -1

    def close(self) -> None:
        """Stop the workers (unless every result is in: then they are ending already),
        wait for each, and close every pipe."""
        self._close_tasks()
        live = list(self.workers.values())
        if not self.finished:
            for worker in live:
                _signal(worker.pid, signal.SIGINT)
        self._drain(time.monotonic() + GRACE)
        for worker in list(self.workers.values()):
            _signal(worker.pid, signal.SIGKILL)  # did not end in time
            self._forget(worker)
        for worker in live:
            os.waitpid(worker.pid, 0)

    def _drain(self, deadline: float) -> None:
        """Read (and drop) what the workers still send until each pipe ends, so none of
        them waits to write while this process waits for it to end."""
        while self.workers and (left := deadline - time.monotonic()) > 0:
            for fd, _ in self.poller.poll(left * 1000):
                if not os.read(fd, _READ):
                    self._forget(self.workers[fd])


def _serve(run: Callable[[int], Any], tasks: int, results: int) -> NoReturn:
    """A worker's life: run each task it reads, send each result; never returns (nor
    unwinds into the code that forked it)."""
    code = 1
    try:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            signal.signal(signal.SIGINT, _interrupted)
        while (task := _next_task(tasks)) is not None:
            _send(results, task, run(task))
        code = 0
    except KeyboardInterrupt:
        code = INTERRUPTED
    except Exception as exc:  # the parent raises it: a worker prints nothing
        with contextlib.suppress(Exception):
            _send(results, _FAILED, f"{type(exc).__name__}: {exc}")
    finally:
        os._exit(code)  # no atexit handlers, no buffers flushed twice: they are the parent's


def _interrupted(signum: int, frame: Any) -> None:
    # One Ctrl-C stops the worker; a second (the parent passes it on) must not cut the
    # unwinding of the first short, half-way through closing a journal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _next_task(tasks: int) -> int | None:
    data = b""
    while len(data) < _TASK.size:
        more = os.read(tasks, _TASK.size - len(data))
        if not more:
            return None
        data += more
    number: int = _TASK.unpack(data)[0]
    return number


def _send(results: int, task: int, result: Any) -> None:
    data = pickle.dumps(result, pickle.HIGHEST_PROTOCOL)
    view = memoryview(_FRAME.pack(task, len(data)) + data)
    while view:
        view = view[os.write(results, view):]


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _death(status: int) -> str:
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        return f"was killed by {name}"
    return f"exited with status {os.WEXITSTATUS(status)}"
