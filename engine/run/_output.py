"""The live output of the step under way -> StepOutput events (console and log files).

Output arrives in reads of any size: it is decoded incrementally and masked as a
stream, so a UTF-8 character or a secret split between two reads is neither garbled
nor leaked. The masked streams belong to the step, not to one command (`StepStreams`):
the items of a `for_each` write one log, and a secret printed a piece per item is still
masked there.
"""

from __future__ import annotations

import codecs
from typing import Any

from .bus import EventBus
from .events import StepOutput, StepProcess
from .masking import MaskedStream, Masker

TAIL = 4096  # characters of a step's output kept in its step.finished


class StepStreams:
    """The masked output streams of the step under way, by (stream, host)."""

    def __init__(self) -> None:
        self.masked: dict[tuple[str, str | None], MaskedStream] = {}
        self.in_items = False  # running the items of a for_each: their output is one stream

    def flush(self, bus: EventBus, sid: str) -> None:
        """What the step's output streams held back, now that no more output comes."""
        for (stream, host), masked in self.masked.items():
            text = masked.flush()
            if text:
                bus.emit(StepOutput(sid, stream, text, host))
        self.masked.clear()


class StepSink:
    """The OutputSink of one command or request of a step. Use it with `with`: leaving it
    emits what was held back (at the end of the step, for the items of a for_each)."""

    def __init__(self, bus: EventBus, masker: Masker, streams: StepStreams, step_id: str,
                 item: int | None = None) -> None:
        self.bus, self.masker, self.streams, self.step_id = bus, masker, streams, step_id
        self.item = item  # the block's item it runs for, when items run at once
        self._decoders: dict[tuple[str, str | None], Any] = {}
        self._masked = streams.masked

    def process_started(self, pgid: int, host: str | None) -> None:
        # Not fsynced on its own: a SIGKILL of the engine does not lose a written line, and
        # after a power loss `resume` finds the command by its marks on the hosts the
        # (fsynced) step.started names.
        self.bus.emit(StepProcess(self.step_id, pgid, host))

    @property
    def wants_output(self) -> bool:
        """Whether anyone shows or stores live output: the simulated world asks, and
        neither encodes a reply nor calls output() when nobody does (trials)."""
        return self.bus.wants_output

    def output(self, stream: str, data: bytes, host: str | None) -> None:
        if not self.bus.wants_output:
            return  # nobody shows or stores live output (unattended tests, trials)
        decoder = self._decoders.get((stream, host)) or self._open(stream, host)
        self._emit(stream, self._masked[(stream, host)].feed(decoder.decode(data)), host)

    def _open(self, stream: str, host: str | None) -> Any:
        decoder = self._decoders[(stream, host)] = codecs.getincrementaldecoder("utf-8")(errors="replace")
        if (stream, host) not in self._masked:
            self._masked[(stream, host)] = MaskedStream(self.masker)
        return decoder

    def _emit(self, stream: str, text: str, host: str | None) -> None:
        if text:
            self.bus.emit(StepOutput(self.step_id, stream, text, host, self.item))

    def __enter__(self) -> StepSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Emit what the streams held back (as leaving `with` does)."""
        if not self._decoders:
            return  # no output came (a silent command; a run nobody shows output to)
        keep = self.streams.in_items
        for (stream, host), decoder in self._decoders.items():
            masked = self._masked[(stream, host)] if keep else self._masked.pop((stream, host))
            self._emit(stream, masked.feed(decoder.decode(b"", final=True)) + ("" if keep else masked.flush()), host)
        self._decoders.clear()


def masked_tail(masker: Masker, text: Any, size: int = TAIL) -> str:
    """The end of an output as the journal keeps it."""
    # Mask before cutting: a cut through a secret would leave a piece the bus cannot recognise.
    return masker.text(str(text))[-size:]
