"""Our transports stacked with others: httpx-retries, httpx-aiohttp, openai's aiohttp client.

What each order means is written down in docs/composition.md; these tests are its measurements.
"""

from __future__ import annotations

import itertools
from contextlib import aclosing
from typing import Any

import anyio
import httpx
import pytest

import httpx_drain
from httpx_drain._clients import wrap_client
from httpx_drain.testing import Chunk, Gate, RawServer, RequestInfo, Scenario, openai_chat

N = 5
DONE = b"data: [DONE]"

#: A 503 whose body nobody reads: the retry layer closes it and sends the request again.
OVERLOADED = Scenario(
    status=503,
    headers=(("content-type", "application/json"),),
    steps=[Chunk(b'{"error": {"type": "overloaded"}}')],
    framing="content-length",
)


def fail_every_other() -> Any:
    """Every request is answered 503 first, then streamed on its retry."""
    counter = itertools.count()
    ok = openai_chat()
    return lambda _request: OVERLOADED if next(counter) % 2 == 0 else ok


class LateTerminators:
    """Each response holds its chunked terminator until the test opens that response's gate."""

    def __init__(self, n: int) -> None:
        self.gates = [Gate(f"terminator {i}") for i in range(n)]
        self._next = itertools.count()

    def __call__(self, _request: RequestInfo) -> Scenario:
        return openai_chat(terminator_gate=self.gates[next(self._next)])


def stream_until_done(client: Any, url: str) -> None:
    with client.stream("GET", url) as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            if DONE in chunk:
                break


async def stream_until_done_async(client: Any, url: str) -> None:
    # GET: the retry layer's default methods are the idempotent ones.
    async with client.stream("GET", url) as response:
        assert response.status_code == 200
        async with aclosing(response.aiter_raw()) as chunks:
            async for chunk in chunks:
                if DONE in chunk:
                    break


async def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    with anyio.move_on_after(timeout):
        while not predicate():
            await anyio.sleep(0.005)
    return bool(predicate())


# httpx-retries


def retry_stack(order: str) -> tuple[httpx.BaseTransport, Any]:
    """The transport for ``order``, and our transport in it (or None)."""
    retries = pytest.importorskip("httpx_retries")
    retry = retries.Retry(total=3)
    if order == "bare":
        return retries.RetryTransport(httpx.HTTPTransport(), retry=retry), None
    if order == "retry-outside":
        ours = httpx_drain.DrainTransport(mode="inline")
        return retries.RetryTransport(ours, retry=retry), ours
    ours = httpx_drain.DrainTransport(
        retries.RetryTransport(httpx.HTTPTransport(), retry=retry), mode="inline"
    )
    return ours, ours


@pytest.mark.parametrize(
    ("order", "connections", "wrapped"),
    [
        # Each retried 503 is closed unread by the retry layer: its connection is lost.
        pytest.param("bare", 2 * N, 0, id="bare"),
        # Ours under the retry layer: every attempt's response drains, the 503s too.
        pytest.param("retry-outside", 1, 2 * N, id="RetryTransport(DrainTransport)"),
        # Ours over it: only the final responses are ours; each retried 503 still costs one.
        pytest.param("drain-outside", N + 1, N, id="DrainTransport(RetryTransport)"),
    ],
)
def test_with_httpx_retries(order: str, connections: int, wrapped: int) -> None:
    transport, ours = retry_stack(order)
    with RawServer(fail_every_other()) as server:
        with httpx.Client(transport=transport) as client:
            for _ in range(N):
                stream_until_done(client, server.url)
        assert server.facts.request_count == 2 * N
        assert server.facts.connection_count == connections
    if ours is not None:
        assert ours.stats.responses_wrapped == wrapped
        assert ours.stats.connections_kept == wrapped


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # httpx-retries sleeps with asyncio
async def test_with_httpx_retries_async() -> None:
    retries = pytest.importorskip("httpx_retries")
    ours = httpx_drain.AsyncDrainTransport(mode="inline")
    transport = retries.RetryTransport(ours, retry=retries.Retry(total=3))
    with RawServer(fail_every_other()) as server:
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(N):
                await stream_until_done_async(client, server.url)
        assert server.facts.connection_count == 1
    assert ours.stats.connections_kept == 2 * N


