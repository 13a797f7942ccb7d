"""HypercornServer: what only an ASGI server has (apps, HTTP/2, TLS) and what it refuses."""

from __future__ import annotations

import httpx
import pytest

from httpx_drain.testing import (
    Chunk,
    HypercornServer,
    Raw,
    ReplayServerError,
    RequestInfo,
    Reset,
    Scenario,
    ScenarioApp,
    ServerFacts,
    Terminator,
    UnsupportedStep,
    generic_sse,
)
from httpx_drain.testing._asgi import Receive, Scope, Send

from .helpers import TIMEOUT

BACKENDS = ["asyncio", "trio"]


@pytest.mark.parametrize(
    "scenario",
    [
        Scenario(steps=[Raw(b"zz\r\n")]),
        Scenario(steps=[Chunk(b"x"), Reset()]),
        Scenario(framing="eof"),
        Scenario(steps=[Terminator(trailers=[("x-a", "1")])]),
    ],
)
def test_steps_asgi_cannot_express_fail_at_construction(scenario: Scenario) -> None:
    with pytest.raises(UnsupportedStep):
        HypercornServer(scenario)


def test_scenario_or_app_but_not_both() -> None:
    with pytest.raises(TypeError):
        HypercornServer()
    with pytest.raises(TypeError):
        HypercornServer(Scenario(), app=ScenarioApp(Scenario()))


@pytest.mark.parametrize("backend", BACKENDS)
def test_unsupported_scenario_from_a_callable_is_an_error(backend: str) -> None:
    def scenario(request: RequestInfo) -> Scenario:
        return Scenario(steps=[Raw(b"x")])

    srv = HypercornServer(scenario, backend=backend).__enter__()  # type: ignore[arg-type]
    with httpx.Client() as client:
        assert client.get(srv.url).status_code == 500  # hypercorn answers for the failed app
    with pytest.raises(ReplayServerError, match="RawServer"):
        srv.__exit__(None, None, None)


@pytest.mark.parametrize("backend", BACKENDS)
def test_any_asgi_app_is_recorded(backend: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b"})

    with HypercornServer(app=app, backend=backend) as srv, httpx.Client() as client:  # type: ignore[arg-type]
        for _ in range(3):
            assert client.get(srv.url).content == b"ab"
        facts = srv.facts
        assert (facts.connection_count, facts.request_count, facts.responses_completed) == (1, 3, 3)
        assert facts.connections[0].bytes_sent > 6


@pytest.mark.parametrize("backend", BACKENDS)
def test_http2_with_tls(backend: str) -> None:
    with HypercornServer(generic_sse(2), backend=backend, http2=True) as srv:  # type: ignore[arg-type]
        assert srv.url.startswith("https://")
        with httpx.Client(http2=True, verify=srv.ssl_context) as client:
            for _ in range(3):
                response = client.get(srv.url)
                assert response.http_version == "HTTP/2"
                assert response.text == "data: message 0\n\ndata: message 1\n\n"
        assert srv.facts.connection_count == 1
        assert srv.facts.request_count == 3
        assert srv.ca is not None


@pytest.mark.parametrize("backend", BACKENDS)
def test_http1_with_tls(backend: str) -> None:
    with HypercornServer(generic_sse(1), backend=backend, tls=True) as srv:  # type: ignore[arg-type]
        with httpx.Client(verify=srv.ssl_context) as client:
            response = client.get(srv.url)
            assert response.http_version == "HTTP/1.1"
            assert response.text == "data: message 0\n\n"
        assert srv.facts.wait_for_closed(1, TIMEOUT)


def test_plain_server_has_no_tls_context() -> None:
    srv = HypercornServer(Scenario())
    with pytest.raises(RuntimeError, match="TLS"):
        _ = srv.ssl_context
    with pytest.raises(RuntimeError, match="TLS"):
        _ = srv.ca
    srv.close()  # never started: nothing to do


def test_scenario_app_on_its_own_counts_body_bytes() -> None:
    # Under another server the app sees no wire: it counts body bytes per client address.
    facts = ServerFacts()
    app = ScenarioApp(Scenario(steps=[Chunk(b"abc"), Chunk(b"de")]), facts)
    with HypercornServer(app=app) as srv, httpx.Client() as client:
        assert client.get(srv.url).content == b"abcde"
        assert srv.facts.request_count == 1
    assert facts.request_count == 1
    assert facts.responses_completed == 1
    assert facts.connections[0].bytes_sent == 5
