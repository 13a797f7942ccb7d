"""Async transports on asyncio and trio against real local servers."""

from __future__ import annotations

import threading
import time
from contextlib import aclosing
from typing import Any

import anyio
import pytest

from httpx_drain.testing import (
    Chunk,
    Endless,
    Fin,
    Gate,
    HypercornServer,
    RawServer,
    Reset,
    Scenario,
    Signal,
    Terminator,
    Trickle,
    WaitFor,
)

from .conftest import Flavour, open_fds, tasks

pytestmark = pytest.mark.anyio

EVENT = b'data: {"n": 1}\n\n'
DONE = b"data: [DONE]\n\n"
N = 5
MARGIN = 2.0


def sse(*steps: Any, **kwargs: Any) -> Scenario:
    return Scenario(steps=steps, **kwargs)


async def stream_until_done(client: Any, url: str) -> list[bytes]:
    seen = []
    async with client.stream("POST", url, content=b"{}") as response:
        async with aclosing(response.aiter_raw()) as chunks:
            async for chunk in chunks:
                seen.append(chunk)
                if DONE in chunk:
                    break
    return seen


async def first_chunk(response: Any) -> bytes:
    async with aclosing(response.aiter_raw()) as chunks:
        return await chunks.__anext__()  # type: ignore[no-any-return]


async def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    with anyio.move_on_after(timeout):
        while not predicate():
            await anyio.sleep(0.005)
    return bool(predicate())


async def test_terminator_in_the_same_segment(flavour: Flavour, mode: str) -> None:
    scenario = sse(Chunk(EVENT), Chunk(DONE, terminator=True))
    with RawServer(scenario) as server:
        transport = flavour.AsyncDrainTransport(mode=mode)
        async with flavour.lib.AsyncClient(transport=transport) as client:
            for _ in range(N):
                assert (await stream_until_done(client, server.url))[-1] == DONE
        assert server.facts.connection_count == 1
        assert server.facts.early_disconnects == 0
    assert transport.stats.connections_kept == N


async def test_bare_client_loses_the_connection(flavour: Flavour) -> None:
    scenario = sse(Chunk(EVENT), Chunk(DONE, terminator=True))
    with RawServer(scenario) as server:
        async with flavour.lib.AsyncClient() as client:
            for _ in range(N):
                await stream_until_done(client, server.url)
        assert server.facts.connection_count == N


async def test_hypercorn_delayed_terminator(flavour: Flavour, mode: str) -> None:
    release = Gate()
    sent = Gate()
    scenario = sse(Chunk(EVENT), Chunk(DONE), Signal(sent), WaitFor(release), Terminator())
    with HypercornServer(scenario) as server:
        transport = flavour.AsyncDrainTransport(mode=mode, deadline=30)
        releaser = threading.Thread(target=lambda: (sent.wait(10), release.set()))
        releaser.start()
        async with flavour.lib.AsyncClient(transport=transport) as client:
            await stream_until_done(client, server.url)
            assert await wait_for(lambda: transport.stats.connections_kept == 1)
            await stream_until_done(client, server.url)
        releaser.join()
        assert server.facts.connection_count == 1


async def test_background_aclose_does_not_wait(flavour: Flavour) -> None:
    release = Gate()
    scenario = sse(Chunk(EVENT), Chunk(DONE), WaitFor(release), Terminator())
    with RawServer(scenario) as server:
        transport = flavour.AsyncDrainTransport(deadline=30)
        async with flavour.lib.AsyncClient(transport=transport) as client:
            await stream_until_done(client, server.url)
            assert not release.is_set()
            release.set()
            assert await wait_for(lambda: transport.stats.connections_kept == 1)
            await stream_until_done(client, server.url)
        assert server.facts.connection_count == 1


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param((WaitFor(Gate()),), id="never"),
        pytest.param((Trickle(b":" * 10_000, interval=0.02),), id="trickle"),
    ],
)
async def test_deadline_bounds_aclose(flavour: Flavour, tail: tuple[Any, ...]) -> None:
    deadline = 0.3
    with RawServer(sse(Chunk(EVENT), Chunk(DONE), *tail)) as server:
        transport = flavour.AsyncDrainTransport(mode="inline", deadline=deadline)
        async with flavour.lib.AsyncClient(transport=transport, timeout=600) as client:
            async with client.stream("GET", server.url) as response:
                await first_chunk(response)
                started = time.monotonic()
            assert time.monotonic() - started < deadline + MARGIN
    assert transport.stats.deadline_exceeded == 1


async def test_byte_cap(flavour: Flavour, mode: str) -> None:
    with RawServer(sse(Endless(b"x" * 4096))) as server:
        transport = flavour.AsyncDrainTransport(mode=mode, max_bytes=64 * 1024, deadline=30)
        async with flavour.lib.AsyncClient(transport=transport) as client:
            async with client.stream("GET", server.url) as response:
                await first_chunk(response)
    assert transport.stats.max_bytes_exceeded == 1


