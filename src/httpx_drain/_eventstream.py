"""Sans-IO: what the consumer of a ``text/event-stream`` body sees, chunk by chunk.

The stream wrappers feed every body chunk here and hand on what comes out. Two jobs, on top of
the boundary scanner in ``_sse.py``:

- **end at the terminal event**: the consumer gets the bytes up to the end of the terminal
  event (``data: [DONE]``, ``event: message_stop``, ...) and then end-of-body at once; what
  follows (events after it, the chunked terminator) is left to the drain;
- **aligned events** (opt-in): every chunk handed on holds whole events only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._sse import DEFAULT_TERMINAL, SSEScanner, TerminalPredicate

if TYPE_CHECKING:
    from ._policy import HeaderLookup

__all__ = ["EventStreamFilter", "SSEOptions"]


@dataclass(frozen=True)
class SSEOptions:
    """How a transport treats ``text/event-stream`` responses."""

    #: Which event ends the stream; ``None``: no end-of-stream at a terminal event.
    terminal: TerminalPredicate | None = DEFAULT_TERMINAL
    #: Hand the consumer whole events only.
    align_events: bool = False
    #: Bytes of a partial event kept for :class:`IncompleteStream` (bounded).
    max_partial: int = 1024

    def applies_to(self, headers: HeaderLookup) -> bool:
        """True for an event stream (only those are scanned; everything else passes as is)."""
        content_type = headers.get("content-type")
        return content_type is not None and content_type.lower().lstrip().startswith(
            "text/event-stream"
        )


class EventStreamFilter:
    """Turns body chunks into the chunks the consumer sees."""

    __slots__ = ("_align", "_pending", "_scan", "discarded", "ended", "scanner", "take")

    def __init__(self, options: SSEOptions) -> None:
        self.scanner = SSEScanner(options.terminal, max_partial=options.max_partial)
        # feed() follows take() (the streams call both), so it does not try take() again.
        self._scan = self.scanner.feed_untaken
        #: The hot path, one call per chunk: true when the chunk is one ordinary whole event
        #: (counted) and is to be handed on as it is; otherwise call :meth:`feed`.
        self.take = self.scanner.take
        self._align = options.align_events
        self._pending = b""
        #: True once the terminal event was handed on: the consumer has seen end-of-body.
        self.ended = False
        #: Bytes read after the terminal event in its own chunk, never handed on.
        self.discarded = 0

    def feed(self, chunk: bytes) -> bytes:
        """The bytes to hand on for ``chunk`` (maybe empty); sets :attr:`ended`.

        Meant for chunks :attr:`take` refused; any chunk is scanned correctly, only slower.
        """
        boundary, terminal_end = self._scan(chunk)
        if terminal_end < 0 and not self._align:
            return chunk
        if terminal_end >= 0:
            self.ended = True
            self.discarded = len(chunk) - terminal_end
            out = chunk[:terminal_end]
        elif boundary < 0:
            self._pending += chunk
            return b""
        else:
            out, rest = chunk[:boundary], chunk[boundary:]
            out, self._pending = self._pending + out, rest
            return out
        if self._pending:
            out, self._pending = self._pending + out, b""
        return out

    def flush(self) -> bytes:
        """At the end of the body: what is left (an unfinished event, handed on as it is)."""
        out, self._pending = self._pending, b""
        return out
