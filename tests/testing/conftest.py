"""Fixtures for the replay-server tests: socket clients, server factories, leak checks."""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Literal

import pytest

from httpx_drain.testing import HypercornServer, RawServer, ScenarioSource

from .helpers import SYNC_BACKENDS, TIMEOUT, ServerFactory, Wire


@pytest.fixture
def wire() -> Iterator[Callable[[int], Wire]]:
    """Open plain socket clients; all closed at teardown."""
    opened: list[Wire] = []

    def connect(port: int) -> Wire:
        client = Wire(port)
        opened.append(client)
        return client

    yield connect
    for client in opened:
        client.close()


@pytest.fixture(params=SYNC_BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_server(backend: str) -> ServerFactory:
    """Build a (not yet started) threaded server of the parametrized backend."""

    def make(scenario: ScenarioSource, **kwargs: Any) -> RawServer | HypercornServer:
        if backend == "raw":
            return RawServer(scenario, **kwargs)
        loop: Literal["asyncio", "trio"] = "trio" if backend == "hypercorn-trio" else "asyncio"
        return HypercornServer(scenario, backend=loop, **kwargs)

    return make


def _foreign(thread: threading.Thread) -> bool:
    # anyio and trio keep idle worker threads for to_thread.run_sync: not server threads.
    return thread.name.startswith(("AnyIO worker thread", "Trio thread"))


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # pragma: no cover - not Linux
        return 0


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Every server thread is joined and every socket closed once a test is over."""
    threads, fds = set(threading.enumerate()), _open_fds()
    yield
    # Threads were joined by the servers already; this only waits for a failing test.
    deadline = time.monotonic() + TIMEOUT
    while True:
        leaked = [t for t in set(threading.enumerate()) - threads if not _foreign(t)]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert not leaked, f"threads left running: {leaked}"
    if _open_fds() > fds:
        gc.collect()  # only when needed: with the SDKs imported, a collection takes a while
        assert _open_fds() <= fds, "file descriptors leaked"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
