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
from ._flavours import HTTPX
from ._policy import (
    DEFAULT_BACKGROUND_DEADLINE,
    DEFAULT_DEADLINE,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PENDING,
    DrainResult,
    Outcome,
    Skip,
)
from ._stats import DrainStats, StatsSnapshot
from ._transports import AsyncDrainTransportImpl, Mode, SyncDrainTransportImpl

__all__ = [
    "DEFAULT_BACKGROUND_DEADLINE",
    "DEFAULT_DEADLINE",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PENDING",
    "AsyncDrainTransport",
    "DrainResult",
    "DrainStats",
    "DrainTransport",
    "Mode",
    "Outcome",
    "Skip",
    "StatsSnapshot",
    "__version__",
]


class DrainTransport(SyncDrainTransportImpl[httpx.Request, httpx.Response], httpx.BaseTransport):
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
        **kwargs: Options of ``httpx.HTTPTransport`` (``verify``, ``http2``, ``limits``,
            ``retries``, ``proxy``, ...) when ``transport`` is ``None``.
    """

    _flavour = HTTPX


class AsyncDrainTransport(
    AsyncDrainTransportImpl[httpx.Request, httpx.Response], httpx.AsyncBaseTransport
):
    """An ``httpx.AsyncBaseTransport`` that drains responses closed before their end.

    Takes the same arguments as :class:`DrainTransport`; with ``transport=None`` it builds
    ``httpx.AsyncHTTPTransport(**kwargs)``. Works on asyncio and trio.
    """

    _flavour = HTTPX


for _name in ("DrainResult", "DrainStats", "Outcome", "Skip", "StatsSnapshot"):
    globals()[_name].__module__ = __name__
del _name
