"""Sync transports against real local servers: connections reused, close() bounded."""

from __future__ import annotations

import gc
import itertools
import logging
import threading
import time
from typing import Any

import pytest

from httpx_drain.testing import (
    Chunk,
    Endless,
    Fin,
    Gate,
    HypercornServer,
    Pause,
    RawServer,
    Reset,
    Scenario,
    Signal,
    Terminator,
    Trickle,
    WaitFor,
)

from .conftest import Flavour, wait_for

EVENT = b'data: {"n": 1}\n\n'
DONE = b"data: [DONE]\n\n"
N = 5
#: close() must return within its deadline plus this; generous, for a loaded CI machine.
MARGIN = 2.0


def sse(*steps: Any, **kwargs: Any) -> Scenario:
    return Scenario(steps=steps, **kwargs)


def stream_until_done(client: Any, url: str, *, stop: bytes = DONE) -> list[bytes]:
    """Read events as an SDK does and close at the terminal one, before the terminator."""
    seen = []
    with client.stream("POST", url, content=b"{}") as response:
        for chunk in response.iter_raw():
            seen.append(chunk)
            if stop in chunk:
                break
    return seen


def test_terminator_in_the_same_segment_keeps_the_connection(
    no_leaks: None, flavour: Flavour, mode: str
) -> None:
    scenario = sse(Chunk(EVENT), Chunk(DONE, terminator=True))
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport(mode=mode)
        with flavour.lib.Client(transport=transport) as client:
            for _ in range(N):
                assert stream_until_done(client, server.url)[-1] == DONE
        assert server.facts.connection_count == 1
        assert server.facts.request_count == N
        assert server.facts.early_disconnects == 0
    stats = transport.stats.snapshot()
    assert stats.responses_wrapped == stats.drains_started == stats.connections_kept == N


def test_without_the_transport_every_request_opens_a_connection(flavour: Flavour) -> None:
    # The defect we fix, measured with the same server: one connection per request.
    scenario = sse(Chunk(EVENT), Chunk(DONE, terminator=True))
    with RawServer(scenario) as server, flavour.lib.Client() as client:
        for _ in range(N):
            stream_until_done(client, server.url)
        assert server.facts.connection_count == N


def test_hypercorn_delayed_terminator(no_leaks: None, flavour: Flavour, mode: str) -> None:
    # Last event with more_body=True, then the terminator once the test releases it.
    gates = [Gate() for _ in range(N)]
    sent = [Gate() for _ in range(N)]

    requests = itertools.count()

    def scenario(request: Any) -> Scenario:
        i = next(requests)
        return sse(Chunk(EVENT), Chunk(DONE), Signal(sent[i]), WaitFor(gates[i]), Terminator())

    with HypercornServer(scenario) as server:
        transport = flavour.DrainTransport(mode=mode, deadline=30)
        with flavour.lib.Client(transport=transport) as client:
            for i in range(N):
                releaser = threading.Thread(target=lambda i=i: (sent[i].wait(10), gates[i].set()))
                releaser.start()
                stream_until_done(client, server.url)
                releaser.join()
                # In the background the drain may still be reading the terminator.
                assert wait_for(lambda i=i: transport.stats.connections_kept == i + 1)
        assert server.facts.connection_count == 1
        assert server.facts.early_disconnects == 0
    assert transport.stats.connections_kept == N


def test_background_close_does_not_wait_for_the_terminator(
    no_leaks: None, flavour: Flavour
) -> None:
    release = Gate()
    scenario = sse(Chunk(EVENT), Chunk(DONE), WaitFor(release), Terminator())
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport(mode="background", deadline=30)
        with flavour.lib.Client(transport=transport) as client:
            stream_until_done(client, server.url)
            # close() has returned while the server still holds the terminator back.
            assert not release.is_set()
            assert transport.stats.connections_kept == 0
            release.set()
            assert wait_for(lambda: transport.stats.connections_kept == 1)
            stream_until_done(client, server.url)
        assert server.facts.connection_count == 1


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param((WaitFor(Gate()),), id="never"),
        pytest.param((Trickle(b":" * 10_000, interval=0.02),), id="trickle"),
    ],
)
def test_deadline_bounds_close(no_leaks: None, flavour: Flavour, tail: tuple[Any, ...]) -> None:
    deadline = 0.3
    scenario = sse(Chunk(EVENT), Chunk(DONE), *tail)
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport(mode="inline", deadline=deadline)
        with flavour.lib.Client(transport=transport, timeout=600) as client:
            with client.stream("GET", server.url) as response:
                chunks = response.iter_raw()  # held: httpx2 closes when it is finalised
                next(chunks)
                started = time.monotonic()
            elapsed = time.monotonic() - started  # the close, with its drain
            assert elapsed < deadline + MARGIN
            stream_until_done(client, server.url)
        assert server.facts.connection_count == 2
    stats = transport.stats.snapshot()
    assert stats.deadline_exceeded == 2
    assert stats.connections_kept == 0


def test_byte_cap(no_leaks: None, flavour: Flavour, mode: str) -> None:
    scenario = sse(Endless(b"x" * 4096))
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport(mode=mode, max_bytes=64 * 1024, deadline=30)
        with flavour.lib.Client(transport=transport) as client:
            for _ in range(2):
                with client.stream("GET", server.url) as response:
                    next(response.iter_raw())
        assert server.facts.connection_count == 2
    stats = transport.stats.snapshot()
    assert stats.max_bytes_exceeded == 2
    assert 2 * 64 * 1024 < stats.bytes_discarded < 2 * (64 * 1024 + 70_000)


