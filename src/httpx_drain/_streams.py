"""Stream wrappers: pass the body through, and drain what is left of it on close.

Sync and async twins are written side by side and kept small: the decisions live in
``_policy.py``. The wrappers hold a *single* iterator of the inner stream for the response's
whole life: httpcore's body generator closes its connection when it is finalised, so iterating
the inner stream afresh for the drain would find the connection gone. When the inner stream is
the host library's own ``ResponseStream``, that iterator is httpcore's, read under the host's
error mapping (see ``_StreamState.__init__``).
"""

from __future__ import annotations

import contextlib
import enum
import ssl
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import anyio

from ._eventstream import EventStreamFilter, SSEOptions
from ._exceptions import IncompleteStream
from ._h2 import cancel_async, cancel_sync
from ._h11 import consume_bare_end, end_is_buffered, has_leftover_bytes, pull_unread
from ._policy import Budget, DrainPolicy, DrainResult, Outcome, ResponseFacts, Skip, plan
from ._stats import logger

if TYPE_CHECKING:
    from ._background import AsyncRunner, SyncRunner
    from ._flavours import HostStream
    from ._stats import DrainStats

__all__ = [
    "AsyncDrainStream",
    "DrainContext",
    "SyncDrainStream",
    "Tail",
    "origin_of",
    "would_block",
]

_clock = time.monotonic


@dataclass(eq=False)
class DrainContext:
    """What a stream needs from its transport and its response, captured at wrap time.

    Headers and extensions are kept instead of the response itself, which would make a
    reference cycle (response -> stream -> response).
    """

    policy: DrainPolicy
    stats: DrainStats
    url: Any
    headers: Any
    extensions: dict[str, Any]
    method: str = "GET"
    status: int = 200
    #: How to treat an event stream; ``None``: pass it through like any body.
    sse: SSEOptions | None = None
    #: The host library's ``RemoteProtocolError``, and our subclass of it.
    protocol_error: type[BaseException] = Exception
    incomplete_error: type[IncompleteStream] = IncompleteStream

    def event_filter(self) -> EventStreamFilter | None:
        """A filter for this response's body if it is an event stream we handle."""
        if self.sse is not None and self.sse.applies_to(self.headers):
            return EventStreamFilter(self.sse)
        return None

    @property
    def origin(self) -> str:
        """Scheme, host and port: never a path or query, which may carry secrets."""
        return origin_of(self.url)

    def plan(self, consumed: int) -> Skip | None:
        """Whether to drain, given the body bytes the consumer has seen."""
        facts = ResponseFacts.from_response(self.headers, self.extensions, self.method, self.status)
        return plan(facts, consumed, self.policy)

    @property
    def network_stream(self) -> Any:
        """The connection's network stream, when the inner transport is httpcore's."""
        return self.extensions.get("network_stream")


def origin_of(url: Any) -> str:
    """Scheme, host and port of a URL of either flavour: never a path or query."""
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{url.host}{port}"


def would_block(network_stream: Any) -> bool:
    """True when reading ``network_stream`` now would wait for the network.

    Used only as a hint (to let a caller go while a drain waits), never for correctness.
    """
    try:
        sock = network_stream.get_extra_info("socket")
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return False
        return not network_stream.get_extra_info("is_readable")
    except Exception:  # an unknown network stream: assume the worst
        return True


class Tail(enum.Enum):
    """What is there of a body's rest when its response is closed early."""

    #: The end of the body (or bytes h11 rejects) is in h11's or the socket's buffer: a
    #: drain cannot wait.
    END = "end"
    #: Bytes have arrived whose end cannot be seen (a TLS record, part of a terminator).
    ARRIVING = "arriving"
    #: Nothing has arrived: a drain would wait for the network at once.
    NOTHING = "nothing"


