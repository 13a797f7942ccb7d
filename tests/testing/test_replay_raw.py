"""RawServer: exact bytes on the wire, and the steps only raw sockets can replay."""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable

import httpx
import pytest

from httpx_drain.testing import (
    Chunk,
    Fin,
    Gate,
    Raw,
    RawServer,
    ReplayServerError,
    RequestInfo,
    Reset,
    Scenario,
    Signal,
    Terminator,
    WaitFor,
)

from .helpers import TIMEOUT, Wire, request_bytes

Connect = Callable[[int], Wire]

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def test_response_bytes_are_exact(wire: Connect) -> None:
    scenario = Scenario(
        steps=[Chunk(b"data: 1\n\n")], status=201, headers=[("x-a", "1"), ("x-a", "2")]
    )
    expected = (
        b"HTTP/1.1 201 Created\r\nx-a: 1\r\nx-a: 2\r\ntransfer-encoding: chunked\r\n\r\n"
        b"9\r\ndata: 1\n\n\r\n0\r\n\r\n"
    )
    with RawServer(scenario) as srv:
        client = wire(srv.port)
        client.request()
        assert client.read_exactly(len(expected)) == expected
        assert srv.facts.wait_until(lambda f: f.responses_completed == 1, TIMEOUT)
        assert srv.facts.connections[0].bytes_sent == len(expected)
        assert client.quiet_for(0.05)  # nothing more


def test_chunk_with_terminator_is_one_segment(wire: Connect) -> None:
    gate = Gate()
    scenario = Scenario(steps=[Chunk(b"first"), WaitFor(gate), Chunk(b"last", terminator=True)])
    with RawServer(scenario) as srv:
        client = wire(srv.port)
        client.request()
        client.read_until(b"5\r\nfirst\r\n")
        gate.set()
        # One send() on loopback is one segment: a single recv() gets all of it.
        assert client.recv_once() == b"4\r\nlast\r\n0\r\n\r\n"


def test_trailers(wire: Connect) -> None:
    scenario = Scenario(steps=[Chunk(b"x"), Terminator(trailers=[("x-sum", "42")])])
    expected = HEAD + b"1\r\nx\r\n0\r\nx-sum: 42\r\n\r\n"
    with RawServer(scenario) as srv:
        client = wire(srv.port)
        client.request()
        assert client.read_exactly(len(expected)) == expected
        with httpx.Client() as http:
            assert http.get(srv.url).content == b"x"


def test_fin_sends_no_terminator(wire: Connect) -> None:
    with RawServer(Scenario(steps=[Chunk(b"abc"), Fin()])) as srv:
        client = wire(srv.port)
        client.request()
        assert client.read_to_eof() == HEAD + b"3\r\nabc\r\n"


def test_reset_aborts_the_connection(wire: Connect) -> None:
    with RawServer(Scenario(steps=[Chunk(b"abc"), Reset()])) as srv:
        with httpx.Client() as http, pytest.raises(httpx.ReadError):
            http.get(srv.url)
        client = wire(srv.port)
        client.request()
        with pytest.raises(ConnectionResetError):
            client.read_to_eof()
        assert srv.facts.wait_for_closed(2, TIMEOUT)
        assert srv.facts.early_disconnects == 0


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"zz\r\ndata\r\n", id="not-hex"),
        pytest.param(b"f" * 1_000_000 + b"\r\n", id="1MB-size-line"),
        pytest.param(b"5\r\nabcdeXX", id="no-crlf-after-data"),
    ],
)
def test_raw_bytes_go_out_as_given(wire: Connect, raw: bytes) -> None:
    with RawServer(Scenario(steps=[Raw(raw), Fin()])) as srv:
        client = wire(srv.port)
        client.request()
        assert client.read_to_eof() == HEAD + raw
        with httpx.Client() as http, pytest.raises(httpx.RemoteProtocolError):
            http.get(srv.url)


def test_content_length_given_lets_extra_bytes_follow(wire: Connect) -> None:
    scenario = Scenario(
        steps=[Chunk(b"abc"), Raw(b"GARBAGE")],
        headers=[("content-length", "3")],
        framing="content-length",
        connection_close=True,
    )
    with RawServer(scenario) as srv:
        client = wire(srv.port)
        client.request()
        expected = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabcGARBAGE"
        assert client.read_to_eof() == expected
        assert srv.facts.wait_for_closed(1, TIMEOUT)
        assert srv.facts.responses_completed == 1  # the 3rd body byte completed it


