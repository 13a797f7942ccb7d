"""HTTP/2 responses closed early are cancelled with RST_STREAM (httpcore#943).

Against hypercorn over TLS with ALPN h2. Without the cancel, a client that closes responses
early breaks for good: the abandoned streams stay open in h2 (after 100, every request fails
with ``LocalProtocolError``) and the data they had received keeps its connection-window
credit (with large bodies the connection stalls after 16 MiB).
"""

from __future__ import annotations

import time
from contextlib import aclosing
from typing import Any

import anyio
import httpx
import pytest

from httpx_drain._h2 import cancel_async, cancel_sync
from httpx_drain.testing import Chunk, Gate, HypercornServer, Scenario, WaitFor

from .conftest import Flavour

#: Early closes per test: three times the server's 100 concurrent streams, and (at 200 KiB a
#: body, up to 64 KiB of it received before each close) more than the 16 MiB connection window.
EARLY_CLOSES = 300
BODY = [Chunk(b"x" * 16_384) for _ in range(5)]  # 80 KiB
OCTETS = (("content-type", "application/octet-stream"),)
TIMEOUT = 10.0


def long_body() -> Scenario:
    return Scenario(steps=BODY, headers=OCTETS)


def held_open(gate: Gate) -> Scenario:
    """100 bytes, then the rest only once ``gate`` opens: the server keeps the stream open."""
    return Scenario(steps=[Chunk(b"x" * 100), WaitFor(gate), Chunk(b"y")], headers=OCTETS)


@pytest.fixture
def server() -> Any:
    with HypercornServer(long_body(), http2=True) as srv:
        yield srv


def close_early(client: Any, url: str) -> None:
    with client.stream("GET", url) as response:
        assert response.http_version == "HTTP/2"
        next(response.iter_raw())


async def close_early_async(client: Any, url: str) -> None:
    async with client.stream("GET", url) as response:
        assert response.http_version == "HTTP/2"
        async with aclosing(response.aiter_raw()) as chunks:
            await chunks.__anext__()


def test_early_closes_keep_the_connection_usable(flavour: Flavour, server: Any) -> None:
    transport = flavour.DrainTransport(http2=True, verify=server.ssl_context)
    with flavour.lib.Client(transport=transport, timeout=TIMEOUT) as client:
        for _ in range(EARLY_CLOSES):
            close_early(client, server.url)
        for _ in range(3):
            response = client.get(server.url)
            assert response.content == b"x" * 16_384 * 5
    assert server.facts.connection_count == 1
    assert transport.stats.streams_cancelled == EARLY_CLOSES


@pytest.mark.anyio
async def test_early_closes_keep_the_connection_usable_async(flavour: Flavour, server: Any) -> None:
    transport = flavour.AsyncDrainTransport(http2=True, verify=server.ssl_context)
    async with flavour.lib.AsyncClient(transport=transport, timeout=TIMEOUT) as client:
        for _ in range(EARLY_CLOSES):
            await close_early_async(client, server.url)
        for _ in range(3):
            response = await client.get(server.url)
            assert response.content == b"x" * 16_384 * 5
    assert server.facts.connection_count == 1
    assert transport.stats.streams_cancelled == EARLY_CLOSES


def test_streams_held_open_by_the_server_are_cancelled(flavour: Flavour) -> None:
    # The server never ends these streams: only a RST_STREAM frees their slots.
    gate = Gate()
    scenario = held_open(gate)
    with HypercornServer(scenario, http2=True) as srv:
        transport = flavour.DrainTransport(http2=True, verify=srv.ssl_context)
        with flavour.lib.Client(transport=transport, timeout=TIMEOUT) as client:
            for _ in range(150):
                close_early(client, srv.url)
            gate.set()
            assert client.get(srv.url).content == b"x" * 100 + b"y"
        assert srv.facts.connection_count == 1
    assert transport.stats.streams_cancelled == 150


def lost_window_credit(transport: Any) -> int:
    """Connection-window bytes received and never acknowledged (h2 internals, test only)."""
    (pooled,) = transport.transport._pool.connections
    window = pooled._connection._h2_state._inbound_flow_control_window_manager
    return window.max_window_size - window.current_window_size - window._bytes_processed  # type: ignore[no-any-return]


def test_unread_data_gives_its_credit_back(flavour: Flavour) -> None:
    # Cleartext h2 (prior knowledge): one read brings several DATA frames, so a consumer that
    # takes one chunk leaves data queued in httpcore that nobody will acknowledge but us.
    scenario = Scenario(steps=[Chunk(b"x" * 200_000)], headers=OCTETS)
    with HypercornServer(scenario) as srv:
        transport = flavour.DrainTransport(http1=False, http2=True)
        with flavour.lib.Client(transport=transport, timeout=TIMEOUT) as client:
            for _ in range(100):
                close_early(client, srv.url)
            assert len(client.get(srv.url).content) == 200_000
            assert lost_window_credit(transport) == 0
        assert srv.facts.connection_count == 1
    assert transport.stats.streams_cancelled == 100


