"""The real SDKs over our transports: what users run, against the local replay server."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx
import pytest

import httpx_drain
from httpx_drain.testing import (
    Fin,
    Gate,
    RawServer,
    Reset,
    anthropic_messages,
    openai_chat,
    sample_text,
)

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
    # The terminator comes 50 ms after the test opens the gate: the SDK's close() returned
    # before that (the gate is still shut then), and the connection is reused after.
    gates = [Gate() for _ in range(3)]
    sent = [Gate() for _ in range(3)]
    scenarios = iter(
        openai_chat(events=2, terminator_gate=g, terminator_delay=0.05, last_event_sent=s)
        for g, s in zip(gates, sent, strict=True)
    )
    with RawServer(lambda _request: next(scenarios)) as server:
        client = make_client(kind, server.url, deadline=30)
        transport = client._client._transport
        with client:
            for i, gate in enumerate(gates):
                assert chat(client) == sample_text(2)
                assert sent[i].wait(10)  # set just after the last event went out
                assert not gate.is_set()  # close() returned; the terminator is still held
                gate.set()
                assert wait_for(lambda i=i: transport.stats.connections_kept == i + 1)
        assert server.facts.connection_count == 1


anthropic = pytest.importorskip("anthropic")


def anthropic_text(stream: Any) -> str:
    return "".join(
        e.delta.text
        for e in stream
        if e.type == "content_block_delta" and getattr(e.delta, "type", "") == "text_delta"
    )


def test_anthropic_does_not_wait_for_a_held_terminator() -> None:
    # anthropic reads to EOF: bare, every request waits for the terminator, however late. With
    # us it sees end-of-body at message_stop; the terminator is drained in the background.
    gates = [Gate() for _ in range(3)]
    scenarios = iter(anthropic_messages(events=3, terminator_gate=g) for g in gates)
    with RawServer(lambda _request: next(scenarios)) as server:
        transport = drain2.DrainTransport(deadline=30)
        client = anthropic.Anthropic(
            base_url=server.url,
            api_key="sk-test",
            max_retries=0,
            http_client=anthropic.DefaultHttpxClient(transport=transport),
        )
        with client:
            for i, gate in enumerate(gates):
                stream = client.messages.create(
                    model="claude-test",
                    max_tokens=16,
                    messages=[{"role": "user", "content": "hi"}],
                    stream=True,
                )
                assert anthropic_text(stream) == sample_text(3)
                assert not gate.is_set()
                gate.set()
                assert wait_for(lambda i=i: transport.stats.connections_kept == i + 1)
        assert server.facts.connection_count == 1
    assert transport.stats.terminal_events == 3


@pytest.mark.anyio
async def test_async_sdks_end_at_the_terminal_event() -> None:
    gates = [Gate() for _ in range(2)]
    scenarios = iter(
        [
            anthropic_messages(events=2, terminator_gate=gates[0]),
            openai_chat(events=2, terminator_gate=gates[1]),
        ]
    )
    with RawServer(lambda _request: next(scenarios)) as server:
        transport = drain2.AsyncDrainTransport(deadline=30)
        aclient = anthropic.AsyncAnthropic(
            base_url=server.url,
            api_key="sk-test",
            max_retries=0,
            http_client=anthropic.DefaultAsyncHttpxClient(transport=transport),
        )
        stream = await aclient.messages.create(
            model="m", max_tokens=16, messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join(
            [
                e.delta.text
                async for e in stream
                if e.type == "content_block_delta" and e.delta.type == "text_delta"
            ]
        )
        assert text == sample_text(2)
        assert not gates[0].is_set()
        gates[0].set()
        oclient = openai.AsyncOpenAI(
            base_url=server.url + "/v1",
            api_key="sk-test",
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(transport=transport),
        )
        stream = await oclient.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = [c async for c in stream]
        assert "".join(
            c.choices[0].delta.content or "" for c in chunks if c.choices
        ) == sample_text(2)
        # openai's own async drain (100 ms) saw end-of-body at [DONE]: it did not wait either.
        assert not gates[1].is_set()
        gates[1].set()
        await aclient.close()
        await oclient.close()
    assert transport.stats.terminal_events == 2


@pytest.mark.parametrize("end", ["fin", "rst"])
def test_sdks_tolerate_a_missing_terminator(end: str) -> None:
    # Seed 001: every event arrives, then the server closes without `0\r\n\r\n`. Bare, the
    # SDKs raise (anthropic reads to EOF); with us the stream ends cleanly at its last event.
    tail = Fin() if end == "fin" else Reset()
    scenarios = iter(
        [
            replace(anthropic_messages(events=2), steps=(*anthropic_messages(2).steps[:-1], tail)),
            replace(openai_chat(events=2), steps=(*openai_chat(2).steps[:-1], tail)),
        ]
    )
    with RawServer(lambda _request: next(scenarios)) as server:
        transport = drain2.DrainTransport()
        http_client = anthropic.DefaultHttpxClient(transport=transport)
        client = anthropic.Anthropic(
            base_url=server.url, api_key="sk-test", max_retries=0, http_client=http_client
        )
        stream = client.messages.create(
            model="claude-test",
            max_tokens=16,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
        )
        assert anthropic_text(stream) == sample_text(2)
        oclient = openai.OpenAI(
            base_url=server.url + "/v1", api_key="sk-test", max_retries=0, http_client=http_client
        )
        assert chat(oclient) == sample_text(2)
        http_client.close()
    assert transport.stats.missing_terminators == 2


def test_bare_anthropic_fails_on_a_missing_terminator() -> None:
    scenario = anthropic_messages(events=2)
    scenario = replace(scenario, steps=(*scenario.steps[:-1], Fin()))
    with RawServer(scenario) as server:
        client = anthropic.Anthropic(base_url=server.url, api_key="sk-test", max_retries=0)
        with client, pytest.raises(drain2.httpx2.RemoteProtocolError):  # noqa: PT012
            stream = client.messages.create(
                model="claude-test",
                max_tokens=16,
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
            )
            anthropic_text(stream)
