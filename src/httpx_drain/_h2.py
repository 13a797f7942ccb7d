"""HTTP/2: cancel a stream abandoned early (RST_STREAM with CANCEL).

httpcore and httpcore2 send no RST_STREAM when an HTTP/2 response is closed before its end
(httpcore#943, closed as wontfix). The stream stays open in h2's state machine, and the DATA
it had received but nobody read never gives its flow-control credit back. On one client, after
100 such streams every request fails with ``LocalProtocolError: Max outbound streams is 100,
100 open``; with large bodies the connection window (16 MiB) runs out first and every stream
on the connection stalls until its read timeout. This module fixes that for users of our
transports: just before the inner stream is closed, it resets the stream with ``CANCEL``,
acknowledges the data queued for it, and flushes both frames; httpcore's own close path then
releases the stream slot as usual. DATA still in flight for the stream is handled by h2 (it
credits the connection window and answers with RST_STREAM); httpcore drops events for streams
it no longer tracks.

There is no public API for this in httpcore, so we reach the connection through private
attributes, the same in httpcore and httpcore2, sync and async: httpx's ``ResponseStream``
``._httpcore_stream`` (a ``PoolByteStream``) ``._stream`` (an ``HTTP2ConnectionByteStream``)
``._connection`` and ``._stream_id``; on the connection ``_h2_state``, ``_events``, the locks
``_state_lock`` and ``_write_lock``, and ``_write_outgoing_data()``. Everything is looked up
by duck typing: if any of it is missing or different, nothing is done and the response closes
exactly as upstream would (the defect above comes back, nothing else breaks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["cancel_async", "cancel_sync"]

_CONNECTION_ATTRS = ("_h2_state", "_events", "_state_lock", "_write_lock", "_write_outgoing_data")


@dataclass(frozen=True)
class _Target:
    """An HTTP/2 stream still open in httpcore, and the connection it belongs to."""

    connection: Any
    request: Any
    stream_id: int


def _find(inner_stream: Any) -> _Target | None:
    """The HTTP/2 stream behind an httpx response stream, or None if it is anything else."""
    stream = inner_stream
    # httpx's ResponseStream -> httpcore's PoolByteStream -> HTTP2ConnectionByteStream; a hop
    # that is absent is skipped, so an httpcore stream given directly works too.
    for hop in ("_httpcore_stream", "_stream"):
        stream = getattr(stream, hop, stream)
    connection: Any = getattr(stream, "_connection", None)
    request = getattr(stream, "_request", None)
    stream_id = getattr(stream, "_stream_id", None)
    if getattr(stream, "_closed", True) is not False or request is None:
        return None
    if not isinstance(stream_id, int) or isinstance(stream_id, bool):
        return None
    if not all(hasattr(connection, name) for name in _CONNECTION_ATTRS):
        return None
    try:
        import h2.connection
    except ImportError:  # no h2, so no HTTP/2 connection
        return None
    events = connection._events
    if not isinstance(connection._h2_state, h2.connection.H2Connection):
        return None
    if not isinstance(events, dict) or stream_id not in events:
        return None  # httpcore already let go of the stream
    if getattr(connection, "_connection_terminated", None) is not None or getattr(
        connection, "_connection_error", False
    ):
        return None  # GOAWAY received or the connection failed: it is on its way out
    return _Target(connection, request, stream_id)


def _reset(target: _Target) -> bool:
    """Reset the stream in h2's state and acknowledge its unread data; True if it was reset.

    Only queues frames (no I/O); call it with the connection's locks held. ``_state_lock``
    serialises with httpcore2's ``receive_data()`` and with the close path's bookkeeping;
    ``_write_lock`` with ``data_to_send()``, so that a concurrent flush cannot swallow the
    frames between h2 queueing them and our own flush.
    """
    import h2.errors
    import h2.events
    import h2.exceptions

    h2_state = target.connection._h2_state
    stream_id = target.stream_id
    stream = h2_state.streams.get(stream_id)
    # A stream the server already ended (its END_STREAM read but not yet handed to the
    # consumer) is closed: nothing to cancel, but its unread data still holds credit.
    reset = stream is not None and not stream.closed
    try:
        if reset:
            h2_state.reset_stream(stream_id, error_code=h2.errors.ErrorCodes.CANCEL)
        queued = target.connection._events.get(stream_id)
        if isinstance(queued, list):
            unread = [event for event in queued if isinstance(event, h2.events.DataReceived)]
            size = sum(event.flow_controlled_length or 0 for event in unread)
            if size:
                # httpcore acknowledges data only as the consumer reads it; this is the
                # connection-window credit it would otherwise lose for good.
                h2_state.acknowledge_received_data(size, stream_id)
            queued[:] = [e for e in queued if not isinstance(e, h2.events.DataReceived)]
    except h2.exceptions.ProtocolError:
        return False
    return reset


def cancel_sync(inner_stream: Any) -> bool:
    """Cancel the HTTP/2 stream behind ``inner_stream`` before it is closed; True if done.

    Never raises: anything unexpected leaves the response to close as upstream would.
    """
    try:
        target = _find(inner_stream)
        if target is None:
            return False
        connection = target.connection
        with connection._state_lock, connection._write_lock:
            reset = _reset(target)
        connection._write_outgoing_data(target.request)
    except Exception:
        return False
    return reset


async def cancel_async(inner_stream: Any) -> bool:
    """Async twin of :func:`cancel_sync`; the caller shields it from cancellation."""
    try:
        target = _find(inner_stream)
        if target is None:
            return False
        connection = target.connection
        async with connection._state_lock, connection._write_lock:
            reset = _reset(target)
        await connection._write_outgoing_data(target.request)
    except Exception:
        return False
    return reset
