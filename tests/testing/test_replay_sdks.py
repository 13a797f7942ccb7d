"""The presets parse with the real SDKs, whatever path they request."""

from __future__ import annotations

import pytest

from httpx_drain.testing import (
    Gate,
    anthropic_messages,
    openai_assistants,
    openai_chat,
    openai_responses,
    sample_text,
)

from .helpers import TIMEOUT, ServerFactory

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

EVENTS = 7
MESSAGES = [{"role": "user", "content": "hi"}]
# Not a real model: the SDKs warn about deprecated ones, and the list grows.
CLAUDE = "claude-replay-test"


def test_openai_chat(make_server: ServerFactory) -> None:
    with make_server(openai_chat(EVENTS)) as srv:
        with openai.OpenAI(base_url=srv.url + "/v1", api_key="sk-test", max_retries=0) as client:
            stream = client.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, stream=True
            )
            chunks = list(stream)
        assert chunks[0].choices[0].delta.role == "assistant"
        assert chunks[-1].choices[0].finish_reason == "stop"
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
        assert text == sample_text(EVENTS)
        assert srv.facts.request_count == 1


def test_openai_responses(make_server: ServerFactory) -> None:
    with (
        make_server(openai_responses(EVENTS)) as srv,
        openai.OpenAI(base_url=srv.url + "/v1", api_key="sk-test", max_retries=0) as client,
    ):
        events = list(client.responses.create(model="gpt-4o-mini", input="hi", stream=True))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed"
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert "".join(deltas) == sample_text(EVENTS)
    assert events[-1].response.output_text == sample_text(EVENTS)


def test_openai_assistants(make_server: ServerFactory) -> None:
    with (
        make_server(openai_assistants(EVENTS)) as srv,
        openai.OpenAI(base_url=srv.url + "/v1", api_key="sk-test", max_retries=0) as client,
    ):
        with pytest.warns(DeprecationWarning, match="Assistants API is deprecated"):
            stream = client.beta.threads.create_and_run(assistant_id="asst_test", stream=True)
        events = list(stream)
    assert events[0].event == "thread.run.created"
    assert events[-1].event == "thread.run.completed"
    deltas = [
        event.data.delta.content[0].text.value
        for event in events
        if event.event == "thread.message.delta"
    ]
    assert "".join(deltas) == sample_text(EVENTS)


def test_anthropic_messages(make_server: ServerFactory) -> None:
    with make_server(anthropic_messages(EVENTS)) as srv:
        with anthropic.Anthropic(base_url=srv.url, api_key="sk-test", max_retries=0) as client:
            stream = client.messages.create(
                model=CLAUDE, max_tokens=64, messages=MESSAGES, stream=True
            )
            events = list(stream)
        assert [e.type for e in events[:2]] == ["message_start", "content_block_start"]
        assert events[-1].type == "message_stop"
        text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
        assert text == sample_text(EVENTS)
        # Read to the end: the terminator was consumed and the connection kept.
        assert srv.facts.early_disconnects == 0


def test_anthropic_stream_helper_accumulates_the_message(make_server: ServerFactory) -> None:
    with (
        make_server(anthropic_messages(EVENTS)) as srv,
        anthropic.Anthropic(base_url=srv.url, api_key="sk-test", max_retries=0) as client,
        client.messages.stream(model=CLAUDE, max_tokens=64, messages=MESSAGES) as stream,
    ):
        message = stream.get_final_message()
    assert message.content[0].text == sample_text(EVENTS)
    assert message.stop_reason == "end_turn"


def test_openai_sdk_stops_at_done_and_drops_the_connection(make_server: ServerFactory) -> None:
    # The problem httpx-drain solves, reproduced: the SDK closes the response at [DONE],
    # before h11 has parsed the terminator, and httpcore discards the connection.
    gate = Gate()
    with (
        make_server(openai_chat(2, terminator_gate=gate)) as srv,
        openai.OpenAI(base_url=srv.url + "/v1", api_key="sk-test", max_retries=0) as client,
    ):
        for _ in range(3):
            stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            assert "".join(c.choices[0].delta.content or "" for c in stream) == sample_text(2)
        assert srv.facts.wait_for_early_disconnects(3, TIMEOUT)
        assert srv.facts.connection_count == 3
        assert srv.facts.responses_completed == 0
