"""AsyncRawServer and AsyncHypercornServer, in the test's own event loop (asyncio and trio)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import httpx
import pytest

from httpx_drain.testing import (
    AsyncHypercornServer,
    AsyncRawServer,
    Chunk,
    Endless,
    Fin,
    Gate,
    RequestInfo,
    Reset,
    Scenario,
    ScenarioSource,
    Signal,
    Step,
    WaitFor,
    anthropic_messages,
    generic_sse,
    openai_chat,
    sample_text,
)

from .helpers import TIMEOUT

pytestmark = pytest.mark.anyio

AsyncServer = AsyncRawServer | AsyncHypercornServer
AsyncFactory = Callable[..., AsyncServer]


@pytest.fixture(params=["raw", "hypercorn"])
def make_async_server(request: pytest.FixtureRequest) -> AsyncFactory:
    def make(scenario: ScenarioSource, **kwargs: Any) -> AsyncServer:
        if request.param == "raw":
            return AsyncRawServer(scenario, **kwargs)
        return AsyncHypercornServer(scenario, **kwargs)

    return make


async def test_keep_alive(make_async_server: AsyncFactory) -> None:
    async with (
        make_async_server(generic_sse(2)) as srv,
        httpx.AsyncClient() as client,
    ):
        for _ in range(4):
            response = await client.get(srv.url)
            assert response.text == "data: message 0\n\ndata: message 1\n\n"
        assert srv.facts.connection_count == 1
        assert srv.facts.request_count == 4
        assert srv.facts.responses_completed == 4


async def test_connection_close_and_callable_scenarios(make_async_server: AsyncFactory) -> None:
    def scenario(request: RequestInfo) -> Scenario:
        body = f"{request.connection_index}/{request.request_index}".encode()
        return Scenario(steps=[Chunk(body)], connection_close=True)

    async with make_async_server(scenario) as srv, httpx.AsyncClient() as client:
        bodies = [(await client.get(srv.url)).content for _ in range(3)]
        assert bodies == [b"0/0", b"1/0", b"2/0"]
        assert await srv.facts.wait_for_closed_async(3, TIMEOUT)


async def test_early_close_before_the_terminator(make_async_server: AsyncFactory) -> None:
    gate, sent = Gate(), Gate()
    scenario = openai_chat(3, terminator_gate=gate, last_event_sent=sent)
    async with make_async_server(scenario) as srv, httpx.AsyncClient() as client:
        async with (
            client.stream("POST", srv.url + "/v1/chat/completions") as response,
            # Closed here, not by the garbage collector (trio warns about that).
            contextlib.aclosing(response.aiter_lines()) as lines,  # type: ignore[type-var]
        ):
            async for line in lines:
                if line == "data: [DONE]":
                    break
        assert sent.is_set()
        assert await srv.facts.wait_for_early_disconnects_async(1, TIMEOUT)
        gate.set()
        response = await client.post(srv.url + "/v1/chat/completions")
        assert response.text.endswith("data: [DONE]\n\n")
        assert sample_text(3) == "Hello from the"
        assert srv.facts.connections[1].responses_completed == 1


async def test_fin_is_a_protocol_error(make_async_server: AsyncFactory) -> None:
    async with (
        make_async_server(Scenario(steps=[Chunk(b"x"), Fin()])) as srv,
        httpx.AsyncClient() as client,
    ):
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(srv.url)


async def test_reset_is_a_read_error() -> None:
    async with (
        AsyncRawServer(Scenario(steps=[Chunk(b"x"), Reset()])) as srv,
        httpx.AsyncClient() as client,
    ):
        with pytest.raises(httpx.ReadError):
            await client.get(srv.url)


async def test_raw_bytes_are_exact() -> None:
    gate = Gate()
    scenario = Scenario(steps=[Chunk(b"abc"), WaitFor(gate), Chunk(b"de", terminator=True)])
    expected = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n"
    )
    async with AsyncRawServer(scenario) as srv:
        async with await anyio.connect_tcp("127.0.0.1", srv.port) as stream:
            await stream.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            received = b""
            with anyio.fail_after(TIMEOUT):
                while len(received) < len(expected):
                    received += await stream.receive()
            assert received == expected
            gate.set()
            with anyio.fail_after(TIMEOUT):
                assert await stream.receive() == b"2\r\nde\r\n0\r\n\r\n"  # one write
        assert await srv.facts.wait_for_closed_async(1, TIMEOUT)
        assert srv.facts.connections[0].bytes_sent == len(expected) + 12
        assert srv.facts.early_disconnects == 0


@pytest.mark.parametrize("blocked_on", ["gate", "endless"])
async def test_exit_aborts_blocked_steps(make_async_server: AsyncFactory, blocked_on: str) -> None:
    started = Gate()
    plans: dict[str, list[Step]] = {
        "gate": [Chunk(b"x"), Signal(started), WaitFor(Gate())],
        "endless": [Signal(started), Endless(b"x" * 4096)],  # to a client that never reads
    }
    steps = plans[blocked_on]
    with anyio.fail_after(TIMEOUT):
        async with make_async_server(Scenario(steps=steps)) as srv:
            stream = await anyio.connect_tcp("127.0.0.1", srv.port)
            await stream.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            await started.wait_async()
            began = anyio.current_time()
        assert anyio.current_time() - began < 5  # generous: a hang would be forever
        async with stream:
            assert await stream.receive(65536)  # what the server wrote before it stopped
    assert srv.facts.early_disconnects == 0


async def test_close_does_not_cancel_the_caller(make_async_server: AsyncFactory) -> None:
    async with make_async_server(generic_sse(1)) as srv:
        srv.close()
        await (
            anyio.lowlevel.checkpoint()
        )  # a checkpoint: would raise if close() cancelled this block
        reached = True
    assert reached


async def test_hypercorn_http2(anyio_backend: str) -> None:
    async with AsyncHypercornServer(generic_sse(1), http2=True) as srv:
        async with httpx.AsyncClient(http2=True, verify=srv.ssl_context) as client:
            for _ in range(2):
                response = await client.get(srv.url)
                assert response.http_version == "HTTP/2"
        assert srv.facts.connection_count == 1
        assert srv.facts.request_count == 2


async def test_gate_set_from_a_thread(make_async_server: AsyncFactory) -> None:
    gate = Gate()
    scenario = Scenario(steps=[Chunk(b"a"), WaitFor(gate), Chunk(b"b")])
    async with (
        make_async_server(scenario) as srv,
        httpx.AsyncClient() as client,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(anyio.to_thread.run_sync, gate.set)
        assert (await client.get(srv.url)).content == b"ab"


async def test_async_sdks(make_async_server: AsyncFactory) -> None:
    openai = pytest.importorskip("openai")
    anthropic = pytest.importorskip("anthropic")
    async with make_async_server(openai_chat(4)) as srv:
        client = openai.AsyncOpenAI(base_url=srv.url + "/v1", api_key="sk-test", max_retries=0)
        async with client:
            stream = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream])
        assert text == sample_text(4)
    async with make_async_server(anthropic_messages(4)) as srv:
        claude = anthropic.AsyncAnthropic(base_url=srv.url, api_key="sk-test", max_retries=0)
        async with claude:
            events = await claude.messages.create(
                model="claude-replay-test",
                max_tokens=16,
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
            )
            deltas = [e.delta.text async for e in events if e.type == "content_block_delta"]
        assert "".join(deltas) == sample_text(4)
        assert srv.facts.early_disconnects == 0
