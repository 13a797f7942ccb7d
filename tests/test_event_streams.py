"""Event streams: end at the terminal event, tolerate a missing terminator, type truncations."""

from __future__ import annotations

import logging
from contextlib import aclosing
from typing import Any

import pytest

from httpx_drain import IncompleteStream, SSEEvent
from httpx_drain.testing import (
    Chunk,
    Fin,
    Gate,
    RawServer,
    Reset,
    Scenario,
    Signal,
    Split,
    Terminator,
    WaitFor,
)

from .conftest import Flavour, wait_for

EVENTS = [b'data: {"n": %d}\n\n' % i for i in range(3)]
DONE = b"data: [DONE]\n\n"
BODY = b"".join(EVENTS) + DONE


def sse(*steps: Any, **kwargs: Any) -> Scenario:
    return Scenario(steps=steps, **kwargs)


def held(release: Gate, *extra: Any) -> Scenario:
    return sse(*(Chunk(e) for e in EVENTS), Chunk(DONE), *extra, WaitFor(release), Terminator())


def test_consumer_sees_end_of_body_at_the_terminal_event(no_leaks: None, flavour: Flavour) -> None:
    # A consumer that reads to EOF (as the anthropic SDK does) gets it at [DONE], while the
    # server still holds the terminator back; the connection is kept once it comes.
    release = Gate()
    with RawServer(held(release)) as server:
        transport = flavour.DrainTransport(deadline=30)
        with flavour.lib.Client(transport=transport) as client:
            assert client.get(server.url).content == BODY
            assert not release.is_set()
            release.set()
            assert wait_for(lambda: transport.stats.connections_kept == 1)
            assert client.get(server.url + "/again").content == BODY
            release.set()
        assert server.facts.connection_count == 1
    stats = transport.stats.snapshot()
    assert stats.terminal_events == 2
    assert stats.missing_terminators == stats.truncated_streams == 0


def test_events_after_the_terminal_event_are_not_delivered(flavour: Flavour) -> None:
    late = b"data: late\n\n"
    scenario = sse(Chunk(EVENTS[0]), Chunk(DONE + late), Chunk(late), Terminator())
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport(mode="inline")
        with flavour.lib.Client(transport=transport) as client:
            assert client.get(server.url).content == EVENTS[0] + DONE
        assert server.facts.connection_count == 1
    stats = transport.stats.snapshot()
    assert stats.connections_kept == 1
    assert stats.bytes_discarded == 2 * len(late)


@pytest.mark.parametrize("end", [pytest.param(Fin(), id="fin"), pytest.param(Reset(), id="rst")])
def test_missing_terminator_after_the_terminal_event_is_a_clean_end(
    flavour: Flavour, mode: str, end: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Seed 001: every event arrived, then the server closed without `0\r\n\r\n`.
    sent = Gate()
    scenario = sse(*(Chunk(e) for e in EVENTS), Chunk(DONE), Signal(sent), end)
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport(mode=mode, deadline=30)
        with caplog.at_level(logging.INFO, logger="httpx_drain"):
            with flavour.lib.Client(transport=transport) as client:
                assert client.get(server.url).content == BODY
        stats = transport.stats.snapshot()
    assert stats.missing_terminators == 1
    assert stats.truncated_streams == 0
    assert any("without ending the body" in r.getMessage() for r in caplog.records)


def test_bare_client_fails_on_a_missing_terminator(flavour: Flavour) -> None:
    # The same server without us: every request fails although every event arrived.
    scenario = sse(*(Chunk(e) for e in EVENTS), Chunk(DONE), Fin())
    with RawServer(scenario) as server, flavour.lib.Client() as client:
        with pytest.raises(flavour.lib.RemoteProtocolError):
            client.get(server.url)


@pytest.mark.parametrize(
    ("tail", "events", "partial"),
    [
        pytest.param((Fin(),), 3, b"", id="between-events"),
        pytest.param(
            (Chunk(b'event: x\ndata: {"cut'), Fin()), 3, b'event: x\ndata: {"cut', id="mid-event"
        ),
    ],
)
def test_truncation_before_the_terminal_event_is_typed(
    flavour: Flavour, tail: tuple[Any, ...], events: int, partial: bytes
) -> None:
    scenario = sse(*(Chunk(e) for e in EVENTS), *tail)
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport()
        with flavour.lib.Client(transport=transport) as client:
            with pytest.raises(flavour.lib.RemoteProtocolError) as caught:
                client.get(server.url)
    error = caught.value
    assert isinstance(error, IncompleteStream)
    assert isinstance(error, flavour.DrainTransport._incomplete_error)
    assert (error.events, error.partial, error.partial_size) == (events, partial, len(partial))
    assert error.request is not None  # the host library's context is kept
    assert "cut" not in str(error)  # no server bytes in the message
    assert isinstance(error.__cause__, flavour.lib.RemoteProtocolError)
    assert transport.stats.truncated_streams == 1


def test_partial_event_is_bounded(flavour: Flavour) -> None:
    scenario = sse(Chunk(b"data: " + b"x" * 100_000), Fin())
    with RawServer(scenario) as server:
        with flavour.lib.Client(transport=flavour.DrainTransport()) as client:
            with pytest.raises(IncompleteStream) as caught:
                client.get(server.url)
    assert caught.value.partial_size == 100_006
    assert len(caught.value.partial) <= 1024


def test_stream_without_a_terminal_event_is_unchanged(no_leaks: None, flavour: Flavour) -> None:
    scenario = sse(*(Chunk(e) for e in EVENTS), Terminator())
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport()
        with flavour.lib.Client(transport=transport) as client:
            for _ in range(2):
                assert client.get(server.url).content == b"".join(EVENTS)
        assert server.facts.connection_count == 1
    stats = transport.stats.snapshot()
    assert stats.drains_started == stats.terminal_events == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"sse": False}, id="sse-off"),
        pytest.param({"terminal": None}, id="no-terminal"),
    ],
)
def test_end_at_terminal_can_be_turned_off(flavour: Flavour, kwargs: dict[str, Any]) -> None:
    late = b"data: late\n\n"
    scenario = sse(Chunk(DONE), Chunk(late), Terminator())
    with RawServer(scenario) as server:
        with flavour.lib.Client(transport=flavour.DrainTransport(**kwargs)) as client:
            assert client.get(server.url).content == DONE + late


