"""Behaviour every threaded server shares: RawServer and HypercornServer on asyncio and trio."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from httpx_drain.testing import (
    Chunk,
    Endless,
    Fin,
    Gate,
    Pause,
    RequestInfo,
    Scenario,
    Signal,
    Split,
    Step,
    Terminator,
    Trickle,
    WaitFor,
    generic_sse,
)

from .helpers import TIMEOUT, ServerFactory, Wire

Connect = Callable[[int], Wire]


def body_of(client: Wire, expected: bytes) -> bytes:
    """Skip the head (backends write it differently) and read ``len(expected)`` bytes."""
    head = client.read_head()
    assert head.startswith(b"HTTP/1.1 200")
    assert b"chunked" in head.lower()
    return client.read_exactly(len(expected))


def test_keep_alive_serves_sequential_requests_on_one_connection(
    make_server: ServerFactory,
) -> None:
    scenario = generic_sse(3)
    with make_server(scenario) as srv, httpx.Client() as client:
        for _ in range(5):
            response = client.get(srv.url + "/stream")
            assert response.text == "data: message 0\n\ndata: message 1\n\ndata: message 2\n\n"
        facts = srv.facts
        assert facts.connection_count == 1
        assert facts.request_count == 5
        assert facts.responses_completed == 5
        client.close()
        assert facts.wait_for_closed(1, TIMEOUT)
        assert facts.early_disconnects == 0
        assert not facts.connections[0].client_closed_early


def test_connection_close_opens_one_connection_per_request(make_server: ServerFactory) -> None:
    scenario = Scenario(steps=[Chunk(b"data: x\n\n")], connection_close=True)
    with make_server(scenario) as srv, httpx.Client() as client:
        for _ in range(3):
            response = client.get(srv.url)
            assert response.headers["connection"] == "close"
            assert response.text == "data: x\n\n"
        assert srv.facts.wait_for_closed(3, TIMEOUT)
        assert srv.facts.connection_count == 3
        assert [c.requests for c in srv.facts.connections] == [1, 1, 1]
        assert srv.facts.early_disconnects == 0


def test_chunks_split_and_trickle_are_framed_one_chunk_per_write(
    make_server: ServerFactory, wire: Connect
) -> None:
    scenario = Scenario(
        steps=[Chunk(b"data: 1\n\n"), Split(b"data: 2\n\n", at=[3, 7]), Trickle(b"abc", 0.01, 2)]
    )
    expected = (
        b"9\r\ndata: 1\n\n\r\n3\r\ndat\r\n4\r\na: 2\r\n2\r\n\n\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n"
    )
    with make_server(scenario) as srv:
        client = wire(srv.port)
        client.request()
        assert body_of(client, expected) == expected
        assert srv.facts.wait_until(lambda f: f.responses_completed == 1, TIMEOUT)


def test_chunk_with_terminator_arrives_with_it(make_server: ServerFactory, wire: Connect) -> None:
    gate = Gate()
    scenario = Scenario(steps=[Chunk(b"first"), WaitFor(gate), Chunk(b"last", terminator=True)])
    with make_server(scenario) as srv:
        client = wire(srv.port)
        client.request()
        assert body_of(client, b"5\r\nfirst\r\n") == b"5\r\nfirst\r\n"
        gate.set()
        rest = client.read_exactly(len(b"4\r\nlast\r\n0\r\n\r\n"))
        assert rest == b"4\r\nlast\r\n0\r\n\r\n"


def test_pause_holds_the_rest_back(make_server: ServerFactory) -> None:
    scenario = Scenario(steps=[Chunk(b"a"), Pause(0.3), Chunk(b"b")])
    with make_server(scenario) as srv, httpx.Client() as client:
        started = time.monotonic()
        assert client.get(srv.url).content == b"ab"
        assert time.monotonic() - started >= 0.3  # a lower bound cannot flake


def test_wait_for_and_signal_gates(make_server: ServerFactory, wire: Connect) -> None:
    sent, release = Gate("sent"), Gate("release")
    scenario = Scenario(steps=[Chunk(b"before"), Signal(sent), WaitFor(release), Chunk(b"after")])
    with make_server(scenario) as srv:
        client = wire(srv.port)
        client.request()
        assert sent.wait(TIMEOUT)
        assert body_of(client, b"6\r\nbefore\r\n") == b"6\r\nbefore\r\n"
        assert client.quiet_for(0.2)  # held back by the gate
        release.set()
        rest = b"5\r\nafter\r\n0\r\n\r\n"
        assert client.read_exactly(len(rest)) == rest


def test_terminator_step_then_pause_keeps_the_connection(make_server: ServerFactory) -> None:
    gate = Gate()
    scenario = Scenario(steps=[Chunk(b"x"), Terminator(), Signal(gate)])
    with make_server(scenario) as srv, httpx.Client() as client:
        assert client.get(srv.url).content == b"x"
        assert client.get(srv.url).content == b"x"
        assert gate.is_set()
        assert srv.facts.connection_count == 1


def test_fin_mid_body_is_a_protocol_error(make_server: ServerFactory) -> None:
    scenario = Scenario(steps=[Chunk(b"data: 1\n\n"), Fin()])
    with make_server(scenario) as srv, httpx.Client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(srv.url)
        assert srv.facts.wait_for_closed(1, TIMEOUT)
        assert srv.facts.responses_completed == 0
        assert srv.facts.early_disconnects == 0  # the server hung up, not the client


def test_content_length_framing_keeps_alive(make_server: ServerFactory) -> None:
    scenario = Scenario(steps=[Chunk(b"abc"), Split(b"defg", at=[1])], framing="content-length")
    with make_server(scenario) as srv, httpx.Client() as client:
        for _ in range(2):
            response = client.get(srv.url)
            assert response.headers["content-length"] == "7"
            assert "transfer-encoding" not in response.headers
            assert response.content == b"abcdefg"
        assert srv.facts.connection_count == 1
        assert srv.facts.responses_completed == 2


def test_keep_alive_timeout_closes_idle_connections(make_server: ServerFactory) -> None:
    scenario = Scenario(steps=[Chunk(b"x")], keep_alive_timeout=0.2)
    with make_server(scenario) as srv, httpx.Client() as client:
        assert client.get(srv.url).content == b"x"
        assert srv.facts.wait_for_closed(1, TIMEOUT)  # the server hung up on its own
        assert client.get(srv.url).content == b"x"
        assert srv.facts.connection_count == 2
        assert srv.facts.early_disconnects == 0


def test_callable_scenario_sees_each_request(make_server: ServerFactory) -> None:
    seen: list[RequestInfo] = []

    def scenario(request: RequestInfo) -> Scenario:
        seen.append(request)
        return Scenario(steps=[Chunk(f"{request.method} {request.path}".encode())])

    with make_server(scenario) as srv, httpx.Client() as client:
        assert client.post(srv.url + "/v1/x?a=1", content=b"payload").text == "POST /v1/x?a=1"
        assert client.get(srv.url + "/y").text == "GET /y"
    assert [(r.connection_index, r.request_index) for r in seen] == [(0, 0), (0, 1)]
    assert seen[0].body == b"payload"
    assert seen[0].header("content-length") == "7"
    assert seen[1].body == b""


def test_client_leaving_during_a_gate_is_early(make_server: ServerFactory, wire: Connect) -> None:
    sent, never = Gate(), Gate()
    scenario = Scenario(steps=[Chunk(b"data: 1\n\n"), Signal(sent), WaitFor(never)])
    with make_server(scenario) as srv:
        client = wire(srv.port)
        client.request()
        assert sent.wait(TIMEOUT)
        client.close()
        assert srv.facts.wait_for_early_disconnects(1, TIMEOUT)
        assert srv.facts.wait_for_closed(1, TIMEOUT)
        assert srv.facts.responses_completed == 0


def test_httpx_closing_before_the_terminator_is_early(make_server: ServerFactory) -> None:
    gate = Gate()
    scenario = generic_sse(2, terminator_gate=gate)
    with make_server(scenario) as srv, httpx.Client() as client:
        with client.stream("GET", srv.url) as response:
            assert next(response.iter_bytes()) == b"data: message 0\n\n"
        # httpcore destroys a connection closed before the end of its body.
        assert srv.facts.wait_for_early_disconnects(1, TIMEOUT)
        gate.set()
        assert client.get(srv.url).text == "data: message 0\n\ndata: message 1\n\n"
        assert srv.facts.connection_count == 2


def test_endless_stream_until_the_client_leaves(make_server: ServerFactory) -> None:
    scenario = Scenario(steps=[Endless(b"data: " + b"x" * 1000 + b"\n\n")])
    with make_server(scenario) as srv, httpx.Client() as client:
        with client.stream("GET", srv.url) as response:
            received = 0
            for data in response.iter_bytes():
                received += len(data)
                if received > 100_000:
                    break
        assert srv.facts.wait_for_early_disconnects(1, TIMEOUT)
        assert srv.facts.connections[0].bytes_sent > 100_000


@pytest.mark.parametrize("blocked_on", ["gate", "endless", "idle", "partial request"])
def test_close_returns_promptly_with_a_client_connected(
    make_server: ServerFactory, wire: Connect, blocked_on: str
) -> None:
    started = Gate()
    plans: dict[str, list[Step]] = {
        "gate": [Chunk(b"x"), Signal(started), WaitFor(Gate())],
        "endless": [Signal(started), Endless(b"x" * 4096)],  # to a client that never reads
        "idle": [Chunk(b"x")],
        "partial request": [],
    }
    steps = plans[blocked_on]
    threads = threading.active_count()
    srv = make_server(Scenario(steps=steps)).start()
    client = wire(srv.port)
    if blocked_on == "partial request":
        client.sock.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n")
        assert srv.facts.wait_until(lambda f: f.connection_count == 1, TIMEOUT)
    else:
        client.request()
        if blocked_on == "idle":
            client.read_until(b"0\r\n\r\n")
        else:
            assert started.wait(TIMEOUT)
    began = time.monotonic()
    srv.close()
    assert time.monotonic() - began < 5  # generous: a hang would be the default 10 s or more
    assert threading.active_count() <= threads
    assert srv.facts.early_disconnects == 0  # stopping the server is not the client leaving
    # The server closed its side: FIN, or RST if it had not read all the client sent.
    with contextlib.suppress(ConnectionResetError):
        client.read_to_eof()


def test_bytes_sent_counts_what_the_client_received(
    make_server: ServerFactory, wire: Connect
) -> None:
    scenario = Scenario(steps=[Chunk(b"data: 1\n\n")], connection_close=True)
    with make_server(scenario) as srv:
        client = wire(srv.port)
        client.request()
        received = client.read_to_eof()
        assert srv.facts.wait_for_closed(1, TIMEOUT)
        assert srv.facts.connections[0].bytes_sent == len(received)