def test_known_remainder_over_the_cap_is_not_read(no_leaks: None, flavour: Flavour) -> None:
    body = b"x" * 200_000
    scenario = Scenario(steps=(Chunk(body),), framing="content-length")
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport(max_bytes=100_000)
        with (
            flavour.lib.Client(transport=transport) as client,
            client.stream("GET", server.url) as response,
        ):
            next(response.iter_raw(1024))
    stats = transport.stats.snapshot()
    assert stats.drains_skipped == 1
    assert stats.drains_started == stats.bytes_discarded == 0


@pytest.mark.parametrize(
    ("tail", "kept"),
    [
        pytest.param((Fin(),), 0, id="fin-without-terminator"),
        pytest.param((Reset(),), 0, id="reset"),
        pytest.param((Pause(0.0), Terminator()), 1, id="terminator"),
    ],
)
def test_server_ends_without_terminator(
    no_leaks: None, flavour: Flavour, mode: str, tail: tuple[Any, ...], kept: int
) -> None:
    sent = Gate()
    scenario = sse(Chunk(EVENT), Chunk(DONE), Signal(sent), *tail)
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport(mode=mode, deadline=30)
        with flavour.lib.Client(transport=transport) as client:
            stream_until_done(client, server.url)  # close() must not raise
            assert wait_for(lambda: transport.stats.snapshot().drains_started == 1)
            client.close()
    stats = transport.stats.snapshot()
    assert stats.connections_kept == kept
    assert stats.drain_errors == 1 - kept


@pytest.mark.parametrize("reads", [0, 1, "all"])
def test_consumer_patterns(no_leaks: None, flavour: Flavour, mode: str, reads: Any) -> None:
    events = [b"data: %d\n\n" % i for i in range(20)]
    scenario = sse(*(Chunk(e) for e in events), Terminator())
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport(mode=mode, deadline=30)
        with flavour.lib.Client(transport=transport) as client:
            for i in range(3):
                with client.stream("GET", server.url) as response:
                    if reads == "all":
                        assert response.read() == b"".join(events)
                    else:
                        chunks = response.iter_raw()
                        for _ in range(reads):
                            next(chunks)
                # In the background the drain may still be reading.
                if reads != "all":
                    assert wait_for(lambda i=i: transport.stats.connections_kept == i + 1)
        assert server.facts.connection_count == 1
    stats = transport.stats.snapshot()
    assert stats.drains_started == (0 if reads == "all" else 3)


def test_close_twice_closes_the_inner_stream_once(
    no_leaks: None, flavour: Flavour, mode: str
) -> None:
    inner = flavour.lib.HTTPTransport()
    closes: list[object] = []
    send = inner.handle_request

    def counting(request: Any) -> Any:
        response = send(request)
        close = response.stream.close
        response.stream.close = lambda: (closes.append(request), close())
        return response

    inner.handle_request = counting
    scenario = sse(Chunk(EVENT), Chunk(DONE), Terminator())
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport(inner, mode=mode)
        with flavour.lib.Client(transport=transport) as client:
            response = client.send(client.build_request("GET", server.url), stream=True)
            response.stream.close()
            response.stream.close()
            response.close()
            del response
            gc.collect()
            assert wait_for(lambda: transport.stats.connections_kept == 1)
            assert len(closes) == 1
            stream_until_done(client, server.url)
        assert server.facts.connection_count == 1
    assert transport.stats.snapshot().drains_started == 2


def test_connection_close_is_not_drained(no_leaks: None, flavour: Flavour) -> None:
    scenario = sse(Chunk(EVENT), Chunk(DONE), Terminator(), connection_close=True)
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport()
        with flavour.lib.Client(transport=transport) as client:
            for _ in range(2):
                stream_until_done(client, server.url)
        assert server.facts.connection_count == 2
    assert transport.stats.snapshot().drains_skipped == 2


@pytest.mark.parametrize(("method", "status"), [("HEAD", 200), ("GET", 204), ("GET", 304)])
def test_empty_bodies_keep_the_connection(
    no_leaks: None, flavour: Flavour, method: str, status: int
) -> None:
    scenario = Scenario(steps=(), status=status, headers=(), framing="content-length")
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport(mode="inline")
        with flavour.lib.Client(transport=transport) as client:
            for _ in range(3):
                with client.stream(method, server.url):
                    pass
        assert server.facts.connection_count == 1


def test_body_read_normally_is_unchanged(flavour: Flavour) -> None:
    body = bytes(range(256)) * 4000
    scenario = Scenario(steps=(Chunk(body[:1000]), Chunk(body[1000:])), headers=())
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport()
        with flavour.lib.Client(transport=transport) as client:
            assert client.get(server.url).content == body
    stats = transport.stats.snapshot()
    assert stats.drains_started == stats.drains_skipped == 0


def test_debug_log_names_origin_not_headers(
    flavour: Flavour, caplog: pytest.LogCaptureFixture
) -> None:
    scenario = sse(Chunk(EVENT), Chunk(DONE, terminator=True))
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport(mode="inline")
        with (
            flavour.lib.Client(transport=transport) as client,
            caplog.at_level(logging.DEBUG, logger="httpx_drain"),
        ):
            client.headers["Authorization"] = "Bearer sk-secret"
            stream_until_done(client, server.url + "/v1/chat?key=sk-query")
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx_drain"]
    assert len(lines) == 1
    assert lines[0].startswith("drain kept: 0 bytes in ")
    assert lines[0].endswith(f"origin {server.url}")
    assert "sk-" not in lines[0]
    assert "/v1" not in lines[0]
