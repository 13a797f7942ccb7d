"""Starting and failing: servers that cannot bind or are cancelled while starting, bad inputs."""

from __future__ import annotations

import socket

import anyio
import httpx
import pytest

from httpx_drain.testing import (
    AsyncHypercornServer,
    AsyncRawServer,
    Endless,
    RawServer,
    ReplayServerError,
    ReplaySpec,
    RequestInfo,
    Scenario,
    Trickle,
    format_facts,
)
from httpx_drain.testing._wire import RequestParser

from .helpers import TIMEOUT, request_bytes

AsyncServer = AsyncRawServer | AsyncHypercornServer


def test_negative_intervals_are_refused() -> None:
    with pytest.raises(ValueError, match=r"Trickle\.interval"):
        Trickle(b"abc", interval=-1)
    with pytest.raises(ValueError, match=r"Endless\.interval"):
        Endless(b"abc", interval=-1)


def test_spec_rejects_arguments_it_cannot_use() -> None:
    def scenario(request: RequestInfo) -> Scenario:
        return Scenario()

    with pytest.raises(TypeError, match="callable scenario source takes no keyword"):
        ReplaySpec.build(scenario, status=500)
    with pytest.raises(TypeError, match="preset name, a Scenario or a callable"):
        ReplaySpec.build(42)  # type: ignore[arg-type]


def test_callable_returning_something_else_is_a_server_error() -> None:
    def scenario(request: RequestInfo) -> Scenario:
        return "data: hi\n\n"  # type: ignore[return-value]

    srv = RawServer(scenario).start()
    try:
        with httpx.Client() as client, pytest.raises(httpx.RemoteProtocolError):
            client.get(srv.url)  # the server hangs up without a response
        assert srv.facts.wait_until(lambda f: len(f.errors) == 1, TIMEOUT)
        # The facts table shows the error next to the connections.
        assert "server errors: TypeError('scenario callable returned str" in format_facts(srv)
    finally:
        with pytest.raises(ReplayServerError, match="returned str, not Scenario"):
            srv.__exit__(None, None, None)


def test_request_parser_returns_a_request_that_arrived_with_the_end_of_stream() -> None:
    parser = RequestParser()
    parser.feed(request_bytes("/last"))
    parser.feed(b"")  # the client closed right after its request
    parsed = parser.next_request(0, 0)
    assert parsed is not None
    assert parsed[0].path == "/last"
    with pytest.raises(EOFError):
        parser.next_request(0, 1)


def test_unbindable_address_fails_without_leaking() -> None:
    # 192.0.2.1 (TEST-NET-1) is no address of this machine: bind() fails, the socket is closed.
    with pytest.raises(OSError, match="requested address"):
        RawServer(Scenario(), host="192.0.2.1").start()


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["raw", "hypercorn"])
async def test_cancelled_while_starting_closes_the_listening_socket(kind: str) -> None:
    srv: AsyncServer = (
        AsyncRawServer(Scenario()) if kind == "raw" else AsyncHypercornServer(Scenario())
    )
    with anyio.CancelScope() as scope:
        scope.cancel()
        async with srv:
            pytest.fail("the server cannot have started in a cancelled scope")
    assert scope.cancelled_caught
    # Bound, then closed again when starting was cancelled: nothing listens on the port.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT).close()
