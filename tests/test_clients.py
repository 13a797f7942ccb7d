"""wrap_client(), drain_client() and install(): every transport of a client drains.

Proxied requests go through a real forward proxy on 127.0.0.1 (``forward_proxy.py``) to a
replay server, whose connection count says whether the connections were reused.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import aclosing
from typing import Any

import pytest

from httpx_drain import _clients
from httpx_drain._clients import install, installed, is_installed, uninstall, wrap_client
from httpx_drain.testing import RawServer, openai_chat

from .conftest import Flavour
from .forward_proxy import ForwardProxy

N = 5
DONE = b"data: [DONE]"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def _never_leave_installed() -> Iterator[None]:
    yield
    uninstall()


@pytest.fixture
def upstream() -> Iterator[RawServer]:
    with RawServer(openai_chat()) as srv:
        yield srv


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as proxy:
        yield proxy


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def stream_until_done(client: Any, url: str) -> None:
    with client.stream("POST", f"{url}/v1/chat/completions", content=b"{}") as response:
        for chunk in response.iter_raw():
            if DONE in chunk:
                break


async def stream_until_done_async(client: Any, url: str) -> None:
    async with client.stream("POST", f"{url}/v1/chat/completions", content=b"{}") as response:
        async with aclosing(response.aiter_raw()) as chunks:
            async for chunk in chunks:
                if DONE in chunk:
                    break


def drain_client_of(flavour: Flavour, *, sync: bool = True) -> Any:
    if flavour.name == "httpx":
        return _clients.drain_client if sync else _clients.drain_async_client
    return _clients.drain_client_httpx2 if sync else _clients.drain_async_client_httpx2


def proxied_client(flavour: Flavour, how: str, proxy_url: str, mp: pytest.MonkeyPatch) -> Any:
    lib = flavour.lib
    if how == "proxy":
        return lib.Client(proxy=proxy_url)
    if how == "mounts":
        return lib.Client(mounts={"http://": lib.HTTPTransport(proxy=proxy_url)})
    mp.setenv("HTTP_PROXY", proxy_url)
    mp.setenv("NO_PROXY", "example.invalid")  # also mounts None for that host: left alone
    return lib.Client(trust_env=True)


# wrap_client


@pytest.mark.usefixtures("no_proxy_env")
@pytest.mark.parametrize("how", ["proxy", "mounts", "env"])
def test_proxied_streams_reuse_connections(
    flavour: Flavour,
    how: str,
    upstream: RawServer,
    proxy: ForwardProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = wrap_client(proxied_client(flavour, how, proxy.url, monkeypatch), mode="inline")
    with client:
        for _ in range(N):
            stream_until_done(client, upstream.url)
    assert proxy.requests == N
    assert (proxy.client_connections, proxy.upstream_connections) == (1, 1)
    assert upstream.facts.connection_count == 1


@pytest.mark.usefixtures("no_proxy_env")
def test_transport_argument_alone_misses_the_proxy(
    flavour: Flavour, upstream: RawServer, proxy: ForwardProxy
) -> None:
    # What wrap_client is for: transport= is the direct route, the proxy has its own mount.
    transport = flavour.DrainTransport(mode="inline")
    with flavour.lib.Client(transport=transport, proxy=proxy.url) as client:
        for _ in range(N):
            stream_until_done(client, upstream.url)
    assert transport.stats.responses_wrapped == 0
    assert proxy.requests == N
    assert (proxy.client_connections, proxy.upstream_connections) == (N, N)
    assert upstream.facts.connection_count == N


@pytest.mark.anyio
@pytest.mark.usefixtures("no_proxy_env")
@pytest.mark.parametrize("wrap", [True, False], ids=["wrapped", "bare"])
async def test_proxied_streams_async(
    flavour: Flavour, wrap: bool, upstream: RawServer, proxy: ForwardProxy
) -> None:
    client = flavour.lib.AsyncClient(proxy=proxy.url)
    if wrap:
        wrap_client(client, mode="inline")
    async with client:
        for _ in range(N):
            await stream_until_done_async(client, upstream.url)
    expected = 1 if wrap else N
    assert (proxy.client_connections, proxy.upstream_connections) == (expected, expected)
    assert upstream.facts.connection_count == expected


@pytest.mark.usefixtures("no_proxy_env")
def test_drain_client(flavour: Flavour, upstream: RawServer, proxy: ForwardProxy) -> None:
    make = drain_client_of(flavour)
    with make(proxy=proxy.url, mode="inline", deadline=3.0, follow_redirects=True) as client:
        assert isinstance(client, flavour.lib.Client)
        assert client.follow_redirects
        transports = [client._transport, *client._mounts.values()]
        assert all(isinstance(t, flavour.DrainTransport) for t in transports)
        assert {(t.mode, t.policy.deadline) for t in transports} == {("inline", 3.0)}
        for _ in range(N):
            stream_until_done(client, upstream.url)
    assert upstream.facts.connection_count == 1


@pytest.mark.anyio
@pytest.mark.usefixtures("no_proxy_env")
async def test_drain_async_client(
    flavour: Flavour, upstream: RawServer, proxy: ForwardProxy
) -> None:
    async with drain_client_of(flavour, sync=False)(proxy=proxy.url, mode="inline") as client:
        assert isinstance(client, flavour.lib.AsyncClient)
        for _ in range(N):
            await stream_until_done_async(client, upstream.url)
    assert upstream.facts.connection_count == 1


def test_wrap_client_is_idempotent(flavour: Flavour) -> None:
    lib = flavour.lib
    ours = flavour.DrainTransport()
    plain = lib.HTTPTransport()
    client = lib.Client(
        transport=ours, mounts={"http://a.invalid": plain, "http://b.invalid": None}
    )
    with client:
        wrap_client(client)
        first = dict(client._mounts)
        assert client._transport is ours
        assert wrap_client(client) is client
        assert client._transport is ours
        assert client._mounts == first
        wrapped, none = (first[key] for key in sorted(first, key=lambda p: p.pattern))
        assert isinstance(wrapped, flavour.DrainTransport)
        assert wrapped.transport is plain
        assert none is None


def test_wrap_client_refuses_bad_input(flavour: Flavour) -> None:
    with pytest.raises(TypeError, match="httpx or httpx2 client"):
        wrap_client(object())
    with flavour.lib.Client() as client:
        transport = client._transport
        with pytest.raises(TypeError, match="unknown drain option"):
            wrap_client(client, http2=True)
        with pytest.raises(ValueError, match="mode"):
            wrap_client(client, mode="later")
        assert client._transport is transport  # untouched


# install


def test_install_wraps_clients_built_after_it(flavour: Flavour) -> None:
    lib = flavour.lib
    before = lib.Client()
    with installed(mode="inline"):
        after = lib.Client(proxy="http://127.0.0.1:1")
        after_async = lib.AsyncClient()
    later = lib.Client()
    assert not isinstance(before._transport, flavour.DrainTransport)
    assert isinstance(after._transport, flavour.DrainTransport)
    assert after._transport.mode == "inline"
    assert all(isinstance(t, flavour.DrainTransport) for t in after._mounts.values())
    assert isinstance(after_async._transport, flavour.AsyncDrainTransport)
    assert not isinstance(later._transport, flavour.DrainTransport)
    for client in (before, after, later):
        client.close()


def test_installed_client_keeps_connections(flavour: Flavour, upstream: RawServer) -> None:
    with installed(mode="inline"), flavour.lib.Client() as client:
        for _ in range(N):
            stream_until_done(client, upstream.url)
    assert upstream.facts.connection_count == 1


def test_install_twice_and_nested(flavour: Flavour) -> None:
    lib = flavour.lib
    install()
    install(deadline=2.0)  # replaces the options; never wraps twice
    with lib.Client() as client:
        assert client._transport.policy.deadline == 2.0
        assert not isinstance(client._transport.transport, flavour.DrainTransport)
    with installed(deadline=3.0):
        with installed(deadline=4.0), lib.Client() as client:
            assert client._transport.policy.deadline == 4.0
        with lib.Client() as client:
            assert client._transport.policy.deadline == 3.0
    with lib.Client() as client:
        assert client._transport.policy.deadline == 2.0
    uninstall()
    uninstall()
    assert not is_installed()
    with lib.Client() as client:
        assert not isinstance(client._transport, flavour.DrainTransport)


def test_install_leaves_clients_it_cannot_wrap_alone(flavour: Flavour) -> None:
    # A "transport" that is none: install() must not break code it does not own.
    odd = object()
    with installed():
        client = flavour.lib.Client(transport=odd)
    assert client._transport is odd


def test_uninstall_under_a_later_patch(flavour: Flavour, monkeypatch: pytest.MonkeyPatch) -> None:
    # Someone patched Client.__init__ over ours: uninstall() cannot restore it, so ours, still
    # called inside theirs, must do nothing from then on.
    cls = flavour.lib.Client
    install()
    ours = cls.__init__

    def theirs(self: Any, *args: Any, **kwargs: Any) -> None:
        ours(self, *args, **kwargs)

    monkeypatch.setattr(cls, "__init__", theirs)
    uninstall()
    assert cls.__init__ is theirs
    with cls() as client:
        assert not isinstance(client._transport, flavour.DrainTransport)


def test_install_checks_options_at_once() -> None:
    with pytest.raises(TypeError, match="unknown drain option"):
        install(retries=3)
    with pytest.raises(ValueError, match="max_pending"):
        install(max_pending=0)
    assert not is_installed()


def test_install_reaches_sdk_clients() -> None:
    openai = pytest.importorskip("openai")
    drain2 = pytest.importorskip("httpx_drain.httpx2")
    with installed():
        client = openai.OpenAI(api_key="test", base_url="http://127.0.0.1:1/v1")
    try:
        assert isinstance(client._client._transport, drain2.DrainTransport)
    finally:
        client.close()
