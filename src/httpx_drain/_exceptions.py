"""Errors, slotted into the host library's tree so existing handlers keep working.

::

    httpx.RemoteProtocolError (or httpx2.RemoteProtocolError)
    └── IncompleteStreamError   (also an IncompleteStream, common to both flavours)

A drain that gives up is not an error for the caller: it is counted and logged, never raised.
The only error we raise is a *real* truncation of an event stream: the server went away before
the terminal event, so events were lost.
"""

from __future__ import annotations

__all__ = ["IncompleteStream"]


class IncompleteStream(Exception):
    """The event stream ended before its terminal event: events were lost.

    Catch this to handle both flavours at once; each flavour raises a subclass of its own
    ``RemoteProtocolError`` (``httpx_drain.IncompleteStreamError``,
    ``httpx_drain.httpx2.IncompleteStreamError``), so SDK retry logic and handlers written
    for the host library see what they saw before.
    """

    #: Complete events received before the stream ended.
    events: int
    #: The first bytes of the partial event that was cut off (bounded, for logging; never in
    #: the message, which stays free of server bytes).
    partial: bytes
    #: The full size of that partial event.
    partial_size: int

    def __init__(self, message: str, *, events: int, partial: bytes, partial_size: int) -> None:
        super().__init__(message)
        self.events = events
        self.partial = partial
        self.partial_size = partial_size

    @classmethod
    def describe(cls, events: int, partial_size: int, cause: BaseException) -> str:
        """The message: counts and the cause's class, no server bytes."""
        return (
            f"the event stream ended before its terminal event ({type(cause).__name__}): "
            f"{events} complete event(s) received, {partial_size} byte(s) of a partial event"
        )
