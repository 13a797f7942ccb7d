"""The ASGI side: hypercorn servers and the scenario app when things go wrong, or off HTTP."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable
from functools import partial
from typing import Any, Literal

import anyio
import httpx
import pytest

from httpx_drain.testing import (
    AsyncHypercornServer,
    Chunk,
    Gate,
    HypercornServer,
    ReplayServerError,
    Scenario,
    ScenarioApp,
    ServerFacts,
    Signal,
    UnsupportedStep,
    WaitFor,
    _hypercorn,
)
from httpx_drain.testing._asgi import Receive, RecordingMiddleware, Scope, Send, Tracker
from httpx_drain.testing._base import listening_socket

from .helpers import TIMEOUT, Wire

Connect = Callable[[int], Wire]
Loop = Literal["asyncio", "trio"]
LOOPS: list[Loop] = ["asyncio", "trio"]

_BAD_REQUEST = b"HTTP/1.1 400 \r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
WEBSOCKET_UPGRADE = (
    ("connection", "upgrade"),
    ("upgrade", "websocket"),
    ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("sec-websocket-version", "13"),
)


async def streams_then_waits_for_disconnect(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"first", "more_body": True})
    while (await receive())["type"] != "http.disconnect":
        pass


async def early_hints_only(scope: Scope, receive: Receive, send: Send) -> None:
    # A 1xx status is not a final response: h11 refuses to end it, so the last send raises.
    await send({"type": "http.response.start", "status": 103, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def websocket_accepting(scope: Scope, receive: Receive, send: Send) -> None:
    assert scope["type"] == "websocket"
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close"})


@pytest.mark.parametrize("loop", LOOPS)
def test_request_body_cut_short_is_not_a_request(wire: Connect, loop: Loop) -> None:
    # The app is waiting for the rest of the body when the client goes: it returns quietly.
    with HypercornServer(Scenario(steps=[Chunk(b"x")]), backend=loop) as srv:
        client = wire(srv.port)
        client.sock.sendall(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nabc")
        client.sock.shutdown(socket.SHUT_WR)
        # No response of the scenario: hypercorn answers 400 or just closes, as it goes.
        assert client.read_to_eof() in (b"", _BAD_REQUEST)
        assert srv.facts.wait_for_closed(1, TIMEOUT)
        assert srv.facts.request_count == 0
        assert srv.facts.early_disconnects == 0


@pytest.mark.parametrize("loop", LOOPS)
def test_websocket_scopes_are_not_requests(wire: Connect, loop: Loop) -> None:
    # The scenario app ignores them (hypercorn answers 500 for an app that did not accept)...
    with HypercornServer(Scenario(steps=[Chunk(b"x")]), backend=loop) as srv:
        client = wire(srv.port)
        client.request(headers=WEBSOCKET_UPGRADE)
        assert client.read_head().startswith(b"HTTP/1.1 500 ")
        assert srv.facts.request_count == 0
    # ...while the recording middleware hands them to the app it wraps.
    with HypercornServer(app=websocket_accepting, backend=loop) as srv:
        client = wire(srv.port)
        client.request(headers=WEBSOCKET_UPGRADE)
        assert client.read_head().startswith(b"HTTP/1.1 101 ")
        assert srv.facts.request_count == 0


@pytest.mark.parametrize("loop", LOOPS)
def test_any_app_hearing_the_client_leave_mid_response_is_early(loop: Loop) -> None:
    with (
        HypercornServer(app=streams_then_waits_for_disconnect, backend=loop) as srv,
        httpx.Client() as client,
    ):
        with client.stream("GET", srv.url) as response:
            assert next(response.iter_raw()) == b"first"
        assert srv.facts.wait_for_early_disconnects(1, TIMEOUT)
        assert srv.facts.responses_completed == 0


@pytest.mark.parametrize("loop", LOOPS)
def test_response_end_refused_by_the_server_is_not_completed(wire: Connect, loop: Loop) -> None:
    # The last message is counted as completing the response before it is sent; when
    # hypercorn refuses it, the count is taken back. The app sees the refusal raised: the
    # client did not leave, and the replay server made no error.
    with HypercornServer(app=early_hints_only, backend=loop) as srv:
        client = wire(srv.port)
        client.request()
        assert client.read_to_eof().startswith(b"HTTP/1.1 103 ")
        assert srv.facts.wait_for_closed(1, TIMEOUT)
        assert srv.facts.request_count == 1
        assert srv.facts.responses_completed == 0
        assert srv.facts.early_disconnects == 0
        assert srv.facts.errors == []


def test_a_1xx_final_status_needs_the_raw_server() -> None:
    with pytest.raises(UnsupportedStep, match="1xx is informational"):
        HypercornServer(Scenario(status=103))


@pytest.mark.parametrize("loop", LOOPS)
def test_a_message_the_server_refuses_is_the_scenarios_error(wire: Connect, loop: Loop) -> None:
    # A header value h11 will not write: hypercorn refuses the response's start. That is an
    # error of the scenario (in facts.errors), not a client that left early.
    scenario = Scenario(steps=[Chunk(b"x")], headers=(("x-bad", "a\nb"),))
    server = HypercornServer(scenario, backend=loop)

    def serve_one() -> None:
        with server as srv:
            client = wire(srv.port)
            client.request()
            client.read_to_eof()
            assert srv.facts.wait_for_closed(1, TIMEOUT)

    with pytest.raises(ReplayServerError, match="Illegal header value"):
        serve_one()  # leaving the block raises what went wrong while serving
    assert server.facts.early_disconnects == 0
    assert [type(e).__name__ for e in server.facts.errors] == ["LocalProtocolError"]


@pytest.mark.parametrize("loop", LOOPS)
def test_empty_chunk_sends_no_body_message(wire: Connect, loop: Loop) -> None:
    # An empty body message would add nothing; under chunked framing it is just skipped.
    scenario = Scenario(steps=[Chunk(b""), Chunk(b"a")])
    with HypercornServer(scenario, backend=loop) as srv:
        client = wire(srv.port)
        client.request()
        client.read_head()
        assert client.read_until(b"0\r\n\r\n") == b"1\r\na\r\n0\r\n\r\n"
        assert srv.facts.responses_completed == 1


def test_failed_start_leaves_nothing_behind() -> None:
    srv = HypercornServer(Scenario(), backend="no-such-loop")  # type: ignore[arg-type]
    with pytest.raises(LookupError):
        srv.start()
    # The listening socket is closed again: nothing accepts on its port any more.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT).close()


@pytest.mark.parametrize("loop", LOOPS)
def test_threaded_server_cannot_start_twice(loop: Loop) -> None:
    with HypercornServer(Scenario(steps=[Chunk(b"x")]), backend=loop) as srv:
        with pytest.raises(RuntimeError, match="already started"):
            srv.start()
        assert httpx.get(srv.url).content == b"x"  # still serving


@pytest.mark.anyio
async def test_async_server_cannot_start_twice() -> None:
    async with AsyncHypercornServer(Scenario(steps=[Chunk(b"x")])) as srv:
        with pytest.raises(RuntimeError, match="already started"):
            await srv.__aenter__()
        async with httpx.AsyncClient() as client:
            assert (await client.get(srv.url)).content == b"x"


@pytest.mark.anyio
async def test_async_http2_client_leaving_mid_response_is_early() -> None:
    sent = Gate()
    scenario = Scenario(steps=[Chunk(b"first"), Signal(sent), WaitFor(Gate())])
    async with AsyncHypercornServer(scenario, http2=True) as srv:
        async with httpx.AsyncClient(http2=True, verify=srv.ssl_context) as client:
            async with client.stream("GET", srv.url) as response:
                assert response.http_version == "HTTP/2"
                with anyio.fail_after(TIMEOUT):
                    await sent.wait_async()
        # Closing the client closes the connection under the open stream.
        assert await srv.facts.wait_for_early_disconnects_async(1, TIMEOUT)
        assert srv.facts.responses_completed == 0


@pytest.mark.parametrize("anyio_backend", ["trio"])
@pytest.mark.anyio
async def test_apps_on_their_own_under_hypercorns_serve(anyio_backend: str) -> None:
    # Under hypercorn's own serve(): lifespan events reach the scenario app through the
    # middleware, and with no wire to count, both count body bytes.
    from hypercorn.app_wrappers import ASGIWrapper
    from hypercorn.config import Config, Sockets
    from hypercorn.trio.run import worker_serve

    middleware_facts = ServerFacts()
    scenario_app = ScenarioApp(Scenario(steps=[Chunk(b"abc"), Chunk(b"de")]))
    app = RecordingMiddleware(scenario_app, Tracker(middleware_facts))
    config = Config()
    config.accesslog = None
    stop = anyio.Event()
    sock = listening_socket("127.0.0.1")
    try:
        async with anyio.create_task_group() as tasks:
            serve: Any = partial(
                worker_serve,
                ASGIWrapper(app),  # type: ignore[arg-type]
                config,
                sockets=Sockets(secure_sockets=[], insecure_sockets=[sock], quic_sockets=[]),
                shutdown_trigger=stop.wait,
            )
            binds = await tasks.start(serve)  # after the lifespan startup completed
            async with httpx.AsyncClient() as client:
                assert (await client.get(binds[0])).content == b"abcde"
            stop.set()  # returns once the lifespan shutdown completed
    finally:
        sock.close()
    for facts in (middleware_facts, scenario_app.facts):
        assert (facts.request_count, facts.responses_completed) == (1, 1)
        assert facts.connections[0].bytes_sent == 5


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_handler_outliving_the_grace_period_is_cancelled(
    anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An app that shields itself from the stop keeps its connection handler alive: after the
    # grace period (5 s, shortened here) the asyncio server cancels the handler and stops.
    monkeypatch.setattr(_hypercorn, "_GRACE", 0.01)
    streaming = Gate()

    async def stubborn(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        streaming.set()
        with anyio.CancelScope(shield=True):
            await anyio.sleep(0.2)  # far longer than the grace period

    with anyio.fail_after(TIMEOUT):
        async with AsyncHypercornServer(app=stubborn) as srv:
            stream = await anyio.connect_tcp("127.0.0.1", srv.port)
            await stream.send(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            await streaming.wait_async()
    async with stream:
        received = b""
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
            while True:  # the aborted connection ends without the rest of the response
                received += await stream.receive()
    assert received.endswith(b"5\r\nfirst\r\n")
    assert srv.facts.closed_count == 1
    assert srv.facts.responses_completed == 0
    assert srv.facts.early_disconnects == 0  # the server stopping is not the client leaving
