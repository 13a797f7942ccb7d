"""Property-based tests of the drain state machine.

Any interleaving of consumer reads, closes (once or twice, through the response or straight on
the stream) and server bytes (chunks, the terminator, a FIN, pauses) ends with the inner stream
closed exactly once, the counters consistent, and the drain concluded as a small model of the
policy predicts. The server is an in-memory inner stream and time a fake clock (pauses advance
it), so an example costs microseconds; a few examples run over a real RawServer too.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import httpx_drain
from httpx_drain import IncompleteStream, _streams
from httpx_drain._policy import DECISION_HEADERS, select_headers
from httpx_drain.testing import Chunk, Fin, Pause, RawServer, Scenario, Terminator

from .conftest import h11_after_first_chunk, wait_for

DEADLINE = 1.0  # seconds of the fake clock
MAX_BYTES = 40
OUTCOMES = ("connections_kept", "deadline_exceeded", "max_bytes_exceeded", "drain_errors")

# Server steps: ("chunk", bytes) | ("pause", seconds) | ("end", None) | ("fin", None).
chunks = st.binary(min_size=1, max_size=40).map(lambda b: ("chunk", b))
pauses = st.sampled_from([0.0, 0.25, 0.5, 1.2]).map(lambda s: ("pause", s))
endings = st.sampled_from([("end", None), ("fin", None)])
scripts = st.tuples(st.lists(st.one_of(chunks, chunks, pauses), max_size=12), endings).map(
    lambda t: [*t[0], t[1]]
)
# Consumer actions: read one chunk, close the response, close the stream directly (a second
# close that reaches our close() whatever the response thinks).
actions = st.lists(st.sampled_from(["read", "read", "close", "close-stream"]), max_size=16)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeBody:
    """The inner stream: replays a script; counts its closes."""

    def __init__(self, script: list[tuple[str, Any]], clock: FakeClock) -> None:
        self.script = script
        self.clock = clock
        self.closes = 0
        self.iterations = 0

    def _steps(self) -> Iterator[bytes]:
        self.iterations += 1
        for kind, arg in self.script:
            if kind == "chunk":
                yield arg
            elif kind == "pause":
                self.clock.now += arg
            elif kind == "fin":
                raise httpx.RemoteProtocolError("incomplete chunked read")
            else:
                return

    def close(self) -> None:
        self.closes += 1


class SyncBody(FakeBody, httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        return self._steps()


class AsyncBody(FakeBody, httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._steps():
            await anyio.lowlevel.checkpoint()
            yield chunk

    async def aclose(self) -> None:
        self.close()


class Inner(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Hands out one fake body per request."""

    def __init__(self, body: FakeBody, content_type: str) -> None:
        self.body = body
        self.content_type = content_type

    def _response(self) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"content-type": self.content_type, "transfer-encoding": "chunked"},
            stream=self.body,  # type: ignore[arg-type]
            extensions={"http_version": b"HTTP/1.1"},
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._response()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._response()


@dataclass
class Expected:
    """What the model says: how the stream ends and what a drain concludes."""

    ending: str  # "complete", "skipped" or "drained"
    outcome: str | None = None
    discarded: int = 0
    delivered: bytes = b""
    errors: list[str] = field(default_factory=list)


def model(script: list[tuple[str, Any]], actions: list[str]) -> Expected:
    """The drain policy, restated for an in-memory body (no read ever waits)."""
    clock = 0.0
    pos = 0
    delivered = b""
    state = "open"  # open | done | failed
    for action in actions:
        if action != "read":
            break
        if state != "open":
            continue
        while True:
            kind, arg = script[pos]
            pos += 1
            if kind == "pause":
                clock += arg
                continue
            if kind == "chunk":
                delivered += arg
            else:
                state = "done" if kind == "end" else "failed"
            break
    if state == "done":
        return Expected("complete", delivered=delivered)
    if state == "failed":
        return Expected("skipped", delivered=delivered)
    expires = clock + DEADLINE
    discarded = 0
    for kind, arg in script[pos:]:
        if kind == "pause":
            clock += arg
        elif kind == "chunk":
            discarded += len(arg)
            if discarded > MAX_BYTES:
                return Expected("drained", "max_bytes_exceeded", discarded, delivered)
            if clock >= expires:
                return Expected("drained", "deadline_exceeded", discarded, delivered)
        elif kind == "end":
            return Expected("drained", "connections_kept", discarded, delivered)
        else:
            outcome = "deadline_exceeded" if clock >= expires else "drain_errors"
            return Expected("drained", outcome, discarded, delivered)
    raise AssertionError("scripts always end")  # pragma: no cover