def test_bare_client_breaks_after_100_early_closes(flavour: Flavour) -> None:
    gate = Gate()
    scenario = held_open(gate)
    with HypercornServer(scenario, http2=True) as srv:
        with flavour.lib.Client(http2=True, verify=srv.ssl_context, timeout=TIMEOUT) as client:
            for _ in range(100):
                close_early(client, srv.url)
            with pytest.raises(flavour.lib.LocalProtocolError, match="Max outbound streams"):
                client.get(srv.url)
            gate.set()


def test_stream_read_to_the_end_is_unchanged(flavour: Flavour) -> None:
    scenario = Scenario(steps=[Chunk(b"abc"), Chunk(b"def")], headers=OCTETS)
    with HypercornServer(scenario, http2=True) as srv:
        transport = flavour.DrainTransport(http2=True, verify=srv.ssl_context)
        with flavour.lib.Client(transport=transport, timeout=TIMEOUT) as client:
            for _ in range(5):
                with client.stream("GET", srv.url) as response:
                    assert response.http_version == "HTTP/2"
                    assert b"".join(response.iter_raw()) == b"abcdef"
        assert srv.facts.connection_count == 1
    assert transport.stats.streams_cancelled == 0
    assert transport.stats.drains_skipped == 0


@pytest.mark.anyio
async def test_anything_but_an_http2_stream_is_left_alone() -> None:
    for stream in (object(), None, httpx.ByteStream(b"x"), httpx.Response(200).stream):
        assert cancel_sync(stream, 1.0) is False
        assert await cancel_async(stream, 1.0) is False


#: The drain deadline in the tests below: the longest a cancel may wait for the connection.
CANCEL_DEADLINE = 0.2


def pooled_h2_connection(transport: Any) -> Any:
    """The HTTP/2 connection behind the transport's one pooled connection (test only)."""
    (pooled,) = transport.transport._pool.connections
    return pooled._connection


def test_a_cancel_waits_no_longer_than_the_deadline_for_a_busy_connection(
    flavour: Flavour,
) -> None:
    # Another request holds the connection's write lock (an upload stuck on a server that
    # stopped reading): close() gives up on the cancel at its deadline and closes the response
    # as upstream would, instead of waiting for as long as that request's write timeout.
    gate = Gate()
    scenario = held_open(gate)
    with HypercornServer(scenario, http2=True) as srv:
        transport = flavour.DrainTransport(
            http2=True, verify=srv.ssl_context, deadline=CANCEL_DEADLINE
        )
        with flavour.lib.Client(transport=transport, timeout=TIMEOUT) as client:
            with client.stream("GET", srv.url) as response:
                chunks = response.iter_raw()
                assert next(chunks) == b"x" * 100
                with pooled_h2_connection(transport)._write_lock:
                    started = time.monotonic()
                    response.close()  # the same thread holds the lock: no wait would end
                    elapsed = time.monotonic() - started
            assert elapsed >= CANCEL_DEADLINE * 0.9
            assert elapsed < CANCEL_DEADLINE + 5  # a deadlock would never return
            assert transport.stats.streams_cancelled == 0
            gate.set()
            assert client.get(srv.url).content == b"x" * 100 + b"y"
        assert srv.facts.connection_count == 1


@pytest.mark.anyio
async def test_a_cancel_waits_no_longer_than_the_deadline_for_a_busy_connection_async(
    flavour: Flavour,
) -> None:
    gate = Gate()
    scenario = held_open(gate)
    with HypercornServer(scenario, http2=True) as srv:
        transport = flavour.AsyncDrainTransport(
            http2=True, verify=srv.ssl_context, deadline=CANCEL_DEADLINE
        )
        async with flavour.lib.AsyncClient(transport=transport, timeout=TIMEOUT) as client:
            async with client.stream("GET", srv.url) as response:
                chunks = response.aiter_raw()
                assert await chunks.__anext__() == b"x" * 100
                held, release = anyio.Event(), anyio.Event()

                async def hold_the_write_lock() -> None:
                    async with pooled_h2_connection(transport)._write_lock:
                        held.set()
                        await release.wait()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(hold_the_write_lock)
                    await held.wait()
                    started = time.monotonic()
                    with anyio.fail_after(CANCEL_DEADLINE + 5):
                        await response.aclose()
                    elapsed = time.monotonic() - started
                    release.set()
                await chunks.aclose()
            assert elapsed >= CANCEL_DEADLINE * 0.9
            assert transport.stats.streams_cancelled == 0
            gate.set()
            assert (await client.get(srv.url)).content == b"x" * 100 + b"y"
        assert srv.facts.connection_count == 1
