"""Keep streaming HTTP/1.1 connections reusable under httpx.

Wrap your transport, and a response closed before the end of its body (an SDK that stops at
``data: [DONE]``) is drained within a deadline and a byte cap, so httpcore returns the
connection to the pool instead of closing it::

    import httpx
    from httpx_drain import DrainTransport

    client = httpx.Client(transport=DrainTransport())

The same names bound to httpx2 live in :mod:`httpx_drain.httpx2`.
"""

from __future__ import annotations

import httpx

from .__version__ import __version__
from ._clients import (
    DRAIN_OPTIONS,
    drain_async_client,
    drain_client,
    install,
    installed,
    is_installed,
    uninstall,
    wrap_client,
)
from ._exceptions import IncompleteStream
from ._flavours import HTTPX as _FLAVOUR
from ._policy import (
    DEFAULT_BACKGROUND_DEADLINE,
    DEFAULT_DEADLINE,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PENDING,
    DrainResult,
    Outcome,
    Skip,
)
from ._sse import DEFAULT_TERMINAL, SSEEvent, TerminalEvents, TerminalPredicate
from ._stats import DrainStats, StatsSnapshot
from ._transports import AsyncDrainTransportImpl as _AsyncImpl
from ._transports import Mode
from ._transports import SyncDrainTransportImpl as _SyncImpl

__all__ = [
    "DEFAULT_BACKGROUND_DEADLINE",
    "DEFAULT_DEADLINE",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PENDING",
    "DEFAULT_TERMINAL",
    "DRAIN_OPTIONS",
    "AsyncDrainTransport",
    "DrainResult",
    "DrainStats",
    "DrainTransport",
    "IncompleteStream",
    "IncompleteStreamError",
    "Mode",
    "Outcome",
    "SSEEvent",
    "Skip",
    "StatsSnapshot",
    "TerminalEvents",
    "TerminalPredicate",
    "__version__",
    "drain_async_client",
    "drain_client",
    "install",
    "installed",
    "is_installed",
    "uninstall",
    "wrap_client",
]


class IncompleteStreamError(IncompleteStream, httpx.RemoteProtocolError):
    """An event stream ended before its terminal event: events were lost.

    A ``httpx.RemoteProtocolError``, raised where the consumer would have seen one, so existing
    handlers and SDK retries keep working; it also carries ``events`` (complete events
    received), ``partial`` (the first bytes of the cut-off event, for logging) and
    ``partial_size``.
    """


class DrainTransport(_SyncImpl[httpx.Request, httpx.Response], httpx.BaseTransport):
    """An ``httpx.BaseTransport`` that drains responses closed before their end.

    Args:
        transport: The transport to wrap. ``None`` builds ``httpx.HTTPTransport(**kwargs)``.
        deadline: Seconds one drain may take, in all; each read during the drain waits at most
            what is left of it. ``None``: 1 s in the background, 0.1 s inline.
        max_bytes: Body bytes one drain may read and discard before it gives up (512 KiB).
        mode: ``"background"`` (default): ``close()`` consumes what is already buffered, then
            returns, and a worker thread owned by the transport waits for the rest.
            ``"inline"``: ``close()`` itself drains, waiting up to ``deadline``.
        max_pending: Background drains in flight at most; past it a response closed early
            loses its connection at once, as without this transport (counted).
        sse: Treat ``text/event-stream`` bodies as event streams (below). ``False``: pass
            them through like any body.
        terminal: Which event ends an event stream (:data:`DEFAULT_TERMINAL`: ``data:
            [DONE]``, ``message_stop``, ``response.completed``, ...). Once it has been handed
            on, the consumer sees end-of-body at once and the tail is drained; a server that
            then closes without the chunked terminator is not an error. A stream cut off
            before it raises :class:`IncompleteStreamError`. ``None``: no such end.
        align_events: Hand the consumer whole events only, however the server or a proxy
            split them across chunks.
        **kwargs: Options of ``httpx.HTTPTransport`` (``verify``, ``http2``, ``limits``,
            ``retries``, ``proxy``, ...) when ``transport`` is ``None``.
    """

    _flavour = _FLAVOUR
    _incomplete_error = IncompleteStreamError


class AsyncDrainTransport(_AsyncImpl[httpx.Request, httpx.Response], httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` that drains responses closed before their end.

    Takes the same arguments as :class:`DrainTransport`; with ``transport=None`` it builds
    ``httpx.AsyncHTTPTransport(**kwargs)``. Works on asyncio and trio.
    """

    _flavour = _FLAVOUR
    _incomplete_error = IncompleteStreamError


for _name in ("DrainResult", "DrainStats", "Outcome", "Skip", "StatsSnapshot"):
    globals()[_name].__module__ = __name__
del _name
