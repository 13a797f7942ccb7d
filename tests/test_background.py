"""Background drains: bounded, owned by the transport, gone when the client is closed."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import ssl
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import trio

from httpx_drain.testing import (
    Chunk,
    Fin,
    Gate,
    HypercornServer,
    Pause,
    Raw,
    RawServer,
    Scenario,
    Signal,
    Terminator,
    WaitFor,
)

from .conftest import Flavour, h11_after_first_chunk, open_fds, wait_for

EVENT = b'data: {"n": 1}\n\n'
DONE = b"data: [DONE]\n\n"


def held(release: Gate) -> Scenario:
    """Events, then the terminator only once the test releases it."""
    return Scenario(steps=(Chunk(EVENT), Chunk(DONE), WaitFor(release), Terminator()))


def stop_at_done(client: Any, url: str, **stream: Any) -> None:
    with client.stream("GET", url, **stream) as response:
        for chunk in response.iter_raw():
            if DONE in chunk:
                break


async def astop_at_done(client: Any, url: str, **stream: Any) -> None:
    async with client.stream("GET", url, **stream) as response:
        async for chunk in response.aiter_raw():
            if DONE in chunk:
                break


def drain_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("httpx-drain")]


def worker_threads() -> list[threading.Thread]:
    """Threads that read a drain (not the watcher, which only looks at parked ones)."""
    return [t for t in drain_threads() if t.name != WATCHER]


WATCHER = "httpx-drain-watcher"


def test_max_pending_bounds_drains_in_flight(no_leaks: None, flavour: Flavour) -> None:
    release = Gate()
    with RawServer(held(release)) as server:
        transport = flavour.DrainTransport(max_pending=2, deadline=30)
        with flavour.lib.Client(transport=transport) as client:
            for _ in range(4):
                stop_at_done(client, server.url)
            # Two drains in flight, parked: nothing to read yet, so no thread reads them.
            assert [t.name for t in drain_threads()] == [WATCHER]
            stats = transport.stats.snapshot()
            assert (stats.drains_started, stats.drains_rejected) == (4, 2)
            release.set()
            assert wait_for(lambda: transport.stats.connections_kept == 2)
        assert server.facts.connection_count == 4
    assert drain_threads() == []


def test_client_close_finishes_pending_drains(no_leaks: None, flavour: Flavour) -> None:
    release = Gate()
    with RawServer(held(release)) as server:
        # Long enough for three requests on a loaded machine, short for the test's wait.
        transport = flavour.DrainTransport(deadline=2.0)
        client = flavour.lib.Client(transport=transport)
        for _ in range(3):
            stop_at_done(client, server.url)
        assert transport.stats.deadline_exceeded == 0
        client.close()  # waits for the three drains, each bounded by its deadline
        assert transport.stats.deadline_exceeded == 3
        assert drain_threads() == []
        release.set()


def test_drains_after_close_are_refused(flavour: Flavour) -> None:
    release = Gate()
    with RawServer(held(release)) as server:
        transport = flavour.DrainTransport(deadline=30)
        with flavour.lib.Client(transport=transport) as client:
            response = client.send(client.build_request("GET", server.url), stream=True)
            transport.close()
            response.close()  # the drain is refused: the connection is closed at once
        assert transport.stats.drains_rejected == 1
        release.set()


def test_close_waits_for_nothing_when_the_terminator_is_buffered(flavour: Flavour) -> None:
    # In the background mode the caller still consumes a terminator already sent, so the
    # next request reuses the connection even though it follows at once.
    go, sent = [Gate() for _ in range(5)], [Gate() for _ in range(5)]
    scenarios = iter(
        Scenario(steps=(Chunk(EVENT), WaitFor(g), Chunk(DONE), Terminator(), Signal(s)))
        for g, s in zip(go, sent, strict=True)
    )
    with RawServer(lambda _r: next(scenarios)) as server:
        transport = flavour.DrainTransport()
        with flavour.lib.Client(transport=transport) as client:
            for g, s in zip(go, sent, strict=True):
                with client.stream("GET", server.url) as response:
                    # Held, not dropped: httpx2 closes the response when the loop over
                    # iter_raw() is finalised, and that must wait until the rest has landed.
                    chunks = response.iter_raw()
                    next(chunks)
                    g.set()
                    assert s.wait(10)  # the rest of the response is sent
                    assert landed(response)  # and in our socket, before we close
            assert transport.stats.drains_buffered == len(sent)  # each ended in close()
        assert server.facts.connection_count == 1


@pytest.mark.parametrize("library", ["asyncio", "trio"])
def test_event_loop_closed_with_drains_pending(flavour: Flavour, library: str) -> None:
    # The client is never closed and the loop ends with drains pending: nothing warns, the
    # drains end within their deadline, and no socket is left open.
    release = Gate()
    fds = open_fds()
    with RawServer(held(release)) as server:
        transports = []

        async def main() -> None:
            transport = flavour.AsyncDrainTransport(deadline=0.3)
            transports.append(transport)
            client = flavour.lib.AsyncClient(transport=transport)
            for _ in range(2):
                await astop_at_done(client, server.url)

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            # Not ours: httpx's and httpcore's generators, abandoned by the consumer (trio).
            warnings.filterwarnings(
                "ignore", "Async generator '(httpx|httpcore)2?[._]", ResourceWarning
            )
            if library == "asyncio":
                asyncio.run(main())
            else:
                trio.run(main)
            gc.collect()
        stats = transports[0].stats.snapshot()
        assert stats.drains_started == 2
        assert stats.deadline_exceeded + stats.drain_errors == 2
        release.set()
    assert open_fds() <= fds


@pytest.mark.anyio
async def test_async_max_pending_and_aclose(flavour: Flavour) -> None:
    release = Gate()
    with RawServer(held(release)) as server:
        transport = flavour.AsyncDrainTransport(max_pending=2, deadline=2.0)  # outlasts 4 requests
        async with flavour.lib.AsyncClient(transport=transport) as client:
            for _ in range(4):
                await astop_at_done(client, server.url)
            assert transport.stats.drains_rejected == 2
        # aclose() waited for both pending drains.
        assert transport.stats.deadline_exceeded == 2
        release.set()


@pytest.mark.anyio
async def test_async_background_keeps_the_connection(flavour: Flavour) -> None:
    sent = Gate()
    release = Gate()
    scenario = Scenario(
        steps=(Chunk(EVENT), Chunk(DONE), Signal(sent), WaitFor(release), Terminator())
    )
    with RawServer(scenario) as server:
        transport = flavour.AsyncDrainTransport(deadline=30)
        async with flavour.lib.AsyncClient(transport=transport) as client:
            await astop_at_done(client, server.url)
            # The server signals after it has sent [DONE], and the client may read the event
            # first: wait for the signal (the server runs in its own thread).
            assert sent.wait(10)
            assert not release.is_set()
            release.set()
            with anyio.fail_after(10):
                while transport.stats.connections_kept == 0:
                    await anyio.sleep(0.002)
            await astop_at_done(client, server.url)
        assert server.facts.connection_count == 1


def _always_due(transport: Any) -> None:
    """Widen the handover's window so far that "due" does not depend on the clock: a new
    connection counts as costing a minute, timed or not."""
    handover = transport._runner._handover
    handover.window = handover.min_window = handover.max_window = 60.0
    handover.connect_cost = lambda origin: 60.0


def _held_each(count: int) -> tuple[list[Gate], Any]:
    """``count`` gates and a scenario factory: response i holds its terminator on gate i."""
    gates = [Gate() for _ in range(count)]
    scenarios = iter(held(g) for g in gates)
    return gates, lambda _request: next(scenarios)


@contextlib.contextmanager
def _taught(flavour: Flavour, url: str, gate: Gate) -> Iterator[tuple[Any, Any]]:
    """A transport (handover window widened, so "due" does not depend on the clock) and its
    client, after one drain of ``url`` (its terminator held on ``gate``) taught the handover
    how long drains wait."""
    transport = flavour.DrainTransport(deadline=30)
    _always_due(transport)
    with flavour.lib.Client(transport=transport) as client:
        stop_at_done(client, url)
        gate.set()
        assert wait_for(lambda: transport.stats.connections_kept == 1)
        yield transport, client


def test_a_request_waits_for_a_connection_whose_drain_is_due(flavour: Flavour) -> None:
    # Response 2's drain is due (the window is widened so that "due" does not depend on the
    # clock): request 3 waits for it instead of opening a second connection, and the test
    # releases the terminator only once request 3 is seen waiting.
    gates, scenarios = _held_each(3)
    with RawServer(scenarios) as server:
        with _taught(flavour, server.url, gates[0]) as (transport, client):
            stop_at_done(client, server.url)

            def release_once_waiting() -> None:
                if wait_for(lambda: transport.stats.handover_waits == 1):
                    gates[1].set()

            releaser = threading.Thread(target=release_once_waiting)
            releaser.start()
            stop_at_done(client, server.url)
            releaser.join()
            gates[2].set()
        assert transport.stats.handover_waits == 1
        assert server.facts.connection_count == 1


def test_no_wait_while_the_pool_has_a_free_connection(flavour: Flavour) -> None:
    gates, scenarios = _held_each(4)
    with RawServer(scenarios) as server:
        with _taught(flavour, server.url, gates[0]) as (transport, client):
            with client.stream("GET", server.url) as whole:  # holds connection 1
                stop_at_done(client, server.url)  # connection 2, its drain pending and due
                gates[1].set()
                whole.read()
            # Connection 1 is free again once its (prompt) terminator is drained.
            assert wait_for(lambda: transport.stats.connections_kept == 2)
            stop_at_done(client, server.url)  # takes connection 1 without waiting
            gates[2].set()
            gates[3].set()
        assert transport.stats.handover_waits == 0
        assert server.facts.connection_count == 2


@pytest.mark.anyio
async def test_async_request_waits_for_a_connection_whose_drain_is_due(
    flavour: Flavour,
) -> None:
    gates, scenarios = _held_each(3)
    with RawServer(scenarios) as server:
        transport = flavour.AsyncDrainTransport(deadline=30)
        _always_due(transport)
        async with flavour.lib.AsyncClient(transport=transport) as client:
            await astop_at_done(client, server.url)
            gates[0].set()
            with anyio.fail_after(10):
                while transport.stats.connections_kept == 0:
                    await anyio.sleep(0.002)
            await astop_at_done(client, server.url)

            async def release_once_waiting() -> None:
                with anyio.fail_after(10):
                    while transport.stats.handover_waits == 0:
                        await anyio.sleep(0.002)
                gates[1].set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(release_once_waiting)
                await astop_at_done(client, server.url)
            gates[2].set()
        assert transport.stats.handover_waits == 1
        assert server.facts.connection_count == 1


def test_no_wait_for_a_drain_of_another_origin(flavour: Flavour) -> None:
    gates, scenarios = _held_each(3)
    with RawServer(scenarios) as server, RawServer(held(gates[2])) as other:
        with _taught(flavour, server.url, gates[0]) as (transport, client):
            stop_at_done(client, server.url)  # due, but for another origin than the next
            with client.stream("GET", other.url) as response:
                assert response.status_code == 200
            gates[1].set()
            gates[2].set()
        assert transport.stats.handover_waits == 0


def test_pool_inspection_is_only_a_hint(flavour: Flavour) -> None:
    from httpx_drain._pool import has_available_connection

    url = flavour.lib.URL("http://127.0.0.1:1/")
    with flavour.lib.HTTPTransport() as transport:
        assert has_available_connection(transport, url) is False  # an empty pool
    assert has_available_connection(object(), url) is None  # not httpcore's: cannot tell

    class OddPool:
        connections = (object(),)  # connections of another shape

    odd = flavour.lib.HTTPTransport()
    real_pool, odd._pool = odd._pool, OddPool()
    assert has_available_connection(odd, url) is None
    real_pool.close()


def test_no_event_loop_to_spawn_into() -> None:
    from httpx_drain._background import _spawner

    assert _spawner() is None  # trio is imported here, but no trio run is active


def _gated_terminators(n: int) -> tuple[list[Gate], list[Gate], Any]:
    """Per request: the terminator waits for its ``release`` gate, then opens ``sent``."""
    release, sent = [Gate() for _ in range(n)], [Gate() for _ in range(n)]
    scenarios = iter(
        Scenario(steps=(Chunk(EVENT), Chunk(DONE), WaitFor(r), Terminator(), Signal(s)))
        for r, s in zip(release, sent, strict=True)
    )
    return release, sent, lambda _request: next(scenarios)


def spy_bare_ends(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each sync drain, in order: whether h11 had taken its bare terminator already."""
    from httpx_drain._streams import SyncDrainStream

    answers: list[bool] = []
    real = SyncDrainStream.drain

    def spy(self: SyncDrainStream, *args: Any, **kwargs: Any) -> Any:
        answers.append(self._end_taken)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SyncDrainStream, "drain", spy)
    return answers


