"""Every misbehaviour the replay server can produce x {inline, background} x {sync, asyncio,
trio} x {httpx, httpx2}.

For each fault: ``close()`` returns within the deadline plus a margin and never raises, every
event before the fault reaches the consumer intact, the drain ends as it must, and the counters
add up once the drains are done. Deadlines are small (0.05-0.2 s) where a drain must wait
them out, so the file stays fast; nothing is asserted about timing but those upper bounds.
"""

from __future__ import annotations

import gc
import itertools
import threading
import time
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from httpx_drain import IncompleteStream
from httpx_drain.testing import (
    Chunk,
    Endless,
    Fin,
    Gate,
    Pause,
    Raw,
    RawServer,
    RequestInfo,
    Reset,
    Scenario,
    Step,
    Terminator,
    Trickle,
    WaitFor,
)

from .conftest import Flavour, open_fds, tasks, wait_for

EVENT = b'data: {"n": 1}\n\n'
DONE = b"data: [DONE]\n\n"
#: ``close()`` returns within its deadline plus this; generous, for a loaded machine.
MARGIN = 2.0
#: The deadline of faults that make a drain wait it out.
SHORT = 0.2
#: Generous: for faults whose drain must not run out of time.
LONG = 10.0
MAX_BYTES = 64 * 1024
# Every server here is plain HTTP: the transports get verify=False, which spares loading the
# CA bundle for each of them (tens of milliseconds).

RUNTIMES = ["sync", "asyncio", "trio"]
MODES = ["inline", "background"]

#: The counters a finished drain adds exactly one to.
OUTCOMES = ("connections_kept", "deadline_exceeded", "max_bytes_exceeded", "drain_errors")


@dataclass(frozen=True)
class Fault:
    """One misbehaviour: the response's steps, what the consumer sees, how the drain ends."""

    id: str
    #: The steps of the response; ``never`` is a gate the test opens only at the end.
    steps: Callable[[Gate], tuple[Step, ...]]
    #: The counter the drain adds one to, ``"drains_skipped"`` when there is nothing to drain
    #: (the consumer's read already failed), or ``"any"``.
    outcome: str
    #: The body bytes the consumer must receive, joined.
    delivered: bytes = EVENT + DONE
    #: The consumer sees an ``IncompleteStreamError`` (an event stream cut off).
    truncated: bool = False
    deadline: float = SHORT
    #: The consumer stops after this many chunks instead of at ``[DONE]``.
    stop_after: int | None = None
    framing: str = "chunked"
    keep_alive_timeout: float | None = None
    #: A second request after the drain: ``"reuse"`` the kept connection, or find it closed
    #: by the server (``"fresh"``, keep-alive timeout) and still succeed.
    follow_up: str | None = None
    headers: tuple[tuple[str, str], ...] = field(default=(("content-type", "text/event-stream"),))

    def scenario(self, never: Gate) -> Scenario:
        return Scenario(
            steps=self.steps(never),
            headers=self.headers,
            framing=self.framing,  # type: ignore[arg-type]
            keep_alive_timeout=self.keep_alive_timeout,
        )


HUGE_LINE = b"1" * 1_000_000 + b"\r\n"
MALFORMED = b"zz\r\nhello\r\n"