def check(stats: Any, body: FakeBody, expected: Expected, delivered: bytes) -> None:
    assert body.closes == 1, "the inner stream is closed exactly once"
    assert body.iterations <= 1, "the inner stream is iterated once, for reads and drain"
    assert stats.responses_wrapped == 1
    ended = sum(getattr(stats, name) for name in OUTCOMES) + stats.drains_rejected
    assert stats.drains_started == ended
    assert stats.drains_started + stats.drains_skipped <= 1
    assert delivered == expected.delivered
    if expected.ending == "complete":
        assert (stats.drains_started, stats.drains_skipped) == (0, 0)
    elif expected.ending == "skipped":
        assert (stats.drains_started, stats.drains_skipped) == (0, 1)
    else:
        assert stats.drains_started == 1
        assert getattr(stats, expected.outcome or "") == 1, (expected, stats)
        assert stats.bytes_discarded == expected.discarded


def consume_sync(response: httpx.Response, actions: list[str]) -> bytes:
    delivered = b""
    iterator = response.iter_raw()
    for action in [*actions, "close"]:
        if action == "read":
            with contextlib.suppress(StopIteration, httpx.RemoteProtocolError, httpx.StreamClosed):
                delivered += next(iterator)
        elif action == "close":
            response.close()
        else:
            response.stream.close()  # type: ignore[union-attr]
    return delivered


async def consume_async(response: httpx.Response, actions: list[str]) -> bytes:
    delivered = b""
    iterator = response.aiter_raw()
    try:
        for action in [*actions, "close"]:
            if action == "read":
                with contextlib.suppress(
                    StopAsyncIteration, httpx.RemoteProtocolError, httpx.StreamClosed
                ):
                    delivered += await iterator.__anext__()
            elif action == "close":
                await response.aclose()
            else:
                await response.stream.aclose()  # type: ignore[union-attr]
    finally:
        await iterator.aclose()  # type: ignore[attr-defined]
    return delivered


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("mode", ["inline", "background"])
@FAST
@given(script=scripts, actions=actions)
def test_sync_state_machine(mode: str, script: list[tuple[str, Any]], actions: list[str]) -> None:
    clock = FakeClock()
    body = SyncBody(script, clock)
    transport = httpx_drain.DrainTransport(
        Inner(body, "application/octet-stream"), mode=mode, deadline=DEADLINE, max_bytes=MAX_BYTES
    )
    with mock.patch.object(_streams, "_clock", clock):
        with httpx.Client(transport=transport) as client:
            response = client.send(client.build_request("GET", "http://test/"), stream=True)
            delivered = consume_sync(response, actions)
    check(transport.stats.snapshot(), body, model(script, actions), delivered)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("mode", ["inline", "background"])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=scripts, actions=actions)
def test_async_state_machine(
    mode: str, backend: str, script: list[tuple[str, Any]], actions: list[str]
) -> None:
    clock = FakeClock()
    body = AsyncBody(script, clock)
    transport = httpx_drain.AsyncDrainTransport(
        Inner(body, "application/octet-stream"), mode=mode, deadline=DEADLINE, max_bytes=MAX_BYTES
    )

    async def main() -> bytes:
        async with httpx.AsyncClient(transport=transport) as client:
            request = client.build_request("GET", "http://test/")
            response = await client.send(request, stream=True)
            return await consume_async(response, actions)

    with mock.patch.object(_streams, "_clock", clock):
        delivered = anyio.run(main, backend=backend)
    check(transport.stats.snapshot(), body, model(script, actions), delivered)


# Event streams: the consumer's view ends at the terminal event, whatever the chunking.

EVENTS = [b'data: {"n": 1}\n\n', b"event: ping\ndata: x\n\n", b": comment\n\n"]
TERMINAL = b"data: [DONE]\n\n"


