"""What a hostile server can cost, and what reaches logs and exception messages.

A server can make each response cost at most ``deadline`` seconds and ``max_bytes`` bytes of
reading (plus one byte), and at most ``max_pending`` background drains per
transport. No header value, path or query ever reaches a log line of ours or the message of an
exception raised through us.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from contextlib import aclosing
from typing import Any

import anyio
import pytest

from httpx_drain import IncompleteStream
from httpx_drain.testing import (
    Chunk,
    Endless,
    Fin,
    Gate,
    Raw,
    RawServer,
    Reset,
    Scenario,
    Terminator,
    Trickle,
    WaitFor,
)

from .conftest import Flavour, wait_for

EVENT = b'data: {"n": 1}\n\n'
DONE = b"data: [DONE]\n\n"
MARGIN = 2.0
#: The most httpcore (and httpcore2) asks of a socket in one read.
READ = 64 * 1024


def sse(*steps: Any, **kwargs: Any) -> Scenario:
    return Scenario(steps=steps, **kwargs)


def stop_at_done(client: Any, url: str, **kwargs: Any) -> float:
    """Stream until [DONE] and close; return how long closing took from there."""
    with client.stream("POST", url, content=b"{}", **kwargs) as response:
        for chunk in response.iter_raw():
            if DONE in chunk:
                stopped = time.monotonic()
                break
    return time.monotonic() - stopped


# Time and bytes.

HOSTILE = [
    pytest.param((Endless(b"x" * 4096),), id="endless-fast"),
    pytest.param((Chunk(b"x" * 8_000_000),), id="one-huge-chunk"),
    pytest.param((Endless(b"x" * 512, interval=0.001),), id="endless-slow"),
    pytest.param((Trickle(b"x" * 5000, interval=0.005),), id="trickle"),
    pytest.param((Trickle(b"x" * 100_000, interval=0.005, size=300),), id="trickle-chunks"),
    pytest.param((WaitFor(Gate()),), id="silent"),
]


@pytest.mark.parametrize("tail", HOSTILE)
@pytest.mark.parametrize("mode", ["inline", "background"])
def test_a_hostile_server_costs_at_most_deadline_and_max_bytes(
    flavour: Flavour, mode: str, tail: tuple[Any, ...]
) -> None:
    deadline, max_bytes = 0.3, 128 * 1024
    with RawServer(sse(Chunk(EVENT), Chunk(DONE), *tail)) as server:
        transport = flavour.DrainTransport(
            mode=mode, deadline=deadline, max_bytes=max_bytes, verify=False
        )
        client = flavour.lib.Client(transport=transport, timeout=600)
        closing = stop_at_done(client, server.url)
        started = time.monotonic()
        client.close()  # waits for a background drain
        waited = time.monotonic() - started
        sent = server.facts.connections[0].bytes_sent
    stats = transport.stats.snapshot()
    assert closing < deadline + MARGIN
    assert waited < deadline + MARGIN
    assert stats.deadline_exceeded + stats.max_bytes_exceeded == 1
    # What the drain read is bounded, however much the server managed to push.
    assert stats.bytes_discarded <= max_bytes + READ
    assert stats.bytes_discarded <= sent


@pytest.mark.parametrize("mode", ["inline", "background"])
def test_a_drain_reads_no_more_than_max_bytes(flavour: Flavour, mode: str) -> None:
    # Above the one read (64 KiB) the consumer may already have pulled into h11's buffer: the
    # drain's own network reads stop one byte past the cap.
    max_bytes = 256 * 1024
    with RawServer(sse(Chunk(EVENT), Chunk(DONE), Chunk(b"x" * 4_000_000))) as server:
        transport = flavour.DrainTransport(mode=mode, max_bytes=max_bytes, verify=False)
        with flavour.lib.Client(transport=transport) as client:
            stop_at_done(client, server.url)
    stats = transport.stats.snapshot()
    assert stats.max_bytes_exceeded == 1
    # One byte past the cap is how a drain learns the body goes on.
    assert stats.bytes_discarded <= max_bytes + 1


def test_a_known_remainder_over_max_bytes_is_not_read(flavour: Flavour) -> None:
    body = EVENT + DONE + b"x" * 1_000_000
    scenario = Scenario(
        steps=(Raw(body),),
        framing="content-length",
        headers=(
            ("content-type", "text/event-stream"),
            ("content-length", str(len(body))),
        ),
    )
    with RawServer(scenario) as server:
        transport = flavour.DrainTransport(mode="inline", deadline=30, verify=False)
        with flavour.lib.Client(transport=transport) as client:
            assert stop_at_done(client, server.url) < MARGIN
    stats = transport.stats.snapshot()
    assert (stats.drains_started, stats.drains_skipped, stats.bytes_discarded) == (0, 1, 0)


def drain_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("httpx-drain")}


def test_at_most_max_pending_background_drains(flavour: Flavour) -> None:
    never = Gate()
    n, max_pending = 6, 2
    before = drain_threads()
    with RawServer(sse(Chunk(EVENT), Chunk(DONE), WaitFor(never), Terminator())) as server:
        transport = flavour.DrainTransport(max_pending=max_pending, deadline=30, verify=False)
        client = flavour.lib.Client(transport=transport)
        for _ in range(n):
            stop_at_done(client, server.url)
        # Past max_pending a response closed early loses its connection at once ...
        assert server.facts.wait_for_early_disconnects(n - max_pending, 10)
        assert transport.stats.drains_rejected == n - max_pending
        # ... while only max_pending drains (threads, connections) are held.
        assert len(drain_threads() - before) <= max_pending
        assert server.facts.wait_until(lambda f: f.closed_count >= n - max_pending, 10)
        assert server.facts.closed_count == n - max_pending
        never.set()
        assert wait_for(lambda: transport.stats.connections_kept == max_pending)
        client.close()
    assert drain_threads() <= before


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_at_most_max_pending_async_drains(flavour: Flavour, backend: str) -> None:
    never = Gate()
    n, max_pending = 6, 2

    async def main(url: str, server: RawServer) -> None:
        transport = flavour.AsyncDrainTransport(max_pending=max_pending, deadline=30, verify=False)
        async with flavour.lib.AsyncClient(transport=transport) as client:
            for _ in range(n):
                async with client.stream("POST", url, content=b"{}") as response:
                    async with aclosing(response.aiter_raw()) as chunks:
                        async for chunk in chunks:
                            if DONE in chunk:
                                break
            assert await server.facts.wait_for_early_disconnects_async(n - max_pending, 10)
            assert transport.stats.drains_rejected == n - max_pending
            assert await server.facts.wait_until_async(
                lambda f: f.closed_count >= n - max_pending, 10
            )
            assert server.facts.closed_count == n - max_pending
            never.set()
        assert transport.stats.connections_kept == max_pending

    with RawServer(sse(Chunk(EVENT), Chunk(DONE), WaitFor(never), Terminator())) as server:
        anyio.run(main, server.url, server, backend=backend)


# Secrets.

SECRETS = {
    "authorization": "sk-secret-authorization-0123456789",
    "x-api-key": "sk-secret-x-api-key-0123456789",
    "api-key": "sk-secret-api-key-0123456789",
    "query": "sk-secret-query-0123456789",
    "path": "sk-secret-path-0123456789",
}

LEAKY = [
    pytest.param((Chunk(EVENT), Chunk(DONE), WaitFor(Gate()), Terminator()), id="deadline"),
    pytest.param((Chunk(EVENT), Chunk(DONE), Endless(b"x" * 4096)), id="max-bytes"),
    pytest.param((Chunk(EVENT), Chunk(DONE), Fin()), id="missing-terminator-fin"),
    pytest.param((Chunk(EVENT), Chunk(DONE), Reset()), id="missing-terminator-rst"),
    pytest.param((Chunk(EVENT), Chunk(DONE), Raw(b"zz\r\n")), id="malformed"),
    pytest.param((Chunk(EVENT), Chunk(DONE), Terminator()), id="kept"),
    pytest.param((Chunk(EVENT), Chunk(b"data: {partial"), Fin()), id="truncated-fin"),
    pytest.param((Chunk(EVENT), Chunk(b"data: {partial"), Reset()), id="truncated-rst"),
    pytest.param((Chunk(EVENT), Raw(b"zz\r\n")), id="truncated-malformed"),
]


def secret_url(server: RawServer) -> str:
    return f"http://{server.host}:{server.port}/v1/{SECRETS['path']}/stream?key={SECRETS['query']}"


def secret_headers() -> dict[str, str]:
    return {
        "authorization": "Bearer " + SECRETS["authorization"],
        "x-api-key": SECRETS["x-api-key"],
        "api-key": SECRETS["api-key"],
    }


def exception_text(exc: BaseException) -> str:
    """Everything a handler could print: message, repr, the chain's messages, the traceback."""
    return "\n".join(
        [str(exc), repr(exc), *traceback.format_exception(type(exc), exc, exc.__traceback__)]
    )