class _ReadCap:
    """Caps every read of a network stream by the drain's remaining time.

    httpcore takes the read timeout from ``request.extensions["timeout"]`` once, when the body
    generator starts, not on every read: if the consumer had begun reading, the client's read
    timeout (600 s in the openai SDK) is already fixed in that generator. The only place left
    to bound a drain is the network stream's ``read(max_bytes, timeout)``, httpcore's public
    network-stream interface, so we shadow it on the instance for the drain's duration. While a
    response is unfinished its connection belongs to it alone, so nobody else reads through the
    shadowed method.
    """

    def __init__(
        self, network_stream: Any, budget: Budget, on_wait: Callable[[], None] | None = None
    ) -> None:
        self._stream = network_stream
        self._budget = budget
        self._on_wait = on_wait
        self._installed = False

    def timeout(self, requested: float | None) -> float:
        if self._on_wait is not None and would_block(self._stream):
            on_wait, self._on_wait = self._on_wait, None
            on_wait()
        return self._budget.read_timeout(requested, _clock())

    def install(self, read: Callable[..., Any]) -> bool:
        if self._stream is None or "read" in getattr(self._stream, "__dict__", {}):
            return False
        try:
            self._stream.read = read
        except AttributeError:  # __slots__ or a read-only attribute: no cap possible
            return False
        self._installed = True
        return True

    def remove(self) -> None:
        if self._installed:
            del self._stream.read
            self._installed = False

    @contextlib.contextmanager
    def sync(self) -> Iterator[None]:
        if self._stream is not None:
            original = self._stream.read

            def read(max_bytes: int, timeout: float | None = None) -> bytes:
                size = self._budget.read_size(max_bytes)
                return original(size, self.timeout(timeout))  # type: ignore[no-any-return]

            self.install(read)
        try:
            yield
        finally:
            self.remove()

    @contextlib.contextmanager
    def async_(self) -> Iterator[None]:
        if self._stream is not None:
            original = self._stream.read

            async def read(max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
                size = self._budget.read_size(max_bytes)
                return await original(size, self.timeout(timeout))  # type: ignore[no-any-return]

            self.install(read)
        try:
            yield
        finally:
            self.remove()


class _LeftoverBytes(Exception):
    """The server sent bytes past the end of the body: the connection was closed."""


class _StreamState:
    """Bookkeeping shared by both twins: bytes seen, how the inner iterator ended."""

    __slots__ = (
        "_body",
        "_closed",
        "_consumed",
        "_counting",
        "_ctx",
        "_done",
        "_errors",
        "_failed",
        "_filter",
        "_inner",
    )

    #: The host library's own stream over httpcore's, set per flavour by the transports.
    _host: ClassVar[HostStream | None] = None

    def __init__(self, inner: Any, ctx: DrainContext) -> None:
        self._inner = inner
        # What the wrapper iterates, and the context that gives its errors the host library's
        # classes. The host's ResponseStream is a generator over httpcore's stream that only
        # maps errors: iterating httpcore's stream under the same mapping keeps the chain of
        # generators as long as without us, one re-entry of the interpreter less per chunk
        # (about 1 % of the per-chunk time, benchmarks/bench_overhead). Any other stream, a
        # subclass included, is iterated as it is.
        self._body: Any = inner
        self._errors: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext
        host = self._host
        if host is not None and type(inner) is host[0]:
            self._body, self._errors = inner._httpcore_stream, host[1]
        self._ctx = ctx
        self._consumed = 0
        # Bytes seen matter only against a Content-Length (plan(): is the remainder over the
        # cap?); chunked bodies, every event stream among them, skip the count per chunk.
        self._counting = "content-length" in ctx.headers
        self._done = False  # the inner iterator reached the end of the body
        self._failed = False  # reading raised: the inner stream has closed its connection
        self._closed = False
        self._filter = ctx.event_filter()

    def _truncation(self, exc: BaseException) -> BaseException | None:
        """The typed error for an event stream cut off before its terminal event, if it was."""
        filt = self._filter
        if (
            filt is None
            or not isinstance(exc, self._ctx.protocol_error)
            or filt.scanner.terminal_seen
        ):
            return None
        scanner = filt.scanner
        self._ctx.stats.add("truncated_streams")
        return self._ctx.incomplete_error(
            self._ctx.incomplete_error.describe(scanner.events, scanner.partial_size, exc),
            events=scanner.events,
            partial=scanner.partial,
            partial_size=scanner.partial_size,
        )

    def _host_error(self, exc: BaseException) -> BaseException:
        """``exc`` as the host library's own stream would raise it (httpcore's mapped)."""
        if self._errors is contextlib.nullcontext or not isinstance(exc, Exception):
            return exc  # nothing maps it (cancellation is never mapped): its traceback untouched
        mapped: BaseException = exc
        try:
            with self._errors():
                raise exc
        except BaseException as caught:  # the context re-raises it, or its mapped twin
            mapped = caught
        return mapped

    def _ended_at_terminal(self) -> bool:
        return self._filter is not None and self._filter.ended

    def _begin_drain(self, started: float | None = None) -> Budget:
        budget = Budget(self._ctx.policy, _clock() if started is None else started)
        if self._filter is not None and self._filter.ended:
            # Bytes after the terminal event in its own chunk were read and never handed on.
            budget.discard(self._filter.discarded)
        return budget

    def _note_missing_terminator(self, error: BaseException | None) -> None:
        # Seed 001: a server that closes after the terminal event without the chunked
        # terminator. The consumer already saw a clean end of stream; say so, quietly.
        if error is not None and self._filter is not None and self._filter.ended:
            self._ctx.stats.add("missing_terminators")
            logger.info(
                "server ended the connection after the terminal event without ending the "
                "body (%s), origin %s; the consumer saw a clean end of stream",
                type(error).__name__,
                self._ctx.origin,
            )

    def tail(self, readable: bool | None = None) -> Tail:
        """What a drain would find now: the end of the body, bytes arriving, or nothing.

        ``readable``: whether the socket is readable, when the caller has just looked.
        """
        return self._judge_tail(self._arriving(readable), self._ctx.network_stream)

    def _arriving(self, readable: bool | None) -> bool:
        # The one readability check, unless the caller has just made it.
        return not would_block(self._ctx.network_stream) if readable is None else readable

    def _judge_tail(self, arriving: bool, network_stream: Any) -> Tail:
        """The tail from h11's buffer and, when ``arriving``, ``network_stream``'s socket."""
        if end_is_buffered(self._inner, network_stream if arriving else None):
            return Tail.END
        return Tail.ARRIVING if arriving else Tail.NOTHING

    @property
    def deadline(self) -> float:
        """Seconds a drain of this stream may take."""
        return self._ctx.policy.deadline

    @property
    def origin(self) -> str:
        """The origin of the response, for logs and per-origin learning."""
        return self._ctx.origin

    @property
    def network_stream(self) -> Any:
        """The connection's network stream, when the inner transport is httpcore's."""
        return self._ctx.network_stream

    def _decide(self) -> Skip | None:
        if self._filter is not None and self._filter.ended:
            self._ctx.stats.add("terminal_events")
        if self._done:
            return Skip.COMPLETE
        if self._failed:
            return Skip.FAILED
        return self._ctx.plan(self._consumed)

    def _conclude(
        self, budget: Budget, *, reached_end: bool, error: BaseException | None
    ) -> DrainResult:
        now = _clock()
        outcome = budget.conclude(reached_end=reached_end, failed=error is not None, now=now)
        name = type(error).__name__ if error is not None and outcome is Outcome.ERROR else None
        return budget.result(outcome, now, name)


class SyncDrainStream(_StreamState):
    """Sync wrapper; the transport subclasses it with the host library's ``SyncByteStream``."""

    __slots__ = ("_consumer", "_end_taken", "_iterator", "_runner")

    def __init__(self, inner: Any, ctx: DrainContext, runner: SyncRunner) -> None:
        super().__init__(inner, ctx)
        self._runner = runner
        self._iterator: Iterator[bytes] | None = None
        self._consumer: Generator[bytes, None, None] | None = None
        #: h11 has taken the bare terminator from :meth:`tail`: the body has ended.
        self._end_taken = False

    def tail(self, readable: bool | None = None) -> Tail:
        """What a drain would find now; a bare terminator found is handed to h11 at once.

        A sync drain owns its socket's reads: what a readable plain TCP socket holds is read
        into h11's buffer (one ``recv()``, where a peek to decide and a read to drain took
        two), and when the rest of the body is then the bare terminator, h11 takes it, so that
        :meth:`drain` only closes the stream.
        """
        if self._take_bare_end():  # the terminator came with the last event
            return Tail.END
        network_stream = self._ctx.network_stream
        arriving = self._arriving(readable)
        if arriving and pull_unread(self._inner, network_stream):
            if self._take_bare_end():
                return Tail.END
            network_stream = None  # what the socket held is in h11's buffer now
        return self._judge_tail(arriving, network_stream)

    def _take_bare_end(self) -> bool:
        if consume_bare_end(self._inner):
            self._end_taken = True
        return self._end_taken

    def _inner_iterator(self) -> Iterator[bytes]:
        if self._iterator is None:
            self._iterator = iter(self._body)
        return self._iterator

    def __iter__(self) -> Iterator[bytes]:
        # Kept, so that close() can end it: a consumer that reads on after closing the stream
        # must not take chunks from the inner iterator while a background drain reads it.
        self._consumer = consumer = self._chunks()
        return consumer

    def _chunks(self) -> Generator[bytes, None, None]:
        # A plain ``for`` (not ``yield from``): when the consumer abandons this generator, its
        # GeneratorExit must not reach the inner iterator, which the drain still needs.
        filt = self._filter
        try:
            with self._errors():
                counting = self._counting
                if filt is None:
                    for chunk in self._inner_iterator():
                        if counting:
                            self._consumed += len(chunk)
                        yield chunk
                elif self._ended_at_terminal():
                    return  # iterated again after the terminal event: still end-of-body
                else:
                    # SSEScanner.take(), inlined: the call alone costs more than a sixth of
                    # what scanning adds to a chunk (benchmarks/bench_instructions), and the
                    # sync path is the one the 5 % target is measured on. test_properties
                    # checks that the two agree.
                    scanner, feed = filt.scanner, filt.feed
                    flens, forms = scanner._flens, scanner._forms
                    for chunk in self._inner_iterator():
                        if counting:
                            self._consumed += len(chunk)
                        if scanner._clean:
                            line = chunk.removesuffix(b"\n\n")
                            if (
                                line is not chunk
                                and line >= b";"
                                and 10 not in line
                                and 13 not in line
                                and (len(line) not in flens or line not in forms)
                            ):
                                scanner._events += 1
                                yield chunk
                                continue
                        out = feed(chunk)
                        if out:
                            yield out
                        if filt.ended:
                            return  # end-of-body for the consumer; the drain reads the rest
                    tail = filt.flush()
                    if tail:
                        yield tail
        except GeneratorExit:
            raise
        except BaseException as exc:
            self._failed = True
            truncated = self._truncation(exc)
            if truncated is None:
                raise
            raise truncated from exc
        self._done = True

    def close(self) -> None:
        """Drain what is left of the body within the budget, then close the inner stream."""
        if self._closed:
            return
        self._closed = True
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(ValueError):  # running on another thread: cannot end it
                consumer.close()
        try:
            skip = self._decide()
        except Exception:  # pragma: no cover - plan() is total; belt and braces for close()
            skip = Skip.FAILED
        if skip is not None:
            if skip is not Skip.COMPLETE:
                self._ctx.stats.record_skip(skip, self._ctx.origin)
            if skip is Skip.NOT_HTTP11:
                with contextlib.suppress(Exception):
                    if cancel_sync(self._inner, self.deadline):
                        self._ctx.stats.add("streams_cancelled")
            elif skip is Skip.COMPLETE:
                self._discard_if_overfilled()
            self._close_inner()
            return
        self._ctx.stats.add("drains_started")
        self._runner.submit(self)

    def drain(
        self, on_wait: Callable[[], None] | None = None, started: float | None = None
    ) -> DrainResult:
        """Read the rest of the body within the budget, close the inner stream, record it.

        ``on_wait`` is called once, when the drain is about to wait for the network;
        ``started`` is when the budget began (default: now), for a drain that was parked
        first. Runs on the caller's thread (inline), a later request's or a worker's
        (background). Never raises.
        """
        budget = self._begin_drain(started)
        reached_end = False
        error: BaseException | None = None
        try:
            # When tail() handed h11 the bare terminator, the body's end is h11's, not
            # httpcore's reader's (which would wait for more): closing the inner stream
            # returns the connection.
            if self._end_taken:
                reached_end = True
            else:
                with _ReadCap(self._ctx.network_stream, budget, on_wait).sync(), self._errors():
                    for chunk in self._inner_iterator():
                        if not budget.discard(len(chunk)) or budget.expired(_clock()):
                            break
                    else:
                        reached_end = True
        except Exception as exc:
            error = exc
        finally:
            self._note_missing_terminator(error)
            if reached_end and self._discard_if_overfilled():
                error, reached_end = _LeftoverBytes(), False
            result = self._conclude(budget, reached_end=reached_end, error=error)
            try:
                self._close_inner()
            except Exception as exc:  # a close that fails must not escape close()
                result = budget.result(Outcome.ERROR, _clock(), type(exc).__name__)
            self._ctx.stats.record(result, self._ctx.origin)
        return result

    def _discard_if_overfilled(self) -> bool:
        """Close the connection if the server sent bytes past this response; True if so."""
        if not has_leftover_bytes(self._inner):
            return False
        with contextlib.suppress(Exception):
            self._ctx.network_stream.close()
        return True

    def _close_inner(self) -> None:
        # Finish the inner iterator ourselves (a no-op once exhausted) rather than leave it to
        # the garbage collector, then close the inner stream, exactly once.
        close = getattr(self._iterator, "close", None)
        try:
            if close is not None:
                close()
        finally:
            self._inner.close()

    def abort(self) -> None:
        """Close the inner stream without draining (a drain that could not be scheduled)."""
        with contextlib.suppress(Exception):
            self._close_inner()


class AsyncDrainStream(_StreamState):
    """Async wrapper; the transport subclasses it with the host library's ``AsyncByteStream``."""

    __slots__ = ("_iterator", "_runner")

    def __init__(self, inner: Any, ctx: DrainContext, runner: AsyncRunner) -> None:
        super().__init__(inner, ctx)
        self._runner = runner
        self._iterator: AsyncIterator[bytes] | None = None

    def _inner_iterator(self) -> AsyncIterator[bytes]:
        if self._iterator is None:
            self._iterator = aiter(self._body)
        return self._iterator

    def __aiter__(self) -> AsyncIterator[bytes]:
        # The stream is its own iterator, not an async generator: a consumer that stops early
        # abandons it, and trio warns about every async generator collected unfinished.
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            # Read on after closing: the rest belongs to the drain, which may be reading it.
            raise StopAsyncIteration
        filt = self._filter
        while True:
            if filt is not None and filt.ended:
                raise StopAsyncIteration
            try:
                chunk = await self._inner_iterator().__anext__()
            except StopAsyncIteration:
                self._done = True
                tail = filt.flush() if filt is not None else b""
                if tail:
                    return tail
                raise
            except BaseException as caught:
                self._failed = True
                # Mapped here, where it is rare, rather than under a context entered for every
                # chunk (the sync stream's generator enters its one for the whole body).
                exc = self._host_error(caught)
                truncated = self._truncation(exc)
                if truncated is not None:
                    raise truncated from exc
                if exc is caught:
                    raise
                raise exc from caught
            if self._counting:
                self._consumed += len(chunk)
            if filt is None or filt.take(chunk):
                return chunk
            out = filt.feed(chunk)
            if out:
                return out

    async def aclose(self) -> None:
        """Drain what is left of the body within the budget, then close the inner stream.

        Idempotent and shielded from the caller's cancellation: the inner ``aclose()`` always
        runs (an interrupted one leaks a pool slot, httpcore#1115). A cancelled caller still
        sees its cancellation at its next checkpoint.
        """
        if self._closed:
            return
        self._closed = True
        skip = self._decide()
        if skip is not None:
            if skip is not Skip.COMPLETE:
                self._ctx.stats.record_skip(skip, self._ctx.origin)
            if skip is Skip.NOT_HTTP11:
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    if await cancel_async(self._inner, self.deadline):
                        self._ctx.stats.add("streams_cancelled")
            elif skip is Skip.COMPLETE:
                await self._discard_if_overfilled()
            await self._close_inner()
            return
        self._ctx.stats.add("drains_started")
        with anyio.CancelScope(shield=True):
            await self._runner.submit(self)

    async def drain(self) -> DrainResult:
        """Read the rest of the body within the budget, close the inner stream, record it.

        Never raises, and never outlives the deadline: the per-read cap bounds each read, and
        a cancel scope bounds the whole (for inner transports without a network stream).
        """
        policy = self._ctx.policy
        budget = self._begin_drain()
        reached_end = False
        error: BaseException | None = None
        try:
            with anyio.CancelScope(shield=True) as shield:
                # A little slack over the deadline so the per-read cap, which ends the drain
                # with a clean ReadTimeout, normally fires first.
                shield.deadline = anyio.current_time() + policy.deadline + 0.05
                # No shortcut for a bare terminator (see the sync drain): the event loop owns
                # the socket's reads, and for an end h11 already holds it saves nothing.
                with _ReadCap(self._ctx.network_stream, budget).async_(), self._errors():
                    async for chunk in self._inner_iterator():
                        if not budget.discard(len(chunk)) or budget.expired(_clock()):
                            break
                    else:
                        reached_end = True
        except Exception as exc:
            error = exc
        finally:
            self._note_missing_terminator(error)
            if reached_end and await self._discard_if_overfilled():
                error, reached_end = _LeftoverBytes(), False
            result = self._conclude(budget, reached_end=reached_end, error=error)
            try:
                await self._close_inner()
            except Exception as exc:
                result = budget.result(Outcome.ERROR, _clock(), type(exc).__name__)
            self._ctx.stats.record(result, self._ctx.origin)
        return result

    async def _discard_if_overfilled(self) -> bool:
        """Close the connection if the server sent bytes past this response; True if so."""
        if not has_leftover_bytes(self._inner):
            return False
        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
            await self._ctx.network_stream.aclose()
        return True

    async def _close_inner(self) -> None:
        # Finish the inner iterator ourselves (a no-op once exhausted): left to the garbage
        # collector, an unfinished async generator makes trio warn, and asyncio close it late.
        with anyio.CancelScope(shield=True):
            aclose = getattr(self._iterator, "aclose", None)
            try:
                if aclose is not None:
                    await aclose()
            finally:
                await self._inner.aclose()

    async def abort(self) -> None:
        """Close the inner stream without draining."""
        with contextlib.suppress(Exception):
            await self._close_inner()
