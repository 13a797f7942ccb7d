"""What the wrapped transport's connection pool holds, and what a new connection costs.

Only hints for :class:`~httpx_drain._policy.Handover`: any transport we cannot inspect
answers "cannot tell", and the request goes ahead as it would without us.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["ConnectTimer", "has_available_connection", "timing_connects"]


#: httpcore origins by (library, scheme, host, port): building one parses a whole URL.
_origins: dict[tuple[str, bytes, bytes, int | None], Any] = {}
_MAX_ORIGINS = 1024


def has_available_connection(transport: Any, url: Any) -> bool | None:
    """Whether ``transport``'s pool can take a request to ``url`` at once; ``None``: unknown.

    Uses httpcore's public pool interface (``ConnectionPool.connections``, and each
    connection's ``can_handle_request()`` and ``is_available()``); only reaching the pool goes
    through the host library's private ``_pool`` attribute, looked up defensively.
    """
    pool = getattr(transport, "_pool", None)
    connections = getattr(pool, "connections", None)
    if connections is None:
        return None
    try:
        name = type(pool).__module__.partition(".")[0]
        key = (name, url.raw_scheme, url.raw_host, url.port)
        origin = _origins.get(key)
        if origin is None:
            if len(_origins) >= _MAX_ORIGINS:
                _origins.clear()
            core = sys.modules[name]
            origin = _origins[key] = core.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=b"/"
            ).origin
        for connection in connections:
            if connection.can_handle_request(origin) and connection.is_available():
                return True
        return False
    except Exception:  # a pool of another shape: cannot tell
        return None


class ConnectTimer:
    """Times the connection a request opens, from httpcore's trace events (sans-IO).

    httpcore names them ``connection.connect_tcp.started``, ``...complete``, then for TLS
    ``connection.start_tls.started`` and ``...complete``; the first event of another kind
    (``http11.send_request_headers.started``) means the connection is ready. A failed step
    measures nothing.
    """

    __slots__ = ("_clock", "_ended", "_observe", "_started")

    def __init__(
        self, observe: Callable[[float], None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._observe = observe
        self._clock = clock
        self._started: float | None = None
        self._ended: float | None = None

    def event(self, name: str) -> None:
        """Take one trace event's name."""
        if name.startswith("connection."):
            if name.endswith(".failed"):
                self._started = self._ended = None
            elif name.endswith(".started") and name.startswith(
                ("connection.connect_tcp", "connection.connect_unix_socket")
            ):
                self._started, self._ended = self._clock(), None
            elif name.endswith(".complete") and self._started is not None:
                self._ended = self._clock()
        elif self._started is not None and self._ended is not None:
            self._observe(self._ended - self._started)
            self._started = self._ended = None


@contextmanager
def timing_connects(
    request: Any, observe: Callable[[float], None], *, is_async: bool
) -> Iterator[None]:
    """Time any connection opened while sending ``request``, through its trace extension.

    A trace the caller set is still called, first, with every event. The request gets a copy
    of its extensions for the call, and its own dict back when the block ends (the response's
    headers have arrived: the connection is open): a dict the caller shares between requests
    is never changed.
    """
    extensions = request.extensions
    previous = extensions.get("trace")
    timer = ConnectTimer(observe)
    trace: Callable[[str, Any], Any]
    if is_async:

        async def trace(name: str, info: Any) -> None:
            if previous is not None:
                await previous(name, info)
            timer.event(name)

    else:

        def trace(name: str, info: Any) -> None:
            if previous is not None:
                previous(name, info)
            timer.event(name)

    request.extensions = {**extensions, "trace": trace}
    try:
        yield
    finally:
        request.extensions = extensions