def assert_no_secret(texts: list[str]) -> None:
    for text in texts:
        for name, secret in SECRETS.items():
            assert secret not in text, f"the {name} secret leaked: {text!r}"


def log_texts(caplog: pytest.LogCaptureFixture) -> list[str]:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    texts = []
    for record in caplog.records:
        if record.name == "httpx_drain" or record.name.startswith("httpx_drain."):
            texts.append(formatter.format(record))
            texts.append(repr(record.args))
    return texts


@pytest.mark.parametrize("steps", LEAKY)
@pytest.mark.parametrize("mode", ["inline", "background"])
def test_no_secret_in_logs_or_exceptions(
    flavour: Flavour, mode: str, steps: tuple[Any, ...], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="httpx_drain")
    texts: list[str] = []
    errors: list[Exception] = []
    with RawServer(sse(*steps)) as server:
        transport = flavour.DrainTransport(
            mode=mode, deadline=0.2, max_bytes=64 * 1024, verify=False
        )
        with flavour.lib.Client(transport=transport, headers=secret_headers()) as client:
            try:
                with client.stream("POST", secret_url(server), content=b"{}") as response:
                    for chunk in response.iter_raw():
                        if DONE in chunk:
                            break
            except Exception as exc:
                errors.append(exc)
        texts += [repr(transport), repr(transport.stats), str(transport.stats.snapshot())]
    assert all(isinstance(e, (IncompleteStream, flavour.lib.TransportError)) for e in errors)
    texts += [exception_text(e) for e in errors]
    # The request did carry the secrets: the test would prove nothing otherwise.
    assert server.facts.request_count == 1
    texts += log_texts(caplog)
    assert any("origin http://127.0.0.1:" in text for text in texts)
    assert_no_secret(texts)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("steps", LEAKY)
