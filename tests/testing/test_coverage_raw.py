"""Raw-server fault paths: clients that leave, reset or never get accepted (and hypercorn's
where it shares them).

The async tests use one trick: the server runs in the test's own event loop, so whatever the
test does with plain sockets before its next ``await`` happens before the server sees any of it.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator

import anyio
import anyio.abc
import httpx
import pytest
from anyio.abc import SocketAttribute

from httpx_drain.testing import (
    AsyncRawServer,
    Chunk,
    Endless,
    Fin,
    Gate,
    Pause,
    RawServer,
    ReplayServerError,
    RequestInfo,
    Scenario,
    ServerFacts,
    Signal,
    Step,
    WaitFor,
)

from .helpers import TIMEOUT, ServerFactory, Wire, request_bytes

Connect = Callable[[int], Wire]

# Far more than the kernel buffers between a server and a client that stops reading
# (the client's receive buffer is pinned to 64 KiB below): the write is still going on.
BIG = 8 * 1024 * 1024
BIG_STEPS: list[list[Step]] = [
    [Chunk(b"x" * BIG, terminator=True)],  # the write that completes the response
    [Endless(b"x" * BIG)],
]
BIG_IDS = ["last-write", "endless"]


def reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), as a client killed mid-response would."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@contextlib.contextmanager
def small_window_client(port: int) -> Iterator[socket.socket]:
    """A blocking client whose receive buffer stays small, so the server's write blocks."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.settimeout(TIMEOUT)
        sock.connect(("127.0.0.1", port))
        yield sock
    finally:
        sock.close()


def head_and_some_body(received: bytes) -> bool:
    end = received.find(b"\r\n\r\n")
    return end != -1 and len(received) > end + 4 + 1024


# Threaded server.


def test_close_names_a_thread_that_does_not_stop(wire: Connect) -> None:
    # A scenario callable stuck in user code cannot be interrupted: close() must say so
    # instead of returning as if the server had stopped.
    entered, release = threading.Event(), threading.Event()

    def scenario(request: RequestInfo) -> Scenario:
        entered.set()
        release.wait(TIMEOUT)
        return Scenario(steps=[Chunk(b"too late")])

    srv = RawServer(scenario).start()
    try:
        client = wire(srv.port)
        client.request()
        assert entered.wait(TIMEOUT)
        with pytest.raises(RuntimeError, match=r"did not stop: \['RawServer-\d+-conn-0'\]"):
            srv.close(timeout=0.05)
    finally:
        release.set()
    # Released, the thread sees the server stopping and plays nothing.
    assert srv.facts.wait_for_closed(1, TIMEOUT)
    assert client.read_to_eof() == b""
    assert srv.facts.connections[0].bytes_sent == 0
    assert srv.facts.early_disconnects == 0
    assert srv.facts.errors == []


def test_client_gone_before_the_response_starts_is_early(wire: Connect) -> None:
    # The callable holds the server between reading the request and replaying it, while the
    # client closes its side: the first step finds the client gone and writes nothing.
    entered, release = threading.Event(), threading.Event()

    def scenario(request: RequestInfo) -> Scenario:
        entered.set()
        release.wait(TIMEOUT)
        return Scenario(steps=[Chunk(b"x")])

    with RawServer(scenario) as srv:
        client = wire(srv.port)
        client.request()
        assert entered.wait(TIMEOUT)
        client.sock.shutdown(socket.SHUT_WR)
        release.set()
        assert srv.facts.wait_for_early_disconnects(1, TIMEOUT)
        assert client.read_to_eof() == b""
        conn = srv.facts.connections[0]
        assert (conn.requests, conn.responses_completed, conn.bytes_sent) == (1, 0, 0)