FAULTS = [
    Fault(
        "terminator-within-deadline",
        lambda never: (Chunk(EVENT), Chunk(DONE), Pause(0.02), Terminator()),
        "connections_kept",
        deadline=LONG,
        follow_up="reuse",
    ),
    Fault(
        "terminator-beyond-deadline",
        lambda never: (Chunk(EVENT), Chunk(DONE), WaitFor(never), Terminator()),
        "deadline_exceeded",
    ),
    Fault(
        "no-terminator-then-fin",
        lambda never: (Chunk(EVENT), Chunk(DONE), Fin()),
        "drain_errors",
        deadline=LONG,
    ),
    Fault(
        "rst-after-last-event",
        lambda never: (Chunk(EVENT), Chunk(DONE), Reset()),
        "drain_errors",
        deadline=LONG,
    ),
    Fault(
        "trickle-forever",
        lambda never: (Chunk(EVENT), Chunk(DONE), Trickle(b":" * 2000, interval=0.01)),
        "deadline_exceeded",
    ),
    Fault(
        "endless-after-last-event",
        lambda never: (Chunk(EVENT), Chunk(DONE), Endless(b"x" * 4096)),
        "max_bytes_exceeded",
        deadline=LONG,
    ),
    Fault(
        "endless-body-abandoned",
        lambda never: (Chunk(EVENT), Endless(EVENT)),
        "max_bytes_exceeded",
        delivered=EVENT * 3,
        stop_after=3,
        deadline=LONG,
    ),
    Fault(
        "1mb-chunk-size-line",
        lambda never: (Chunk(EVENT), Chunk(DONE), Raw(HUGE_LINE)),
        "drain_errors",
        deadline=LONG,
    ),
    Fault(
        "1mb-chunk-size-line-mid-stream",
        lambda never: (Chunk(EVENT), Raw(HUGE_LINE)),
        "drains_skipped",
        delivered=EVENT,
        truncated=True,
    ),
    Fault(
        "malformed-chunk-size",
        lambda never: (Chunk(EVENT), Chunk(DONE), Raw(MALFORMED)),
        "drain_errors",
        deadline=LONG,
    ),
    Fault(
        "malformed-chunk-size-mid-stream",
        lambda never: (Chunk(EVENT), Raw(MALFORMED)),
        "drains_skipped",
        delivered=EVENT,
        truncated=True,
    ),
    Fault(
        "fin-mid-stream",
        lambda never: (Chunk(EVENT), Fin()),
        "drains_skipped",
        delivered=EVENT,
        truncated=True,
    ),
    Fault(
        "trailers",
        lambda never: (Chunk(EVENT), Chunk(DONE), Terminator(trailers=[("x-checksum", "abc")])),
        "connections_kept",
        deadline=LONG,
        follow_up="reuse",
    ),
    Fault(
        "events-after-the-terminal-one",
        lambda never: (Chunk(EVENT), Chunk(DONE), Chunk(EVENT), Chunk(EVENT), Terminator()),
        "connections_kept",
        deadline=LONG,
        follow_up="reuse",
    ),
    Fault(
        # Kept if the garbage arrives after the drain (the pool then sees a readable idle
        # socket and drops it), closed by the drain if it is already in h11's buffer.
        "extra-bytes-after-content-length",
        lambda never: (Chunk(EVENT), Chunk(DONE), Raw(b"garbage")),
        "any",
        framing="content-length",
        deadline=LONG,
    ),
    Fault(
        # Not drained: the connection cannot outlive a close-delimited body. Either way, bounded.
        "close-delimited-body",
        lambda never: (Chunk(EVENT), Chunk(DONE), Chunk(EVENT)),
        "any",
        framing="eof",
        deadline=LONG,
    ),
    Fault(
        "keep-alive-timeout-after-drain",
        lambda never: (Chunk(EVENT), Chunk(DONE), Terminator()),
        "connections_kept",
        keep_alive_timeout=0.01,
        deadline=LONG,
        follow_up="fresh",
    ),
]


@dataclass
class Outcome:
    """What one exercise saw."""

    seen: list[bytes] = field(default_factory=list)
    error: BaseException | None = None
    close_seconds: float = 0.0
    client_close_seconds: float = 0.0
    follow_up: list[bytes] = field(default_factory=list)
    stats: Any = None


def stats_add_up(stats: Any) -> bool:
    """Every drain started ended in exactly one way (once none is pending)."""
    ended = sum(getattr(stats, name) for name in OUTCOMES) + stats.drains_rejected
    return bool(stats.drains_started == ended)


def eof_landed(transport: Any) -> bool:
    """Whether the server's FIN has reached every pooled connection's socket.

    The server has closed its side a moment before; on a loaded machine the kernel may not
    have delivered the FIN yet, and a request sent then would take the connection, which
    httpcore drops only once its socket reads as readable.
    """
    for connection in transport.transport._pool.connections:
        stream = getattr(getattr(connection, "_connection", None), "_network_stream", None)
        if stream is None or not stream.get_extra_info("is_readable"):
            return False
    return True


def stop_here(fault: Fault, seen: list[bytes]) -> bool:
    if fault.stop_after is not None:
        return len(seen) >= fault.stop_after
    return DONE in seen[-1]


# The consumer, once per runtime.