@st.composite
def event_scripts(draw: st.DrawFn) -> tuple[list[tuple[str, Any]], bytes]:
    """An event stream cut into arbitrary chunks: the script and the bytes up to the end of
    its terminal event (or all of it, when it has none)."""
    events = draw(st.lists(st.sampled_from(EVENTS), max_size=5))
    terminal = draw(st.booleans())
    after = draw(st.lists(st.sampled_from(EVENTS), max_size=2)) if terminal else []
    body = b"".join([*events, *([TERMINAL] if terminal else []), *after])
    visible = b"".join([*events, *([TERMINAL] if terminal else [])]) if terminal else body
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(body) - 1)), max_size=6))))
    pieces = [body[a:b] for a, b in itertools.pairwise([0, *cuts, len(body)]) if body[a:b]]
    steps: list[tuple[str, Any]] = [("chunk", p) for p in pieces]
    steps.append(draw(endings))
    return steps, visible


@FAST
@given(
    script_visible=event_scripts(), actions=actions, mode=st.sampled_from(["inline", "background"])
)
def test_event_stream_state_machine(
    script_visible: tuple[list[tuple[str, Any]], bytes], actions: list[str], mode: str
) -> None:
    script, visible = script_visible
    clock = FakeClock()
    body = SyncBody(script, clock)
    transport = httpx_drain.DrainTransport(
        Inner(body, "text/event-stream"), mode=mode, deadline=DEADLINE, max_bytes=MAX_BYTES
    )
    delivered = b""
    errors: list[BaseException] = []
    with mock.patch.object(_streams, "_clock", clock):
        with httpx.Client(transport=transport) as client:
            response = client.send(client.build_request("GET", "http://test/"), stream=True)
            iterator = response.iter_raw()
            for action in [*actions, "read-all", "close"]:
                try:
                    if action == "read":
                        delivered += next(iterator)
                    elif action == "read-all" and not response.is_closed:
                        delivered += b"".join(iterator)
                    elif action == "close":
                        response.close()
                    elif action == "close-stream":
                        response.stream.close()  # type: ignore[union-attr]
                except (StopIteration, httpx.StreamClosed):
                    pass
                except httpx.RemoteProtocolError as exc:
                    errors.append(exc)
    # Only a stream cut off before its terminal event is an error, and a typed one.
    for exc in errors:
        assert isinstance(exc, IncompleteStream)
        assert TERMINAL not in visible
    stats = transport.stats.snapshot()
    assert body.closes == 1
    assert visible.startswith(delivered)
    if TERMINAL in delivered:
        assert delivered == visible
    ended = sum(getattr(stats, name) for name in OUTCOMES) + stats.drains_rejected
    assert stats.drains_started == ended
    assert stats.drains_started + stats.drains_skipped <= 1


# A few examples over a real server: the same invariants through httpcore and a socket.


class CountingStream(httpx.SyncByteStream):
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.closes = 0

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.inner)

    def close(self) -> None:
        self.closes += 1
        self.inner.close()


class CountingTransport(httpx.HTTPTransport):
    def __init__(self) -> None:
        super().__init__(verify=False)
        self.streams: list[CountingStream] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        stream = CountingStream(response.stream)
        self.streams.append(stream)
        response.stream = stream
        return response


real_steps = st.lists(
    st.one_of(
        st.binary(min_size=1, max_size=200).map(Chunk),
        st.sampled_from([0.0, 0.02]).map(Pause),
    ),
    max_size=6,
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    steps=real_steps,
    ending=st.sampled_from(["terminator", "fin"]),
    reads=st.integers(0, 4),
    mode=st.sampled_from(["inline", "background"]),
)
def test_real_server(steps: list[Any], ending: str, reads: int, mode: str) -> None:
    tail = Terminator() if ending == "terminator" else Fin()
    scenario = Scenario(steps=[*steps, tail], headers=(("content-type", "application/x"),))
    with RawServer(scenario) as server:
        inner = CountingTransport()
        transport = httpx_drain.DrainTransport(inner, mode=mode, deadline=0.3, max_bytes=100)
        with httpx.Client(transport=transport) as client:
            response = client.send(client.build_request("GET", server.url), stream=True)
            iterator = response.iter_raw()
            with contextlib.suppress(StopIteration, httpx.RemoteProtocolError):
                for _ in range(reads):
                    next(iterator)
            response.close()
            response.stream.close()  # type: ignore[union-attr]
        assert wait_for(lambda: inner.streams[0].closes == 1)
    stats = transport.stats.snapshot()
    assert [s.closes for s in inner.streams] == [1]
    ended = sum(getattr(stats, name) for name in OUTCOMES) + stats.drains_rejected
    assert stats.drains_started == ended
    assert stats.drains_started + stats.drains_skipped <= 1


# The sync stream runs an inlined copy of SSEScanner.take(): it must agree with the async
# stream, which calls take(), on what is handed on and on what the scanner counts.