def test_accept_skips_a_connection_reset_in_the_backlog(wire: Connect) -> None:
    with RawServer(Scenario(steps=[Chunk(b"ok")])) as srv:
        # Holding the facts lock parks the accept thread inside connection_opened() for
        # `first`, so `doomed` waits in the backlog until after its RST: accept() returns it
        # with no peer any more.
        with srv.facts._lock:
            first = wire(srv.port)
            reset(socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT))
        later = wire(srv.port)
        for client in (first, later):
            client.request()
            assert client.read_until(b"0\r\n\r\n").endswith(b"2\r\nok\r\n0\r\n\r\n")
        assert srv.facts.connection_count == 2  # the reset one was never counted


@pytest.mark.parametrize("steps", BIG_STEPS, ids=BIG_IDS)
def test_client_reset_during_a_blocked_write_is_early(
    make_server: ServerFactory, backend: str, steps: list[Step]
) -> None:
    # Hypercorn shares the fault: it fails in its own writer (asyncio) or stream (trio).
    with make_server(Scenario(steps=steps)) as srv:
        with small_window_client(srv.port) as sock:
            sock.sendall(request_bytes())
            received = b""
            while not head_and_some_body(received):
                received += sock.recv(65536)
            reset(sock)  # the server is in the middle of its big write

        def settled(facts: ServerFacts) -> bool:
            # Counted before the write, taken back when it failed.
            return (facts.early_disconnects, facts.closed_count, facts.responses_completed) == (
                1,
                1,
                0,
            )

        assert srv.facts.wait_until(settled, TIMEOUT), srv.facts.connections
        conn = srv.facts.connections[0]
        if backend == "raw":
            assert len(received) <= conn.bytes_sent < BIG  # what the kernel took, not the rest


def test_client_leaving_during_a_pause_is_early() -> None:
    sent = Gate()
    scenario = Scenario(steps=[Chunk(b"a"), Signal(sent), Pause(60), Chunk(b"b")])
    with RawServer(scenario) as srv, httpx.Client() as client:
        with client.stream("GET", srv.url) as response:
            # Kept referenced: a dropped iterator would close the connection there and then.
            chunks = response.iter_raw()
            assert next(chunks) == b"a"
            assert sent.wait(TIMEOUT)
        assert srv.facts.wait_for_early_disconnects(1, TIMEOUT)
        assert srv.facts.responses_completed == 0


def test_client_half_closing_an_endless_stream_is_early(wire: Connect) -> None:
    # With no interval the server checks the socket after every write: the client's FIN
    # (it still reads) ends the stream.
    with RawServer(Scenario(steps=[Endless(b"data: x\n\n")])) as srv:
        client = wire(srv.port)
        client.request()
        received = client.read_until(b"data: x\n\n")
        client.sock.shutdown(socket.SHUT_WR)
        received += client.read_to_eof()
        assert received.endswith(b"data: x\n\n\r\n")  # whole chunks, no terminator
        assert srv.facts.early_disconnects == 1
        assert srv.facts.responses_completed == 0


def test_client_leaving_during_an_endless_interval_is_early() -> None:
    # Between two chunks of a slow endless stream the server watches the socket.
    scenario = Scenario(steps=[Endless(b"data: tick\n\n", interval=60)])
    with RawServer(scenario) as srv, httpx.Client() as client:
        with client.stream("GET", srv.url) as response:
            assert next(response.iter_raw()) == b"data: tick\n\n"
        assert srv.facts.wait_for_early_disconnects(1, TIMEOUT)
        assert srv.facts.wait_for_closed(1, TIMEOUT)


# Async server.


@pytest.mark.anyio
async def test_async_server_cannot_start_twice() -> None:
    async with AsyncRawServer(Scenario()) as srv:
        with pytest.raises(RuntimeError, match="already started"):
            await srv.__aenter__()
        async with httpx.AsyncClient() as client:
            assert (await client.get(srv.url)).status_code == 200  # still serving


@pytest.mark.anyio
async def test_async_errors_are_all_reported_at_exit() -> None:
    def scenario(request: RequestInfo) -> Scenario:
        raise ValueError(f"broken scenario {request.connection_index}")

    async def two_failed_requests() -> None:
        async with AsyncRawServer(scenario) as srv, httpx.AsyncClient() as client:
            for _ in range(2):
                with pytest.raises(httpx.RemoteProtocolError):
                    await client.get(srv.url)  # the server hangs up without a response
            assert await srv.facts.wait_until_async(lambda f: len(f.errors) == 2, TIMEOUT)

    with pytest.raises(ReplayServerError, match=r"broken scenario 0.*\(and 1 more") as caught:
        await two_failed_requests()
    assert isinstance(caught.value.__cause__, ValueError)