def exercise_sync(flavour: Flavour, fault: Fault, mode: str, server: RawServer) -> Outcome:
    out = Outcome()
    transport = flavour.DrainTransport(
        mode=mode, deadline=fault.deadline, max_bytes=MAX_BYTES, verify=False
    )
    client = flavour.lib.Client(transport=transport, timeout=30)
    response = client.send(client.build_request("POST", server.url, content=b"{}"), stream=True)
    # Timed from the consumer's decision to stop: httpx2's iter_raw() closes the response
    # itself when the loop is left, httpx's leaves it to response.close().
    stopped = None
    try:
        for chunk in response.iter_raw():
            out.seen.append(chunk)
            if stop_here(fault, out.seen):
                stopped = time.monotonic()
                break
    except Exception as exc:
        out.error = exc
    stopped = stopped or time.monotonic()
    response.close()
    out.close_seconds = time.monotonic() - stopped
    if fault.follow_up is not None:
        assert wait_for(lambda: transport.stats.connections_kept == 1)
        if fault.follow_up == "fresh":
            assert server.facts.wait_for_closed(1, 10)
            assert wait_for(lambda: eof_landed(transport))
        with client.stream("POST", server.url, content=b"{}") as response:
            for chunk in response.iter_raw():
                out.follow_up.append(chunk)
                if DONE in chunk:
                    break
    started = time.monotonic()
    client.close()
    out.client_close_seconds = time.monotonic() - started
    out.stats = transport.stats.snapshot()
    return out


async def exercise_async(flavour: Flavour, fault: Fault, mode: str, server: RawServer) -> Outcome:
    out = Outcome()
    transport = flavour.AsyncDrainTransport(
        mode=mode, deadline=fault.deadline, max_bytes=MAX_BYTES, verify=False
    )
    client = flavour.lib.AsyncClient(transport=transport, timeout=30)
    request = client.build_request("POST", server.url, content=b"{}")
    response = await client.send(request, stream=True)
    stopped = None
    try:
        async with aclosing(response.aiter_raw()) as chunks:
            async for chunk in chunks:
                out.seen.append(chunk)
                if stop_here(fault, out.seen):
                    stopped = time.monotonic()
                    break
    except Exception as exc:
        out.error = exc
    stopped = stopped or time.monotonic()
    await response.aclose()
    out.close_seconds = time.monotonic() - stopped
    if fault.follow_up is not None:
        with anyio.fail_after(10):
            while transport.stats.connections_kept < 1:
                await anyio.sleep(0.002)
        if fault.follow_up == "fresh":
            assert await server.facts.wait_for_closed_async(1, 10)
            with anyio.fail_after(10):
                while not eof_landed(transport):
                    await anyio.sleep(0.002)
        async with client.stream("POST", server.url, content=b"{}") as response:
            async with aclosing(response.aiter_raw()) as chunks:
                async for chunk in chunks:
                    out.follow_up.append(chunk)
                    if DONE in chunk:
                        break
    started = time.monotonic()
    await client.aclose()
    out.client_close_seconds = time.monotonic() - started
    out.stats = transport.stats.snapshot()
    return out


def exercise(flavour: Flavour, fault: Fault, mode: str, runtime: str, server: RawServer) -> Outcome:
    if runtime == "sync":
        return exercise_sync(flavour, fault, mode, server)
    return anyio.run(exercise_async, flavour, fault, mode, server, backend=runtime)  # type: ignore[no-any-return]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", FAULTS, ids=[f.id for f in FAULTS])
def test_fault(flavour: Flavour, fault: Fault, mode: str, runtime: str) -> None:
    never = Gate("never")
    with RawServer(fault.scenario(never)) as server:
        try:
            out = exercise(flavour, fault, mode, runtime, server)
        finally:
            never.set()
    # Bounded, and never raised (exercise() would have).
    assert out.close_seconds < fault.deadline + MARGIN
    assert out.client_close_seconds < fault.deadline + MARGIN
    # Every event before the fault, intact.
    assert b"".join(out.seen) == fault.delivered
    if fault.truncated:
        assert isinstance(out.error, IncompleteStream)
        assert isinstance(out.error, flavour.lib.RemoteProtocolError)
        assert out.error.events == fault.delivered.count(b"\n\n")
    else:
        assert out.error is None
    # The drain ended as it must, and the counters add up.
    stats = out.stats
    drains = 2 if fault.follow_up else 1
    if fault.outcome == "drains_skipped":
        assert (stats.drains_started, stats.drains_skipped) == (0, 1)
        assert stats.truncated_streams == 1
    elif fault.outcome == "any":
        assert stats.drains_started + stats.drains_skipped == 1
    else:
        assert stats.drains_started == drains
        assert getattr(stats, fault.outcome) == drains, stats
    assert stats.drains_rejected == 0
    assert stats_add_up(stats), stats
    if fault.follow_up is not None:
        assert b"".join(out.follow_up) == EVENT + DONE
        expected = 1 if fault.follow_up == "reuse" else 2
        assert server.facts.connection_count == expected