def test_no_secret_in_async_logs_or_exceptions(
    flavour: Flavour, steps: tuple[Any, ...], backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="httpx_drain")
    texts: list[str] = []
    errors: list[Exception] = []

    async def main(server: RawServer) -> None:
        transport = flavour.AsyncDrainTransport(deadline=0.2, max_bytes=64 * 1024, verify=False)
        async with flavour.lib.AsyncClient(transport=transport, headers=secret_headers()) as c:
            try:
                async with c.stream("POST", secret_url(server), content=b"{}") as response:
                    async with aclosing(response.aiter_raw()) as chunks:
                        async for chunk in chunks:
                            if DONE in chunk:
                                break
            except Exception as exc:
                errors.append(exc)
        texts.append(repr(transport))

    with RawServer(sse(*steps)) as server:
        anyio.run(main, server, backend=backend)
    assert all(isinstance(e, (IncompleteStream, flavour.lib.TransportError)) for e in errors)
    texts += [exception_text(e) for e in errors]
    texts += log_texts(caplog)
    assert any("origin http://127.0.0.1:" in text for text in texts)
    assert_no_secret(texts)


def test_the_secrets_do_reach_the_server() -> None:
    # The fixtures above are meaningful only if the secrets travel with the request.
    import httpx

    seen: list[Any] = []

    def source(request: Any) -> Scenario:
        seen.append(request)
        return sse(Chunk(EVENT), Chunk(DONE), Terminator())

    with RawServer(source) as server, httpx.Client(headers=secret_headers()) as client:
        client.post(secret_url(server), content=b"{}")
    request = seen[0]
    assert request.header("authorization") == "Bearer " + SECRETS["authorization"]
    assert request.header("x-api-key") == SECRETS["x-api-key"]
    assert request.header("api-key") == SECRETS["api-key"]
    assert SECRETS["query"] in request.path
    assert SECRETS["path"] in request.path