def test_keep_alive_timeout_starts_after_a_response() -> None:
    # A fresh connection is not idle: a client slower than the keep-alive timeout to send its
    # first request (a loaded machine, a TLS handshake) still gets its response.
    scenario = Scenario(steps=[Chunk(b"x")], keep_alive_timeout=0.05)
    with RawServer(scenario) as srv, socket.create_connection(("127.0.0.1", srv.port)) as sock:
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):  # ten timeouts without a request: still open
            sock.recv(1)
        sock.settimeout(TIMEOUT)
        sock.sendall(request_bytes())
        received = b""
        while chunk := sock.recv(4096):  # the response, then the close once idle after it
            received += chunk
        assert received.endswith(b"1\r\nx\r\n0\r\n\r\n")
        assert srv.facts.wait_for_closed(1, TIMEOUT)
        assert srv.facts.responses_completed == 1


@pytest.mark.anyio
async def test_async_keep_alive_timeout_starts_after_a_response() -> None:
    scenario = Scenario(steps=[Chunk(b"x")], keep_alive_timeout=0.05)
    async with AsyncRawServer(scenario) as srv:
        async with await anyio.connect_tcp("127.0.0.1", srv.port) as stream:
            with anyio.move_on_after(0.5):  # ten timeouts without a request: still open
                await stream.receive()
                pytest.fail("the server sent or closed before any request")
            await stream.send(request_bytes())
            with anyio.fail_after(TIMEOUT), contextlib.suppress(anyio.EndOfStream):
                while True:  # the response, then the close once idle after it
                    await stream.receive()
        assert (srv.facts.responses_completed, srv.facts.closed_count) == (1, 1)


@pytest.mark.anyio
async def test_async_keep_alive_timeout_closes_an_idle_connection() -> None:
    scenario = Scenario(steps=[Chunk(b"x")], keep_alive_timeout=0.05)
    async with AsyncRawServer(scenario) as srv:
        async with await anyio.connect_tcp("127.0.0.1", srv.port) as stream:
            await stream.send(request_bytes())
            received = b""
            with anyio.fail_after(TIMEOUT), contextlib.suppress(anyio.EndOfStream):
                while True:  # until the server closes the idle connection
                    received += await stream.receive()
        assert received.endswith(b"1\r\nx\r\n0\r\n\r\n")
        facts = srv.facts
        assert (facts.request_count, facts.responses_completed, facts.closed_count) == (1, 1, 1)
        assert facts.early_disconnects == 0


@pytest.mark.anyio
async def test_async_eof_framing_completes_with_the_close() -> None:
    scenario = Scenario(steps=[Chunk(b"abc"), Fin()], framing="eof")
    async with AsyncRawServer(scenario) as srv, httpx.AsyncClient() as client:
        response = await client.get(srv.url)
        assert response.content == b"abc"
        assert "content-length" not in response.headers
        assert srv.facts.responses_completed == 1
        assert srv.facts.early_disconnects == 0


@pytest.mark.anyio
async def test_async_client_gone_before_the_response_starts_is_early() -> None:
    async with AsyncRawServer(Scenario(steps=[Chunk(b"x")])) as srv:
        # Request and FIN are both queued before the server task runs at all.
        with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as sock:
            sock.sendall(request_bytes())
            sock.shutdown(socket.SHUT_WR)
            assert await srv.facts.wait_for_early_disconnects_async(1, TIMEOUT)
        conn = srv.facts.connections[0]
        assert (conn.requests, conn.responses_completed, conn.bytes_sent) == (1, 0, 0)


