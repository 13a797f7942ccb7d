"""The real SDKs over our transports: what users run, against the local replay server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import httpx_drain
from httpx_drain.testing import Gate, RawServer, openai_chat, sample_text

from .conftest import wait_for

openai = pytest.importorskip("openai", reason="the openai SDK needs Python 3.11+")
drain2 = pytest.importorskip("httpx_drain.httpx2")

N = 10


def chat(client: Any) -> str:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def make_client(kind: str, url: str, **transport_kwargs: Any) -> Any:
    if kind == "bare":
        http_client = openai.DefaultHttpxClient()
    elif kind == "httpx":
        # openai still accepts a plain httpx.Client.
        http_client = httpx.Client(transport=httpx_drain.DrainTransport(**transport_kwargs))
    else:
        http_client = openai.DefaultHttpxClient(transport=drain2.DrainTransport(**transport_kwargs))
    return openai.OpenAI(
        base_url=url + "/v1", api_key="sk-test", max_retries=0, http_client=http_client
    )


@pytest.mark.parametrize(
    ("kind", "connections"),
    [("bare", N), ("httpx", 1), ("httpx2", 1)],
)
@pytest.mark.parametrize("mode", ["background", "inline"])
def test_openai_sync_stream_reuses_one_connection(kind: str, connections: int, mode: str) -> None:
    with RawServer(openai_chat(events=3)) as server:
        kwargs = {} if kind == "bare" else {"mode": mode}
        client = make_client(kind, server.url, **kwargs)
        with client:
            for _ in range(N):
                assert chat(client) == sample_text(3)
        assert server.facts.request_count == N
        assert server.facts.connection_count == connections
        if kind != "bare":
            assert server.facts.early_disconnects == 0


@pytest.mark.parametrize("kind", ["httpx", "httpx2"])
def test_openai_close_does_not_wait_for_a_late_terminator(kind: str) -> None:
    # The terminator comes only when the test opens the gate: the SDK's close() returned
    # before that (we check the gate is still shut), and the connection is reused after.
    gates = [Gate() for _ in range(3)]
    sent = [Gate() for _ in range(3)]
    scenarios = iter(
        openai_chat(events=2, terminator_gate=g, last_event_sent=s)
        for g, s in zip(gates, sent, strict=True)
    )
    with RawServer(lambda _request: next(scenarios)) as server:
        client = make_client(kind, server.url, deadline=30)
        transport = client._client._transport
        with client:
            for i, gate in enumerate(gates):
                assert chat(client) == sample_text(2)
                assert sent[i].is_set()
                assert not gate.is_set()  # close() returned; the terminator is still held
                gate.set()
                assert wait_for(lambda i=i: transport.stats.connections_kept == i + 1)
        assert server.facts.connection_count == 1
