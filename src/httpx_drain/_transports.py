"""Transports that wrap each response stream, written once for both flavours.

The public classes (``httpx_drain.DrainTransport``, ``httpx_drain.httpx2.DrainTransport``, and
the async ones) are two-line subclasses that add the host library's base class and name their
flavour; all behaviour lives here, the way httpx's ``_transports/default.py`` is a thin adapter
over httpcore.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, TypeVar

from ._background import (
    AsyncBackgroundRunner,
    AsyncInlineRunner,
    AsyncRunner,
    SyncBackgroundRunner,
    SyncInlineRunner,
    SyncRunner,
)
from ._eventstream import SSEOptions
from ._exceptions import IncompleteStream
from ._policy import (
    DEFAULT_BACKGROUND_DEADLINE,
    DEFAULT_DEADLINE,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PENDING,
    DrainPolicy,
    Handover,
    Linger,
    select_headers,
)
from ._pool import timing_connects
from ._sse import DEFAULT_TERMINAL, TerminalPredicate
from ._stats import DrainStats
from ._streams import AsyncDrainStream, DrainContext, SyncDrainStream

if TYPE_CHECKING:
    from ._flavours import Flavour

__all__ = ["AsyncDrainTransportImpl", "Mode", "SyncDrainTransportImpl"]

#: ``"background"``: ``close()`` returns once what is already buffered is consumed, and the
#: rest is drained by a worker. ``"inline"``: ``close()`` drains, waiting up to the deadline.
Mode = Literal["background", "inline"]


class _Request(Protocol):
    @property
    def url(self) -> Any: ...

    @property
    def method(self) -> Any: ...


class _Response(Protocol):
    stream: Any

    @property
    def headers(self) -> Any: ...

    @property
    def extensions(self) -> Any: ...

    @property
    def status_code(self) -> int: ...


RequestT = TypeVar("RequestT", bound=_Request)
ResponseT = TypeVar("ResponseT", bound=_Response)

_stream_classes: dict[tuple[str, bool], type[Any]] = {}


def _decision_headers(headers: Any) -> Any:
    """What the stream keeps of the response headers: the few its decisions read.

    Picked in one pass over the raw list: every case-insensitive ``Headers.get`` walks the
    whole list, and a response closed early is asked about four headers, five times.
    """
    raw = getattr(headers, "raw", None)
    return headers if raw is None else select_headers(raw)


def _stream_class(flavour: Flavour, *, sync: bool) -> type[Any]:
    # The host library's Response checks isinstance(stream, SyncByteStream), so each flavour
    # gets a subclass that adds its own base; built once and cached.
    key = (flavour.name, sync)
    cls = _stream_classes.get(key)
    if cls is None:
        ours, base, host = (
            (SyncDrainStream, flavour.sync_stream_base, flavour.sync_host_stream)
            if sync
            else (AsyncDrainStream, flavour.async_stream_base, flavour.async_host_stream)
        )
        namespace = {"__slots__": (), "__module__": __name__, "_host": host}
        cls = type(ours.__name__, (ours, base), namespace)
        _stream_classes[key] = cls
    return cls


class _TransportBase:
    """Configuration and wrapping shared by the sync and async transports."""

    _flavour: ClassVar[Flavour]
    #: The public ``IncompleteStreamError`` of the flavour.
    _incomplete_error: ClassVar[type[IncompleteStream]]
    _sync: ClassVar[bool]

    #: The wrapped transport.
    transport: Any
    _runner: Any

    def __init__(
        self,
        transport: Any = None,
        *,
        deadline: float | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        mode: Mode = "background",
        max_pending: int = DEFAULT_MAX_PENDING,
        sse: bool = True,
        terminal: TerminalPredicate | None = DEFAULT_TERMINAL,
        align_events: bool = False,
        **kwargs: Any,
    ) -> None:
        if transport is not None and kwargs:
            raise TypeError(
                f"{', '.join(sorted(kwargs))}: these options configure the default transport; "
                "pass them to your own transport instead when you give one"
            )
        if mode not in ("background", "inline"):
            raise ValueError(f"mode must be 'background' or 'inline', not {mode!r}")
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be an int >= 1, not {max_pending!r}")
        if terminal is not None and not callable(terminal):
            raise TypeError(f"terminal must be a callable taking an SSEEvent, not {terminal!r}")
        if deadline is None:
            deadline = DEFAULT_BACKGROUND_DEADLINE if mode == "background" else DEFAULT_DEADLINE
        self.policy = DrainPolicy(deadline=deadline, max_bytes=max_bytes)
        self.mode: Mode = mode
        self.max_pending = max_pending
        #: How ``text/event-stream`` responses are treated; ``None`` when ``sse=False``.
        self.sse = SSEOptions(terminal, bool(align_events)) if sse else None
        #: Counters of this transport; see :class:`httpx_drain.StatsSnapshot`.
        self.stats = DrainStats()

        flavour, sync = self._flavour, self._sync
        if transport is None:
            factory = flavour.HTTPTransport if sync else flavour.AsyncHTTPTransport
            transport = factory(**kwargs)
        else:
            method = "handle_request" if sync else "handle_async_request"
            if not callable(getattr(transport, method, None)):
                kind = "a sync" if sync else "an async"
                raise TypeError(
                    f"transport must be {kind} {flavour.name} transport with {method}(), "
                    f"not {type(transport).__name__}"
                )
        self.transport = transport
        if mode == "background":
            background = SyncBackgroundRunner if sync else AsyncBackgroundRunner
            self._runner = background(max_pending, self.stats, Linger(), Handover())
        else:
            self._runner = SyncInlineRunner() if sync else AsyncInlineRunner()
        self._stream_cls = _stream_class(flavour, sync=sync)

    def _wrap(self, request: _Request, response: ResponseT) -> ResponseT:
        self.stats.add("responses_wrapped")
        context = DrainContext(
            policy=self.policy,
            stats=self.stats,
            url=request.url,
            headers=_decision_headers(response.headers),
            extensions=response.extensions,
            method=request.method,
            status=response.status_code,
            sse=self.sse,
            protocol_error=self._flavour.RemoteProtocolError,
            incomplete_error=self._incomplete_error,
        )
        response.stream = self._stream_cls(response.stream, context, self._runner)
        return response

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.transport!r}, deadline={self.policy.deadline!r}, "
            f"max_bytes={self.policy.max_bytes!r}, mode={self.mode!r})"
        )


class SyncDrainTransportImpl(_TransportBase, Generic[RequestT, ResponseT]):
    """Behaviour of the sync ``DrainTransport`` of either flavour."""

    _sync = True
    _runner: SyncRunner

    def handle_request(self, request: RequestT) -> ResponseT:
        """Send the request through the wrapped transport and wrap the response stream."""
        observe = self._runner.before_request(request.url, self.transport)
        response: ResponseT
        if observe is None:
            response = self.transport.handle_request(request)
        else:
            with timing_connects(request, observe, is_async=False):
                response = self.transport.handle_request(request)
        return self._wrap(request, response)

    def close(self) -> None:
        """Finish pending drains, then close the wrapped transport."""
        try:
            self._runner.close()
        finally:
            self.transport.close()


class AsyncDrainTransportImpl(_TransportBase, Generic[RequestT, ResponseT]):
    """Behaviour of the async ``AsyncDrainTransport`` of either flavour."""

    _sync = False
    _runner: AsyncRunner

    async def handle_async_request(self, request: RequestT) -> ResponseT:
        """Send the request through the wrapped transport and wrap the response stream."""
        observe = await self._runner.before_request(request.url, self.transport)
        response: ResponseT
        if observe is None:
            response = await self.transport.handle_async_request(request)
        else:
            with timing_connects(request, observe, is_async=True):
                response = await self.transport.handle_async_request(request)
        return self._wrap(request, response)

    async def aclose(self) -> None:
        """Finish pending drains, then close the wrapped transport."""
        try:
            await self._runner.aclose()
        finally:
            await self.transport.aclose()
