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
    Linger,
)
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


class _Response(Protocol):
    stream: Any

    @property
    def headers(self) -> Any: ...

    @property
    def extensions(self) -> Any: ...


RequestT = TypeVar("RequestT", bound=_Request)
ResponseT = TypeVar("ResponseT", bound=_Response)

_stream_classes: dict[tuple[str, bool], type[Any]] = {}


def _stream_class(flavour: Flavour, *, sync: bool) -> type[Any]:
    # The host library's Response checks isinstance(stream, SyncByteStream), so each flavour
    # gets a subclass that adds its own base; built once and cached.
    key = (flavour.name, sync)
    cls = _stream_classes.get(key)
    if cls is None:
        ours, base = (
            (SyncDrainStream, flavour.sync_stream_base)
            if sync
            else (AsyncDrainStream, flavour.async_stream_base)
        )
        cls = type(ours.__name__, (ours, base), {"__slots__": (), "__module__": __name__})
        _stream_classes[key] = cls
    return cls


class _TransportBase:
    _flavour: ClassVar[Flavour]
    #: The public ``IncompleteStreamError`` of the flavour.
    _incomplete_error: ClassVar[type[IncompleteStream]]

    policy: DrainPolicy
    stats: DrainStats

    def _configure(
        self,
        *,
        deadline: float | None,
        max_bytes: int,
        mode: Mode,
        max_pending: int,
        sse: bool,
        terminal: TerminalPredicate | None,
        align_events: bool,
    ) -> None:
        if terminal is not None and not callable(terminal):
            raise TypeError(f"terminal must be a callable taking an SSEEvent, not {terminal!r}")
        #: How ``text/event-stream`` responses are treated; ``None`` when ``sse=False``.
        self.sse = SSEOptions(terminal, bool(align_events)) if sse else None
        if mode not in ("background", "inline"):
            raise ValueError(f"mode must be 'background' or 'inline', not {mode!r}")
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be an int >= 1, not {max_pending!r}")
        if deadline is None:
            deadline = DEFAULT_BACKGROUND_DEADLINE if mode == "background" else DEFAULT_DEADLINE
        self.policy = DrainPolicy(deadline=deadline, max_bytes=max_bytes)
        self.mode: Mode = mode
        self.max_pending = max_pending
        #: Counters of this transport; see :class:`httpx_drain.StatsSnapshot`.
        self.stats = DrainStats()

    def _context(self, request: _Request, response: _Response) -> DrainContext:
        return DrainContext(
            self.policy,
            self.stats,
            request.url,
            response.headers,
            response.extensions,
            self.sse,
            self._flavour.RemoteProtocolError,
            self._incomplete_error,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.transport!r}, deadline={self.policy.deadline!r}, "
            f"max_bytes={self.policy.max_bytes!r}, mode={self.mode!r})"
        )

    transport: Any


def _check_kwargs(transport: object, kwargs: dict[str, Any]) -> None:
    if transport is not None and kwargs:
        names = ", ".join(sorted(kwargs))
        raise TypeError(
            f"{names}: these options configure the default transport; pass them to your "
            "own transport instead when you give one"
        )


class SyncDrainTransportImpl(_TransportBase, Generic[RequestT, ResponseT]):
    """Behaviour of the sync ``DrainTransport`` of either flavour."""

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
        _check_kwargs(transport, kwargs)
        self._configure(
            deadline=deadline,
            max_bytes=max_bytes,
            mode=mode,
            max_pending=max_pending,
            sse=sse,
            terminal=terminal,
            align_events=align_events,
        )
        if transport is None:
            transport = self._flavour.HTTPTransport(**kwargs)
        elif not callable(getattr(transport, "handle_request", None)):
            raise TypeError(
                f"transport must be a sync {self._flavour.name} transport with "
                f"handle_request(), not {type(transport).__name__}"
            )
        #: The wrapped transport.
        self.transport = transport
        self._runner: SyncRunner = (
            SyncBackgroundRunner(max_pending, self.stats, Linger())
            if mode == "background"
            else SyncInlineRunner()
        )
        self._stream_cls = _stream_class(self._flavour, sync=True)

    def handle_request(self, request: RequestT) -> ResponseT:
        """Send the request through the wrapped transport and wrap the response stream."""
        response: ResponseT = self.transport.handle_request(request)
        self.stats.add("responses_wrapped")
        response.stream = self._stream_cls(
            response.stream, self._context(request, response), self._runner
        )
        return response

    def close(self) -> None:
        """Finish pending drains, then close the wrapped transport."""
        try:
            self._runner.close()
        finally:
            self.transport.close()


class AsyncDrainTransportImpl(_TransportBase, Generic[RequestT, ResponseT]):
    """Behaviour of the async ``AsyncDrainTransport`` of either flavour."""

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
        _check_kwargs(transport, kwargs)
        self._configure(
            deadline=deadline,
            max_bytes=max_bytes,
            mode=mode,
            max_pending=max_pending,
            sse=sse,
            terminal=terminal,
            align_events=align_events,
        )
        if transport is None:
            transport = self._flavour.AsyncHTTPTransport(**kwargs)
        elif not callable(getattr(transport, "handle_async_request", None)):
            raise TypeError(
                f"transport must be an async {self._flavour.name} transport with "
                f"handle_async_request(), not {type(transport).__name__}"
            )
        #: The wrapped transport.
        self.transport = transport
        self._runner: AsyncRunner = (
            AsyncBackgroundRunner(max_pending, self.stats, Linger())
            if mode == "background"
            else AsyncInlineRunner()
        )
        self._stream_cls = _stream_class(self._flavour, sync=False)

    async def handle_async_request(self, request: RequestT) -> ResponseT:
        """Send the request through the wrapped transport and wrap the response stream."""
        response: ResponseT = await self.transport.handle_async_request(request)
        self.stats.add("responses_wrapped")
        response.stream = self._stream_cls(
            response.stream, self._context(request, response), self._runner
        )
        return response

    async def aclose(self) -> None:
        """Finish pending drains, then close the wrapped transport."""
        try:
            await self._runner.aclose()
        finally:
            await self.transport.aclose()