@pytest.mark.parametrize("where", ["h11", "kernel"])
def test_an_end_already_buffered_is_drained_without_a_worker(
    no_leaks: None, flavour: Flavour, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The terminator came in the same write as the last event (h11 holds it), or sits unread
    # in the socket when close() is called: close() ends the body itself, on the caller's
    # thread (handing the bare terminator to h11 directly), and the connection is back in the
    # pool when it returns.
    n = 5
    bare_ends = spy_bare_ends(monkeypatch)
    release, sent, scenario = _gated_terminators(n)
    if where == "h11":
        scenario = Scenario(steps=(Chunk(EVENT), Chunk(DONE, terminator=True)))
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport()
        with flavour.lib.Client(transport=transport) as client:
            for i in range(n):
                with client.stream("GET", server.url) as response:
                    for chunk in response.iter_raw():
                        if DONE in chunk:
                            if where == "kernel":
                                release[i].set()
                                assert sent[i].wait(10)
                                assert landed(response)  # the terminator is in our socket
                            break  # httpx2 closes the response here, httpx on leaving "with"
                stats = transport.stats.snapshot()
                assert (stats.connections_kept, stats.drains_buffered) == (i + 1, i + 1)
                assert drain_threads() == []
        assert server.facts.connection_count == 1
    assert bare_ends == [True] * n


def test_an_end_not_yet_sent_is_parked_on_no_thread(
    no_leaks: None, flavour: Flavour, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing to read at close(): the drain is parked; once the transport goes quiet, its
    # watcher ends it as the terminator lands, and the next request reuses the connection.
    bare_ends = spy_bare_ends(monkeypatch)
    release, _sent, scenario = _gated_terminators(2)
    release[1].set()
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport(deadline=30)
        with flavour.lib.Client(transport=transport) as client:
            stop_at_done(client, server.url)  # returns with the terminator still held
            assert transport.stats.drains_buffered == 0
            assert [t.name for t in drain_threads()] == [WATCHER]
            release[0].set()
            assert wait_for(lambda: transport.stats.connections_kept == 1)
            assert worker_threads() == []
            assert bare_ends == [True]
            stop_at_done(client, server.url)
        assert server.facts.connection_count == 1
    assert drain_threads() == []


def test_a_parked_drain_whose_end_brings_extra_bytes_closes_its_connection(
    no_leaks: None, flavour: Flavour, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The end lands after close(), in the kernel's buffer, followed by bytes of no response:
    # the shortcut for a bare terminator declines (h11 holds what it read), httpcore's reader
    # finds the end and the bytes past it, and the connection is closed, not pooled.
    bare_ends = spy_bare_ends(monkeypatch)
    release, sent = Gate(), Gate()
    steps = (Chunk(EVENT), Chunk(DONE), WaitFor(release), Raw(b"0\r\n\r\ngarbage"), Signal(sent))
    whole = Scenario(steps=(Chunk(EVENT), Chunk(DONE, terminator=True)))
    scenarios = iter([Scenario(steps=steps)])
    with RawServer(lambda _request: next(scenarios, whole)) as server:
        transport = flavour.DrainTransport(deadline=30)
        with flavour.lib.Client(transport=transport) as client:
            stop_at_done(client, server.url)  # parked: nothing has come yet
            release.set()
            assert sent.wait(10)
            assert wait_for(lambda: transport.stats.drain_errors == 1)  # the watcher ended it
            stop_at_done(client, server.url)
        assert server.facts.connection_count == 2
    assert bare_ends[0] is False
    assert transport.stats.connections_kept == 1  # the second response's


@pytest.mark.parametrize("ends", [1, 2])
def test_the_next_request_ends_the_parked_drains_whose_end_has_landed(
    flavour: Flavour, ends: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The transport is busy (the watcher leaves parked drains to the requests): the request
    # that follows ends the drains whose ends have landed on its own thread, before it needs
    # a connection, and takes one of those connections without searching the pool for a free
    # one (a pass of method calls over every connection), even while another drain of its
    # origin is still pending.
    from httpx_drain import _background

    searched: list[Any] = []
    search = _background.has_available_connection

    def spy(*args: Any) -> bool | None:
        searched.append(args)
        return search(*args)

    monkeypatch.setattr(_background, "has_available_connection", spy)
    release, sent, scenario = _gated_terminators(3)
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport(deadline=30)
        runner = transport._runner
        # Busy from the start: a watcher that once saw the transport quiet (a slow request
        # on a loaded machine) could be in a look of its own when the terminators land.
        with flavour.lib.Client(transport=transport) as client, _busy(runner):
            stop_at_done(client, server.url)
            stop_at_done(client, server.url)  # the first is not done: a second connection
            socks = [e.sock for e in runner._parked][:ends]
            for i in range(ends):
                release[i].set()
                assert sent[i].wait(10)
            assert wait_for(lambda: all(_readable_now(s) for s in socks))
            assert transport.stats.connections_kept == 0  # nobody looked yet
            ended_by = []
            original = runner._end

            def end(entry: Any) -> bool:
                ended_by.append(threading.current_thread())
                return original(entry)

            runner._end = end
            searched.clear()
            stop_at_done(client, server.url)
            assert ended_by == [threading.current_thread()] * ends
            assert searched == []
            assert transport.stats.connections_kept == ends
            for gate in release:
                gate.set()
            assert worker_threads() == []
        assert server.facts.connection_count == 2


def landed(response: Any) -> bool:
    """Wait until bytes the server sent are in the response's socket: on a loaded machine
    the kernel may deliver them a moment after the server's ``sendall()`` returned."""
    sock = response.extensions["network_stream"].get_extra_info("socket")
    return wait_for(lambda: _readable_now(sock))


def _readable_now(sock: Any) -> bool:
    import select

    return bool(select.select([sock], [], [], 0)[0])


@contextlib.contextmanager
def _busy(runner: Any) -> Iterator[None]:
    """Make the transport look busy to its watcher (a request a moment ago, for ever)."""
    cls = type(runner)
    original = cls.__dict__.get("_last_request")

    class Busy:
        def __get__(self, obj: Any, owner: Any = None) -> float:
            return time.monotonic()

        def __set__(self, obj: Any, value: float) -> None:
            pass

    cls._last_request = Busy()  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if original is None:
            del cls._last_request
        else:  # pragma: no cover
            cls._last_request = original


def test_a_parked_drain_whose_end_never_comes_ends_at_its_deadline(
    no_leaks: None, flavour: Flavour
) -> None:
    # No request comes and no byte: the watcher ends it at its deadline and closes the
    # connection; close() has nothing left to wait for.
    release = Gate()
    with RawServer(held(release)) as server:
        transport = flavour.DrainTransport(deadline=0.2)
        with flavour.lib.Client(transport=transport) as client:
            stop_at_done(client, server.url)
            (sock,) = [entry.sock for entry in transport._runner._parked]
            assert wait_for(lambda: transport.stats.deadline_exceeded == 1)
            assert sock.fileno() == -1  # the connection was closed
            assert worker_threads() == []
            started = time.monotonic()
        assert time.monotonic() - started < 2  # nothing was pending
        release.set()
    assert drain_threads() == []


def test_the_watcher_ends_when_nothing_is_parked(
    monkeypatch: pytest.MonkeyPatch, flavour: Flavour
) -> None:
    from httpx_drain import _background

    monkeypatch.setattr(_background, "_WATCHER_IDLE", 0.05)
    release, _sent, scenario = _gated_terminators(2)
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport(deadline=30)
        with flavour.lib.Client(transport=transport) as client:
            for gate in release:
                stop_at_done(client, server.url)
                assert [t.name for t in drain_threads()] == [WATCHER]
                gate.set()
                # The drain ends, then the watcher (nothing parked for a while) too.
                assert wait_for(lambda: drain_threads() == [])
            assert transport.stats.connections_kept == 2
        assert server.facts.connection_count == 1


def test_requests_from_many_threads_share_parked_drains(no_leaks: None, flavour: Flavour) -> None:
    # Four threads, each sending streams whose terminator trails [DONE]: each drain is ended
    # by exactly one thread (a request's, a handover's or the watcher's), every connection is
    # reused, and the counters add up.
    per_thread, threads = 15, 4
    scenario = Scenario(steps=(Chunk(EVENT), Chunk(DONE), Pause(0.01), Terminator()))
    errors: list[BaseException] = []
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport(deadline=30)
        with flavour.lib.Client(transport=transport) as client:

            def run() -> None:
                try:
                    for _ in range(per_thread):
                        stop_at_done(client, server.url)
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)

            pool = [threading.Thread(target=run) for _ in range(threads)]
            for thread in pool:
                thread.start()
            for thread in pool:
                thread.join()
        assert errors == []
        stats = transport.stats.snapshot()
        total = per_thread * threads
        assert stats.drains_started == total
        assert stats.connections_kept == total
        # Each stream's connection went back to the pool: far fewer connections than streams.
        assert server.facts.connection_count < total / 2


def stop_at_done_once_the_tail_arrived(
    client: Any, url: str, release: Gate, sent: Gate | None = None
) -> None:
    """Stream to ``data: [DONE]``, let the server send the rest, and close once it is in our
    socket (httpx2 closes the response on leaving the loop, httpx on leaving ``with``)."""
    with client.stream("GET", url) as response:
        network_stream = response.extensions["network_stream"]
        for chunk in response.iter_raw():
            if DONE in chunk:
                release.set()
                assert sent is None or sent.wait(10)
                assert wait_for(lambda: network_stream.get_extra_info("is_readable"))
                break


def test_a_server_that_closed_after_the_last_event_is_not_waited_for(flavour: Flavour) -> None:
    # The FIN is in our socket (or already seen by h11): the drain ends at once, without a
    # worker, as a missing terminator after the terminal event.
    release = Gate()
    scenario = Scenario(steps=(Chunk(EVENT), Chunk(DONE), WaitFor(release), Fin()))
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport()
        with flavour.lib.Client(transport=transport) as client:
            stop_at_done_once_the_tail_arrived(client, server.url, release)
            stats = transport.stats.snapshot()
            assert (stats.drains_buffered, stats.missing_terminators) == (1, 1)
            assert drain_threads() == []


def test_over_tls_bytes_arriving_are_read_by_the_worker_before_close_returns(
    flavour: Flavour,
) -> None:
    # A TLS record cannot be peeked at, so whether it ends the body is unknown: the worker
    # reads it while close() waits, and the connection is back in the pool when it returns.
    release, sent = Gate(), Gate()
    scenario = Scenario(
        steps=(Chunk(EVENT), Chunk(DONE), WaitFor(release), Terminator(), Signal(sent))
    )
    with HypercornServer(scenario, tls=True) as server:
        # TLS 1.2: TLS 1.3 servers may send session tickets at any time, which would make the
        # socket readable before the terminator's record is there.
        context = server.ssl_context
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        transport = flavour.DrainTransport(verify=context)
        with flavour.lib.Client(transport=transport) as client:
            stop_at_done_once_the_tail_arrived(client, server.url, release, sent)
            stats = transport.stats.snapshot()
            assert (stats.connections_kept, stats.drains_buffered) == (1, 0)


def test_a_content_length_remainder_already_here_is_drained_in_close(flavour: Flavour) -> None:
    # Not only event streams: the rest of a Content-Length body in our buffers is read by
    # close() itself, and the connection is reused.
    release = [Gate() for _ in range(3)]
    scenarios = iter(
        Scenario(
            steps=(Chunk(b"a" * 100), WaitFor(r), Chunk(b"b" * 100)),
            headers=(("content-type", "application/octet-stream"),),
            framing="content-length",
        )
        for r in release
    )
    with RawServer(lambda _request: next(scenarios)) as server:
        transport = flavour.DrainTransport()
        with flavour.lib.Client(transport=transport) as client:
            for gate in release:
                with client.stream("GET", server.url) as response:
                    readable = response.extensions["network_stream"].get_extra_info
                    chunks = response.iter_raw()  # kept: httpx2 closes when it is dropped
                    assert next(chunks) == b"a" * 100
                    gate.set()
                    assert wait_for(lambda f=readable: f("is_readable"))
            stats = transport.stats.snapshot()
            assert (stats.connections_kept, stats.drains_buffered) == (3, 3)
            assert drain_threads() == []
        assert server.facts.connection_count == 1


def assert_learned_a_connect(transport: Any, origin: str) -> None:
    """The transport's handover has timed a connection to ``origin`` (a plausible one)."""
    cost = transport._runner._handover._connects.get(origin)
    assert cost is not None
    assert 0 < cost < 30


def _not_due(transport: Any) -> None:
    # No drain is ever due (a window of 0, and nothing learned widens it past 0): a request
    # that finds no free connection opens one, without a handover wait.
    handover = transport._runner._handover
    handover.window = handover.max_window = 0.0


def test_a_connection_opened_while_a_drain_waits_teaches_its_cost(flavour: Flavour) -> None:
    gates, scenarios = _held_each(2)
    seen: list[str] = []
    with RawServer(scenarios) as server:
        transport = flavour.DrainTransport(deadline=30)
        _not_due(transport)
        with flavour.lib.Client(transport=transport) as client:
            stop_at_done(client, server.url)  # its drain holds connection 1
            trace = {"trace": lambda name, info: seen.append(name)}
            stop_at_done(client, server.url, extensions=trace)
            for gate in gates:
                gate.set()
        assert server.facts.connection_count == 2
    assert_learned_a_connect(transport, server.url)
    # The caller's own trace still saw every event, the connect and the body's included.
    assert "connection.connect_tcp.complete" in seen
    assert "http11.receive_response_body.started" in seen
    assert transport.stats.handover_waits == 0


def test_a_transports_first_connection_teaches_and_a_reused_one_nothing(
    flavour: Flavour,
) -> None:
    # The first connection to an origin is timed (with nothing draining yet), so that a
    # request that could wait for a drain knows what the alternative costs; after that, only
    # connections opened while drains are pending are, and a reused connection never.
    gates, scenarios = _held_each(3)
    with RawServer(scenarios) as server:
        transport = flavour.DrainTransport(deadline=30)
        connects = transport._runner._handover._connects
        with flavour.lib.Client(transport=transport) as client:
            with client.stream("GET", server.url) as whole:  # holds connection 1
                first = connects.get(server.url)
                assert first is not None
                stop_at_done(client, server.url)  # connection 2, opened with nothing draining
                gates[0].set()
                whole.read()  # to [DONE]: the stream ends there, its terminator is drained
            assert wait_for(lambda: transport.stats.connections_kept == 1)
            stop_at_done(client, server.url)  # a drain is pending, but connection 1 is free
            gates[1].set()
            gates[2].set()
        assert server.facts.connection_count == 2
    assert connects.get(server.url) == first


@pytest.mark.anyio
async def test_async_connection_costs_are_learned(flavour: Flavour) -> None:
    gates, scenarios = _held_each(2)
    seen: list[str] = []

    async def trace(name: str, info: Any) -> None:
        seen.append(name)

    with RawServer(scenarios) as server:
        transport = flavour.AsyncDrainTransport(deadline=30)
        _not_due(transport)
        async with flavour.lib.AsyncClient(transport=transport) as client:
            await astop_at_done(client, server.url)
            await astop_at_done(client, server.url, extensions={"trace": trace})
            for gate in gates:
                gate.set()
        assert server.facts.connection_count == 2
    assert_learned_a_connect(transport, server.url)
    assert "connection.connect_tcp.complete" in seen


def test_pool_inspection_remembers_few_origins(
    flavour: Flavour, monkeypatch: pytest.MonkeyPatch
) -> None:
    from httpx_drain import _pool

    monkeypatch.setattr(_pool, "_MAX_ORIGINS", 2)
    monkeypatch.setattr(_pool, "_origins", {})
    with flavour.lib.HTTPTransport() as transport:
        for port in range(1, 6):
            url = flavour.lib.URL(f"http://127.0.0.1:{port}/")
            assert _pool.has_available_connection(transport, url) is False
            assert len(_pool._origins) <= 2


def test_connect_timing_leaves_the_callers_extensions_alone(flavour: Flavour) -> None:
    gates, scenarios = _held_each(2)
    shared: dict[str, Any] = {"timeout": {"connect": 10, "read": 10, "write": 10, "pool": 10}}
    with RawServer(scenarios) as server:
        transport = flavour.DrainTransport(deadline=30)
        _not_due(transport)
        with flavour.lib.Client(transport=transport) as client:
            stop_at_done(client, server.url)
            request = client.build_request("GET", server.url, extensions=shared)
            own = request.extensions
            response = client.send(request, stream=True)
            response.close()
            for gate in gates:
                gate.set()
        assert server.facts.connection_count == 2
    assert transport._runner._handover._connects.get(server.url) is not None
    assert request.extensions is own
    assert set(own) == set(shared) == {"timeout"}


def test_one_request_waits_for_each_due_drain(flavour: Flavour) -> None:
    # A burst of requests that find no free connection: the first waits for the due drain,
    # the next ones open connections rather than all wait for the one connection it frees.
    from httpx_drain._background import _handover, _Waiting
    from httpx_drain._policy import Handover

    url = flavour.lib.URL("http://127.0.0.1:1/")
    origin = "http://127.0.0.1:1"
    handover = Handover()
    handover.observe(origin, 0.05)  # this origin's drains wait 50 ms for their end
    waiting = _Waiting()
    due, later = threading.Event(), threading.Event()
    waiting.add(origin, due, time.monotonic() - 0.049)  # due within the window
    with flavour.lib.HTTPTransport() as transport:  # an empty pool: no free connection
        first = _handover(waiting, url, transport, handover)
        assert first == (origin, due, handover.window)
        assert _handover(waiting, url, transport, handover) == (origin, None, 0.0)
        # Not due (its wait "began" a minute ahead, so that no stall of this test makes it due).
        waiting.add(origin, later, time.monotonic() + 60)
        assert _handover(waiting, url, transport, handover) == (origin, later, 0.0)
        waiting.unclaim(due)  # the first request stopped waiting
        assert _handover(waiting, url, transport, handover) == (origin, due, handover.window)
        assert not waiting.claim(due)  # ... and the one after it claimed it again


def test_a_drain_claimed_between_look_and_claim_is_not_waited_for(flavour: Flavour) -> None:
    from httpx_drain._background import _handover, _Waiting
    from httpx_drain._policy import Handover

    class Racy(_Waiting):
        def oldest(self, url: Any) -> tuple[str, Any, float] | None:
            found = super().oldest(url)
            if found is not None and found[1] is not None:
                self.claim(found[1])  # another thread's request, a moment faster
            return found

    origin = "http://127.0.0.1:1"
    handover = Handover()
    handover.observe(origin, 0.0)  # due at once
    waiting = Racy()
    due = threading.Event()
    waiting.add(origin, due, time.monotonic())
    with flavour.lib.HTTPTransport() as transport:
        url = flavour.lib.URL(f"{origin}/")
        assert _handover(waiting, url, transport, handover) == (origin, due, 0.0)


def test_a_parked_drain_whose_socket_was_closed_counts_as_readable() -> None:
    # Its connection was closed under it (the pool closed): the look reports it at once, so
    # that ending it finds out what happened, and leaves the others' "not yet" time.
    import socket

    from httpx_drain._background import _Parked, _readable

    def parked(sock: socket.socket) -> _Parked:
        entry = object.__new__(_Parked)
        entry.sock, entry.unseen = sock, 0.0
        return entry

    a, b = socket.socketpair()
    closed = socket.socket()
    closed.close()
    quiet, gone = parked(a), parked(closed)
    try:
        started = time.monotonic()
        assert _readable([quiet, gone], 30.0) == [gone]  # no wait for the quiet one
        assert time.monotonic() - started < 10
        assert quiet.unseen >= started
        b.send(b"x")
        assert _readable([quiet], 10.0) == [quiet]
    finally:
        a.close()
        b.close()


def test_a_look_brackets_when_each_parked_drain_saw_its_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A drain ends at the midpoint of its last miss and the look that saw its bytes: that is
    # what the handover expects of the next drain. A look with no wait that sees the bytes
    # must leave the last miss alone (taking its own time instead made every drain look a
    # request's interval later than it was, and the handover never waited on loopback).
    import socket

    from httpx_drain import _background as background
    from httpx_drain._background import _Parked, _readable

    def parked(sock: socket.socket) -> _Parked:
        entry = object.__new__(_Parked)
        entry.sock, entry.unseen = sock, 0.0
        return entry

    a, b = socket.socketpair()
    c, d = socket.socketpair()
    landed, quiet = parked(a), parked(c)
    try:
        b.send(b"x")
        assert wait_for(lambda: _readable_now(a))
        before = time.monotonic()
        assert _readable([landed, quiet], 0.0) == [landed]
        assert landed.unseen == 0.0  # the previous miss stands
        assert quiet.unseen >= before  # missed now
        missed = quiet.unseen
        assert _readable([quiet], 0.01) == []
        assert quiet.unseen > missed  # a look that waited in vain is a miss too

        def lands_during_the_wait(by_fd: Any, timeout: float) -> Any:
            if timeout:
                sent.append(time.monotonic())
                d.send(b"x")
            return look(by_fd, timeout)

        sent: list[float] = []
        look = background._look
        monkeypatch.setattr(background, "_look", lands_during_the_wait)
        assert _readable([quiet], 10.0) == [quiet]
        assert quiet.unseen >= sent[0]  # seen during the wait: it landed just now
        missed = landed.unseen
        assert _readable([landed], 10.0) == [landed]  # there at once: as with no wait
        assert landed.unseen == missed
    finally:
        for sock in (a, b, c, d):
            sock.close()


@pytest.mark.parametrize(
    ("consumed", "buffered", "expected"),
    [
        (b"", b"\r\n", False),  # the CRLF that ends the last chunk: the end is still to come
        (b"", b"\r", False),  # part of it
        (b"", b"\r\n0\r\n\r\n", True),  # the terminator
        (b"\r\n", b"0\r\n\r\n", True),  # ... once h11 has consumed the CRLF
        (b"\r", b"\n0\r\n\r\n", True),  # ... or part of it
        (b"", b"\r\n0\r\n", False),  # the last chunk, its empty trailer to come
        (b"", b"\r\n0;x=1\r\n\r\n", True),  # a chunk extension (h11's reader decides)
        (b"", b"\r\n0\r\nx-t: 1\r\n\r\n", True),  # a trailer
        (b"", b"\r\n0\r\nx-t: 1\r\n", False),  # part of one
        (b"", b"\r\nzz\r\n", True),  # bytes h11 rejects: a drain fails at once, with no wait
        (b"", b"\n\r0\r\n\r\n", True),  # a malformed chunk footer, rejected too
    ],
)
def test_what_h11_holds_decides_whether_the_end_is_buffered(
    consumed: bytes, buffered: bytes, expected: bool
) -> None:
    import types

    from httpx_drain._h11 import end_is_buffered

    conn = h11_after_first_chunk(consumed)
    conn.receive_data(buffered)
    inner = types.SimpleNamespace(
        _httpcore_stream=types.SimpleNamespace(
            _stream=types.SimpleNamespace(_connection=types.SimpleNamespace(_h11_state=conn))
        )
    )
    assert end_is_buffered(inner) is expected


def _h11_inner(conn: Any) -> Any:
    """An inner stream as httpx's wraps httpcore's, around the h11 connection ``conn``."""
    import types

    return types.SimpleNamespace(
        _httpcore_stream=types.SimpleNamespace(
            _stream=types.SimpleNamespace(_connection=types.SimpleNamespace(_h11_state=conn))
        )
    )


@pytest.mark.parametrize(
    ("consumed", "buffered", "unread", "taken"),
    [
        (b"", b"\r\n0\r\n\r\n", b"", True),  # all in h11's buffer
        (b"\r\n", b"", b"0\r\n\r\n", True),  # all in the kernel's
        (b"", b"\r", b"\n0\r\n\r\n", True),  # split between them
        (b"", b"", b"\r\n0\r\nx-t: 1\r\n\r\n", False),  # a trailer: h11's reader decides
        (b"", b"", b"\r\n0\r\n\r\nHTTP/1.1", False),  # bytes past the end
        (b"", b"", b"\r\n0\r\n", False),  # part of the terminator
        (b"", b"", b"\r\n5\r\nhello", False),  # another chunk
        (b"", b"", b"\r\n2\r\nxy\r\n", False),  # one as long as the end
    ],
)
def test_a_bare_terminator_goes_to_h11_directly(
    consumed: bytes, buffered: bytes, unread: bytes, taken: bool
) -> None:
    import socket
    import types

    import h11

    from httpx_drain._h11 import consume_bare_end, pull_unread

    conn = h11_after_first_chunk(consumed)
    if buffered:  # (b"" would tell h11 the connection closed)
        conn.receive_data(buffered)
    a, b = socket.socketpair()
    try:
        b.sendall(unread)
        a.settimeout(600)  # as httpcore leaves it: recv() must not wait (the bytes are there)
        extra = {"socket": a, "ssl_object": None}
        network_stream = types.SimpleNamespace(get_extra_info=extra.get)
        inner = _h11_inner(conn)
        if unread:  # as tail() does, having found the socket readable
            assert pull_unread(inner, network_stream) is True
        assert consume_bare_end(inner) is taken
        if taken:
            assert conn.their_state is h11.DONE
            assert conn.trailing_data == (b"", False)
        else:
            # Nothing is lost: h11 holds every byte, and its own reader goes on from there.
            assert conn.trailing_data[0] == buffered + unread
            events = []
            while (event := conn.next_event()) not in (h11.NEED_DATA, h11.PAUSED):
                events.append(type(event).__name__)
            ends = "x-t" in unread.decode() or unread.endswith(b"HTTP/1.1")
            assert ("EndOfMessage" in events) is ends
        a.setblocking(False)
        with pytest.raises(BlockingIOError):
            a.recv(1)  # and the socket holds nothing more
    finally:
        a.close()
        b.close()


def test_only_a_plain_socket_is_read_into_h11() -> None:
    # TLS records cannot be read apart from the TLS layer, a socket h11 knows closed holds
    # nothing more, and a failed read is left for httpcore's reader to meet: no bytes move.
    import socket
    import types

    from httpx_drain._h11 import consume_bare_end, pull_unread

    a, b = socket.socketpair()
    try:
        b.sendall(b"0\r\n\r\n")
        tls = types.SimpleNamespace(get_extra_info={"socket": a, "ssl_object": object()}.get)
        plain = types.SimpleNamespace(get_extra_info={"socket": a, "ssl_object": None}.get)
        conn = h11_after_first_chunk()
        conn.receive_data(b"\r\n")
        assert pull_unread(_h11_inner(conn), tls) is False
        assert pull_unread(object(), plain) is False  # not httpcore's stream
        assert pull_unread(_h11_inner(conn), None) is False
        assert consume_bare_end(_h11_inner(conn)) is False  # h11 holds only the CRLF
        assert consume_bare_end(object()) is False
        assert conn.trailing_data == (b"\r\n", False)
        closed = h11_after_first_chunk()
        closed.receive_data(b"")
        assert pull_unread(_h11_inner(closed), plain) is False
        assert a.recv(16, socket.MSG_PEEK) == b"0\r\n\r\n"  # all still in the socket
        a.close()
        assert pull_unread(_h11_inner(conn), plain) is False  # recv() fails: nothing moves
        assert conn.trailing_data == (b"\r\n", False)
    finally:
        a.close()
        b.close()


def test_parked_drains_are_looked_at_without_poll(
    monkeypatch: pytest.MonkeyPatch, flavour: Flavour
) -> None:
    # Where select.poll does not exist (Windows; gevent removes it), select.select does.
    import select

    monkeypatch.delattr(select, "poll")
    release, _sent, scenario = _gated_terminators(2)
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport(deadline=30)
        with flavour.lib.Client(transport=transport) as client:
            for kept, gate in enumerate(release, 1):
                stop_at_done(client, server.url)  # parked: the terminator is held
                gate.set()
                assert wait_for(lambda k=kept: transport.stats.connections_kept == k)
        assert server.facts.connection_count == 1


def test_a_look_that_fails_counts_every_parked_drain_as_readable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import select
    import socket

    from httpx_drain._background import _Parked, _readable

    a, b = socket.socketpair()
    entry = object.__new__(_Parked)
    entry.sock, entry.unseen = a, 0.0

    def broken(*_args: Any) -> Any:
        raise ValueError("filedescriptor out of range in select()")

    monkeypatch.delattr(select, "poll")
    monkeypatch.setattr(select, "select", broken)
    try:
        assert _readable([entry], 10.0) == [entry]
    finally:
        a.close()
        b.close()


def test_a_look_that_fails_never_holds_up_the_request(
    no_leaks: None, flavour: Flavour, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every parked drain then counts as readable, this one with nothing to read yet: ending
    # it must not wait on its socket (with httpcore's read timeout set on it, 10 minutes
    # here, a plain recv() would) but hand it to a worker, which waits within its deadline.
    from httpx_drain import _background

    def broken(*_args: Any) -> Any:
        raise OSError("poll failed")

    release = Gate()
    with RawServer(_held_then_whole(release)) as server:
        transport = flavour.DrainTransport(deadline=30)
        with flavour.lib.Client(transport=transport, timeout=600) as client:
            stop_at_done(client, server.url)  # parked: the terminator is held
            monkeypatch.setattr(_background, "_look", broken)
            stop_at_done(client, server.url)  # its look failed: the drain went to a worker
            assert [t.name for t in worker_threads()] != []
            release.set()
            assert wait_for(lambda: transport.stats.connections_kept == 2)
        assert server.facts.connection_count == 2


def _held_then_whole(release: Gate) -> Any:
    """The first request's terminator waits for ``release``; every later response is whole."""
    scenarios = iter([held(release)])
    whole = Scenario(steps=(Chunk(EVENT), Chunk(DONE, terminator=True)))
    return lambda _request: next(scenarios, whole)


def test_a_runner_after_fork_closes_the_parents_drains_unread(
    no_leaks: None, flavour: Flavour
) -> None:
    # What the child of a fork() runs (called here in one process, where coverage sees it):
    # the parked drain's socket is the parent's too, so the child must not read it, nor wait
    # for a watcher thread it does not have.
    release = Gate()
    with RawServer(_held_then_whole(release)) as server:
        transport = flavour.DrainTransport(deadline=30)
        runner = transport._runner
        # A watcher that does not run, as in a child, where the parent's threads are gone.
        runner._watcher = threading.Thread(target=lambda: None)
        with flavour.lib.Client(transport=transport) as client:
            stop_at_done(client, server.url)
            [entry] = runner._parked
            runner._lock.acquire()  # held by the parent's watcher at the fork: for ever
            transport.stats._lock.acquire()
            runner._after_fork()
            transport.stats._after_fork()
            assert (runner._parked, runner._live, runner._watcher) == ({}, set(), None)
            stop_at_done(client, server.url)  # the inherited connection is closed, unread
            assert entry.sock.fileno() == -1
            assert transport.stats.connections_kept == 1  # the second response's, not the first
            release.set()
        assert server.facts.connection_count == 2
    assert drain_threads() == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX")
@pytest.mark.filterwarnings("ignore:This process .* fork:DeprecationWarning")  # 3.12+
def test_a_child_of_fork_leaves_the_parents_drain_alone(flavour: Flavour) -> None:
    # The child uses the client and closes it (it used to wait for ever for a drain only
    # the parent's watcher could end); the parent's drain still gets its terminator, which
    # the child never read, and keeps its connection.
    release = Gate()
    with RawServer(_held_then_whole(release)) as server:
        transport = flavour.DrainTransport(deadline=30)
        with flavour.lib.Client(transport=transport) as client:
            stop_at_done(client, server.url)
            assert [t.name for t in drain_threads()] == [WATCHER]
            with transport._runner._lock:  # held at the fork, as the watcher may hold it
                pid = os.fork()
            if pid == 0:  # pragma: no cover - the child: coverage does not follow it
                code = 1
                try:
                    stop_at_done(client, server.url)
                    client.close()
                    code = 0 if drain_threads() == [] else 2
                finally:
                    os._exit(code)
            assert _exit_code(pid, timeout=30) == 0
            release.set()
            assert wait_for(lambda: transport.stats.connections_kept == 1)
            stop_at_done(client, server.url)
        assert server.facts.connection_count == 2  # the parent's, reused, and the child's


def _exit_code(pid: int, timeout: float) -> int | None:
    """The child's exit code, or None (and the child killed) if it has not exited in time."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def test_after_fork_hooks_run_for_every_live_object_and_survive_a_failing_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import weakref

    from httpx_drain import _fork

    calls: list[str] = []

    class Hook:
        def __init__(self, name: str) -> None:
            self.name = name

        def _after_fork(self) -> None:
            calls.append(self.name)
            if self.name == "failing":
                raise RuntimeError("a hook that fails")

    monkeypatch.setattr(_fork, "_objects", weakref.WeakSet())
    hooks = [Hook("failing"), Hook("other")]
    for hook in hooks:
        _fork.register(hook)
    _fork.register(Hook("gone"))  # collected at once: never called
    gc.collect()
    _fork._in_child()
    assert sorted(calls) == ["failing", "other"]


def _chunked_body(flavour: Flavour, body: Any) -> Any:
    """A mock transport whose one response is ``body``, chunked over HTTP/1.1: no socket."""
    return flavour.lib.MockTransport(
        lambda _request: flavour.lib.Response(
            200,
            headers={"content-type": "application/octet-stream", "transfer-encoding": "chunked"},
            stream=body,
            extensions={"http_version": b"HTTP/1.1"},
        )
    )


def test_reading_on_after_closing_takes_nothing_from_the_drain(flavour: Flavour) -> None:
    # A consumer that closes the stream itself and then reads on gets end-of-body at once:
    # the rest belongs to the drain, which a worker is running on the same inner iterator.
    started, go = threading.Event(), threading.Event()

    class Body(flavour.lib.SyncByteStream):  # type: ignore[misc,name-defined]
        def __iter__(self) -> Iterator[bytes]:
            yield b"first"
            started.set()
            go.wait(10)
            yield b"rest" * 10

    transport = flavour.DrainTransport(_chunked_body(flavour, Body()), deadline=30)
    with flavour.lib.Client(transport=transport) as client:
        response = client.send(client.build_request("GET", "http://test/"), stream=True)
        chunks = response.iter_raw()
        assert next(chunks) == b"first"
        response.stream.close()  # no socket to park on: a worker drains the rest
        assert started.wait(10)  # and is reading the body now
        assert list(chunks) == []
        go.set()
        assert wait_for(lambda: transport.stats.connections_kept == 1)
        assert transport.stats.bytes_discarded == 40


@pytest.mark.anyio
async def test_async_reading_on_after_closing_takes_nothing_from_the_drain(
    flavour: Flavour,
) -> None:
    started, go = anyio.Event(), anyio.Event()

    class Body(flavour.lib.AsyncByteStream):  # type: ignore[misc,name-defined]
        async def __aiter__(self) -> Any:
            yield b"first"
            started.set()
            await go.wait()
            yield b"rest" * 10

    transport = flavour.AsyncDrainTransport(_chunked_body(flavour, Body()), deadline=30)
    async with flavour.lib.AsyncClient(transport=transport) as client:
        response = await client.send(client.build_request("GET", "http://test/"), stream=True)
        async with contextlib.aclosing(response.aiter_raw()) as chunks:
            assert await chunks.__anext__() == b"first"
            await response.stream.aclose()  # a task drains the rest
            with anyio.fail_after(10):
                await started.wait()  # and is reading the body now
            assert [chunk async for chunk in chunks] == []
        go.set()
        with anyio.fail_after(10):
            while transport.stats.connections_kept < 1:
                await anyio.sleep(0.002)
        assert transport.stats.bytes_discarded == 40