@pytest.mark.anyio
async def test_async_accept_skips_a_connection_reset_in_the_backlog() -> None:
    async with AsyncRawServer(Scenario(steps=[Chunk(b"ok")])) as srv:
        # Connected and reset before the accept loop runs: accept() finds no peer.
        reset(socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT))
        async with httpx.AsyncClient() as client:
            assert (await client.get(srv.url)).content == b"ok"
        assert srv.facts.connection_count == 1


@pytest.mark.anyio
async def test_async_client_reset_during_a_gate_is_early() -> None:
    sent = Gate()
    scenario = Scenario(steps=[Chunk(b"x"), Signal(sent), WaitFor(Gate())])
    async with AsyncRawServer(scenario) as srv:
        stream = await anyio.connect_tcp("127.0.0.1", srv.port)
        async with stream:
            await stream.send(request_bytes())
            with anyio.fail_after(TIMEOUT):
                await sent.wait_async()
            raw = stream.extra(SocketAttribute.raw_socket)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        assert await srv.facts.wait_for_early_disconnects_async(1, TIMEOUT)
        assert srv.facts.responses_completed == 0


@pytest.mark.anyio
async def test_async_scenario_callable_can_stop_the_server() -> None:
    # close() from inside the server's own task: nothing more is played, and the server
    # stopping is not the client leaving.
    def scenario(request: RequestInfo) -> Scenario:
        srv.close()
        return Scenario(steps=[Chunk(b"never sent")])

    async with AsyncRawServer(scenario) as srv, httpx.AsyncClient() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(srv.url)
    facts = srv.facts
    assert (facts.request_count, facts.responses_completed, facts.closed_count) == (1, 0, 1)
    assert facts.connections[0].bytes_sent == 0
    assert facts.early_disconnects == 0


@pytest.mark.anyio
async def test_async_client_leaving_during_a_pause_is_early() -> None:
    sent = Gate()
    scenario = Scenario(steps=[Chunk(b"a"), Signal(sent), Pause(60), Chunk(b"b")])
    async with AsyncRawServer(scenario) as srv, httpx.AsyncClient() as client:
        async with (
            client.stream("GET", srv.url) as response,
            contextlib.aclosing(response.aiter_raw()) as chunks,  # type: ignore[type-var]
        ):
            assert await chunks.__anext__() == b"a"
            with anyio.fail_after(TIMEOUT):
                await sent.wait_async()
        assert await srv.facts.wait_for_early_disconnects_async(1, TIMEOUT)
        assert srv.facts.responses_completed == 0


@pytest.mark.anyio
async def test_async_client_leaving_during_an_endless_interval_is_early() -> None:
    scenario = Scenario(steps=[Endless(b"data: tick\n\n", interval=60)])
    async with AsyncRawServer(scenario) as srv, httpx.AsyncClient() as client:
        async with (
            client.stream("GET", srv.url) as response,
            # Closed here, not by the garbage collector (trio warns about that).
            contextlib.aclosing(response.aiter_raw()) as chunks,  # type: ignore[type-var]
        ):
            assert await chunks.__anext__() == b"data: tick\n\n"
        assert await srv.facts.wait_for_early_disconnects_async(1, TIMEOUT)


@pytest.mark.anyio
@pytest.mark.parametrize("steps", BIG_STEPS, ids=BIG_IDS)
async def test_async_client_reset_during_a_blocked_write_is_early(steps: list[Step]) -> None:
    async with AsyncRawServer(Scenario(steps=steps)) as srv:
        with small_window_client(srv.port) as sock:
            sock.setblocking(False)  # read without blocking the loop the server runs in
            sock.sendall(request_bytes())
            received = b""
            with anyio.fail_after(TIMEOUT):
                while not head_and_some_body(received):
                    await anyio.wait_readable(sock)
                    received += sock.recv(65536)
            reset(sock)

        def settled(facts: ServerFacts) -> bool:
            return facts.early_disconnects == 1 and facts.closed_count == 1

        assert await srv.facts.wait_until_async(settled, TIMEOUT)
        conn = srv.facts.connections[0]
        assert conn.responses_completed == 0
        assert len(received) <= conn.bytes_sent < BIG
