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

The cancel is bounded by ``deadline`` (the drain's), as a drain is: the locks are
awaited no longer, and the frames are written with the request's write timeout capped by it.
A connection whose locks another request holds that long (an upload stuck on a server that
stopped reading) closes the response as upstream would, uncancelled; a write that times out
marks the connection failed, as httpcore does for its own writes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import anyio

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


class _Capped:
    """The request as ``_write_outgoing_data`` reads it: its extensions, with the write
    timeout capped at ``seconds``."""

    __slots__ = ("extensions",)

    def __init__(self, request: Any, seconds: float) -> None:
        extensions = request.extensions
        timeouts = dict(extensions.get("timeout", {}))
        write = timeouts.get("write")
        timeouts["write"] = seconds if write is None else min(write, seconds)
        self.extensions = {**extensions, "timeout": timeouts}


def _locks_of(connection: Any) -> tuple[Any, Any]:
    return connection._state_lock, connection._write_lock


@contextlib.contextmanager
def _locked(connection: Any, seconds: float) -> Iterator[bool]:
    """Hold the connection's state and write locks, waiting at most ``seconds`` for them in
    all; yields False (holding neither) if they did not come in time."""
    state, write = _locks_of(connection)
    locks: list[Any] = [getattr(state, "_lock", None), getattr(write, "_lock", None)]
    if not all(callable(getattr(lock, "acquire", None)) for lock in locks):
        # httpcore's Lock wraps a threading.Lock; another shape is taken as upstream takes it.
        with state, write:
            yield True
        return
    deadline = time.monotonic() + seconds
    held: list[Any] = []
    try:
        for lock in locks:
            if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                break
            held.append(lock)
        yield len(held) == len(locks)
    finally:
        for lock in reversed(held):
            lock.release()


@contextlib.asynccontextmanager
async def _alocked(connection: Any, seconds: float) -> AsyncIterator[bool]:
    """Async twin of :func:`_locked`. Cancelling a lock's acquisition is safe: anyio's and
    trio's locks are either taken or not."""
    held: list[Any] = []
    try:
        with anyio.move_on_after(seconds):
            for lock in _locks_of(connection):
                await lock.__aenter__()
                held.append(lock)
        yield len(held) == 2
    finally:
        for lock in reversed(held):
            await lock.__aexit__(None, None, None)


def cancel_sync(inner_stream: Any, deadline: float) -> bool:
    """Cancel the HTTP/2 stream behind ``inner_stream`` before it is closed, within
    ``deadline`` seconds; True if done.

    Never raises: anything unexpected leaves the response to close as upstream would.
    """
    try:
        target = _find(inner_stream)
        if target is None:
            return False
        connection = target.connection
        with _locked(connection, deadline) as acquired:
            reset = acquired and _reset(target)
        if acquired:
            connection._write_outgoing_data(_Capped(target.request, deadline))
    except Exception:
        return False
    return reset


async def cancel_async(inner_stream: Any, deadline: float) -> bool:
    """Async twin of :func:`cancel_sync`; the caller shields it from cancellation."""
    try:
        target = _find(inner_stream)
        if target is None:
            return False
        connection = target.connection
        async with _alocked(connection, deadline) as acquired:
            reset = acquired and _reset(target)
        if acquired:
            await connection._write_outgoing_data(_Capped(target.request, deadline))
    except Exception:
        return False
    return reset