# aiohttp under httpx (httpx-aiohttp) and under httpx2 (openai's vendored copy). aiohttp runs
# on asyncio only. It reads the socket eagerly and pools a connection if its parser has seen
# the end of the body by the time the response is released, read by the consumer or not.


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("drain", [False, True], ids=["bare", "drained"])
async def test_aiohttp_keeps_a_connection_whose_end_has_arrived(drain: bool) -> None:
    aiohttp_transport = pytest.importorskip("httpx_aiohttp").AiohttpTransport
    # The terminator rides in the same segment as [DONE]: there before the consumer leaves.
    scenario = openai_chat()
    scenario = Scenario(steps=[*scenario.steps[:-2], Chunk(DONE + b"\n\n", terminator=True)])
    transport: Any = aiohttp_transport()
    if drain:
        transport = httpx_drain.AsyncDrainTransport(transport, mode="inline")
    with RawServer(scenario) as server:
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(N):
                await stream_until_done_async(client, server.url)
        assert server.facts.connection_count == 1


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize(("drain", "connections"), [(False, N), (True, 1)], ids=["bare", "drained"])
async def test_aiohttp_loses_a_connection_whose_end_is_late(drain: bool, connections: int) -> None:
    aiohttp_transport = pytest.importorskip("httpx_aiohttp").AiohttpTransport
    late = LateTerminators(N)
    transport: Any = aiohttp_transport()
    if drain:
        transport = ours = httpx_drain.AsyncDrainTransport(transport, deadline=30)
    with RawServer(late) as server:
        async with httpx.AsyncClient(transport=transport) as client:
            for i in range(N):
                await stream_until_done_async(client, server.url)
                late.gates[i].set()  # only once the response is closed
                if drain:
                    assert await wait_for(lambda i=i: ours.stats.connections_kept == i + 1)
        assert server.facts.connection_count == connections


def openai_aiohttp_client(drain: bool) -> Any:
    openai = pytest.importorskip("openai", reason="the openai SDK needs Python 3.11+")
    pytest.importorskip("aiohttp")
    http_client = openai.DefaultAioHttpClient()
    if drain:
        wrap_client(http_client, deadline=30)
    return http_client


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize(("drain", "connections"), [(False, 3), (True, 1)], ids=["bare", "drained"])
async def test_openai_aiohttp_client(drain: bool, connections: int) -> None:
    openai = pytest.importorskip("openai", reason="the openai SDK needs Python 3.11+")
    http_client = openai_aiohttp_client(drain)
    ours = http_client._transport
    if drain:
        assert type(ours.transport).__name__ == "AiohttpTransport"
    late = LateTerminators(3)
    with RawServer(late) as server:
        client = openai.AsyncOpenAI(
            base_url=server.url + "/v1", api_key="sk-test", max_retries=0, http_client=http_client
        )
        async with client:
            for i in range(3):
                stream = await client.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
                )
                async with stream:
                    async for _chunk in stream:
                        pass
                late.gates[i].set()
                if drain:
                    assert await wait_for(lambda i=i: ours.stats.connections_kept == i + 1)
        assert server.facts.connection_count == connections


def test_openai_aiohttp_client_transport_argument_replaces_aiohttp() -> None:
    # The pitfall wrap_client avoids: DefaultAioHttpClient(transport=...) uses the transport
    # given *instead of* aiohttp, so AsyncDrainTransport() there means httpcore, not aiohttp.
    openai = pytest.importorskip("openai", reason="the openai SDK needs Python 3.11+")
    pytest.importorskip("aiohttp")
    drain2 = pytest.importorskip("httpx_drain.httpx2")
    import httpx2

    ours = drain2.AsyncDrainTransport()
    client = openai.DefaultAioHttpClient(transport=ours)
    assert client._transport is ours
    assert isinstance(ours.transport, httpx2.AsyncHTTPTransport)