def test_other_content_types_pass_untouched(flavour: Flavour) -> None:
    body = DONE + b"data: more\n\n"
    scenario = sse(Chunk(body), Terminator(), headers=(("content-type", "text/plain"),))
    with RawServer(scenario) as server:
        with flavour.lib.Client(transport=flavour.DrainTransport()) as client:
            assert client.get(server.url).content == body


def test_custom_terminal_predicate(flavour: Flavour) -> None:
    def is_end(event: SSEEvent) -> bool:
        return event.event == "end"

    stop = b"event: end\ndata: {}\n\n"
    scenario = sse(Chunk(DONE), Chunk(stop), Chunk(b"data: after\n\n"), Terminator())
    with RawServer(scenario) as server:
        with flavour.lib.Client(transport=flavour.DrainTransport(terminal=is_end)) as client:
            assert client.get(server.url).content == DONE + stop


def test_aligned_events(flavour: Flavour) -> None:
    # A proxy split events across chunks; with align_events each chunk holds whole events.
    stream = b"".join(EVENTS) + b": comment\r\n\r\n" + DONE
    scenario = sse(Split(stream, at=(3, 20, 21, 40, len(stream) - 2)), Terminator())
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport(align_events=True)
        with flavour.lib.Client(transport=transport) as client:
            with client.stream("GET", server.url) as response:
                chunks = list(response.iter_raw())
    assert b"".join(chunks) == stream
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.endswith((b"\n\n", b"\r\n\r\n"))


def test_terminal_event_split_across_chunks(flavour: Flavour) -> None:
    stream = EVENTS[0] + DONE
    scenario = sse(Split(stream, at=(len(EVENTS[0]) + 3, len(stream) - 1)), WaitFor(Gate()))
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport(deadline=0.2)
        with flavour.lib.Client(transport=transport) as client:
            assert client.get(server.url).content == stream


@pytest.mark.anyio
async def test_async_end_at_terminal_and_truncation(flavour: Flavour) -> None:
    release = Gate()
    with RawServer(held(release)) as server:
        transport = flavour.AsyncDrainTransport(deadline=30)
        async with flavour.lib.AsyncClient(transport=transport) as client:
            assert (await client.get(server.url)).content == BODY
            assert not release.is_set()
            release.set()
    with RawServer(sse(Chunk(EVENTS[0]), Chunk(b"data: cu"), Fin())) as server:
        async with flavour.lib.AsyncClient(transport=flavour.AsyncDrainTransport()) as client:
            with pytest.raises(flavour.lib.RemoteProtocolError) as caught:
                await client.get(server.url)
    assert isinstance(caught.value, IncompleteStream)
    assert (caught.value.events, caught.value.partial) == (1, b"data: cu")


@pytest.mark.anyio
async def test_async_aligned_events(flavour: Flavour) -> None:
    stream = b"".join(EVENTS) + DONE
    scenario = sse(Split(stream, at=(5, 30, 31)), Terminator())
    with RawServer(scenario) as server:
        transport = flavour.AsyncDrainTransport(align_events=True)
        async with flavour.lib.AsyncClient(transport=transport) as client:
            async with client.stream("GET", server.url) as response:
                async with aclosing(response.aiter_raw()) as raw:
                    chunks = [c async for c in raw]
    assert b"".join(chunks) == stream
    assert all(c.endswith(b"\n\n") for c in chunks)
