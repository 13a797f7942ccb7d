"""Shared fixtures: the host-library flavour and the anyio backends."""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

# httpx imports httpcore only when a transport is built. Imported here, before any test, the
# cores outlive test_plugin's in-process inner runs (pytester restores sys.modules after each):
# a core first imported inside one would be imported anew after it, and exceptions raised by
# connections of the old copy would no longer match the new copy's classes.
import httpcore  # noqa: F401
import httpx
import pytest

import httpx_drain

try:
    import httpcore2  # noqa: F401
    import httpx2

    import httpx_drain.httpx2 as drain2
except ImportError:  # httpx2 needs Python 3.11+
    httpx2 = None  # type: ignore[assignment]
    drain2 = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Flavour:
    """One host library and our transports bound to it."""

    name: str
    lib: ModuleType
    DrainTransport: Any
    AsyncDrainTransport: Any

    def __str__(self) -> str:
        return self.name


HTTPX = Flavour("httpx", httpx, httpx_drain.DrainTransport, httpx_drain.AsyncDrainTransport)
HTTPX2 = (
    Flavour("httpx2", httpx2, drain2.DrainTransport, drain2.AsyncDrainTransport)
    if drain2 is not None
    else None
)

FLAVOURS = [
    pytest.param(HTTPX, id="httpx"),
    pytest.param(
        HTTPX2,
        id="httpx2",
        marks=pytest.mark.skipif(HTTPX2 is None, reason="httpx2 needs Python 3.11+"),
    ),
]


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> Flavour:
    """Each test runs once against httpx and once against httpx2."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=["background", "inline"])
def mode(request: pytest.FixtureRequest) -> str:
    """Each drain test runs in both modes."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """anyio's pytest plugin runs ``@pytest.mark.anyio`` tests on asyncio and on trio."""
    return request.param  # type: ignore[no-any-return]


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll a condition another thread makes true: a generous timeout, no fixed sleeps."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.002)
    return predicate()


def open_fds() -> int:
    """File descriptors this process holds (Linux; elsewhere a constant)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # pragma: no cover - not Linux
        return 0


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fail a test that leaves a thread or a file descriptor behind."""
    gc.collect()
    threads, fds = threading.active_count(), open_fds()
    yield
    gc.collect()
    assert threading.active_count() <= threads, threading.enumerate()
    assert open_fds() <= fds


def tasks() -> int:
    """Tasks alive in this event loop (asyncio) or this run (trio)."""
    try:
        import asyncio

        # Not counted: asyncio's finalizers of async generators that httpx and httpcore leave
        # unfinished when a consumer stops early (Python 3.10 runs them as tasks).
        return sum(
            type(t.get_coro()).__name__ != "async_generator_athrow" for t in asyncio.all_tasks()
        )
    except RuntimeError:
        import trio

        def count(task: Any) -> int:
            return 1 + sum(count(t) for n in task.child_nurseries for t in n.child_tasks)

        # The root task holds the system nursery, where our drains run on trio.
        return count(trio.lowlevel.current_root_task())


def h11_after_first_chunk(consumed: bytes = b"") -> Any:
    """A client ``h11.Connection`` that has read a chunked response's first chunk, and then
    ``consumed`` (part of that chunk's CRLF), as a stream closed early leaves it."""
    import h11

    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello")
    assert isinstance(conn.next_event(), h11.Response)
    assert isinstance(conn.next_event(), h11.Data)
    if consumed:
        conn.receive_data(consumed)
        assert conn.next_event() is h11.NEED_DATA
    return conn
