"""The host library's own response stream: read through httpcore's, errors still the host's.

httpx's (and httpx2's) ``ResponseStream`` is a generator over httpcore's stream that maps
httpcore's errors to the host library's classes. The wrappers iterate httpcore's stream
themselves under the same mapping (one generator less per chunk); these tests pin down that a
consumer cannot tell the difference, and that any other stream is iterated as it is.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from typing import Any

import pytest

from httpx_drain.testing import Chunk, Fin, Gate, Raw, RawServer, Scenario, WaitFor

from .conftest import Flavour

FAULTS = ["cut-mid-chunk", "read-timeout"]
CONTENT_TYPES = ["application/octet-stream", "text/event-stream"]


def scenario(fault: str, content_type: str, release: Gate) -> Scenario:
    if fault == "cut-mid-chunk":
        steps: tuple[Any, ...] = (Chunk(b"hello"), Raw(b"10\r\nhel"), Fin())
    else:
        steps = (Chunk(b"hello"), WaitFor(release))
    return Scenario(steps=steps, headers=[("content-type", content_type)])


def chain(error: BaseException | None) -> list[type[BaseException]]:
    """The classes of an error and of its causes (``raise ... from``), down to h11's."""
    classes = []
    while error is not None:
        classes.append(type(error))
        error = error.__cause__
    return classes


def assert_same_error(ours: BaseException, bare: BaseException, content_type: str) -> None:
    expected = chain(bare)
    if content_type == "text/event-stream" and type(bare).__name__ == "RemoteProtocolError":
        # An event stream cut short is our IncompleteStream, a subclass of the host's error.
        assert isinstance(ours, type(bare))
        expected = [type(ours), *expected]
    assert chain(ours) == expected
    assert len(expected) >= 2  # the host's class, raised from httpcore's


def rewrapped(flavour: Flavour, response: Any, stream_class: type) -> Any:
    """``response`` with its body read through ``stream_class`` over httpcore's stream."""
    return flavour.lib.Response(
        response.status_code,
        headers=response.headers,
        stream=stream_class(response.stream._httpcore_stream),
        extensions=response.extensions,
    )


def reads_httpcore_directly(response: Any) -> bool:
    """Whether our stream (under the host client's own wrapper) reads httpcore's stream."""
    ours = response.stream._stream
    return ours._body is ours._inner._httpcore_stream


#: The scenario of the subclass tests, and what the consumer reads without and with it.
SHOUTED = Scenario(steps=[Chunk(b"data: hi\n\n")])
READS = ((False, b"data: hi\n\n"), (True, b"DATA: HI\n\n"))


def assert_same_errors(
    flavour: Flavour, errors: list[BaseException], fault: str, content_type: str
) -> None:
    """``errors``: the bare client's, then ours, for the same fault."""
    bare, ours = errors
    expected = "ReadTimeout" if fault == "read-timeout" else "RemoteProtocolError"
    assert isinstance(bare, getattr(flavour.lib, expected))
    assert_same_error(ours, bare, content_type)


def host_streams(flavour: Flavour) -> Any:
    return importlib.import_module(f"{flavour.name}._transports.default")


def read_error(client: Any, url: str) -> BaseException:
    try:
        with client.stream("GET", url) as response:
            for _ in response.iter_raw():
                pass
    except Exception as exc:
        return exc
    raise AssertionError("the body was read without an error")


async def aread_error(client: Any, url: str) -> BaseException:
    try:
        async with client.stream("GET", url) as response:
            async with aclosing(response.aiter_raw()) as chunks:
                async for _ in chunks:
                    pass
    except Exception as exc:
        return exc
    raise AssertionError("the body was read without an error")


@pytest.mark.parametrize("content_type", CONTENT_TYPES)
@pytest.mark.parametrize("fault", FAULTS)
def test_a_read_error_reaches_the_consumer_as_without_us(
    flavour: Flavour, fault: str, content_type: str
) -> None:
    errors = []
    for transport in (None, flavour.DrainTransport()):
        release = Gate()
        with RawServer(scenario(fault, content_type, release)) as server:
            timeout = flavour.lib.Timeout(10, read=0.2)
            with flavour.lib.Client(transport=transport, timeout=timeout) as client:
                errors.append(read_error(client, server.url))
            release.set()
    assert_same_errors(flavour, errors, fault, content_type)


@pytest.mark.anyio
@pytest.mark.parametrize("content_type", CONTENT_TYPES)
@pytest.mark.parametrize("fault", FAULTS)
async def test_async_a_read_error_reaches_the_consumer_as_without_us(
    flavour: Flavour, fault: str, content_type: str
) -> None:
    errors = []
    for transport in (None, flavour.AsyncDrainTransport()):
        release = Gate()
        with RawServer(scenario(fault, content_type, release)) as server:
            timeout = flavour.lib.Timeout(10, read=0.2)
            async with flavour.lib.AsyncClient(transport=transport, timeout=timeout) as client:
                errors.append(await aread_error(client, server.url))
            release.set()
    assert_same_errors(flavour, errors, fault, content_type)


def test_a_subclass_of_the_host_stream_is_iterated_as_it_is(flavour: Flavour) -> None:
    stream_base: Any = host_streams(flavour).ResponseStream
    transport_base: Any = flavour.lib.HTTPTransport

    class Shouting(stream_base):  # type: ignore[misc]
        def __iter__(self) -> Iterator[bytes]:
            for chunk in super().__iter__():
                yield chunk.upper()

    class Inner(transport_base):  # type: ignore[misc]
        def handle_request(self, request: Any) -> Any:
            return rewrapped(flavour, super().handle_request(request), Shouting)

    with RawServer(SHOUTED) as server:
        for shouting, body in READS:
            transport = flavour.DrainTransport(Inner() if shouting else None)
            with flavour.lib.Client(transport=transport) as client:
                with client.stream("GET", server.url) as response:
                    # The host's own stream is read through httpcore's; any other as it is.
                    assert reads_httpcore_directly(response) is not shouting
                    assert response.read() == body
            assert transport.stats.responses_wrapped == 1


@pytest.mark.anyio
async def test_async_a_subclass_of_the_host_stream_is_iterated_as_it_is(flavour: Flavour) -> None:
    stream_base: Any = host_streams(flavour).AsyncResponseStream
    transport_base: Any = flavour.lib.AsyncHTTPTransport

    class Shouting(stream_base):  # type: ignore[misc]
        async def __aiter__(self) -> AsyncIterator[bytes]:
            async for chunk in super().__aiter__():
                yield chunk.upper()

    class Inner(transport_base):  # type: ignore[misc]
        async def handle_async_request(self, request: Any) -> Any:
            return rewrapped(flavour, await super().handle_async_request(request), Shouting)

    with RawServer(SHOUTED) as server:
        for shouting, body in READS:
            transport = flavour.AsyncDrainTransport(Inner() if shouting else None)
            async with flavour.lib.AsyncClient(transport=transport) as client:
                async with client.stream("GET", server.url) as response:
                    assert reads_httpcore_directly(response) is not shouting
                    assert await response.aread() == body
            assert transport.stats.responses_wrapped == 1


def test_a_host_without_its_stream_classes_gets_no_shortcut() -> None:
    from httpx_drain._flavours import Flavour as Host

    # A release of the host library that moved them: the streams iterate it as they find it.
    assert Host("json").sync_host_stream is None
    assert Host("json").async_host_stream is None