# Cancellation: the consumer's scope is cancelled while it closes, or while it reads.


async def cancel_while_closing(flavour: Flavour, mode: str, server: RawServer) -> Outcome:
    out = Outcome()
    transport = flavour.AsyncDrainTransport(mode=mode, deadline=SHORT, verify=False)
    closing = anyio.Event()
    scope = anyio.CancelScope()

    async def consumer(client: Any) -> None:
        with scope:
            async with client.stream("POST", server.url, content=b"{}") as response:
                async with aclosing(response.aiter_raw()) as chunks:
                    async for chunk in chunks:
                        out.seen.append(chunk)
                        if DONE in chunk:
                            started = time.monotonic()
                            # No checkpoint from here until aclose() is under way (httpx2's
                            # aiter_raw() closes the response as the loop is left).
                            closing.set()
                            break
            out.close_seconds = time.monotonic() - started
            await anyio.lowlevel.checkpoint()  # the cancellation surfaces here at the latest

    async with flavour.lib.AsyncClient(transport=transport) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(consumer, client)
            await closing.wait()
            scope.cancel()
        assert scope.cancelled_caught, out
        started = time.monotonic()
    out.client_close_seconds = time.monotonic() - started
    out.stats = transport.stats.snapshot()
    return out


async def cancel_while_reading(flavour: Flavour, mode: str, server: RawServer) -> Outcome:
    out = Outcome()
    transport = flavour.AsyncDrainTransport(mode=mode, deadline=SHORT, verify=False)
    first = anyio.Event()
    async with flavour.lib.AsyncClient(transport=transport) as client:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:

                async def cancel_after_first() -> None:
                    await first.wait()
                    scope.cancel()

                tg.start_soon(cancel_after_first)
                async with client.stream("POST", server.url, content=b"{}") as response:
                    async with aclosing(response.aiter_raw()) as chunks:
                        async for chunk in chunks:
                            out.seen.append(chunk)
                            first.set()  # the next read waits for ever: cancelled there
        started = time.monotonic()
        assert scope.cancelled_caught
    out.client_close_seconds = time.monotonic() - started
    out.stats = transport.stats.snapshot()
    return out


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("mode", MODES)
def test_cancelled_while_closing(flavour: Flavour, mode: str, backend: str) -> None:
    never = Gate()
    scenario = Scenario(steps=(Chunk(EVENT), Chunk(DONE), WaitFor(never), Terminator()))
    with RawServer(scenario) as server:
        try:
            out = anyio.run(cancel_while_closing, flavour, mode, server, backend=backend)
        finally:
            never.set()
    assert b"".join(out.seen) == EVENT + DONE
    assert out.close_seconds < SHORT + MARGIN
    assert out.client_close_seconds < SHORT + MARGIN
    # The drain went on, shielded, until its deadline; the inner stream was closed.
    assert (out.stats.drains_started, out.stats.deadline_exceeded) == (1, 1)
    assert stats_add_up(out.stats)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("mode", MODES)
def test_cancelled_while_reading(flavour: Flavour, mode: str, backend: str) -> None:
    never = Gate()
    scenario = Scenario(steps=(Chunk(EVENT), WaitFor(never), Chunk(DONE), Terminator()))
    with RawServer(scenario) as server:
        try:
            out = anyio.run(cancel_while_reading, flavour, mode, server, backend=backend)
        finally:
            never.set()
    assert b"".join(out.seen) == EVENT
    assert out.client_close_seconds < SHORT + MARGIN
    # The cancelled read closed the connection: nothing left to drain.
    assert (out.stats.drains_started, out.stats.drains_skipped) == (0, 1)
    assert stats_add_up(out.stats)


# client.close() with drains pending.


def drain_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("httpx-drain")}


async def three_held_async(flavour: Flavour, mode: str, url: str) -> Outcome:
    out = Outcome()
    transport = flavour.AsyncDrainTransport(mode=mode, deadline=SHORT, verify=False)
    client = flavour.lib.AsyncClient(transport=transport)
    for _ in range(3):
        async with client.stream("POST", url, content=b"{}") as response:
            async with aclosing(response.aiter_raw()) as chunks:
                async for chunk in chunks:
                    out.seen.append(chunk)
                    if DONE in chunk:
                        started = time.monotonic()
                        break
        out.close_seconds = max(out.close_seconds, time.monotonic() - started)
    started = time.monotonic()
    await client.aclose()
    out.client_close_seconds = time.monotonic() - started
    out.stats = transport.stats.snapshot()
    return out