NEAR_MISSES = [
    b'data: {"n": 1}\n\n',  # taken
    b"id: 7\n\n",  # taken
    b"data: [DONE]\n\n",  # a candidate: terminal
    b"data:[DONE]\n\n",
    b"event: message_stop\n\n",
    b"data: 3\r\n\r\n",  # CR line ends
    b"data: 4\r\r",
    b"data: 5\rdata: [DONE]\n\n",  # a CR inside the line
    b"event: a\ndata: 2\n\n",  # two lines
    b"data: 6\n\ndata: 7\n\n",  # two events
    b": comment\n\n",
    b"\n\n",
    b"\n",
    b"data: 8\n",
    b"\xef\xbb\xbfdata: 9\n\n",
]


async def _read_async(transport: httpx.AsyncBaseTransport) -> tuple[bytes, Any]:
    response = await transport.handle_async_request(httpx.Request("GET", "http://test/"))
    stream: Any = response.stream
    delivered = b"".join([chunk async for chunk in stream])
    await stream.aclose()
    return delivered, stream._filter.scanner


@FAST
@given(pieces=st.lists(st.sampled_from(NEAR_MISSES), max_size=8), align=st.booleans())
def test_sync_inlined_take_agrees_with_async(pieces: list[bytes], align: bool) -> None:
    script: list[tuple[str, Any]] = [*(("chunk", p) for p in pieces), ("end", None)]
    clock = FakeClock()
    sync = httpx_drain.DrainTransport(
        Inner(SyncBody(script, clock), "text/event-stream"), align_events=align
    )
    stream: Any = sync.handle_request(httpx.Request("GET", "http://test/")).stream
    delivered = b"".join(stream)
    stream.close()
    scanner = stream._filter.scanner
    asynchronous = httpx_drain.AsyncDrainTransport(
        Inner(AsyncBody(script, clock), "text/event-stream"), align_events=align
    )
    adelivered, ascanner = anyio.run(_read_async, asynchronous)
    assert delivered == adelivered
    assert (scanner.events, scanner.terminal_seen, scanner.partial_size) == (
        ascanner.events,
        ascanner.terminal_seen,
        ascanner.partial_size,
    )


_header_names = st.sampled_from(
    ["Connection", "content-length", "CONTENT-TYPE", "Transfer-Encoding", "x-other", "Via"]
)
_header_values = st.text(alphabet="abcz019 ,;/=-", max_size=12)


@given(headers=st.lists(st.tuples(_header_names, _header_values), max_size=8))
def test_selected_headers_answer_as_httpx_headers_do(headers: list[tuple[str, str]]) -> None:
    # The stream keeps only the headers its decisions read, picked in one pass: for each of
    # them it must answer exactly as a case-insensitive lookup in the full headers.
    full = httpx.Headers(headers)
    selected = select_headers(full.raw)
    for name in DECISION_HEADERS:
        assert selected.get(name.decode()) == full.get(name.decode())
    assert set(selected) <= {name.decode() for name in DECISION_HEADERS}


# What a chunked body's rest may hold after an early close: pieces of chunk footers, sizes,
# extensions, trailers, the terminator.
_TAIL_PIECES = [b"\r", b"\n", b"\r\n", b"0", b"5", b"0\r\n", b"0\r\n\r\n", b";x=1", b"x-t: 1\r\n"]


@given(
    consumed=st.sampled_from([b"", b"\r", b"\r\n"]),
    pieces=st.lists(st.sampled_from(_TAIL_PIECES), max_size=6),
)
def test_the_shortcuts_for_a_buffered_end_agree_with_h11(
    consumed: bytes, pieces: list[bytes]
) -> None:
    # _reaches_end decides the common tails (the rest of the last chunk's CRLF, and the bare
    # terminator after it) by comparing bytes: it must answer as h11's own reader would.
    import h11

    from httpx_drain._h11 import _reaches_end, _run_reader

    conn = h11_after_first_chunk(consumed)
    data = b"".join(pieces)
    try:
        expected: bool | None = _run_reader(conn, data)
    except h11.ProtocolError:
        expected = None  # end_is_buffered answers True for those, whatever _reaches_end does
    try:
        got: bool | None = _reaches_end(conn, data)
    except h11.ProtocolError:
        got = None
    if expected is None:
        assert got is not False  # rejected bytes: never "the end is still to come"
    else:
        assert got is expected