def test_eof_framing(wire: Connect) -> None:
    scenario = Scenario(steps=[Chunk(b"data: 1\n\n"), Chunk(b"data: 2\n\n")], framing="eof")
    with RawServer(scenario) as srv:
        client = wire(srv.port)
        client.request()
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\n"
        assert client.read_to_eof() == head + b"data: 1\n\ndata: 2\n\n"
        with httpx.Client() as http:
            assert http.get(srv.url).content == b"data: 1\n\ndata: 2\n\n"
        assert srv.facts.wait_for_closed(2, TIMEOUT)
        assert srv.facts.responses_completed == 2
        assert srv.facts.early_disconnects == 0


def test_pipelined_requests_get_responses_in_order(wire: Connect) -> None:
    def scenario(request: RequestInfo) -> Scenario:
        return Scenario(steps=[Chunk(request.path.encode())], headers=())

    with RawServer(scenario) as srv:
        client = wire(srv.port)
        client.sock.sendall(request_bytes("/a", body=b"xyz") + request_bytes("/bc"))
        expected = (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n/a\r\n0\r\n\r\n"
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n/bc\r\n0\r\n\r\n"
        )
        assert client.read_exactly(len(expected)) == expected
        assert srv.facts.request_count == 2
        assert srv.facts.connection_count == 1


@pytest.mark.parametrize(
    ("version", "headers"),
    [("HTTP/1.1", "connection: close\r\n"), ("HTTP/1.0", "")],
)
def test_client_asking_to_close(wire: Connect, version: str, headers: str) -> None:
    with RawServer(Scenario(steps=[Chunk(b"x")])) as srv:
        client = wire(srv.port)
        client.sock.sendall(f"GET / {version}\r\nhost: x\r\n{headers}\r\n".encode())
        assert client.read_to_eof().endswith(b"1\r\nx\r\n0\r\n\r\n")
        assert srv.facts.wait_for_closed(1, TIMEOUT)


def test_malformed_request_is_hung_up_on(wire: Connect) -> None:
    with RawServer(Scenario()) as srv:
        client = wire(srv.port)
        client.sock.sendall(b"NOT HTTP\r\n\r\n")
        assert client.read_to_eof() == b""
        assert srv.facts.wait_for_closed(1, TIMEOUT)
        assert srv.facts.request_count == 0
        assert srv.facts.errors == []


def test_client_reset_during_a_gate_is_early(wire: Connect) -> None:
    sent = Gate()
    with RawServer(Scenario(steps=[Chunk(b"x"), Signal(sent), WaitFor(Gate())])) as srv:
        client = wire(srv.port)
        client.request()
        assert sent.wait(TIMEOUT)
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()
        assert srv.facts.wait_for_early_disconnects(1, TIMEOUT)


def test_client_closing_after_the_terminator_is_not_early(wire: Connect) -> None:
    with RawServer(Scenario(steps=[Chunk(b"x")])) as srv:
        client = wire(srv.port)
        client.request()
        client.read_until(b"0\r\n\r\n")
        client.close()
        assert srv.facts.wait_for_closed(1, TIMEOUT)
        assert srv.facts.early_disconnects == 0
        assert srv.facts.responses_completed == 1


def test_scenario_errors_are_raised_at_exit() -> None:
    def broken(request: RequestInfo) -> Scenario:
        raise LookupError("no scenario for " + request.path)

    srv = RawServer(broken).__enter__()
    with httpx.Client() as http, pytest.raises(httpx.RemoteProtocolError):
        http.get(srv.url + "/x")
    assert srv.facts.wait_for_closed(1, TIMEOUT)
    with pytest.raises(ReplayServerError, match="no scenario for /x") as caught:
        srv.__exit__(None, None, None)
    assert isinstance(caught.value.__cause__, LookupError)


def test_lifecycle() -> None:
    srv = RawServer(Scenario())
    with pytest.raises(RuntimeError, match="not started"):
        _ = srv.url
    srv.close()  # closing a server never started is fine
    srv = RawServer(Scenario()).start()
    try:
        assert srv.url == f"http://127.0.0.1:{srv.port}"
        with pytest.raises(RuntimeError, match="already started"):
            srv.start()
    finally:
        srv.close()
    srv.close()  # and closing twice