def three_held_sync(flavour: Flavour, mode: str, url: str) -> Outcome:
    out = Outcome()
    transport = flavour.DrainTransport(mode=mode, deadline=SHORT, verify=False)
    client = flavour.lib.Client(transport=transport)
    for _ in range(3):
        with client.stream("POST", url, content=b"{}") as response:
            for chunk in response.iter_raw():
                out.seen.append(chunk)
                if DONE in chunk:
                    started = time.monotonic()
                    break
        out.close_seconds = max(out.close_seconds, time.monotonic() - started)
    started = time.monotonic()
    client.close()
    out.client_close_seconds = time.monotonic() - started
    out.stats = transport.stats.snapshot()
    return out


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("mode", MODES)
def test_client_close_with_drains_pending(flavour: Flavour, mode: str, runtime: str) -> None:
    before = drain_threads()
    never = Gate()
    scenario = Scenario(steps=(Chunk(EVENT), Chunk(DONE), WaitFor(never), Terminator()))
    with RawServer(scenario) as server:
        try:
            if runtime == "sync":
                out = three_held_sync(flavour, mode, server.url)
            else:
                out = anyio.run(three_held_async, flavour, mode, server.url, backend=runtime)
        finally:
            never.set()
    assert b"".join(out.seen) == (EVENT + DONE) * 3
    assert out.close_seconds < SHORT + MARGIN
    # The three drains run at once in the background: closing waits for them, once.
    assert out.client_close_seconds < SHORT + MARGIN
    assert (out.stats.drains_started, out.stats.deadline_exceeded) == (3, 3)
    assert stats_add_up(out.stats)
    assert drain_threads() <= before


def _extra_bytes_after(framing: str) -> Scenario:
    """Events, then bytes of no response in the same write as the end of the body."""
    if framing == "chunked":
        # Not the bare terminator: h11's reader takes it, and finds the bytes past the end.
        return Scenario(steps=(Chunk(EVENT), Chunk(DONE), Raw(b"0\r\n\r\ngarbage")))
    body = EVENT + DONE
    return Scenario(
        steps=(Raw(body + b"garbage"),),
        headers=(("content-type", "text/event-stream"), ("content-length", str(len(body)))),
        framing="content-length",
    )


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("mode", MODES)
def test_extra_bytes_after_the_body_do_not_reach_the_next_request(
    flavour: Flavour, mode: str, framing: str
) -> None:
    # One write: the extra bytes reach the client in the same segment as the body's end.
    with RawServer(_extra_bytes_after(framing)) as server:
        transport = flavour.DrainTransport(mode=mode, deadline=LONG, verify=False)
        with flavour.lib.Client(transport=transport) as client:
            for i in range(2):
                with client.stream("POST", server.url, content=b"{}") as response:
                    for chunk in response.iter_raw():
                        if DONE in chunk:
                            break
                assert wait_for(lambda i=i: transport.stats.snapshot().drain_errors == i + 1)
        # Each connection was closed, not pooled with the garbage in its buffer.
        assert server.facts.connection_count == 2
    assert transport.stats.snapshot().connections_kept == 0


@pytest.mark.parametrize("mode", MODES)
def test_a_close_delimited_body_is_not_drained(flavour: Flavour, mode: str) -> None:
    scenario = Scenario(steps=(Chunk(EVENT), Chunk(DONE), Chunk(EVENT)), framing="eof")
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport(mode=mode, deadline=LONG, verify=False)
        with flavour.lib.Client(transport=transport) as client:
            for _ in range(2):
                with client.stream("POST", server.url, content=b"{}") as response:
                    for chunk in response.iter_raw():
                        if DONE in chunk:
                            break
        # The server ends each body by closing: two requests, two connections, whatever we do.
        assert server.facts.connection_count == 2
    stats = transport.stats.snapshot()
    assert stats.connections_kept == 0
    assert (stats.drains_started, stats.drains_skipped) == (0, 2)


# No leaks over 1000 requests mixing faults, per runtime.

