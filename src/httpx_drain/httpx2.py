"""The public names of :mod:`httpx_drain`, bound to httpx2.

openai 3.x, anthropic 2.x and mcp 2.x are built on httpx2 (a fork of httpx with the same
transport API and the same early-close defect in httpcore2)::

    import openai
    from httpx_drain.httpx2 import DrainTransport

    client = openai.OpenAI(http_client=openai.DefaultHttpxClient(transport=DrainTransport()))

Importing this module without httpx2 installed raises ``ImportError`` naming the extra to
install: ``pip install 'httpx-drain[httpx2]'``.
"""

from __future__ import annotations

try:
    import httpx2
except ImportError as exc:  # pragma: no cover - exercised in a venv without httpx2
    raise ImportError(
        "httpx_drain.httpx2 needs the 'httpx2' package: "
        "install it with `pip install 'httpx-drain[httpx2]'`"
    ) from exc

from ._clients import (
    DRAIN_OPTIONS,
    install,
    installed,
    is_installed,
    uninstall,
    wrap_client,
)
from ._clients import drain_async_client_httpx2 as drain_async_client
from ._clients import drain_client_httpx2 as drain_client
from ._exceptions import IncompleteStream
from ._flavours import HTTPX2 as _FLAVOUR
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
    "drain_async_client",
    "drain_client",
    "install",
    "installed",
    "is_installed",
    "uninstall",
    "wrap_client",
]


class IncompleteStreamError(IncompleteStream, httpx2.RemoteProtocolError):
    """An event stream ended before its terminal event: events were lost.

    A ``httpx2.RemoteProtocolError``, raised where the consumer would have seen one, so existing
    handlers and SDK retries keep working; it also carries ``events`` (complete events
    received), ``partial`` (the first bytes of the cut-off event, for logging) and
    ``partial_size``.
    """


class DrainTransport(_SyncImpl[httpx2.Request, httpx2.Response], httpx2.BaseTransport):
    """An ``httpx2.BaseTransport`` that drains responses closed before their end.

    Same arguments as :class:`httpx_drain.DrainTransport`; with ``transport=None`` it builds
    ``httpx2.HTTPTransport(**kwargs)``.
    """

    _flavour = _FLAVOUR
    _incomplete_error = IncompleteStreamError


class AsyncDrainTransport(_AsyncImpl[httpx2.Request, httpx2.Response], httpx2.AsyncBaseTransport):
    """An ``httpx2.AsyncBaseTransport`` that drains responses closed before their end.

    Same arguments as :class:`httpx_drain.AsyncDrainTransport`; with ``transport=None`` it
    builds ``httpx2.AsyncHTTPTransport(**kwargs)``. Works on asyncio and trio.
    """

    _flavour = _FLAVOUR
    _incomplete_error = IncompleteStreamError