@pytest.mark.parametrize("tail", [pytest.param(Fin(), id="fin"), pytest.param(Reset(), id="rst")])
async def test_server_ends_without_terminator(flavour: Flavour, mode: str, tail: Any) -> None:
    with RawServer(sse(Chunk(EVENT), Chunk(DONE), tail)) as server:
        transport = flavour.AsyncDrainTransport(mode=mode, deadline=30)
        async with flavour.lib.AsyncClient(transport=transport) as client:
            await stream_until_done(client, server.url)
    stats = transport.stats.snapshot()
    assert (stats.drain_errors, stats.connections_kept) == (1, 0)


async def test_cancelled_caller_still_drains_and_sees_its_cancellation(
    flavour: Flavour,
) -> None:
    # The caller is cancelled while its aclose() waits for a terminator: the drain goes on,
    # shielded and bounded, the inner stream is closed (no leaked pool slot, httpcore#1115),
    # and the caller's scope still ends cancelled.
    release, sent = Gate(), Gate()
    scenario = sse(Chunk(EVENT), Chunk(DONE), Signal(sent), WaitFor(release), Terminator())
    with RawServer(scenario) as server:
        transport = flavour.AsyncDrainTransport(mode="inline", deadline=30)
        releaser = threading.Thread(target=lambda: (sent.wait(10), release.set()))
        releaser.start()
        async with flavour.lib.AsyncClient(transport=transport) as client:
            with anyio.CancelScope() as scope:
                async with client.stream("GET", server.url):
                    scope.cancel()  # pending: delivered at the next checkpoint
                await anyio.sleep(1)  # pragma: no cover - never reached
            releaser.join()
            assert scope.cancelled_caught
            assert transport.stats.connections_kept == 1
            await stream_until_done(client, server.url)
        assert server.facts.connection_count == 1


async def test_aclose_of_transport_finishes_pending_drains(flavour: Flavour) -> None:
    fds = open_fds()
    release = Gate()
    with RawServer(sse(Chunk(EVENT), Chunk(DONE), WaitFor(release), Terminator())) as server:
        # Long enough for three requests on a loaded machine, short for the test's wait.
        transport = flavour.AsyncDrainTransport(deadline=2.0)
        async with flavour.lib.AsyncClient(transport=transport) as client:
            for _ in range(3):
                await stream_until_done(client, server.url)
            assert transport.stats.deadline_exceeded == 0
        # Leaving the client waited for the three drains, bounded by their deadline.
        assert transport.stats.deadline_exceeded == 3
        release.set()
    assert open_fds() <= fds


@pytest.mark.parametrize("reads", [0, 1, "all"])
async def test_consumer_patterns(flavour: Flavour, mode: str, reads: Any) -> None:
    events = [b"data: %d\n\n" % i for i in range(20)]
    with RawServer(sse(*(Chunk(e) for e in events), Terminator())) as server:
        transport = flavour.AsyncDrainTransport(mode=mode, deadline=30)
        async with flavour.lib.AsyncClient(transport=transport) as client:
            for i in range(3):
                async with client.stream("GET", server.url) as response:
                    if reads == "all":
                        assert await response.aread() == b"".join(events)
                    elif reads == 1:
                        await first_chunk(response)
                if reads != "all":
                    assert await wait_for(lambda i=i: transport.stats.connections_kept == i + 1)
        assert server.facts.connection_count == 1
    assert transport.stats.drains_started == (0 if reads == "all" else 3)


async def test_no_task_outlives_the_client(flavour: Flavour) -> None:
    release = Gate()
    with RawServer(sse(Chunk(EVENT), Chunk(DONE), WaitFor(release), Terminator())) as server:
        before = tasks()
        transport = flavour.AsyncDrainTransport(deadline=2.0)  # outlasts three requests
        async with flavour.lib.AsyncClient(transport=transport) as client:
            for _ in range(3):
                await stream_until_done(client, server.url)
            assert tasks() > before  # drains are running in the background
        assert tasks() == before
        release.set()


async def test_an_end_in_h11s_buffer_is_drained_without_a_task(flavour: Flavour) -> None:
    scenario = sse(Chunk(EVENT), Chunk(DONE, terminator=True))
    with RawServer(scenario) as server:
        transport = flavour.AsyncDrainTransport()
        async with flavour.lib.AsyncClient(transport=transport) as client:
            for i in range(N):
                await stream_until_done(client, server.url)
                stats = transport.stats.snapshot()
                assert (stats.connections_kept, stats.drains_buffered) == (i + 1, i + 1)
        assert server.facts.connection_count == 1