#: Path -> steps; fast faults mostly, and a few that make a drain wait out its deadline.
MIX: dict[str, tuple[Step, ...]] = {
    "ok": (Chunk(EVENT), Chunk(DONE), Terminator()),
    "same-segment": (Chunk(EVENT), Chunk(DONE, terminator=True)),
    "trailers": (Chunk(EVENT), Chunk(DONE), Terminator(trailers=[("x-sum", "1")])),
    "late": (Chunk(EVENT), Chunk(DONE), Pause(0.005), Terminator()),
    "fin": (Chunk(EVENT), Chunk(DONE), Fin()),
    "rst": (Chunk(EVENT), Chunk(DONE), Reset()),
    "malformed": (Chunk(EVENT), Chunk(DONE), Raw(MALFORMED)),
    "truncated": (Chunk(EVENT), Fin()),
    "endless": (Chunk(EVENT), Chunk(DONE), Endless(b"x" * 4096)),
    "events-after": (Chunk(EVENT), Chunk(DONE), Chunk(EVENT), Terminator()),
    "never": (Chunk(EVENT), Chunk(DONE), Pause(3600)),
    "trickle": (Chunk(EVENT), Chunk(DONE), Trickle(b":" * 2000, interval=0.01)),
}
#: One cycle of the mix: the waiting faults are rare, as they cost the deadline.
CYCLE = [
    *["ok", "same-segment", "trailers", "late", "fin", "rst", "malformed", "truncated"] * 2,
    "endless",
    "events-after",
    "never",
    "trickle",
]
REQUESTS = 1000
LEAK_DEADLINE = 0.05


def mix_server() -> RawServer:
    def source(request: RequestInfo) -> Scenario:
        return Scenario(steps=MIX[request.path.strip("/")])

    return RawServer(source)


def leak_transports(flavours: list[Flavour], *, sync: bool) -> list[Any]:
    return [
        (f.DrainTransport if sync else f.AsyncDrainTransport)(
            mode=mode, deadline=LEAK_DEADLINE, max_bytes=16 * 1024, verify=False
        )
        for f, mode in itertools.product(flavours, MODES)
    ]


def available_flavours() -> list[Flavour]:
    from .conftest import HTTPX, HTTPX2

    return [f for f in (HTTPX, HTTPX2) if f is not None]


def check_mix_stats(transports: list[Any]) -> None:
    total = 0
    for transport in transports:
        stats = transport.stats.snapshot()
        assert stats_add_up(stats), stats
        total += stats.responses_wrapped
    assert total == REQUESTS


def test_no_leaks_sync() -> None:
    flavours = available_flavours()
    gc.collect()
    threads, fds, before = threading.active_count(), open_fds(), drain_threads()
    with mix_server() as server:
        transports = leak_transports(flavours, sync=True)
        clients = [
            f.lib.Client(transport=t, timeout=10)
            for f, t in zip([f for f in flavours for _ in MODES], transports, strict=True)
        ]
        paths = itertools.cycle(CYCLE)
        for i in range(REQUESTS):
            client = clients[i % len(clients)]
            try:
                with client.stream("POST", f"{server.url}/{next(paths)}", content=b"{}") as r:
                    for chunk in r.iter_raw():
                        if DONE in chunk:
                            break
            except IncompleteStream:
                pass
        for client in clients:
            client.close()
        check_mix_stats(transports)
        assert drain_threads() <= before
    gc.collect()
    assert threading.active_count() <= threads, threading.enumerate()
    assert open_fds() <= fds


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_no_leaks_async(backend: str) -> None:
    flavours = available_flavours()

    async def main(url: str) -> None:
        before = tasks()
        transports = leak_transports(flavours, sync=False)
        clients = [
            f.lib.AsyncClient(transport=t, timeout=10)
            for f, t in zip([f for f in flavours for _ in MODES], transports, strict=True)
        ]
        paths = itertools.cycle(CYCLE)
        for i in range(REQUESTS):
            client = clients[i % len(clients)]
            try:
                async with client.stream("POST", f"{url}/{next(paths)}", content=b"{}") as r:
                    async with aclosing(r.aiter_raw()) as chunks:
                        async for chunk in chunks:
                            if DONE in chunk:
                                break
            except IncompleteStream:
                pass
        for client in clients:
            await client.aclose()
        check_mix_stats(transports)
        assert tasks() == before

    gc.collect()
    threads, fds = threading.active_count(), open_fds()
    with mix_server() as server:
        anyio.run(main, server.url, backend=backend)
    gc.collect()
    assert threading.active_count() <= threads, threading.enumerate()
    assert open_fds() <= fds
